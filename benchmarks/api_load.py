"""Search throughput of the REST API under a bounded local load: ``python -m benchmarks.api_load``.

A uvicorn server on the bundled samples runs in a second process (fresh data dir, SQLite);
this process keeps ``--concurrency`` requests in flight (one keep-alive connection per
worker) on ``POST /search`` for ``--seconds`` per scenario, after a warm-up, and reports
requests/s and p50/p90/p99 latency. Scenarios: ``repeated`` (a dozen prompts: the text
encoder's prompt cache answers) and ``unique`` (every prompt new: one MiniLM forward each).
Writes ``benchmarks/results/api_load.json`` and ``.md``. ``--url`` loads an existing server.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PROMPTS = [
    "a soft watercolor painting of a lake", "retro 16-bit game sprites", "write sql for my database table",
    "talk like Shakespeare, thee and thou", "black pen drawing with hatching", "glowing neon lights at night",
    "pastel landscape painting", "pixel art character", "translate questions into SQL", "old english poetry",
    "ink sketch of a city", "cyberpunk street with neon signs",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(home: str, port: int, db_url: str | None = None) -> None:
    """The server process: samples in a fresh data dir (``db_url``: its database, default SQLite in
    it), uvicorn on 127.0.0.1 (no access log)."""
    import uvicorn

    from ui.api import create_app
    from ui.server import prepare

    prep = prepare(home, db_url)
    uvicorn.run(create_app(prep.service, admin_token=prep.token), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)  # fmt: skip


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def load(url: str | list[str], scenario: str, seconds: float, concurrency: int, warmup: float) -> dict[str, Any]:
    """Keep ``concurrency`` requests in flight; latencies of the requests started after the warm-up.
    ``url``: one server, or several taken round-robin (request ``n`` goes to ``url[n % len(url)]``)."""
    urls = [url] if isinstance(url, str) else list(url)
    counter = itertools.count()
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    lat: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()

    def worker() -> None:
        clients = [httpx.Client(base_url=u, timeout=60) for u in urls]  # one keep-alive connection per server
        try:
            while (t0 := time.perf_counter()) < stop_at:
                n = next(counter)
                prompt = PROMPTS[n % len(PROMPTS)] + ("" if scenario == "repeated" else f" variation {n}")
                try:
                    r = clients[n % len(clients)].post("/search", json={"prompt": prompt, "k": 5})
                    outcome = "ok" if r.status_code == 200 else f"http {r.status_code}"
                except httpx.HTTPError as e:
                    outcome = type(e).__name__
                dt = time.perf_counter() - t0
                if t0 >= measure_from:
                    with lock:
                        if outcome == "ok":
                            lat.append(dt)
                        else:
                            errors[outcome] = errors.get(outcome, 0) + 1
        finally:
            for c in clients:
                c.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - measure_from
    ms = [x * 1000 for x in lat]
    return {
        "scenario": scenario,
        "concurrency": concurrency,
        "seconds": round(wall, 2),
        "requests": len(lat),
        "errors": errors,
        "requests_per_s": round(len(lat) / wall, 1),
        "p50_ms": round(_percentile(ms, 50), 1) if ms else None,
        "p90_ms": round(_percentile(ms, 90), 1) if ms else None,
        "p99_ms": round(_percentile(ms, 99), 1) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 1) if ms else None,
    }


def _wait_ready(url: str, proc: subprocess.Popen[bytes] | None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} not ready after {timeout} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.api_load", description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per scenario")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    p.add_argument("--scenarios", nargs="+", default=["repeated", "unique"], choices=["repeated", "unique"])
    p.add_argument("--url", default=None, help="load this server instead of starting one")
    p.add_argument("--out", type=Path, default=RESULTS / "api_load.json")
    p.add_argument("--serve", nargs=2, metavar=("HOME", "PORT"), help=argparse.SUPPRESS)  # the server process
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0

    from benchmarks.run import machine

    proc = None
    with tempfile.TemporaryDirectory(prefix="loradex-load-") as home:
        url = args.url
        if url is None:
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            proc = subprocess.Popen([sys.executable, "-m", "benchmarks.api_load", "--serve", home, str(port)], cwd=REPO)
        try:
            _wait_ready(url, proc)
            health = httpx.get(f"{url}/health", timeout=10).json()
            runs = [load(url, s, args.seconds, args.concurrency, args.warmup) for s in args.scenarios]
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    served = "its own server (sample adapters)" if args.url is None else f"the server at {args.url}"
    endpoint = f"POST /search (k=5, hybrid) on {served}: {health['adapters']} adapters, {health['database']}"
    doc = {"suite": "api_load", "endpoint": endpoint,
           "machine": {**machine(), "cpu_affinity": affinity, "omp_threads": os.environ.get("OMP_NUM_THREADS")},
           "note": "cpu_affinity is the load generator's; with --url the server runs wherever it was started",
           "runs": runs}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        "| scenario | concurrency | requests/s | p50 ms | p90 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['scenario']} | {r['concurrency']} | {r['requests_per_s']} | {r['p50_ms']} | {r['p90_ms']} | "
              f"{r['p99_ms']} | {sum(r['errors'].values())} |" for r in runs]  # fmt: skip
    table = "\n".join(lines)
    args.out.with_suffix(".md").write_text(
        f"# API search load\n\n{doc['endpoint']}; load generator CPUs {affinity}\n\n{table}\n"
    )
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
