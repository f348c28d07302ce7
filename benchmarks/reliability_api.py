"""Reliability part ``api``: writers and searchers at once against one real API server process.

One ``benchmarks.api_load.serve`` process (uvicorn on a loopback port, a fresh data dir with the
bundled samples, the database from ``db_factory``: SQLite or a fresh PostgreSQL schema). For a
bounded time, ``writers`` threads upload adapter files through ``POST /ingest`` (each waits for its
job), some of them files of their own (distinct sha256s, a part of which they ``DELETE`` once
ingested) and some files every writer uploads (races on one sha256; never deleted), while
``searchers`` threads call ``POST /search``, ``GET /adapters``, ``GET /adapters/{id}`` and
``GET /adapters/{id}/download``. Checks: no 5xx, no lost write (an acknowledged ingestion absent at
the end and not deleted), no removed adapter returned by a read that started after the ``DELETE``
was acknowledged, no id given to two files, one row per sha256, each writer's own ``GET`` right after an acknowledged
ingestion (200) or removal (404) sees it, ``fsck`` clean after the run.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.api_load import PROMPTS, _free_port, _wait_ready
from benchmarks.reliability import REPO, make_adapters

SERVER = """
import sys
sys.path.insert(0, {repo!r})
from benchmarks.api_load import serve
serve({home!r}, {port}, {db!r})
"""
KINDS = ("search", "list", "get", "download")


class _Log:
    """What the threads saw, under one lock: acknowledged ingestions and removals, request counts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[str, int] = {}
        self.server_errors: list[str] = []
        self.other_errors: list[str] = []
        self.ingested: list[tuple[int, str, str]] = []  # (id, file name, writer) per "ingested" result
        self.duplicates = 0  # uploads answered "duplicate" (a file some writer had already ingested)
        self.acked_ids: list[int] = []  # every id an ingestion answered with (reads pick from these)
        self.removed: dict[int, float] = {}  # id -> monotonic time the DELETE's answer arrived
        self.removed_returned: list[str] = []
        self.not_visible: list[str] = []  # ingestions acknowledged, yet the writer's next GET did not find them

    def count(self, kind: str, r: httpx.Response) -> None:
        with self.lock:
            self.requests[kind] = self.requests.get(kind, 0) + 1
            if r.status_code >= 500:
                self.server_errors.append(
                    f"{kind} {r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}"
                )

    def check_read(self, kind: str, started: float, ids: list[int]) -> None:
        with self.lock:
            for i in ids:
                t = self.removed.get(i)
                if t is not None and t < started:
                    self.removed_returned.append(f"{kind} returned adapter {i} removed {started - t:.3f} s before")


def _writer(url: str, token: str, own: list[Path], shared: list[Path], stop_at: float, seed: int, log: _Log) -> None:
    rng = random.Random(seed)
    todo = list(own)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=120, headers=auth) as http:
        while time.monotonic() < stop_at:
            is_shared = not todo or rng.random() < 0.25
            f = rng.choice(shared) if is_shared else todo.pop(0)
            try:
                r = http.post("/ingest", files=[("files", (f.name, f.read_bytes()))])
                log.count("ingest", r)
                if r.status_code != 202:
                    continue
                job = r.json()
                while job["status"] not in ("done", "failed"):
                    time.sleep(0.05)
                    r = http.get(f"/jobs/{job['id']}")
                    log.count("job", r)
                    if r.status_code != 200:
                        break
                    job = r.json()
                if job["status"] != "done":
                    with log.lock:
                        log.other_errors.append(f"ingest job {job['id']} of {f.name}: {job.get('error')}")
                    continue
                res = job["result"]["results"][0]
                if res["adapter_id"] is not None:
                    with log.lock:
                        log.acked_ids.append(int(res["adapter_id"]))
                if res["status"] == "duplicate":
                    with log.lock:
                        log.duplicates += 1
                elif res["status"] != "ingested":  # every file uploaded is a valid adapter
                    with log.lock:
                        log.other_errors.append(f"{f.name} {res['status']}: {res.get('reason')}")
                if res["status"] == "ingested":
                    with log.lock:
                        log.ingested.append((int(res["adapter_id"]), f.name, f"w{seed}"))
                    r = http.get(f"/adapters/{res['adapter_id']}")  # read your write: there once acknowledged
                    log.count("get", r)
                    if r.status_code != 200:
                        with log.lock:
                            log.not_visible.append(f"{f.name}: adapter {res['adapter_id']} answered {r.status_code}")
                    if not is_shared and rng.random() < 0.3:
                        r = http.delete(f"/adapters/{res['adapter_id']}")
                        log.count("remove", r)
                        if r.status_code == 200:
                            with log.lock:
                                log.removed[int(res["adapter_id"])] = time.monotonic()
                            r = http.get(f"/adapters/{res['adapter_id']}")  # and gone once the removal is
                            log.count("get", r)
                            log.check_read("get", log.removed[int(res["adapter_id"])] - 1e-9,
                                           [int(res["adapter_id"])] if r.status_code == 200 else [])  # fmt: skip
            except httpx.HTTPError as e:
                with log.lock:
                    log.other_errors.append(f"writer: {type(e).__name__}: {e}")


