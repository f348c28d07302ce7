"""Contract: ``loradex.Client`` over a real uvicorn server behaves like ``LocalService``.

The same assertions run against two faces, each on its own fresh registry built through
that face (SQLite and PostgreSQL): ``local`` (a ``LocalService``) and ``client`` (a ``Client``
talking HTTP to a server on a free 127.0.0.1 port). For the client face, results are also
compared for exact equality with the server's own ``LocalService``.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loradex.client import AuthError, Client, ClientError
from loradex.errors import InvalidQueryError, SearchError
from loradex.service import LocalService
from loradex.types import Health, SearchHit, Stats
from registry.errors import AdapterNotFoundError, ExportError
from registry.ingest import IngestReport, IngestResult, discover
from tests.conftest import _pg_schema_url

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "adapters"
WATERCOLOR = SAMPLES / "watercolor_sd15.safetensors"
TOKEN = "contract-token"
EXPECTED = {  # name → (family, format)
    "watercolor_sd15": ("sd1", "kohya"),
    "Pixel Art XL": ("sdxl", "kohya"),
    "ink_sketch_sd2": ("sd2", "diffusers"),
    "neon_glow_flux": ("flux", "diffusers"),
    "Shakespeare GPT-2": ("gpt2", "peft"),
    "sql_helper_llama": ("llama", "peft"),
}


def same_content(a: Path, b: Path) -> bool:
    """Equal files; safetensors compared by header and data (the library writes the metadata
    map in hash order, so two exports of one adapter can differ in bytes)."""
    if a.read_bytes() == b.read_bytes():
        return True
    if a.suffix != ".safetensors":
        return False

    def split(p: Path) -> tuple[Any, bytes]:
        raw = p.read_bytes()
        n = struct.unpack("<Q", raw[:8])[0]
        return json.loads(raw[8 : 8 + n]), raw[8 + n :]

    return split(a) == split(b)


@dataclass
class Face:
    kind: str  # local | client
    api: Any  # LocalService or Client: the object under test
    service: LocalService  # the in-process service behind it
    report: IngestReport  # how the samples went in, through this face

    def health(self) -> Health:
        return self.api.health()

    def stats(self) -> Stats:
        return self.api.stats()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module", params=["local", "client"])
def face(request: pytest.FixtureRequest, db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Face]:
    from ui.api import create_app
    from ui.server import BackgroundServer

    home = tmp_path_factory.mktemp(f"{request.param}-{db_kind}")
    url = f"sqlite:///{home / 'loradex.db'}" if db_kind == "sqlite" else _pg_schema_url(request)
    svc = LocalService.open(home, url)
    if request.param == "local":
        yield Face("local", svc, svc, svc.ingest([SAMPLES]))
    else:
        with BackgroundServer(create_app(svc, admin_token=TOKEN)) as server, Client(server.url, TOKEN) as client:
            assert server.url.startswith("http://127.0.0.1:")
            yield Face("client", client, svc, client.ingest([SAMPLES]))
    svc.registry.close()


# -- the contract: the same assertions on both faces -------------------------------------------
def test_both_faces_implement_the_protocol(face: Face) -> None:
    from loradex.protocol import Service

    assert isinstance(face.api, Service)


def test_ingest_report(face: Face) -> None:
    assert isinstance(face.report, IngestReport)
    assert [r.path for r in face.report.results] == [str(u.path) for u in discover([SAMPLES])]
    assert {r.status for r in face.report.results} == {"ingested"}
    assert {r.name: (r.family, r.format) for r in face.report.results} == EXPECTED


def test_reingest_is_idempotent(face: Face) -> None:
    seen: list[IngestResult] = []
    totals: list[int] = []
    again = face.api.ingest([SAMPLES], progress=seen.append, on_total=totals.append)
    assert totals == [6] and sorted(r.path for r in seen) == sorted(r.path for r in again.results)
    assert {r.status for r in again.results} == {"duplicate"}
    assert [r.adapter_id for r in again.results] == [r.adapter_id for r in face.report.results]
    assert again == face.service.ingest([SAMPLES])  # paths and reasons as LocalService words them


def test_refusals_name_the_callers_paths(face: Face, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an adapter")
    (tmp_path / "broken.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    (tmp_path / "peft_no_weights").mkdir()
    (tmp_path / "peft_no_weights" / "adapter_config.json").write_text("{}")
    paths: list[str | Path] = [tmp_path / "missing.safetensors", tmp_path / "notes.txt", tmp_path / "broken.safetensors",
             tmp_path / "peft_no_weights"]  # fmt: skip
    report = face.api.ingest(paths)
    assert [(r.path, r.status) for r in report.results] == [(str(p), "refused") for p in paths]
    assert all(r.reason and r.reason.startswith(f"{r.path}: ") for r in report.results)
    assert report == face.service.ingest(paths)


def test_list_and_filters(face: Face) -> None:
    rows = face.api.list()
    assert isinstance(rows, list) and {r["name"] for r in rows} >= set(EXPECTED)
    assert [r["name"] for r in face.api.list(family="sd1")] == ["watercolor_sd15"]
    assert {r["name"] for r in face.api.list(tag="style")} == {"watercolor_sd15", "Pixel Art XL"}
    assert {r["name"] for r in face.api.list(format="peft")} == {"Shakespeare GPT-2", "sql_helper_llama"}
    with pytest.raises(
        InvalidQueryError, match=r"unknown family 'no-such-family'; the registry has: flux, gpt2, llama"
    ):
        face.api.list(family="no-such-family")  # a typo is not an empty registry
    with pytest.raises(InvalidQueryError, match="unknown origin 'bought'"):
        face.api.count(origin="bought")
    assert [r["id"] for r in face.api.list(limit=2, offset=1)] == [r["id"] for r in rows[1:3]]
    assert face.api.count() == len(rows) and face.api.count(format="peft") == 2
    by_name = [r["name"] for r in face.api.list(sort="name")]
    assert by_name == sorted(by_name) and face.api.list(sort="-name", limit=1)[0]["name"] == by_name[-1]
    sizes = [r["file_size"] for r in face.api.list(sort="-size")]
    assert sizes == sorted(sizes, reverse=True)
    with pytest.raises(InvalidQueryError, match="unknown sort 'popularity'; known: id, name"):
        face.api.list(sort="popularity")
    for bounds in ({"limit": 0}, {"limit": -1}, {"offset": -1}):  # refused on every surface, not an empty page
        with pytest.raises(InvalidQueryError, match="limit|offset"):
            face.api.list(**bounds)


def test_get(face: Face) -> None:
    row = next(r for r in face.api.list() if r["name"] == "watercolor_sd15")
    info = face.api.get(row["id"])
    assert info["description"].startswith("Soft watercolor painting style")  # the .civitai.info sidecar
    assert info["trigger_words"] == ["watercolor"] and info["module_count"] == len(info["modules"])
    assert face.api.get(row["sha256"][:12]) == info
    assert face.api.get("watercolor_sd15") == info  # names are accepted wherever ids are
    usage = face.api.usage("Shakespeare GPT-2")
    assert list(usage) == ["peft"] and "PeftModel.from_pretrained(base, 'Shakespeare GPT-2-peft'" in usage["peft"]
    with pytest.raises(AdapterNotFoundError, match="no adapter 999999 in the registry"):
        face.api.get(999999)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a soft watercolor painting of a lake", "watercolor_sd15"),
        ("retro 16-bit game sprites", "Pixel Art XL"),
        ("write sql for my database table", "sql_helper_llama"),
        ("talk like Shakespeare, thee and thou", "Shakespeare GPT-2"),
        ("black pen drawing with hatching", "ink_sketch_sd2"),
        ("glowing neon lights at night", "neon_glow_flux"),
    ],
)
def test_search_finds_the_adapter(face: Face, prompt: str, expected: str) -> None:
    hits = face.api.search(prompt, k=3)
    assert all(isinstance(h, SearchHit) for h in hits) and len(hits) == 3
    assert hits[0].adapter["name"] == expected, [(h.adapter["name"], h.score) for h in hits]
    assert hits[0].scores["text"] == pytest.approx(hits[0].score) and "text similarity" in hits[0].why


def test_search_says_why_nothing_fits(face: Face) -> None:
    hits = face.api.search("Translate Shakespeare's lines into plain modern English", k=3)
    assert hits.nothing_fits is True and hits.reason == "Shakespeare GPT-2 converts the other way round"


def test_search_filters_and_errors(face: Face) -> None:
    assert [h.adapter["family"] for h in face.api.search("painting style", k=10, family="sd1")] == ["sd1"]
    assert {h.adapter["name"] for h in face.api.search("anything", k=10, tags=["style"])} == {
        "watercolor_sd15",
        "Pixel Art XL",
    }
    with pytest.raises(SearchError, match="unknown family 'no-such-family'"):
        face.api.search("anything", k=10, family="no-such-family")
    assert [h.adapter["format"] for h in face.api.search("x", k=10, format="peft", mode="text")] == ["peft"] * 2
    cases: list[tuple[dict[str, Any], str]] = [
        ({"mode": "magic"}, "unknown search mode"),
        ({"mode": "weights"}, "no weight encoder"),
        ({"k": 0}, "k must be"),
    ]
    for kw, needle in cases:
        with pytest.raises(SearchError, match=needle):
            face.api.search("x", **kw)
    with pytest.raises(SearchError, match="empty prompt"):
        face.api.search("  ")


@pytest.mark.parametrize(("name", "fmt"), [("watercolor_sd15", "diffusers"), ("sql_helper_llama", "peft"),
                                           ("Pixel Art XL", "kohya")])  # fmt: skip
def test_export(face: Face, tmp_path: Path, name: str, fmt: str) -> None:
    ref = next(r["id"] for r in face.api.list() if r["name"] == name)
    files = face.api.export(ref, fmt, tmp_path / "api")
    expected = face.service.export(ref, fmt, tmp_path / "local")
    assert all(isinstance(p, Path) and p.is_file() for p in files)
    assert [p.relative_to(tmp_path / "api") for p in files] == [p.relative_to(tmp_path / "local") for p in expected]
    assert all(same_content(a, b) for a, b in zip(files, expected, strict=True))
    with pytest.raises(ExportError, match="unknown export format"):
        face.api.export(ref, "onnx", tmp_path / "x")
    with pytest.raises(AdapterNotFoundError):
        face.api.export(999999, fmt, tmp_path / "x")


def test_health_and_stats(face: Face) -> None:
    health, stats = face.health(), face.stats()
    assert isinstance(health, Health) and isinstance(stats, Stats)
    assert health.status == "ok" and health.database == face.service.registry.engine.dialect.name
    assert health.adapters == stats.adapters == len(face.api.list())
    assert stats.families == {"flux": 1, "gpt2": 1, "llama": 1, "sd1": 1, "sd2": 1, "sdxl": 1}
    assert stats.formats == {"diffusers": 2, "kohya": 2, "peft": 2}
    assert {i.kind: i.size for i in stats.indexes}["text"] == 6
    assert stats.encoders[0].kind == "text" and stats.encoders[0].version == face.service.text_encoder.version


def test_remove_then_ingest_again(face: Face) -> None:  # last: it changes an id
    row = next(r for r in face.api.list() if r["name"] == "watercolor_sd15")
    removed = face.api.remove(row["id"])
    assert removed == row
    with pytest.raises(AdapterNotFoundError):
        face.api.get(row["id"])
    with pytest.raises(AdapterNotFoundError):
        face.api.remove(row["id"])
    assert all(h.adapter["id"] != row["id"] for h in face.api.search("watercolor", k=10))
    (res,) = face.api.ingest([WATERCOLOR]).results
    assert (res.path, res.status, res.name) == (str(WATERCOLOR), "ingested", "watercolor_sd15")
    assert face.api.get(res.adapter_id)["tags"] == ["painting", "style"]  # sidecars travel with the file
    assert face.api.search("a soft watercolor painting", k=1)[0].adapter["id"] == res.adapter_id


# -- the client against its own server's LocalService: equal objects ------------------------------
def test_client_results_equal_the_services(face: Face) -> None:
    if face.kind != "client":
        pytest.skip("compares the client with the service behind its server")
    api, svc = face.api, face.service
    cases: list[tuple[str, dict[str, Any]]] = [
        ("watercolor", {}), ("sql", {"k": 2, "mode": "text"}), ("style", {"tags": ["style"]}),
        ("painting", {"family": "sd1", "format": "kohya", "origin": "ingested"}),
    ]  # fmt: skip
    for prompt, kw in cases:
        assert api.search(prompt, **kw) == svc.search(prompt, **kw)
    assert api.list() == svc.list() and api.list(format="peft") == svc.list(format="peft")
    for row in svc.list():
        assert api.get(row["id"]) == svc.get(row["id"])
    assert api.health() == svc.health() and api.stats() == svc.stats()


def test_client_without_token_cannot_administer(face: Face, tmp_path: Path) -> None:
    if face.kind != "client":
        pytest.skip("HTTP only")
    with Client(face.api.url) as anon:
        assert anon.list() == face.api.list()  # reading needs no token
        with pytest.raises(AuthError) as e:
            anon.remove(1)
        assert (e.value.status, e.value.code) == (401, "unauthorized")
        with pytest.raises(AuthError):
            anon.ingest([WATERCOLOR])
    with Client(face.api.url, token="wrong") as bad, pytest.raises(AuthError):
        bad.remove(1)
    with pytest.raises(TypeError, match="bogus"):
        face.api.list(bogus=1)


def test_client_reports_an_unreachable_server() -> None:
    with Client("http://127.0.0.1:9", timeout=2) as c, pytest.raises(ClientError) as e:
        c.health()
    assert e.value.code == "unreachable" and e.value.status == 0


@pytest.mark.parametrize(
    "module",
    ["loradex", "loradex.client", "loradex.types", "loradex.service", "loradex.jobs", "loradex.bases", "ui.server"],
)
def test_client_import_is_cheap(module: str) -> None:
    heavy = ["torch", "faiss", "diffusers", "transformers", "peft", "sentence_transformers", "gradio"]
    code = f"import sys, json, {module}; print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert json.loads(out.stdout) == []


def test_loradex_exposes_the_client_lazily() -> None:
    import loradex
    import loradex.client

    assert loradex.Client is loradex.client.Client and "Client" in loradex.__all__
