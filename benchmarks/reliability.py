"""Suite ``reliability``: crash trials, concurrent writers and readers, and fuzzing of the readers.

``python -m benchmarks.run reliability`` (``--quick`` for a smoke run; ``--parts crash,jobs`` for some). Every row counts what was
tried and what was lost; the target is 0 lost in every row.

* **crash**: a child process ingests a folder of adapters and is killed with SIGKILL at a random
  moment; the registry is then opened (migrations, index sync) and checked with ``fsck``
  (rows = blobs = index entries, no row without its blob), and the same ingest is rerun, which
  must complete the work: every file registered, ``fsck`` clean. The same for a plan of merge and
  generate jobs (``benchmarks.reliability_jobs``).
* **concurrency**: writer processes ingest and remove, reader processes list, get and load, all
  at once for a bounded time, on one data dir; checks: no unexpected error, no lost write (an
  ingest that reported success is present at the end unless its writer removed it), no id
  assigned twice, no reader loading a row whose blob is gone.
* **api**: the same over the REST API (``benchmarks.reliability_api``): one real server process,
  writer threads uploading (``POST /ingest``) and deleting, searcher threads searching, listing,
  getting and downloading; checks: no 5xx, no lost write, no removed adapter returned after its
  ``DELETE`` was acknowledged, no id reused, ``fsck`` clean.
* **fuzz**: the real fixtures mutated (bytes flipped, truncated, header numbers and dtypes
  changed, tensors dropped), each read with a time limit in a child process whose peak memory
  is reported: no exception other than the project's own refusals, no hang.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("LORADEX_FIXTURES", REPO.parent / "shared" / "fixtures" / "real_adapters"))
KEY = "lora_unet_down_blocks_0_attentions_0_proj_in"


class WeightsDigestEmbedder:
    """A real, cheap embedder for the trials: the first 16 values of the first module's ΔW,
    normalized. It makes the index part of every check without loading a text encoder."""

    kind = "weights"
    version = "digest-v1"

    def embed(self, info: dict[str, Any], load: Any) -> Any:
        import numpy as np

        a = load()
        v = next(iter(a.modules.values())).delta().flatten()[:16].numpy().astype(np.float32)
        return v / max(float(np.linalg.norm(v)), 1e-12)


def make_adapters(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` small kohya SD1 adapters with distinct weights."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        g = torch.Generator().manual_seed(seed * 100_000 + i)
        t = {f"{KEY}.lora_down.weight": torch.randn(4, 320, generator=g),
             f"{KEY}.lora_up.weight": torch.randn(320, 4, generator=g), f"{KEY}.alpha": torch.tensor(4.0)}  # fmt: skip
        p = folder / f"a{seed}_{i:04d}.safetensors"
        save_file(t, str(p), metadata={"ss_base_model_version": "sd_v1"})
        out.append(p)
    return out


def open_registry(home: Path, db_url: str | None) -> Any:
    from registry.store import Registry

    reg = Registry(home, db_url, embedders=[WeightsDigestEmbedder()])
    reg.init()
    return reg


CHILD_INGEST = """
import sys
sys.path.insert(0, {repo!r})
from benchmarks.reliability import open_registry
reg = open_registry({home!r}, {db!r})
print("ready", flush=True)
reg.ingest([{folder!r}], workers=1)
print("done", flush=True)
"""


# -- crash trials -------------------------------------------------------------------------------
def crash_trials(n: int, db_factory: Any, files: int = 30) -> dict[str, Any]:
    rng = random.Random(0)
    lost = dangling = incomplete = 0
    orphans_seen = 0
    killed_mid = 0
    t_full: float | None = None
    for trial in range(n):
        with tempfile.TemporaryDirectory() as d:
            home, folder = Path(d) / "home", Path(d) / "in"
            make_adapters(folder, files, seed=trial)
            db = db_factory(Path(d))
            open_registry(home, db).close()
            script = CHILD_INGEST.format(repo=str(REPO), home=str(home), db=db, folder=str(folder))
            p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            t0 = time.perf_counter()
            if t_full is None:  # the first trial runs to the end: how long a full ingest takes
                p.wait()
                t_full = time.perf_counter() - t0
            else:
                time.sleep(rng.uniform(0, t_full))
                if p.poll() is None:
                    killed_mid += 1
                p.send_signal(signal.SIGKILL)
                p.wait()
            reg = open_registry(home, db)
            after_kill = reg.fsck()
            dangling += len(after_kill.missing_blobs) + len(after_kill.broken_blobs)
            dangling += sum(len(v["extra"]) + len(v["missing"]) for v in after_kill.index_drift.values())
            orphans_seen += len(after_kill.orphan_blobs)
            reg.ingest([folder])  # the rerun completes the work
            final = reg.fsck()
            if reg.count() != files:
                incomplete += 1
            lost += final.problems
            reg.close()
    return {"trials": n, "killed_mid_ingest": killed_mid, "full_ingest_s": round(t_full or 0.0, 2),
            "orphan_blobs_after_kill": orphans_seen, "dangling_after_kill": dangling,
            "incomplete_after_rerun": incomplete, "problems_after_rerun": lost}  # fmt: skip


# -- concurrency ----------------------------------------------------------------------------------
CHILD_WRITER = """
import json, sys, random
sys.path.insert(0, {repo!r})
from benchmarks.reliability import open_registry
from pathlib import Path
reg = open_registry({home!r}, {db!r})
print("ready", flush=True)
sys.stdin.readline()  # everyone starts at once
rng = random.Random({seed})
log = []
for f in sorted(Path({folder!r}).iterdir()):
    r = reg.ingest([f]).results[0]
    log.append(["ingest", r.status, r.adapter_id, f.name])
    if r.status == "ingested" and rng.random() < 0.3:
        reg.remove(r.adapter_id)
        log.append(["remove", "ok", r.adapter_id, f.name])
