"""Made (merged, generated) adapters' names stay unique when several services register at once on
one database (SQLite file, PostgreSQL): the free name is chosen before the insert, the partial
unique index ``uq_adapters_made_name`` refuses the later of two equal names, and the loser chooses
again. Ingested adapters may still share a name."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from loradex.service import LocalService
from registry import crud
from registry.db import transaction
from registry.errors import AmbiguousReferenceError, NameTakenError

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "benchmarks" / "zoo" / "image" / "adapters"


@pytest.fixture
def two(tmp_path: Path, shared_db_url: str):
    """Two services (own data dirs, one blob folder) on one database holding two zoo adapters."""
    if not (IMAGE / "grayscale").is_dir():
        pytest.skip("the image zoo is not built")
    a = LocalService.open(tmp_path / "a", shared_db_url, blob_dir=tmp_path / "blobs", embed=False)
    b = LocalService.open(tmp_path / "b", shared_db_url, blob_dir=tmp_path / "blobs", embed=False)
    a.ingest([IMAGE / "grayscale", IMAGE / "dots"])
    yield a, b
    b.close()
    a.close()


def _ids(svc: LocalService) -> tuple[int, int]:
    return svc.get("grayscale")["id"], svc.get("dots")["id"]


def test_the_later_of_two_writers_choosing_one_name_names_it_again(two: tuple[LocalService, LocalService]) -> None:
    from fusion.merge import merge as merge_adapters

    a, b = two
    gray, dots = _ids(a)
    stale = b._free_name("combo")  # B chose before A committed
    first = a.merge([gray, dots], strategy="cat", name="combo").adapter
    assert stale == first["name"] == "combo"
    # written under the stale choice, the registry refuses it and keeps nothing of it
    out = merge_adapters([b.load(gray), b.load(dots)], [1.0, 0.25], strategy="cat").adapter
    count = b.count()
    with pytest.raises(NameTakenError, match="'combo' is already adapter") as e:
        b._register_named(out, stale, origin="merged", lineage=[])
    assert e.value.existing_id == first["id"] and b.count() == count
    assert b.fsck().problems == 0  # no orphan blob left by the refused row
    # through merge (register_made) the loser chooses again
    loser = b.merge([gray, dots], [1.0, 0.5], strategy="cat", name="combo")
    assert loser.adapter["name"] == "combo-2" and b.get("combo-2")["id"] == loser.adapter["id"]


def test_concurrent_merges_with_one_name_get_distinct_names(two: tuple[LocalService, LocalService]) -> None:
    a, b = two
    gray, dots = _ids(a)
    per_service = 3
    start = threading.Barrier(2 * per_service)
    names: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def make(svc: LocalService, weight: float) -> None:
        try:
            start.wait()
            out = svc.merge([gray, dots], [1.0, weight], strategy="cat", name="combo")
            with lock:
                names.append(out.adapter["name"])
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=make, args=(svc, 0.1 * (i + 1) + (0.05 if svc is b else 0.0)))
               for svc in (a, b) for i in range(per_service)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(names) == sorted(["combo"] + [f"combo-{n}" for n in range(2, 2 * per_service + 1)])
    for name in names:
        assert a.get(name)["name"] == name == b.get(name)["name"]


def test_the_database_refuses_a_second_made_adapter_of_one_name(two: tuple[LocalService, LocalService]) -> None:
    a, _ = two
    row = a.get("grayscale")
    fields = {k: row[k] for k in ("family", "format", "ranks", "module_count", "modules", "param_count",
                                  "file_size", "files")}  # fmt: skip
    with transaction(a.registry.sessions) as s:
        crud.create_adapter(session=s, sha256="1" * 64, name="made", origin="merged", **fields)
        crud.create_adapter(session=s, sha256="2" * 64, name="shared", origin="ingested", **fields)
        crud.create_adapter(session=s, sha256="3" * 64, name="shared", origin="ingested", **fields)  # allowed
        crud.create_adapter(session=s, sha256="4" * 64, name="shared", origin="generated", **fields)  # one made
    with pytest.raises(IntegrityError), transaction(a.registry.sessions) as s:
        crud.create_adapter(session=s, sha256="5" * 64, name="made", origin="generated", **fields)
    with pytest.raises(AmbiguousReferenceError):
        a.get("shared")
    assert a.get("made")["sha256"] == "1" * 64


def test_name_taken_error_names_the_holder() -> None:
    e = NameTakenError("combo", 7)
    assert "combo" in str(e) and "7" in str(e)


def test_migration_renames_made_adapters_that_already_share_a_name(registry) -> None:  # type: ignore[no-untyped-def]
    """Made adapters registered before the index may share a name: 0007 keeps it on the oldest and
    appends the id to the others' (ingested ones are left alone), then creates the index."""
    from sqlalchemy import inspect, text

    from registry.db import downgrade, upgrade

    downgrade(registry.engine, "0006")
    assert "uq_adapters_made_name" not in {i["name"] for i in inspect(registry.engine).get_indexes("adapters")}
    cols = ("sha256, name, family, format, origin, ranks, module_count, modules, param_count, file_size, files, "
            "trigger_words, metadata, warnings, created_at")  # fmt: skip
    with registry.engine.begin() as conn:
        conn.execute(text("INSERT INTO base_families (id, kind, label) VALUES ('sd1', 'diffusion', 'SD 1.x')"))
        for i, (name, origin) in enumerate([("combo", "merged"), ("combo", "generated"), ("combo", "ingested"),
                                            ("combo", "merged"), ("solo", "merged")]):  # fmt: skip
            conn.execute(text(f"INSERT INTO adapters ({cols}) VALUES (:sha, :name, 'sd1', 'kohya', :origin, '[4]', 1, "
                              "'[]', 10, 100, '[]', '[]', '{}', '[]', CURRENT_TIMESTAMP)"),
                         {"sha": f"{i:064d}", "name": name, "origin": origin})  # fmt: skip
    upgrade(registry.engine)
    with registry.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, name, origin FROM adapters ORDER BY id")).all()
    ids = [r[0] for r in rows]
    assert [(r[1], r[2]) for r in rows] == [("combo", "merged"), (f"combo-{ids[1]}", "generated"),
                                            ("combo", "ingested"), (f"combo-{ids[3]}", "merged"),
                                            ("solo", "merged")]  # fmt: skip
    assert "uq_adapters_made_name" in {i["name"] for i in inspect(registry.engine).get_indexes("adapters")}
