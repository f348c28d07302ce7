"""``loradex deploy-local``: a shared-mode deployment on this machine, for trying it and for tests.

One command migrates the database (PostgreSQL, default ``postgresql://postgres@127.0.0.1:5432/test``
or ``$LORADEX_DB_URL``), creates the queue's tables, ingests the bundled adapters when the database
is fresh, then starts ``replicas`` × ``loradex serve`` (ports ``port``, ``port + 1`` …) and
``workers`` × ``loradex worker``, all in shared mode on one blob folder, one admin token
(``<base>/admin_token``), each with its own data dir under ``base`` and a log in ``<base>/logs``.
It prints the URLs and waits; Ctrl-C (or SIGTERM) stops every process it started.

On a machine without CUDA, ``gpu_workers`` workers (default 1) still declare ``cuda`` so that the
GPU tasks (train-encoder, generate, compose) have somewhere to run (on the CPU).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/test"
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Deployment:
    base: Path
    db_url: str
    urls: list[str]
    token: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # name → process

    def stop(self, timeout: float = 30.0) -> dict[str, int]:
        """SIGTERM every process, then SIGKILL what is still running after ``timeout``; exit codes."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return {name: int(p.returncode) for name, p in self.procs.items()}

    def dead(self) -> list[str]:
        return [name for name, p in self.procs.items() if p.poll() is not None]


def start(base: Path, db_url: str | None = None, *, replicas: int = 2, workers: int = 2, port: int = 7861,
          gpu_workers: int | None = None, samples: bool = True, ui: bool = True, host: str = "127.0.0.1",
          out: TextIO | None = None) -> Deployment:  # fmt: skip
    """Prepare the database and start the processes (see the module doc); does not wait."""
    from loradex.queue import conninfo, ensure_schema
    from ui.server import prepare

    if replicas < 1 or workers < 1:
        raise ValueError(f"need at least one replica and one worker, got {replicas} and {workers}")
    base = Path(base).expanduser().resolve()
    db_url = db_url or os.environ.get("LORADEX_DB_URL") or DEFAULT_DB
    blobs, logs = base / "blobs", base / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # Once, before any process starts: migrations, the queue's tables, the bundled adapters, the token.
    prep = prepare(base / "setup", db_url, samples=samples, blob_dir=blobs)
    try:
        ensure_schema(conninfo(prep.service))
    finally:
        prep.service.close()
    if gpu_workers is None:
        import torch

        gpu_workers = workers if torch.cuda.is_available() else 1
    env = {**os.environ, "LORADEX_ADMIN_TOKEN": prep.token, "LORADEX_DB_URL": db_url, "LORADEX_MODE": "shared",
           "LORADEX_BLOB_DIR": str(blobs)}  # fmt: skip
    (base / "admin_token").write_text(prep.token + "\n")
    (base / "admin_token").chmod(0o600)
    dep = Deployment(base, db_url, [f"http://{host}:{port + i}" for i in range(replicas)], prep.token)
    cli = [sys.executable, "-m", "ui.cli"]
    for i in range(replicas):
        extra = [] if ui else ["--no-ui"]
        cmd = [*cli, "--home", str(base / f"replica-{i + 1}"), "serve", "--no-samples", "--host", host,
               "--port", str(port + i), *extra]  # fmt: skip
        dep.procs[f"replica-{i + 1}"] = _spawn(cmd, env, logs / f"replica-{i + 1}.log")
    for j in range(workers):
        offers = ["cuda"] if j < gpu_workers else []
        cmd = [*cli, "--home", str(base / f"worker-{j + 1}"), "worker", "--name", f"worker-{j + 1}",
               "--offers", *offers]  # fmt: skip
        dep.procs[f"worker-{j + 1}"] = _spawn(cmd, env, logs / f"worker-{j + 1}.log")
    if out is not None:
        print(f"loradex shared mode on {prep.service.database}: {replicas} replicas, {workers} workers "
              f"({gpu_workers} taking GPU tasks); data under {base}", file=out)  # fmt: skip
        for url in dep.urls:
            print(f"  replica {url}/  (web UI {url}/ui/)" if ui else f"  replica {url}/", file=out)
        print(f"admin token: {base / 'admin_token'}; logs: {logs}; Ctrl-C stops everything", file=out)
        out.flush()
    return dep


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as f:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)


def run(base: Path, db_url: str | None = None, *, out: TextIO | None = None, **kw: object) -> int:
    """``start``, then wait until interrupted (or a process dies: everything is stopped, exit 1)."""
    out = out or sys.stdout
    dep = start(base, db_url, out=out, **kw)  # type: ignore[arg-type]
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stopping:
            dead = dep.dead()
            if dead:
                print(f"loradex deploy-local: {', '.join(dead)} exited; stopping (see {base}/logs)", file=out)
                dep.stop()
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    codes = dep.stop()
    print(f"stopped: {codes}", file=out)
    return 0