print(json.dumps(log))
"""

CHILD_READER = """
import json, sys, time
sys.path.insert(0, {repo!r})
from benchmarks.reliability import open_registry
from registry.errors import AdapterNotFoundError
from pathlib import Path
reg = open_registry({home!r}, {db!r})
print("ready", flush=True)
sys.stdin.readline()  # the writers start now
stop = time.time() + {seconds}
reads = errors = gone = 0
bad = []
last = False
while not last:
    last = time.time() >= stop and Path({stop_file!r}).exists()  # writers done: one more full pass
    for row in reg.list():
        try:
            reg.get(row["id"])
            reg.load(row["id"])
            reads += 1
        except AdapterNotFoundError:
            gone += 1  # removed between list and get: fine
        except Exception as e:
            try:  # removed between get and load is fine too; a row still there without its blob is not
                reg.get(row["id"])
            except AdapterNotFoundError:
                gone += 1
                continue
            errors += 1
            bad.append(type(e).__name__ + ": " + str(e)[:200])
print(json.dumps({{"reads": reads, "errors": errors, "gone": gone, "bad": bad[:5]}}))
"""


def concurrency(db_factory: Any, writers: int, readers: int, files: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        home = Path(d) / "home"
        db = db_factory(Path(d))
        open_registry(home, db).close()
        stop = Path(d) / "writers_done"
        shared = Path(d) / "shared"  # every writer ingests the same files too: races on one sha256
        make_adapters(shared, files // 2, seed=999)
        procs = []
        for _ in range(readers):  # every process ready (imports done) before any starts its work
            script = CHILD_READER.format(repo=str(REPO), home=str(home), db=db, seconds=seconds, stop_file=str(stop))
            p = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            procs.append(("reader", p))
        for w in range(writers):
            folder = Path(d) / f"w{w}"
            make_adapters(folder, files // 2, seed=w + 1)
            for f in shared.iterdir():
                (folder / f.name).write_bytes(f.read_bytes())
            script = CHILD_WRITER.format(repo=str(REPO), home=str(home), db=db, folder=str(folder), seed=w)
            p = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            procs.append(("writer", p))
        for _, p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        procs = [t for t in procs if t[0] == "writer"] + [t for t in procs if t[0] == "reader"]
        logs, reads, crashed, read_errors, bad, gone_total = [], 0, 0, 0, [], 0
        for kind, p in procs:
            if kind == "reader":
                stop.touch()  # every writer has finished
            out, err = p.communicate(timeout=seconds + 600)
            if p.returncode != 0:
                crashed += 1
                bad.append(err.strip().splitlines()[-1][:200] if err.strip() else f"exit {p.returncode}")
                continue
            data = json.loads(out.strip().splitlines()[-1])
            if kind == "writer":
                logs.append(data)
            else:
                reads += data["reads"]
                gone_total = data["gone"]
                read_errors += data["errors"]
                bad += data["bad"]
        reg = open_registry(home, db)
        present = {r["id"]: r["name"] for r in reg.list()}
        assigned: dict[int, str] = {}
        reused = lost = 0
        removed = set()
        for log in logs:
            for op, status, aid, name in log:
                if op == "ingest" and status == "ingested":
                    if aid in assigned and assigned[aid] != name:
                        reused += 1
                    assigned[aid] = name
                if op == "remove":
                    removed.add(aid)
        lost = sum(1 for aid in assigned if aid not in removed and aid not in present)
        report = reg.fsck()
        reg.close()
        return {"writers": writers, "readers": readers, "files_per_writer": files, "seconds": seconds,
                "ingested": len(assigned), "removed": len(removed), "reads": reads, "gone": gone_total, "crashed_processes": crashed,
                "read_errors": read_errors, "lost_writes": lost, "ids_reused": reused,
                "fsck_problems": report.problems, "examples": bad[:5]}  # fmt: skip


# -- fuzzing ----------------------------------------------------------------------------------
def mutate(data: bytes, rng: random.Random) -> bytes:
    """One structured mutation of an adapter file's bytes."""
    b = bytearray(data)
    op = rng.randrange(7)
    if op == 0 and b:  # flip bytes anywhere
        for _ in range(rng.randint(1, 16)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif op == 1:  # truncate
        b = b[: rng.randrange(max(len(b), 1))]
    elif op == 2 and len(b) > 8:  # flip bytes inside the first 4 KiB (headers, zip directory)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(min(len(b), 4096))] = rng.randrange(256)
    elif op == 3 and len(b) > 8:  # header length field
        b[:8] = rng.choice([0, 1, 7, 2**31, 2**63 - 1, len(b) - 8, len(b)]).to_bytes(8, "little")
    elif op in (4, 5) and len(b) > 8:  # edit numbers / dtypes inside a safetensors JSON header
        n = int.from_bytes(b[:8], "little")
        if 0 < n <= len(b) - 8:
            head = b[8 : 8 + n].decode("utf-8", "replace")
            if op == 4:
                digits = [i for i, c in enumerate(head) if c.isdigit()]
                if digits:
                    i = rng.choice(digits)
                    head = head[:i] + rng.choice(["9999999999", "0", "-1", "3"]) + head[i + 1 :]
            else:
                for a, z in (("F32", rng.choice(["F64", "I8", "XX", "BOOL"])), ("F16", "F32"), ('"shape"', '"shap"')):
                    if a in head:
                        head = head.replace(a, z, 1)
                        break
            raw = head.encode()
            b = bytearray(len(raw).to_bytes(8, "little") + raw + bytes(b[8 + n :]))
    else:  # append junk
        b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(b)


CHILD_FUZZ = """
import json, os, random, resource, shutil, signal, sys, tempfile, time
sys.path.insert(0, {repo!r})
from pathlib import Path
from benchmarks.reliability import mutate
from registry.errors import RegistryError
from registry.formats import read_adapter
seeds = [Path(p) for p in {seeds!r}]
rng = random.Random({seed})
stop = time.time() + {seconds}
tried = refused = accepted = 0
crashes, hangs = [], []
def alarm(*_): raise TimeoutError("hang")
signal.signal(signal.SIGALRM, alarm)
work = Path(tempfile.mkdtemp())
while time.time() < stop:
    src = rng.choice(seeds)
    folder = work / "case"
    shutil.rmtree(folder, ignore_errors=True)
    if src.is_dir():  # a PEFT folder: mutate its weights file, keep the config
        shutil.copytree(src, folder)
        targets = [p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".json")]
        t = rng.choice(targets)
        t.write_bytes(mutate(t.read_bytes(), rng))
        case = folder
    else:
        folder.mkdir()
        case = folder / src.name
        case.write_bytes(mutate(src.read_bytes(), rng))
    tried += 1
    signal.alarm(120)  # a hang: far past the slowest real fixture's read on a loaded machine
    try:
        read_adapter(case)
        accepted += 1
    except RegistryError:
        refused += 1
    except TimeoutError:
        hangs.append(src.name)
        if {keep!r}:
            shutil.copytree(folder, Path({keep!r}) / f"hang_{{tried}}")
    except Exception as e:
        crashes.append(src.name + ": " + type(e).__name__ + ": " + str(e)[:160])
    finally:
        signal.alarm(0)
shutil.rmtree(work, ignore_errors=True)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"tried": tried, "refused": refused, "accepted": accepted, "crashes": len(crashes),
                  "hangs": len(hangs), "hang_seeds": hangs[:5], "peak_rss_mb": round(peak, 1), "examples": crashes[:5]}}))
"""


def fuzz_seeds() -> list[Path]:
    """The weights file of each real fixture (a PEFT adapter: its folder)."""
    from registry.ingest import discover

    if not FIXTURES.is_dir():
        return []
    return [u.path for u in discover([FIXTURES]) if u.problem is None]


def fuzz(seconds: float, seed: int = 0, keep: str = "") -> dict[str, Any]:
    seeds = [str(p) for p in fuzz_seeds()]
    if not seeds:
        return {"skipped": f"no real fixtures at {FIXTURES}"}
    script = CHILD_FUZZ.format(repo=str(REPO), seeds=seeds, seed=seed, seconds=seconds, keep=keep)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=seconds + 300)
    if out.returncode != 0:
        return {"tried": 0, "crashes": 1, "examples": [out.stderr.strip().splitlines()[-1][:300]]}
    return {"seeds": len(seeds), "seconds": seconds, **json.loads(out.stdout.strip().splitlines()[-1])}