def _searcher(url: str, stop_at: float, seed: int, log: _Log) -> None:
    rng = random.Random(1000 + seed)
    with httpx.Client(base_url=url, timeout=120) as http:
        while time.monotonic() < stop_at:
            kind = rng.choice(KINDS)
            with log.lock:
                known = list(log.acked_ids)
            if kind in ("get", "download") and not known:
                kind = "list"
            started = time.monotonic()
            try:
                ids: list[int] = []
                if kind == "search":
                    r = http.post("/search", json={"prompt": rng.choice(PROMPTS), "k": 50})
                    if r.status_code == 200:
                        ids = [int(h["adapter"]["id"]) for h in r.json()["hits"]]
                elif kind == "list":
                    r = http.get("/adapters")
                    if r.status_code == 200:
                        ids = [int(a["id"]) for a in r.json()]
                else:
                    aid = rng.choice(known)
                    path = f"/adapters/{aid}" + ("/download" if kind == "download" else "")
                    r = http.get(path, params={"format": "kohya"} if kind == "download" else None)
                    if r.status_code == 200:
                        ids = [aid]
                    elif r.status_code != 404:
                        with log.lock:
                            log.other_errors.append(f"{kind} {aid}: {r.status_code} {r.text[:200]}")
                log.count(kind, r)
                log.check_read(kind, started, ids)
            except httpx.HTTPError as e:
                with log.lock:
                    log.other_errors.append(f"{kind}: {type(e).__name__}: {e}")


def api_concurrency(db_factory: Any, writers: int, searchers: int, seconds: float) -> dict[str, Any]:
    """Run the part once on the database ``db_factory`` makes; one row of counts."""
    import os

    from loradex.service import LocalService

    with tempfile.TemporaryDirectory(prefix="loradex-rel-api-") as d:
        home = Path(d) / "home"
        db = db_factory(Path(d))
        per_writer = int(seconds * 4) + 20  # more than a writer uploads in ``seconds``
        shared = make_adapters(Path(d) / "shared", 8, seed=999)
        own = [make_adapters(Path(d) / f"w{w}", per_writer, seed=w + 1) for w in range(writers)]
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        script = SERVER.format(repo=str(REPO), home=str(home), port=port, db=db)
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
        log = _Log()
        try:
            _wait_ready(url, proc, timeout=600)
            token = (home / "admin_token").read_text().strip()
            stop_at = time.monotonic() + seconds
            threads = [threading.Thread(target=_writer, args=(url, token, own[w], shared, stop_at, w, log))
                       for w in range(writers)]  # fmt: skip
            threads += [threading.Thread(target=_searcher, args=(url, stop_at, s, log)) for s in range(searchers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            final = httpx.get(f"{url}/adapters", params={"limit": 100_000}, timeout=120)
            log.count("list", final)
            present = {int(a["id"]): a for a in final.json()}
        finally:
            proc.terminate()
            try:
                _, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        names: dict[int, str] = {}
        reused = 0
        for aid, name, _w in log.ingested:
            if aid in names and names[aid] != name:
                reused += 1
            names[aid] = name
        lost = [f"{aid} ({name})" for aid, name in names.items() if aid not in log.removed and aid not in present]
        shas = [a["sha256"] for a in present.values()]
        svc = LocalService.open(home, db, embed=False, sync=False)
        try:
            report = svc.fsck()
        finally:
            svc.close()
        tracebacks = [ln for ln in (err or "").splitlines() if "Traceback" in ln or "Error" in ln][:5]
        return {"writers": writers, "searchers": searchers, "seconds": seconds,
                "requests": dict(sorted(log.requests.items())), "requests_total": sum(log.requests.values()),
                "server_errors_5xx": len(log.server_errors), "ingested": len(names), "duplicates": log.duplicates, "removed": len(log.removed),
                "present_at_end": sum(1 for aid in names if aid in present), "lost_writes": len(lost), "removed_returned": len(log.removed_returned), "ack_not_visible": len(log.not_visible),
                "ids_reused": reused, "sha256_registered_twice": len(shas) - len(set(shas)),
                "other_errors": len(log.other_errors), "fsck_problems": report.problems,
                "examples": (log.server_errors + lost + log.removed_returned + log.not_visible + log.other_errors)[:5],
                "server_log_errors": tracebacks}  # fmt: skip
