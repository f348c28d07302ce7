"""The change log: one entry per change of an adapter's embeddings, in the row's transaction,
numbers that only grow, pruning that says how far it went."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import changes
from registry.db import transaction
from registry.errors import AdapterNotFoundError

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"


def _log(registry) -> list[changes.Change]:
    with registry.sessions() as s:
        return changes.read(session=s, after=0)


def test_remove_is_logged_and_a_refused_remove_is_not(registry) -> None:
    registry.ingest([SAMPLES / "watercolor_sd15.safetensors", SAMPLES / "shakespeare_gpt2"])
    assert _log(registry) == []  # no embedders: no embedding was added
    ids = [r["id"] for r in registry.list()]
    registry.remove(ids[0])
    with pytest.raises(AdapterNotFoundError):
        registry.remove(ids[0])
    (entry,) = _log(registry)
    assert (entry.adapter_id, entry.op, entry.kind) == (ids[0], "remove", None)
    registry.remove(ids[1])
    seqs = [c.seq for c in _log(registry)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 2


def test_prune_keeps_the_newest_and_numbers_never_go_back(registry) -> None:
    with transaction(registry.sessions) as s:
        for i in range(5):
            changes.record(session=s, adapter_id=i, op="add", kinds=["text", "weights"])
    with registry.sessions() as s:
        top = changes.head(session=s)
    assert registry.prune_changes(keep=4) == 6
    assert [c.seq for c in _log(registry)] == list(range(top - 3, top + 1))
    assert registry.prune_changes(keep=4) == 0  # already that short
    assert registry.prune_changes(keep=0) == 4
    with registry.sessions() as s:
        assert changes.head(session=s) == top == changes.pruned_through(session=s)
    with transaction(registry.sessions) as s:
        after = changes.record(session=s, adapter_id=9, op="remove")
    assert after > top  # a pruned-away number is never handed out again
    with pytest.raises(ValueError, match="unknown change op 'move'; known: add, remove"):
        with transaction(registry.sessions) as s:
            changes.record(session=s, adapter_id=1, op="move")
    assert [c.seq for c in _log(registry)] == [after]


def test_a_rolled_back_change_leaves_no_entry(registry) -> None:
    with pytest.raises(RuntimeError):
        with transaction(registry.sessions) as s:
            changes.record(session=s, adapter_id=1, op="add")
            raise RuntimeError("the row write failed")
    assert _log(registry) == []
