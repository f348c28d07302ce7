"""Blob stores behind one interface: the same behaviour from the local directory (``BlobStore``)
and an fsspec URL (``FsspecBlobStore``) on a real file system (``file://``) and in memory
(``memory://``): content addressing, bit-identical reads, duplicates, failures mid-put, unfinished
writes, removal, and a registry and a service that keep their blobs behind a URL."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.errors import BlobIntegrityError, StorageError
from registry.fsck import fsck
from registry.storage import BlobStorage, BlobStore, open_blob_store, sha256_files
from registry.storage_fsspec import FsspecBlobStore
from registry.store import Registry

REPO = Path(__file__).resolve().parents[2]
PEFT = REPO / "benchmarks" / "zoo" / "text" / "adapters" / "append_abc"  # a real PEFT folder: two blob files
SAMPLES = REPO / "samples" / "adapters"
KINDS = ["local", "fsspec-file", "fsspec-memory"]


@pytest.fixture(params=KINDS)
def blobs_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None (the local directory), a ``file://`` URL on a tmp dir, or a fresh ``memory://`` URL."""
    if request.param == "local":
        yield None
    elif request.param == "fsspec-file":
        yield (tmp_path / "remote").as_uri()
    else:
        url = f"memory://loradex-test-{uuid.uuid4().hex[:12]}"
        yield url
        import fsspec

        fs = fsspec.filesystem("memory")
        if fs.exists(url):
            fs.rm(url, recursive=True)


@pytest.fixture
def store(blobs_url: str | None, tmp_path: Path) -> BlobStorage:
    return open_blob_store(tmp_path / "blobs", blobs_url)


def peft_files() -> dict[str, Path]:
    return {p.name: p for p in sorted(PEFT.iterdir()) if p.name != "description.txt"}


def _fresh_cache(store: BlobStorage) -> None:
    """Forget what an fsspec store has cached, so the next read fetches from the store."""
    if isinstance(store, FsspecBlobStore):
        for d in store.root.iterdir():
            if not d.name.startswith("."):
                shutil.rmtree(d)


def test_put_reads_back_bit_identical(store: BlobStorage) -> None:
    files = peft_files()
    sha = sha256_files(list(files.values()))
    folder, created = store.put_new(sha, files)
    assert created and store.exists(sha) and store.listing() == [sha]
    assert store.missing(sha, sorted(files)) == [] and store.missing(sha, ["other.bin"]) == ["other.bin"]
    _fresh_cache(store)
    assert store.path(sha) == folder
    for name, src in files.items():
        assert (folder / name).read_bytes() == src.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)  # nothing beside the blob's own files
    assert not list(store.root.glob("*/.tmp-*"))


def test_duplicate_is_reported_not_rewritten(store: BlobStorage, tmp_path: Path) -> None:
    files = peft_files()
    sha = sha256_files(list(files.values()))
    assert store.put_new(sha, files)[1]
    staged = store.stage(sha, files)
    gone = {name: tmp_path / "nowhere" / name for name in files}  # nothing is read: nothing is written
    assert store.put_new(sha, gone, staged=staged) == (store.path(sha), False)
    assert not staged.exists() and store.listing() == [sha]


def test_a_file_that_disappears_mid_put_leaves_no_blob(store: BlobStorage, tmp_path: Path) -> None:
    files = peft_files()
    sha = sha256_files(list(files.values()))
    files["adapter_model.safetensors"] = tmp_path / "vanished.safetensors"
    with pytest.raises(FileNotFoundError):
        store.put_new(sha, files)
    assert not store.exists(sha) and store.listing() == [] and store.missing(sha, ["x"]) == ["x"]
    assert not list(store.root.glob("*/.tmp-*")) and store.orphan_temps(0) == []


def test_an_absent_blob_is_a_folder_that_does_not_exist(store: BlobStorage) -> None:
    assert not store.path("ab" * 32).exists() and not store.exists("ab" * 32)


