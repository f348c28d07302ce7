"""``loradex deploy-local``: 2 replicas + 2 workers on one PostgreSQL. An upload through replica 1
is ingested by a worker, searchable on replica 2, and its job readable on replica 2; stopping the
deployment stops every process."""

from __future__ import annotations

import contextlib
import random
import socket
import time
from pathlib import Path

import httpx
import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"


def _free_ports(n: int) -> int:
    for _ in range(100):
        first = random.randint(20000, 40000)
        try:
            socks = []
            for port in range(first, first + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


def _until(check, what: str, dep, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout  # a liveness bound, not a speed figure
    while True:
        with contextlib.suppress(httpx.HTTPError, OSError):  # not up yet: poll again
            if check():
                return
        assert not dep.dead(), f"{dep.dead()} exited before {what}; logs in {dep.base / 'logs'}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}; logs in {dep.base / 'logs'}"
        time.sleep(0.25)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    from tests.conftest import _pg_schema_url

    return _pg_schema_url(request, required=True)


def test_two_replicas_two_workers(tmp_path: Path, pg_url: str) -> None:
    from loradex.client import Client
    from ui.deploy import start

    dep = start(tmp_path / "dep", pg_url, replicas=2, workers=2, port=_free_ports(2), samples=False, ui=False)
    try:
        assert sorted(dep.procs) == ["replica-1", "replica-2", "worker-1", "worker-2"]
        for url in dep.urls:
            _until(lambda url=url: httpx.get(f"{url}/health").status_code == 200, f"{url} to answer", dep)
        one, two = Client(dep.urls[0], token=dep.token), Client(dep.urls[1], token=dep.token)
        report = one.ingest([SAMPLES / "watercolor_sd15.safetensors"], timeout=300)  # runs on a worker
        assert [r.status for r in report.results] == ["ingested"], report.results
        _until(lambda: [h.adapter["name"] for h in two.search("a soft watercolor painting", k=3)][:1]
               == ["watercolor_sd15"], "replica 2 to find the adapter", dep)  # fmt: skip
        seen = httpx.get(f"{dep.urls[1]}/jobs", headers={"Authorization": f"Bearer {dep.token}"}).json()
        assert [(j["kind"], j["status"]) for j in seen] == [("ingest", "done")], seen
    finally:
        codes = dep.stop()
    assert set(codes) == set(dep.procs) and not [n for n, p in dep.procs.items() if p.poll() is None]
