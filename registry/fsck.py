"""``fsck``: check that rows, blobs, embeddings and index entries agree, and repair what can be.

What is checked (each a list of findings in ``FsckReport``):

* ``missing_blobs``: rows whose blob folder is gone. Not repairable from the registry alone:
  ingesting the original file again restores the blob (same bytes, same sha256).
* ``broken_blobs``: blob folders that lack a file their row lists.
* ``missing_checkpoints``: recorded checkpoints (``registry.checkpoints``) whose blob is gone:
  recording the same checkpoint folder again restores it.
* ``orphan_blobs``: blob folders no row (adapter or checkpoint) references (a writer died between
  blob and row).
  Repair deletes them, under the content address's lock, only if still unreferenced.
* ``stale_temps``: temporary folders older than an hour, left by a writer killed mid-copy (with an
  fsspec store, also blob folders without their completion marker, as URLs).
* ``stale_embeddings``: stored vectors made by another encoder version than the current one.
  Repair re-embeds them.
* ``index_drift``: per index kind, ids in the index with no current embedding row, and rows
  with a current embedding the index lacks. Repair rebuilds the index from the database.

Blobs are listed and checked through the store's interface (``registry.storage.BlobStorage``), so
the same checks hold for a local directory and an fsspec URL.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from registry import checkpoints
from registry.models import Adapter, AdapterEmbedding

if TYPE_CHECKING:  # pragma: no cover
    from registry.store import Registry


@dataclass
class FsckReport:
    adapters: int = 0
    blobs: int = 0
    missing_blobs: list[dict[str, Any]] = field(default_factory=list)  # {id, name, sha256}
    broken_blobs: list[dict[str, Any]] = field(default_factory=list)  # {id, name, sha256, missing_files}
    missing_checkpoints: list[dict[str, Any]] = field(default_factory=list)  # {version, sha256}
    orphan_blobs: list[str] = field(default_factory=list)  # sha256
    stale_temps: list[str] = field(default_factory=list)  # paths
    stale_embeddings: dict[str, int] = field(default_factory=dict)  # kind → vectors of another version
    index_drift: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # kind → {extra, missing}
    repaired: list[str] = field(default_factory=list)  # one line per repair made

    @property
    def problems(self) -> int:
        drift = sum(len(v["extra"]) + len(v["missing"]) for v in self.index_drift.values())
        return (
            len(self.missing_blobs) + len(self.broken_blobs) + len(self.missing_checkpoints) + len(self.orphan_blobs)
            + len(self.stale_temps)
            + sum(self.stale_embeddings.values()) + drift
        )  # fmt: skip

    @property
    def unrepairable(self) -> int:
        """Problems a repair cannot fix (lost blob content)."""
        return len(self.missing_blobs) + len(self.broken_blobs) + len(self.missing_checkpoints)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": self.problems, "unrepairable": self.unrepairable}


def fsck(registry: Registry, *, repair: bool = False, temp_age: float = 3600.0) -> FsckReport:
    """Check ``registry``; with ``repair``, fix what can be fixed and say what was done.
    The returned report describes the state found before any repair."""
    rep = FsckReport()
    with registry.sessions() as s:
        rows = s.execute(select(Adapter.id, Adapter.name, Adapter.sha256, Adapter.files)).all()
        emb = s.execute(select(AdapterEmbedding.adapter_id, AdapterEmbedding.kind, AdapterEmbedding.encoder_version))
        embeddings = [(int(i), str(k), str(v)) for i, k, v in emb]
        checkpoint_blobs = checkpoints.referenced(s)
    rep.adapters = len(rows)
    stored = set(registry.blobs.listing())
    rep.blobs = len(stored)
    referenced = set()
    for i, name, sha, files in rows:
        referenced.add(sha)
        if sha not in stored:
            rep.missing_blobs.append({"id": i, "name": name, "sha256": sha})
            continue
        lost = registry.blobs.missing(sha, list(files or []))
        if lost:
            rep.broken_blobs.append({"id": i, "name": name, "sha256": sha, "missing_files": lost})
    for sha, version in sorted(checkpoint_blobs.items()):
        referenced.add(sha)
        if sha not in stored:
            rep.missing_checkpoints.append({"version": version, "sha256": sha})
    rep.orphan_blobs = sorted(stored - referenced)
    rep.stale_temps = registry.blobs.orphan_temps(temp_age)
    for kind, embedder in registry.embedders.items():
        current = {i for i, k, v in embeddings if k == kind and v == embedder.version}
        stale = sum(1 for _, k, v in embeddings if k == kind and v != embedder.version)
        if stale:
            rep.stale_embeddings[kind] = stale
        in_index = registry.indexes[kind].ids
        extra, missing = sorted(in_index - current), sorted(current - in_index)
        if extra or missing:
            rep.index_drift[kind] = {"extra": extra, "missing": missing}
    if repair:
        _repair(registry, rep)
    return rep


def _repair(registry: Registry, rep: FsckReport) -> None:
    for sha in rep.orphan_blobs:
        with registry.blobs.lock(sha):
            registry._remove_unreferenced_blob(sha)
        if not registry.blobs.exists(sha):
            rep.repaired.append(f"removed orphan blob {sha[:12]}")
    for path in rep.stale_temps:
        registry.blobs.drop_temp(path)
        rep.repaired.append(f"removed stale temporary folder {path}")
    if rep.stale_embeddings or rep.index_drift:
        for kind in registry.indexes:
            n = registry.embed_missing(kind)
            if n:
                rep.repaired.append(f"re-embedded {n} adapters ({kind})")
            index = registry.indexes[kind]
            index.version = registry.embedders[kind].version
            with registry.sessions() as s:
                index.rebuild(s)
            rep.repaired.append(f"rebuilt the {kind} index from the database")