class _FailingUpload(FsspecBlobStore):
    """Uploads the first file, then fails: an error (or, with ``crash``, a kill) mid-upload."""

    crash = False

    def _upload(self, sha256: str, folder: Path, names: list[str]) -> None:
        super()._upload(sha256, folder, names[:1])
        raise OSError("connection reset")

    def _drop_unmarked(self, sha256: str) -> None:
        if not self.crash:  # a killed writer cleans nothing up
            super()._drop_unmarked(sha256)


@pytest.mark.parametrize("crash", [False, True])
def test_fsspec_failure_mid_upload_leaves_no_visible_blob(tmp_path: Path, crash: bool) -> None:
    url = (tmp_path / "remote").as_uri()
    store = _FailingUpload(url, cache=tmp_path / "cache")
    store.crash = crash
    files = peft_files()
    sha = sha256_files(list(files.values()))
    with pytest.raises(OSError, match="connection reset"):
        store.put_new(sha, files)
    assert not store.exists(sha) and store.listing() == [] and not store.path(sha).exists()
    left = store.orphan_temps(0)
    assert left == ([f"file://{tmp_path / 'remote' / sha[:2] / sha}"] if crash else [])
    assert store.orphan_temps(3600) == []  # a write still in progress is never called stale
    # the same content stored afterwards is whole (the unfinished files are overwritten)
    good = FsspecBlobStore(url, cache=tmp_path / "cache")
    assert good.put_new(sha, files)[1] and good.missing(sha, sorted(files)) == []


def test_fsspec_read_checks_content_against_its_address(tmp_path: Path) -> None:
    store = FsspecBlobStore((tmp_path / "remote").as_uri(), cache=tmp_path / "cache")
    files = peft_files()
    sha = sha256_files(list(files.values()))
    store.put(sha, files)
    stored = tmp_path / "remote" / sha[:2] / sha / "adapter_model.safetensors"
    data = bytearray(stored.read_bytes())
    data[-1] ^= 1  # one flipped bit, same size
    stored.write_bytes(bytes(data))
    _fresh_cache(store)
    with pytest.raises(BlobIntegrityError, match=f"blob {sha[:12]} at file://.*hash to"):
        store.path(sha)
    assert not (tmp_path / "cache" / sha[:2] / sha).exists() and not list(store.root.glob("*/.tmp-*"))
    with pytest.raises(BlobIntegrityError, match="hash to"):  # nor stored under another content's name
        store.put("cd" * 32, files)
    assert store.listing() == [sha]


def test_fsspec_torn_marker_is_no_blob(tmp_path: Path) -> None:
    store = FsspecBlobStore((tmp_path / "remote").as_uri(), cache=tmp_path / "cache")
    files = peft_files()
    sha = sha256_files(list(files.values()))
    store.put(sha, files)
    marker = tmp_path / "remote" / sha[:2] / f"{sha}.complete"
    marker.write_bytes(marker.read_bytes()[:20])  # a file system without atomic writes, killed mid-marker
    assert not store.exists(sha) and store.missing(sha, ["adapter_config.json"]) == ["adapter_config.json"]


def test_bad_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="blob store URL 'nosuchproto://x'"):
        open_blob_store(tmp_path / "cache", "nosuchproto://x")
    assert isinstance(open_blob_store(tmp_path / "blobs", None), BlobStore)


def test_settings_read_the_blobs_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from loradex.settings import Settings

    monkeypatch.setenv("LORADEX_BLOBS_URL", "memory://shared-blobs")
    assert Settings.from_env().blobs_url == "memory://shared-blobs"
    monkeypatch.delenv("LORADEX_BLOBS_URL")
    assert Settings.from_env().blobs_url is None


# -- the registry over each store --------------------------------------------------------------
def _registry(tmp_path: Path, blobs_url: str | None, name: str = "home") -> Registry:
    home = tmp_path / name
    reg = Registry(home, f"sqlite:///{tmp_path / 'loradex.db'}", blobs_url=blobs_url)
    reg.init()
    return reg