class PgSchemas:
    """A fresh schema per trial in the PostgreSQL test database (called with the trial's folder, as the
    SQLite factory is); ``drop()`` removes the schemas this factory made and no others, so a run
    beside this one on the same database (another suite, a test) keeps its own."""

    def __init__(self) -> None:
        self.url = os.environ.get("LORADEX_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
        self.made: list[str] = []

    def __call__(self, _: Path) -> str:
        import uuid

        from sqlalchemy import create_engine, text

        schema = f"loradex_rel_{uuid.uuid4().hex[:10]}"
        with create_engine(self.url).begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.made.append(schema)
        return f"{self.url}?options=-csearch_path%3D{schema}"

    def drop(self) -> None:
        from sqlalchemy import create_engine, text

        if not self.made:
            return
        with create_engine(self.url).begin() as c:
            for schema in self.made:
                c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        self.made.clear()


def suite_reliability(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))

    def sqlite(d: Path) -> str:
        return f"sqlite:///{d / 'r.db'}"

    parts = set((getattr(args, "parts", None) or ",".join(PARTS)).split(","))
    if parts - set(PARTS):
        raise ValueError(f"unknown reliability part(s) {sorted(parts - set(PARTS))}; known: {', '.join(PARTS)}")
    rows: list[dict[str, Any]] = []
    pg = PgSchemas()
    try:
        for name, factory, n in (
            ("sqlite", sqlite, 3 if quick else 50),
            ("postgresql", pg, 2 if quick else 20),
        ):
            if "crash" in parts:
                r = crash_trials(n, factory)
                rows.append({"check": f"crash: kill -9 during folder ingest ({name})", **r})
            if "jobs" in parts:
                from benchmarks.reliability_jobs import job_crash_trials

                r = job_crash_trials(n, factory)
                rows.append({"check": f"crash: kill -9 during merge / generate jobs ({name})", **r})
        for name, factory in (("sqlite", sqlite), ("postgresql", pg)) if "concurrency" in parts else ():
            r = concurrency(factory, writers=2 if quick else 3, readers=1 if quick else 2,
                            files=10 if quick else 60, seconds=5 if quick else 30)  # fmt: skip
            rows.append({"check": f"concurrency: writers + readers ({name})", **r})
        for name, factory in (("sqlite", sqlite), ("postgresql", pg)) if "api" in parts else ():
            from benchmarks.reliability_api import api_concurrency

            r = api_concurrency(factory, writers=2 if quick else 3, searchers=2 if quick else 4,
                                seconds=20 if quick else 60)  # fmt: skip
            rows.append({"check": f"api: writers + searchers over REST ({name})", **r})
    finally:
        pg.drop()
    out: dict[str, Any] = {"rows": rows, "quick": quick, "parts": sorted(parts)}
    if "fuzz" in parts:
        out["fuzz"] = fuzz(20 if quick else 600)
    return out


PARTS = ("crash", "jobs", "concurrency", "api", "fuzz")  # ``--parts`` picks some (default: all)
