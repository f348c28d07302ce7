"""Locks on content addresses across machines: on PostgreSQL a blob's lock is an advisory lock in
the database, so two registries that share a blob store behind an fsspec ``file://`` URL but have
separate cache folders (as on two machines: here two processes) still exclude each other; on
SQLite it is a flock file in the (shared) folder."""

from __future__ import annotations

import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from registry.fsck import fsck
from registry.store import Registry
from tests.conftest import _pg_schema_url

REPO = Path(__file__).resolve().parents[2]
PEFT = REPO / "benchmarks" / "zoo" / "text" / "adapters" / "append_abc"
SHA = "ab" * 32


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A fresh schema on the PostgreSQL test server (required: these locks are PostgreSQL's)."""
    return _pg_schema_url(request, required=True)


def _pair(tmp_path: Path, db_url: str) -> tuple[Registry, Registry]:
    """Two registries on one database and one ``file://`` store, each with its own cache folder."""
    url = (tmp_path / "remote").as_uri()
    regs = []
    for name in ("a", "b"):
        reg = Registry(tmp_path / name, db_url, blobs_url=url)
        reg.init()
        regs.append(reg)
    assert regs[0].blobs.root != regs[1].blobs.root
    return regs[0], regs[1]


def _take_in_thread(reg: Registry, sha256: str) -> tuple[threading.Thread, threading.Event]:
    got = threading.Event()

    def take() -> None:
        with reg.blobs.lock(sha256):
            got.set()

    t = threading.Thread(target=take, daemon=True)
    t.start()
    return t, got


# Another machine: its own process (flock's per-process thread locks cannot help) and cache folder.
OTHER_MACHINE = """
import sys
from pathlib import Path
from registry.store import Registry
reg = Registry(Path(sys.argv[1]), sys.argv[2], blobs_url=sys.argv[3])
print("ready", flush=True)
with reg.blobs.lock(sys.argv[4]):
    print("got", flush=True)
reg.close()
"""


def _other_machine(home: Path, db_url: str, blobs_url: str, sha256: str) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-c", OTHER_MACHINE, str(home), db_url, blobs_url, sha256],
                         stdout=subprocess.PIPE, text=True, cwd=REPO)  # fmt: skip
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def _said_got(p: subprocess.Popen[str], timeout: float) -> bool:
    assert p.stdout is not None
    ready, _, _ = select.select([p.stdout], [], [], timeout)
    return bool(ready) and p.stdout.readline().strip() == "got"


@pytest.mark.postgres
def test_a_blob_lock_excludes_another_machine_with_its_own_cache_folder(tmp_path: Path, pg_url: str) -> None:
    a, b = _pair(tmp_path, pg_url)
    url = (tmp_path / "remote").as_uri()
    other = None
    try:
        with a.blobs.lock(SHA):
            other = _other_machine(tmp_path / "c", pg_url, url, SHA)
            assert not _said_got(other, 2.0), "the other machine took the lock this one holds"
            t, got = _take_in_thread(b, "cd" * 32)  # another address is not held up
            assert got.wait(30)
            t.join(30)
        assert _said_got(other, 30), "the other machine never got the lock once it was released"
        assert other.wait(30) == 0
        # a failing body still releases it
        with pytest.raises(RuntimeError), a.blobs.lock(SHA):
            raise RuntimeError("writer failed")
        t, got = _take_in_thread(b, SHA)
        assert got.wait(30)
        t.join(30)
    finally:
        if other is not None and other.poll() is None:
            other.kill()
            other.wait()
        a.close()
        b.close()


def test_sqlite_keeps_flock_files(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "home", f"sqlite:///{tmp_path / 'loradex.db'}")
    reg.init()
    assert reg.blobs.locks is None
    with reg.blobs.lock(SHA):
        assert (reg.blobs.root / ".locks" / SHA).is_file()
    reg.close()


@pytest.mark.postgres
def test_ingest_and_remove_of_one_content_on_two_machines_keep_rows_and_blobs_together(
    tmp_path: Path, pg_url: str
) -> None:
    """A removes the adapter while B ingests the same files again, over and over: a row must never be
    left without its blob (A's remover deleting what B's writer just committed a row for)."""
    a, b = _pair(tmp_path, pg_url)
    errors: list[BaseException] = []
    stop = threading.Event()

    def remover() -> None:
        try:
            while not stop.is_set():
                for row in a.list(None):
                    try:
                        a.remove(row["id"])
                    except Exception as e:  # the other side removed it first
                        if "no adapter" not in str(e):
                            raise
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=remover, daemon=True)
    t.start()
    try:
        for _ in range(15):
            res = b.ingest([PEFT]).results[0]
            assert res.status in ("ingested", "duplicate"), res.reason
            time.sleep(0.01)
    finally:
        stop.set()
        t.join(60)
    try:
        assert errors == []
        for reg in (a, b):
            report = fsck(reg, temp_age=0)
            assert report.missing_blobs == [] and report.broken_blobs == [], report.to_dict()
        for row in b.list(None):  # what remains is whole
            assert b.get(row["id"])["missing_files"] == []
    finally:
        a.close()
        b.close()