def test_registry_ingest_load_duplicate_remove(blobs_url: str | None, tmp_path: Path) -> None:
    reg = _registry(tmp_path, blobs_url)
    report = reg.ingest([PEFT, SAMPLES / "watercolor_sd15.safetensors"])
    assert report.count("ingested") == 2, report.results
    peft = next(r for r in report.results if r.path.endswith("append_abc"))
    info = reg.get(peft.adapter_id)
    assert info["missing_files"] == [] and sorted(reg.blobs.listing()) == sorted(
        reg.get(r.adapter_id)["sha256"] for r in report.results
    )
    if blobs_url:
        assert not (tmp_path / "home" / "blobs").exists()  # the files went to the URL
        _fresh_cache(reg.blobs)
    folder = reg.blob_path(peft.adapter_id)
    for name in info["files"]:
        assert (folder / name).read_bytes() == (PEFT / name).read_bytes()
    assert len(reg.load(peft.adapter_id).modules) > 0
    again = reg.ingest([PEFT])
    assert again.results[0].status == "duplicate" and again.results[0].adapter_id == peft.adapter_id
    assert fsck(reg, temp_age=0).problems == 0
    reg.remove(peft.adapter_id)
    assert not reg.blobs.exists(info["sha256"]) and not reg.blobs.path(info["sha256"]).exists()
    assert reg.blobs.listing() == [
        reg.get(r.adapter_id)["sha256"] for r in report.results if r.adapter_id != peft.adapter_id
    ]
    reg.close()


class _RowFails(Registry):
    def _add_row(self, *a, **kw):  # type: ignore[no-untyped-def]
        raise RuntimeError("row write failed")


def test_a_failed_row_removes_only_a_blob_this_call_created(blobs_url: str | None, tmp_path: Path) -> None:
    reg = _RowFails(tmp_path / "home", f"sqlite:///{tmp_path / 'loradex.db'}", blobs_url=blobs_url)
    reg.init()
    with pytest.raises(RuntimeError, match="row write failed"):
        reg.ingest([PEFT])
    assert reg.blobs.listing() == [] and reg.count() == 0
    files = peft_files()
    sha = sha256_files([PEFT / n for n in ("adapter_config.json", "adapter_model.safetensors")])
    reg.blobs.put(sha, files)  # already stored (another writer's): not this call's to remove
    with pytest.raises(RuntimeError, match="row write failed"):
        reg.ingest([PEFT])
    assert reg.blobs.listing() == [sha]
    reg.close()


def test_fsck_lists_blobs_through_the_store(blobs_url: str | None, tmp_path: Path) -> None:
    reg = _registry(tmp_path, blobs_url)
    (row,) = reg.ingest([PEFT]).results
    sha = reg.get(row.adapter_id)["sha256"]
    orphan = sha256_files([SAMPLES / "watercolor_sd15.safetensors"])
    reg.blobs.put(orphan, {"w.safetensors": SAMPLES / "watercolor_sd15.safetensors"})  # no row: an orphan
    rep = fsck(reg, temp_age=0)
    assert (rep.blobs, rep.orphan_blobs, rep.missing_blobs, rep.broken_blobs) == (2, [orphan], [], [])
    fsck(reg, repair=True, temp_age=0)
    assert reg.blobs.listing() == [sha] and fsck(reg, temp_age=0).problems == 0
    reg.close()


