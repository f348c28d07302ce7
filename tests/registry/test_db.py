"""Schema, migrations, crud and blob storage on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from registry import crud
from registry.db import downgrade, transaction, upgrade
from registry.errors import AdapterNotFoundError, RegistryError
from registry.storage import BlobStore, sha256_files

TABLES = {"adapters", "base_families", "tags", "adapter_tags", "lineage", "alembic_version"}


def _fields(sha: str, name: str) -> dict:
    return dict(
        sha256=sha, name=name, family="sd1", format="kohya", ranks=[4], module_count=1,
        modules=[{"name": "unet.x", "rank": 4}], param_count=10, file_size=100, files=["a.safetensors"],
    )  # fmt: skip


def test_migrations_upgrade_and_downgrade(registry) -> None:
    insp = inspect(registry.engine)
    assert TABLES <= set(insp.get_table_names())
    cols = {c["name"] for c in insp.get_columns("adapters")}
    assert {"sha256", "family", "format", "origin", "ranks", "module_count", "param_count", "file_size",
            "description", "trigger_words", "license", "source", "created_at"} <= cols  # fmt: skip
    downgrade(registry.engine, "base")
    assert set(inspect(registry.engine).get_table_names()) <= {"alembic_version"}
    upgrade(registry.engine)  # and back up again: migrations are re-runnable
    assert TABLES <= set(inspect(registry.engine).get_table_names())


def test_sqlite_pragmas(tmp_path: Path) -> None:
    from registry.store import Registry

    reg = Registry(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'x.db'}")
    reg.init()
    with reg.engine.connect() as c:
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_sha256_unique_and_lineage_cascade(registry) -> None:
    with transaction(registry.sessions) as s:
        crud.ensure_family(session=s, family_id="sd1", kind="diffusion", label="SD 1.x")
        a = crud.create_adapter(session=s, tags=["Anime", "style"], **_fields("a" * 64, "parent"))
        b = crud.create_adapter(session=s, tags=["anime"], **_fields("b" * 64, "child"))
        crud.add_lineage(session=s, child_id=b.id, parent_id=a.id, weight=0.5, method="merge:cat")
        a_id, b_id = a.id, b.id
    with pytest.raises(Exception), transaction(registry.sessions) as s:  # noqa: B017 - IntegrityError differs by driver
        crud.create_adapter(session=s, **_fields("a" * 64, "dup"))
    assert registry.count() == 2
    assert [r["name"] for r in registry.list(tag="anime")] == ["parent", "child"]
    assert registry.get(b_id)["parents"] == [{"id": a_id, "weight": 0.5, "method": "merge:cat"}]
    registry.remove(a_id)
    assert registry.get(b_id)["parents"] == []
    with registry.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM lineage")).scalar() == 0
        assert c.execute(text("SELECT count(*) FROM adapter_tags")).scalar() == 1


def test_find_by_sha_prefix(registry) -> None:
    with transaction(registry.sessions) as s:
        crud.ensure_family(session=s, family_id="sd1")
        crud.create_adapter(session=s, **_fields("abcdef12" + "0" * 56, "x"))
    assert registry.get("abcdef12")["name"] == "x"
    assert registry.get("abcdef12" + "0" * 56)["name"] == "x"


def test_blob_store_atomic(tmp_path: Path) -> None:
    src = tmp_path / "f.safetensors"
    src.write_bytes(b"hello")
    store = BlobStore(tmp_path / "blobs")
    sha = sha256_files([src])
    p = store.put(sha, {"f.safetensors": src})
    assert (p / "f.safetensors").read_bytes() == b"hello"
    assert store.listing() == [sha]
    with pytest.raises(ValueError):
        store.put("c" * 64, {"../evil": src})
    assert store.listing() == [sha]  # the failed put left nothing behind
    assert not any(x.name.startswith(".tmp-") for d in (tmp_path / "blobs").iterdir() for x in d.iterdir())
    store.remove(sha)
    assert store.listing() == []


def test_models_match_migrations(registry) -> None:
    """Alembic owns the schema: the migrated database has exactly what the models declare."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from registry.models import Base

    with registry.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_ingest_with_origin_and_lineage(registry) -> None:
    samples = Path(__file__).resolve().parents[2] / "samples" / "adapters"
    (parent,) = registry.ingest([samples / "watercolor_sd15.safetensors"]).results
    with pytest.raises(AdapterNotFoundError):
        registry.ingest([samples / "pixel_art_sdxl.safetensors"], lineage=[{"parent": 999999}])
    assert registry.count() == 1  # a bad parent is refused before anything is written
    lineage = [{"parent": parent.adapter_id, "weight": 0.75, "method": "merge:linear"}]
    (child,) = registry.ingest([samples / "pixel_art_sdxl.safetensors"], origin="merged", lineage=lineage).results
    info = registry.get(child.adapter_id)
    assert info["origin"] == "merged"
    assert info["parents"] == [{"id": parent.adapter_id, "weight": 0.75, "method": "merge:linear"}]
    assert registry.get(parent.adapter_id)["children"] == [{"id": child.adapter_id, "weight": 0.75,
                                                            "method": "merge:linear"}]  # fmt: skip
    assert [r["name"] for r in registry.list(origin="merged")] == [info["name"]]
    with pytest.raises(RegistryError, match="keys are parent, weight, method"):
        registry.ingest([samples / "neon_glow_flux.safetensors"], lineage=[{"parent": 1, "bogus": 2}])
