"""``ingest`` suite: ingestion throughput against reading the same files with ``safetensors`` alone.

Each source (the real fixtures; the committed text zoo) gets its own baseline measured in the same
run, and rows as ratios to it: the bare registry (parse, validate, hash, blob, row) and the service
(the same plus the text and weight embeddings). ``stages`` says where the time goes: one serial pass
over the real fixtures timing each step on its own, and the slowest files to parse.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.run import FIXTURES, REPO, median_time

ZOO = REPO / "benchmarks" / "zoo" / "text" / "adapters"


def read_plain(files: list[Path]) -> None:
    """Baseline: load every weights file with safetensors alone (torch.load for pickles)."""
    import torch
    from safetensors.torch import load_file

    for f in files:
        if f.suffix == ".safetensors":
            load_file(str(f))
        else:
            torch.load(str(f), map_location="cpu", weights_only=True)


def _weights(root: Path) -> tuple[int, list[Path]]:
    from registry.formats import resolve_source
    from registry.ingest import discover

    units = [u for u in discover([root]) if u.problem is None]
    return len(units), [resolve_source(u.path).weights for u in units]


def _ingest_bare(root: Path, n: int) -> Callable[[], None]:
    from registry.store import Registry

    def run() -> None:
        with tempfile.TemporaryDirectory() as d:
            reg = Registry(home=d, db_url=f"sqlite:///{d}/b.db")
            reg.init()
            rep = reg.ingest([root])
            assert rep.count("ingested") == n, rep.to_dict()
            reg.close()

    return run


# One service ingest in a fresh process, as ``loradex ingest`` runs it: the encoders are loaded and
# warmed first (outside the timing), then one ingest into an empty data dir is timed.
_SERVICE_RUN = """
import json, sys, tempfile, time
from pathlib import Path
from loradex.service import LocalService
with tempfile.TemporaryDirectory() as d:
    svc = LocalService.open(Path(d))
    svc.weight_embedder._load()
    svc.text_encoder.encode(["warm up"])
    import faiss  # noqa: F401  (imported once per process, as the encoders are loaded once)
    t0 = time.perf_counter()
    rep = svc.ingest([sys.argv[1]])
    print(json.dumps({"seconds": time.perf_counter() - t0, "ingested": rep.count("ingested")}))
    svc.close()
