"""Reliability: concurrent writers, resource caps before work starts, ids never reused, strict refs.

Each test here failed before its fix (see the reliability issue's numbered items).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from registry import crud
from registry.errors import AdapterFormatError, AdapterNotFoundError
from registry.ingest import ZERO_ADAPTER_WARNING
from registry.storage import BlobStore

REPO = Path(__file__).resolve().parents[2]
KEY = "lora_unet_down_blocks_0_attentions_0_proj_in"


def kohya_file(path: Path, seed: int, *, zero: bool = False, metadata: dict[str, str] | None = None) -> Path:
    """A small, real kohya SD1 adapter (one module) whose weights depend on ``seed``."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    down = torch.zeros(4, 320) if zero else torch.randn(4, 320, generator=g)
    up = torch.zeros(320, 4) if zero else torch.randn(320, 4, generator=g)
    tensors = {f"{KEY}.lora_down.weight": down, f"{KEY}.lora_up.weight": up, f"{KEY}.alpha": torch.tensor(4.0)}
    save_file(tensors, str(path), metadata={"ss_base_model_version": "sd_v1", **(metadata or {})})
    return path


# -- 1. concurrent writers never delete each other's blobs ------------------------------------
def test_blob_put_new_says_who_created_it(tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(b"abc")
    store = BlobStore(tmp_path / "blobs")
    _, first = store.put_new("ab" * 32, {"a.bin": src})
    _, second = store.put_new("ab" * 32, {"a.bin": src})
    assert (first, second) == (True, False)
    assert not list((tmp_path / "blobs" / "ab").glob(".tmp-*"))


def test_two_ingest_processes_on_the_same_files_lose_no_blob(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    for i in range(40):
        kohya_file(files / f"a{i:02d}.safetensors", i)
    home = tmp_path / "home"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from registry.store import Registry
        reg = Registry({str(home)!r})
        reg.init()
        reg.ingest([{str(files)!r}], workers=2)
        """
    )
    from registry.store import Registry

    Registry(home).init()  # migrate once, so both processes race on ingestion only
    procs = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    reg = Registry(home)
    rows = reg.list()
    assert len(rows) == 40
    for row in rows:  # every row still has its blob, and every blob still reads
        assert reg.blobs.exists(row["sha256"]), row
        reg.load(row["id"])
    assert sorted(reg.blobs.listing()) == sorted(r["sha256"] for r in rows)


def test_remove_keeps_a_blob_that_another_row_still_references(registry, tmp_path: Path) -> None:
    f = kohya_file(tmp_path / "a.safetensors", 1)
    (res,) = registry.ingest([f]).results
    sha = registry.get(res.adapter_id)["sha256"]
    # A writer holding the same content address: the remover waits for it, then sees the row and
    # leaves the blob alone.
    import threading

    done = threading.Event()

    def remover() -> None:
        with registry.blobs.lock(sha):
            registry._remove_unreferenced_blob(sha)
        done.set()

    with registry.blobs.lock(sha):
        t = threading.Thread(target=remover)
        t.start()
        assert not done.wait(0.3)  # blocked while the writer holds the lock
    t.join(30)
    assert done.is_set()
    assert registry.blobs.exists(sha)  # a row references it: kept
    registry.remove(res.adapter_id)
    assert not registry.blobs.exists(sha)


# -- 2. compressed pickles cannot inflate past the cap --------------------------------------
def test_deflate_bomb_in_a_torch_zip_is_refused_before_loading(tmp_path: Path) -> None:
    import torch

    from registry.formats.safe_io import MAX_COMPRESSION_RATIO, load_torch_pickle

    plain = tmp_path / "plain.bin"
    torch.save({"w": torch.zeros(4 * 1024 * 1024)}, plain)  # 16 MiB of zeros
    bomb = tmp_path / "adapter_model.bin"
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    assert bomb.stat().st_size < plain.stat().st_size // 100
    with pytest.raises(AdapterFormatError, match="decompression bomb") as e:
        load_torch_pickle(bomb)
    assert str(bomb) in str(e.value) and f"{MAX_COMPRESSION_RATIO}:1" in str(e.value)
    assert load_torch_pickle(plain)["w"].numel() == 4 * 1024 * 1024  # a stored zip still loads


def test_unpacked_size_cap_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from registry.formats import safe_io

    f = tmp_path / "a.bin"
    torch.save({"w": torch.zeros(1024 * 1024)}, f)  # 4 MiB
    monkeypatch.setattr(safe_io, "MAX_UNPACKED_BYTES", 1024 * 1024)
    with pytest.raises(AdapterFormatError, match="LORADEX_MAX_UNPACKED_BYTES"):
        safe_io.load_torch_pickle(f)


# -- 3. a header no adapter needs is refused before it is read ------------------------------
def test_oversized_metadata_is_refused_with_the_limit_named(registry, tmp_path: Path) -> None:
    from registry.formats.safe_io import MAX_HEADER_BYTES

    f = kohya_file(tmp_path / "huge_meta.safetensors", 3, metadata={"ss_tag_frequency": "x" * (MAX_HEADER_BYTES + 10)})
    before = registry.count()
    (res,) = registry.ingest([f]).results
    assert res.status == "refused"
    assert "huge_meta.safetensors" in res.reason and str(MAX_HEADER_BYTES) in res.reason
    assert "LORADEX_MAX_HEADER_BYTES" in res.reason
    assert registry.count() == before and registry.blobs.listing() == []


# -- 4. ids are never reused ------------------------------------------------------------------
def test_removed_ids_are_never_reused(registry, tmp_path: Path) -> None:
    a = registry.ingest([kohya_file(tmp_path / "a.safetensors", 1)]).results[0].adapter_id
    b = registry.ingest([kohya_file(tmp_path / "b.safetensors", 2)]).results[0].adapter_id
    registry.remove(b)
    c = registry.ingest([kohya_file(tmp_path / "c.safetensors", 3)]).results[0].adapter_id
    assert c not in (a, b) and c > b
    with pytest.raises(AdapterNotFoundError):
        registry.get(b)


def test_autoincrement_migration_keeps_every_child_row(tmp_path: Path) -> None:
    """Rebuilding the adapters table on SQLite must not cascade-delete lineage, tags or embeddings."""
    from registry.db import downgrade, transaction, upgrade
    from registry.store import Registry

    reg = Registry(tmp_path / "home")
    reg.init()
    ids = [reg.ingest([kohya_file(tmp_path / f"{n}.safetensors", i)]).results[0].adapter_id
           for i, n in enumerate("ab")]  # fmt: skip
    with transaction(reg.sessions) as s:
        crud.add_lineage(session=s, child_id=ids[1], parent_id=ids[0], weight=0.5, method="merge")
        row = crud.get_adapter(session=s, adapter_id=ids[0])
        row.tags.extend(crud.ensure_tags(session=s, names=["kept"]))
    downgrade(reg.engine, "0003")
    upgrade(reg.engine)
    assert reg.get(ids[1])["parents"] == [{"id": ids[0], "weight": 0.5, "method": "merge"}]
    assert reg.get(ids[0])["tags"] == ["kept"]


# -- 5 / 6. refs are ASCII ids, sha256 prefixes; offsets past any row are empty -------------------
@pytest.mark.parametrize("ref", ["１", "²", "١", "1 ", "-1", "zzzzzzzzzz"])
def test_only_ascii_digits_are_ids(registry, tmp_path: Path, ref: str) -> None:
    registry.ingest([kohya_file(tmp_path / "a.safetensors", 1)])
    with pytest.raises(AdapterNotFoundError):
        registry.get(ref)
    with pytest.raises(AdapterNotFoundError):
        registry.remove(ref)
    assert registry.count() == 1


def test_offset_past_any_row(registry, tmp_path: Path) -> None:
    registry.ingest([kohya_file(tmp_path / "a.safetensors", 1)])
    with registry.sessions() as s:
        assert crud.list_adapters(session=s, offset=2**63) == []
        assert crud.list_adapters(session=s, offset=2**70, limit=5) == []
        assert len(crud.list_adapters(session=s, offset=0, limit=2**64)) == 1


# -- 9. an all-zero adapter is ingested with a warning, not silently -----------------------------
def test_all_zero_adapter_is_ingested_with_a_warning(registry, tmp_path: Path) -> None:
    (res,) = registry.ingest([kohya_file(tmp_path / "untrained.safetensors", 0, zero=True)]).results
    assert res.status == "ingested"
    assert ZERO_ADAPTER_WARNING in res.warnings
    assert ZERO_ADAPTER_WARNING in registry.get(res.adapter_id)["warnings"]
    (ok,) = registry.ingest([kohya_file(tmp_path / "trained.safetensors", 1)]).results
    assert ZERO_ADAPTER_WARNING not in ok.warnings


# -- fsck ---------------------------------------------------------------------------------------
class _NormEmbedder:
    """A real (if simple) embedder: the normalized first 8 values of the first module's ΔW."""

    kind = "weights"

    def __init__(self, version: str = "norm-v1") -> None:
        self._version = version

    @property
    def version(self) -> str:
        return self._version

    def embed(self, info, load):  # type: ignore[no-untyped-def]
        import numpy as np

        a = load()
        v = next(iter(a.modules.values())).delta().flatten()[:8].numpy().astype(np.float32)
        return v / np.linalg.norm(v)


def test_fsck_finds_and_repairs(db_url: str, tmp_path: Path) -> None:
    import shutil

    from registry.store import Registry

    reg = Registry(tmp_path / "home", db_url, embedders=[_NormEmbedder()])
    reg.init()
    ids = [reg.ingest([kohya_file(tmp_path / f"a{i}.safetensors", i)]).results[0].adapter_id for i in range(4)]
    clean = reg.fsck()
    assert clean.problems == 0 and clean.adapters == 4 and clean.blobs == 4
    # Damage: a lost blob, an orphan blob, a stale temp folder, an index entry gone, a stale version.
    lost = reg.get(ids[0])["sha256"]
    shutil.rmtree(reg.blobs.path(lost))
    src = tmp_path / "x.bin"
    src.write_bytes(b"orphan")
    reg.blobs.put("ff" * 32, {"x.bin": src})
    temp = reg.blobs.root / "ff" / ".tmp-dead"
    temp.mkdir()
    reg.indexes["weights"].remove([ids[1]])
    found = reg.fsck()
    assert [m["id"] for m in found.missing_blobs] == [ids[0]]
    assert found.orphan_blobs == ["ff" * 32]
    assert found.index_drift == {"weights": {"extra": [], "missing": [ids[1]]}}
    assert found.stale_temps == []  # too young to be called stale
    from registry.fsck import fsck

    fixed = fsck(reg, repair=True, temp_age=0.0)
    assert str(temp) in fixed.stale_temps and fixed.repaired
    after = reg.fsck()
    assert after.problems == after.unrepairable == 1  # only the lost blob is left
    assert not temp.exists() and not reg.blobs.exists("ff" * 32)
    # Ingesting the original file again restores the lost blob; then all is clean.
    (res,) = reg.ingest([tmp_path / "a0.safetensors"]).results
    assert res.status == "duplicate" and "restored" in res.reason
    assert reg.fsck().problems == 0
    reg.load(ids[0])
    # A new encoder version: its vectors are stale until repaired.
    reg2 = Registry(tmp_path / "home", db_url, embedders=[_NormEmbedder("norm-v2")])
    assert reg2.fsck().stale_embeddings == {"weights": 4}
    reg2.fsck(repair=True)
    assert reg2.fsck().problems == 0


# -- 7. operational causes become one line ---------------------------------------------------------
def test_read_only_data_dir_is_explained_in_one_line(tmp_path: Path) -> None:
    import os

    from registry.errors import StorageError, explain
    from registry.store import Registry

    home = tmp_path / "home"
    Registry(home).init()
    db = home / "loradex.db"
    os.chmod(home, 0o555)
    os.chmod(db, 0o444)
    try:
        if os.access(db, os.W_OK):
            pytest.skip("running with privileges that ignore file modes (root): checked through EROFS below")
        reg = Registry(home)
        with pytest.raises(Exception) as e:
            reg.ingest([kohya_file(tmp_path / "a.safetensors", 1)])
        err = explain(e.value, home)
        assert isinstance(err, StorageError) and "\n" not in str(err)
    finally:
        os.chmod(home, 0o755)
        os.chmod(db, 0o644)


@pytest.mark.parametrize(
    ("exc", "phrase"),
    [
        (OSError(30, "Read-only file system", "/data/blobs"), "read-only file system: cannot write /data/blobs"),
        (OSError(28, "No space left on device", "/data/x"), "no space left"),
        (PermissionError(13, "Permission denied", "/data/loradex.db"), "permission denied: /data/loradex.db"),
    ],
)
def test_explain_os_errors(exc: OSError, phrase: str) -> None:
    from registry.errors import explain

    assert phrase in str(explain(exc))
    try:  # found through the cause chain, as when a library wraps it
        raise RuntimeError("wrapper") from exc
    except RuntimeError as wrapped:
        assert phrase in str(explain(wrapped))
    assert explain(ValueError("a bug")) is None


def test_explain_database_errors(tmp_path: Path) -> None:
    import sqlite3

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from registry.errors import DatabaseUnavailableError, StorageError, explain

    db = tmp_path / "x.db"
    sqlite3.connect(db).execute("create table t (x int)")
    os_ro = create_engine(f"sqlite:///file:{db}?mode=ro&uri=true")
    with pytest.raises(OperationalError) as e, os_ro.begin() as c:
        c.execute(text("insert into t values (1)"))
    assert isinstance(explain(e.value), StorageError) and "read-only" in str(explain(e.value))
    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    with pytest.raises(OperationalError) as e2:
        dead.connect()
    err = explain(e2.value, "postgresql://127.0.0.1:1")
    assert isinstance(err, DatabaseUnavailableError) and "cannot be reached" in str(err)


# -- found by the fuzzer: a malformed pickle must be a refusal, never an IndexError -------------------
@pytest.mark.parametrize("raw", [b"\x80\x02.", b"\x80\x02)\x81.", b"\x80\x02\x85.", b"\x80\x02a.", b"\x80\x02s."])
def test_malformed_pickle_stack_is_refused(tmp_path: Path, raw: bytes) -> None:
    from registry.formats.safe_io import load_torch_pickle

    f = tmp_path / "adapter.pt"
    f.write_bytes(raw)
    with pytest.raises(AdapterFormatError, match="not a readable torch file") as e:
        load_torch_pickle(f)
    assert str(f) in str(e.value)


def test_concurrent_writers_of_a_new_family_both_land(tmp_path: Path) -> None:
    """Two threads ingest different adapters of a family the database has not seen yet: the one that
    loses the race to create the family row writes again instead of failing."""
    import threading

    from registry.store import Registry

    reg = Registry(tmp_path / "home")
    reg.init()
    files = [kohya_file(tmp_path / f"t{i}.safetensors", 100 + i) for i in range(8)]
    results: list = []
    barrier = threading.Barrier(2)

    def run(part: list[Path]) -> None:
        barrier.wait()
        results.extend(reg.ingest(part, workers=1).results)

    threads = [threading.Thread(target=run, args=(files[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == ["ingested"] * 8
    assert reg.fsck().problems == 0


# -- references by name, and what a name shared by two adapters does --------------------------------
def test_names_are_references_and_a_shared_name_is_refused(tmp_path: Path, db_url: str) -> None:
    from registry.errors import AmbiguousReferenceError
    from registry.store import Registry

    reg = Registry(tmp_path / "home", db_url)
    reg.init()
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a = kohya_file(tmp_path / "x" / "twin.safetensors", 1)
    b = kohya_file(tmp_path / "y" / "twin.safetensors", 2)
    solo = kohya_file(tmp_path / "solo.safetensors", 3)
    ids = [r.adapter_id for r in reg.ingest([a, b, solo]).results]
    assert reg.get("solo")["id"] == ids[2]
    with pytest.raises(AmbiguousReferenceError, match=rf"2 adapters answer to 'twin' \(ids {ids[0]}, {ids[1]}\)"):
        reg.get("twin")
    with pytest.raises(AmbiguousReferenceError):
        reg.remove("twin")  # a shared name never removes one of them at random
    assert reg.count() == 3
    with pytest.raises(AdapterNotFoundError):
        reg.get("nobody")


def test_a_file_lost_from_its_blob_is_restored_by_the_same_file(tmp_path: Path, db_url: str) -> None:
    from registry.store import Registry

    reg = Registry(tmp_path / "home", db_url)
    reg.init()
    src = kohya_file(tmp_path / "a.safetensors", 1)
    (res,) = reg.ingest([src]).results
    info = reg.get(res.adapter_id)
    assert info["missing_files"] == []
    (reg.blobs.path(info["sha256"]) / "a.safetensors").unlink()  # the folder stays, the file is gone
    assert reg.get(res.adapter_id)["missing_files"] == ["a.safetensors"]
    (again,) = reg.ingest([src]).results
    assert again.status == "duplicate" and "a.safetensors were restored" in (again.reason or "")
    assert reg.get(res.adapter_id)["missing_files"] == [] and reg.fsck().problems == 0
    reg.load(res.adapter_id)
