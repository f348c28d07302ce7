"""Blobs staged by the parsing threads: renamed into place on commit, and never left behind
(duplicates, refusals, an error that stops the batch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.store import Registry
from tests.registry.test_reliability import kohya_file


def _temps(reg: Registry) -> list[Path]:
    return sorted(reg.blobs.root.glob("*/.tmp-*"))


def test_staged_blobs_are_committed_or_removed(registry: Registry, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        kohya_file(src / f"a{i}.safetensors", i)
    kohya_file(src / "copy.safetensors", 0)  # same bytes as a0: a duplicate in the same batch
    (src / "broken.safetensors").write_bytes(b"not a safetensors file")
    report = registry.ingest([src])
    assert (report.count("ingested"), report.count("duplicate"), report.count("refused")) == (4, 1, 1)
    assert _temps(registry) == []
    assert len(registry.blobs.listing()) == registry.count() == 4
    again = registry.ingest([src])  # every content stored already: nothing is staged
    assert again.count("duplicate") == 5 and _temps(registry) == []


class _FailingEmbedder:
    """Embeds (a constant vector) until its third adapter, then raises: an error mid-batch."""

    kind = "weights"
    version = "fail-v1"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, info, load):  # type: ignore[no-untyped-def]
        import numpy as np

        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("encoder failed")
        return np.ones(4, dtype=np.float32) / 2


def test_an_error_mid_batch_leaves_no_staged_copy(db_url: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        kohya_file(src / f"a{i}.safetensors", i)
    reg = Registry(home=tmp_path / "home", db_url=db_url, embedders=[_FailingEmbedder()])
    reg.init()
    with pytest.raises(RuntimeError, match="encoder failed"):
        reg.ingest([src], workers=2)
    assert _temps(reg) == []
    assert len(reg.blobs.listing()) == reg.count() == 2
    # what was committed is in the index, saved although the batch failed
    reopened = Registry(home=tmp_path / "home", db_url=db_url, embedders=[_FailingEmbedder()])
    with reopened.sessions() as s:
        assert reopened.indexes["weights"].sync(s, "fail-v1") is False
    assert reopened.indexes["weights"].ids == {r["id"] for r in reg.list()}
    reg.close()
    reopened.close()


def test_a_committed_units_tensors_are_not_kept_to_the_end_of_the_batch(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 10k-file ingest must not hold every parsed adapter until it ends (memory grows with the batch)."""
    import gc
    import weakref

    from registry import ingest, store

    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        kohya_file(src / f"a{i}.safetensors", i)
    made: list[weakref.ref[object]] = []

    def prepare_and_watch(unit):  # type: ignore[no-untyped-def]
        prep = ingest.prepare(unit)
        made.append(weakref.ref(prep.adapter))
        return prep

    monkeypatch.setattr(store, "prepare", prepare_and_watch)
    alive_at_end: list[int] = []
    calls: list[object] = []

    def progress(result: object) -> None:
        calls.append(result)
        if len(calls) == 6:  # the last unit is being committed: the other five are done with
            gc.collect()
            alive_at_end.append(sum(r() is not None for r in made))

    report = registry.ingest([src], workers=1, progress=progress)
    assert report.count("ingested") == 6 and len(made) == 6
    assert alive_at_end[0] <= 1, alive_at_end  # only the unit in hand, not the whole batch
