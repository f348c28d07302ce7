"""Group commit (``registry.group_commit``): which parsed units form a group, and what a group's
failures leave behind: all of its rows or none, no blob without a row, the per-adapter retries
when a constraint fails."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.exc import IntegrityError

from registry.errors import AdapterFormatError
from registry.group_commit import take_group
from registry.ingest import Prepared
from registry.store import Registry
from tests.registry.test_reliability import kohya_file


class _Prep(Prepared):
    def __init__(self, sha: str) -> None:  # only what take_group looks at
        self.sha256 = sha


def _done(value: Any = None, error: BaseException | None = None) -> Future[Any]:
    f: Future[Any] = Future()
    if error is not None:
        f.set_exception(error)
    else:
        f.set_result(value)
    return f


def test_a_group_is_the_parsed_run_up_to_a_repeat_or_a_pending_unit() -> None:
    refused = AdapterFormatError(Path("x"), "broken")
    futures: list[Future[Any] | None] = [_done(_Prep("a")), _done(refused), _done(_Prep("b")), _done(_Prep("a")),
                                         _done(_Prep("c"))]  # fmt: skip
    group = take_group(futures, 0)
    assert [getattr(o, "sha256", None) for o in group] == ["a", None, "b"]  # stops before the second "a"
    assert futures[:3] == [None, None, None] and futures[3] is not None  # taken ones are dropped
    pending: Future[Any] = Future()
    futures = [_done(_Prep("a")), _done(_Prep("b")), pending, _done(_Prep("c"))]
    assert len(take_group(futures, 0)) == 2  # never waits for a unit after the first
    futures = [_done(_Prep("a")), _done(error=OSError("disk full")), _done(_Prep("c"))]
    assert len(take_group(futures, 0)) == 1  # a staging error is the next group's (raised there)
    with pytest.raises(OSError, match="disk full"):
        take_group(futures, 1)
    futures = [_done(_Prep(str(i))) for i in range(10)]
    assert len(take_group(futures, 2, limit=3)) == 3


def _sources(tmp_path: Path, n: int) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(n):
        kohya_file(src / f"a{i}.safetensors", i)
    return src


def _temps(reg: Registry) -> list[Path]:
    return sorted(reg.blobs.root.glob("*/.tmp-*"))


class _Embedder:
    kind = "weights"
    version = "const-v1"

    def embed(self, info, load):  # type: ignore[no-untyped-def]
        return np.ones(4, dtype=np.float32) / 2


def test_a_failing_row_leaves_none_of_its_group(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The third row of a group fails (not a constraint): the group's transaction rolls back, and
    the blobs it renamed into place are removed again; nothing of it was reported."""
    src = _sources(tmp_path, 6)
    reg = Registry(home=tmp_path / "home", db_url=db_url, embedders=[_Embedder()])
    reg.init()
    real = Registry._add_row
    calls: list[int] = []

    def third_fails(self, *a, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("row failed")
        return real(self, *a, **kw)

    monkeypatch.setattr(Registry, "_add_row", third_fails)
    reported: list[object] = []
    # one worker, everything parsed before the first commit: a single group of six
    monkeypatch.setattr("registry.group_commit.take_group", _whole_batch)
    with pytest.raises(RuntimeError, match="row failed"):
        reg.ingest([src], workers=1, progress=reported.append)
    assert reported == [] and reg.count() == 0
    assert reg.blobs.listing() == [] and _temps(reg) == []
    assert reg.indexes["weights"].ids == set()
    monkeypatch.setattr(Registry, "_add_row", real)
    report = reg.ingest([src])  # nothing left in the way
    assert report.count("ingested") == 6 and len(reg.blobs.listing()) == 6
    assert reg.fsck().problems == 0
    reg.close()


def _whole_batch(futures, start, limit=64):  # type: ignore[no-untyped-def]
    """take_group after waiting for every unit: the largest group the batch allows."""
    for f in futures[start:]:
        if f is not None:
            f.exception()  # waits
    return take_group(futures, start, limit)


def test_a_constraint_failure_falls_back_to_one_row_at_a_time(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent writer's family / tag row makes the group's transaction fail on a constraint:
    each row is then written on its own (with the per-adapter retries), and all land."""
    src = _sources(tmp_path, 5)
    reg = Registry(home=tmp_path / "home", db_url=db_url, embedders=[_Embedder()])
    reg.init()
    real = Registry._add_row
    calls: list[int] = []

    def first_conflicts(self, *a, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise IntegrityError("INSERT INTO tags", {}, Exception("UNIQUE constraint failed: tags.name"))
        return real(self, *a, **kw)

    monkeypatch.setattr(Registry, "_add_row", first_conflicts)
    monkeypatch.setattr("registry.group_commit.take_group", _whole_batch)
    reported: list[Any] = []
    report = reg.ingest([src], workers=1, progress=reported.append)
    assert report.count("ingested") == 5 and [r.status for r in reported] == ["ingested"] * 5
    assert len(calls) == 2 + 5  # the group's two tries, then each row on its own
    assert len(reg.blobs.listing()) == reg.count() == 5 and _temps(reg) == []
    assert reg.indexes["weights"].ids == {r.adapter_id for r in report.results}
    assert reg.fsck().problems == 0
    reg.close()


def test_put_batch_makes_staged_files_durable_before_renaming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing threads stage copies without fsync; the group's put_batch fsyncs every staged file
    and folder before any rename, and the fan-out folders after the renames."""
    import os

    from registry import storage
    from registry.storage import BlobStore

    store = BlobStore(tmp_path / "blobs")
    items = []
    for i in range(5):
        src = tmp_path / f"w{i}.bin"
        src.write_bytes(bytes([i]) * 1000)
        sha = f"{i:02x}" * 32
        items.append((sha, {"w.bin": src}, store.stage(sha, {"w.bin": src}, durable=False)))
    events: list[tuple[str, str]] = []
    real_fsync_path, real_rename = storage._fsync_path, os.rename

    def fsync_path(p: Path) -> None:
        events.append(("fsync", str(p)))
        real_fsync_path(p)

    def rename(a, b):  # type: ignore[no-untyped-def]
        events.append(("rename", str(a)))
        real_rename(a, b)

    monkeypatch.setattr(storage, "_fsync_path", fsync_path)
    monkeypatch.setattr(storage.os, "rename", rename)
    assert store.put_batch(items) == [True] * 5
    first_rename = next(i for i, (op, _) in enumerate(events) if op == "rename")
    synced_before = {p for op, p in events[:first_rename] if op == "fsync"}
    for _, _, staged in items:
        assert {str(staged), str(staged / "w.bin")} <= synced_before
    synced_after = {p for op, p in events[first_rename:] if op == "fsync"}
    assert {str(store.path(sha).parent) for sha, _, _ in items} <= synced_after
    assert store.listing() == sorted(sha for sha, _, _ in items)
    assert [store.put_batch([(sha, f, None)]) for sha, f, _ in items[:1]] == [[False]]  # there already


def test_a_group_larger_than_the_connection_pool_commits(db_url: str, tmp_path: Path) -> None:
    """40 new adapters in one group: on PostgreSQL their 40 content-address locks are advisory
    locks on one connection (one each would exhaust the pool of 15 and stall the commit)."""
    src = _sources(tmp_path, 40)
    reg = Registry(home=tmp_path / "home", db_url=db_url, embedders=[_Embedder()])
    reg.init()
    results = reg.ingest([src]).results
    assert [r.status for r in results] == ["ingested"] * 40
    assert len({r.adapter_id for r in results}) == 40
    assert len(list(reg.blobs.root.glob("*/*"))) >= 40
    again = reg.ingest([src]).results  # the locks were released: the same files are duplicates now
    assert {r.status for r in again} == {"duplicate"}