@pytest.mark.parametrize("kind", ["fsspec-file", "fsspec-memory"])
def test_fsck_cleans_a_blob_without_its_marker(kind: str, tmp_path: Path) -> None:
    url = (tmp_path / "remote").as_uri() if kind == "fsspec-file" else f"memory://loradex-test-{uuid.uuid4().hex[:12]}"
    reg = _registry(tmp_path, url)
    store = reg.blobs
    assert isinstance(store, FsspecBlobStore)
    (row,) = reg.ingest([PEFT]).results
    sha = reg.get(row.adapter_id)["sha256"]
    # an unfinished write of other content: its files, no marker
    other = sha256_files([SAMPLES / "watercolor_sd15.safetensors"])
    store.fs.makedirs(store._folder(other), exist_ok=True)
    store.fs.put_file(str(SAMPLES / "watercolor_sd15.safetensors"), f"{store._folder(other)}/w.safetensors")
    assert not store.exists(other) and store.listing() == [sha] and not store.path(other).exists()
    # and the adapter's own marker lost: its row has no blob any more
    store.fs.rm_file(store._marker(sha))
    _fresh_cache(store)
    rep = fsck(reg, temp_age=0)
    assert [m["sha256"] for m in rep.missing_blobs] == [sha] and rep.orphan_blobs == []
    assert sorted(rep.stale_temps) == sorted(store.fs.unstrip_protocol(store._folder(s)) for s in (sha, other))
    assert fsck(reg, temp_age=3600).stale_temps == []  # young: possibly a live write, left alone
    fix = fsck(reg, repair=True, temp_age=0)
    assert len([r for r in fix.repaired if "temporary" in r]) == 2
    assert not store.fs.exists(store._folder(other))
    again = reg.ingest([PEFT])  # the same bytes restore the lost blob
    assert again.results[0].status == "duplicate" and "restored" in (again.results[0].reason or "")
    assert store.listing() == [sha] and fsck(reg, temp_age=0).problems == 0
    _fresh_cache(store)
    assert (reg.blob_path(row.adapter_id) / "adapter_model.safetensors").read_bytes() == (
        PEFT / "adapter_model.safetensors"
    ).read_bytes()
    # one file of the blob lost in the store: a broken blob, named by fsck, refused on read, restored by the same bytes
    store.fs.rm_file(f"{store._folder(sha)}/adapter_model.safetensors")
    _fresh_cache(store)
    assert fsck(reg, temp_age=0).broken_blobs == [
        {"id": row.adapter_id, "name": row.name, "sha256": sha, "missing_files": ["adapter_model.safetensors"]}
    ]
    assert reg.get(row.adapter_id)["missing_files"] == ["adapter_model.safetensors"]
    with pytest.raises(StorageError, match=f"blob {sha[:12]} at .*adapter_model.safetensors is gone"):
        reg.load(row.adapter_id)
    assert "restored" in (reg.ingest([PEFT]).results[0].reason or "")
    assert fsck(reg, temp_age=0).problems == 0 and len(reg.load(row.adapter_id).modules) > 0
    reg.close()
    if kind == "fsspec-memory":
        store.fs.rm(url, recursive=True)


def test_service_search_and_a_second_replica_read_blobs_behind_a_url(tmp_path: Path) -> None:
    from loradex.service import LocalService

    url = (tmp_path / "remote").as_uri()
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    a = LocalService.open(tmp_path / "a", db, blobs_url=url)
    a.ingest([SAMPLES / "watercolor_sd15.safetensors", SAMPLES / "shakespeare_gpt2"])
    assert a.search("a soft watercolor painting of a lake", k=1)[0].adapter["name"] == "watercolor_sd15"
    assert not (tmp_path / "a" / "blobs").exists() and (tmp_path / "remote").is_dir()
    # another replica with its own cache reads the same blobs through the URL
    b = LocalService.open(tmp_path / "b", db, blobs_url=url, text_encoder=a.text_encoder)
    hit = b.search("talk like Shakespeare, thee and thou", k=1)[0].adapter
    assert hit["name"] == "Shakespeare GPT-2"
    path = b.registry.blob_path(hit["id"])
    assert path.is_relative_to(tmp_path / "b" / "blob-cache")
    assert (path / "adapter_model.safetensors").read_bytes() == (
        SAMPLES / "shakespeare_gpt2" / "adapter_model.safetensors"
    ).read_bytes()
    assert b.fsck().problems == 0
    a.close()
    b.close()