"""


def _ingest_service(root: Path, n: int, repeats: int, *, int8: bool = False) -> tuple[float, list[float]]:
    """Median seconds of ``LocalService.ingest`` (text + weight embeddings) into a fresh data dir, each
    run in a fresh process (a process's first ingest is what a CLI user waits for); ``int8``: with the
    int8 text encoder (``LORADEX_TEXT_INT8=1``)."""
    import json
    import os
    import statistics
    import subprocess
    import sys

    times = []
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "LORADEX_TEXT_INT8": "1" if int8 else "0"}
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _SERVICE_RUN, str(root)], capture_output=True, text=True,
                             env=env, cwd=REPO, timeout=1800)  # fmt: skip
        if out.returncode:
            raise RuntimeError(f"service ingest run failed: {out.stderr[-2000:]}")
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["ingested"] == n, res
        times.append(float(res["seconds"]))
    return statistics.median(times), times


def stages(root: Path) -> dict[str, Any]:
    """One serial pass (this thread, one torch thread) timing each ingest step on its own: the
    per-unit steps, then the embeddings of all units (the way ingestion runs them: the texts and
    the weights of a group together) and, for comparison, one adapter at a time."""
    import torch

    from encoders.text import MetadataTextEmbedder, get_text_encoder
    from encoders.weight.embedder import WeightEmbedder
    from registry.formats import read_adapter, resolve_source
    from registry.formats.meta import extract_metadata
    from registry.ingest import adapter_name, discover
    from registry.storage import BlobStore, sha256_files

    torch.set_num_threads(1)
    units = [u for u in discover([root]) if u.problem is None]
    out = {"read_plain": 0.0, "parse_validate": 0.0, "metadata": 0.0, "sha256": 0.0, "blob_write_fsync": 0.0}
    per_file = []
    infos, adapters = [], []
    with tempfile.TemporaryDirectory() as d:
        blobs = BlobStore(Path(d))
        for u in units:
            src = resolve_source(u.path)
            t0 = time.perf_counter()
            read_plain([src.weights])
            t1 = time.perf_counter()
            adapter = read_adapter(u.path)
            t2 = time.perf_counter()
            extract_metadata(adapter, src.weights)
            t3 = time.perf_counter()
            sha = sha256_files(src.files)
            t4 = time.perf_counter()
            blobs.put_new(sha, {p.name: p for p in src.files})
            t5 = time.perf_counter()
            for key, dt in zip(out, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                out[key] += dt
            per_file.append((u.path.name, t2 - t1, len(adapter.modules)))
            fields = {"name": adapter_name(adapter, src), "description": adapter.description,
                      "trigger_words": list(adapter.trigger_words), "tags": list(adapter.tags), "family": adapter.family}  # fmt: skip
            infos.append(fields)
            adapters.append(adapter)
    text, weights = MetadataTextEmbedder(get_text_encoder()), WeightEmbedder()
    weights._load()
    text.encoder.encode(["warm up"])
    loads = [lambda a=a: a for a in adapters]
    for label, emb in (("text", text), ("weights", weights)):
        emb.embed_many(infos[:1], loads[:1])  # warm
        text.encoder.clear_cache()
        t0 = time.perf_counter()
        emb.embed_many(infos, loads)
        out[f"embed_{label}_together"] = time.perf_counter() - t0
        text.encoder.clear_cache()
        t0 = time.perf_counter()
        for info, load in zip(infos, loads, strict=True):
            emb.embed(info, load)
        out[f"embed_{label}_one_at_a_time"] = time.perf_counter() - t0
    text.encoder.clear_cache()
    per_file.sort(key=lambda r: -r[1])
    return {"serial_seconds": {k: round(v, 4) for k, v in out.items()},
            "slowest_parse": [{"unit": n, "seconds": round(s, 4), "modules": m} for n, s, m in per_file[:3]]}  # fmt: skip


def suite_ingest(args: argparse.Namespace) -> dict[str, Any]:
    real = Path(args.adapters) if args.adapters else (FIXTURES if FIXTURES.is_dir() else REPO / "samples" / "adapters")
    sources = [("real fixtures", real)]
    if not getattr(args, "quick", False) and ZOO.is_dir():
        sources.append(("text zoo", ZOO))
    rows: list[dict[str, Any]] = []
    result: dict[str, Any] = {"repeats": args.repeats, "sources": {}}
    for label, root in sources:
        n, weights = _weights(root)
        mb = sum(f.stat().st_size for f in weights) / 1e6
        result["sources"][label] = {"path": str(root), "adapters": n, "megabytes": round(mb, 2)}
        read_plain(weights)  # warm the page cache and imports for both sides
        bare = _ingest_bare(root, n)
        bare()
        t_plain, _ = median_time(lambda w=weights: read_plain(w), args.repeats)  # type: ignore[misc]
        t_bare, _ = median_time(bare, args.repeats)
        t_svc, _ = _ingest_service(root, n, args.repeats)
        t_int8, _ = _ingest_service(root, n, args.repeats, int8=True)

        def row(method: str, seconds: float, *, src: str = label, adapters: int = n, megabytes: float = mb,
                base: float = t_plain) -> dict[str, Any]:  # fmt: skip
            return {"source": src, "method": method, "seconds": seconds, "adapters_per_s": adapters / seconds,
                    "mb_per_s": megabytes / seconds, "throughput_vs_safetensors": base / seconds}  # fmt: skip

        rows += [row("safetensors / torch.load only", t_plain),
                 row("loradex ingest (parse, validate, hash, blob, SQLite row)", t_bare),
                 row("loradex service ingest (+ text and weight embeddings)", t_svc),
                 row("loradex service ingest, int8 text encoder (LORADEX_TEXT_INT8=1)", t_int8)]  # fmt: skip
    result["stages"] = {label: stages(root) for label, root in sources}
    result["target"] = "ingest with embedding at >= 0.5 of the safetensors-only throughput"
    return {"rows": rows, **result}
