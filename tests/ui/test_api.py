"""REST API (ui.api) through FastAPI's TestClient on SQLite and PostgreSQL: endpoints, error
format, and every refusal (auth, size, file names, unsafe zips, CORS); ``loradex serve``'s setup."""

from __future__ import annotations

import io
import os
import stat
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loradex.service import LocalService
from loradex.types import public_detail
from tests.conftest import _pg_schema_url
from ui.api import UploadLimits, create_app

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"
WATERCOLOR = SAMPLES / "watercolor_sd15.safetensors"
TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_UPLOAD = 2 << 20
LIMITS = UploadLimits(max_files=8, max_zip_members=50, max_unpacked_bytes=8 << 20)


def module_db_url(request: pytest.FixtureRequest, folder: Path) -> str:
    """``db_url`` of tests/conftest.py, for a module-scoped service (loading it costs seconds)."""
    return f"sqlite:///{folder / 'loradex.db'}" if request.param == "sqlite" else _pg_schema_url(request)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    home = tmp_path_factory.mktemp("api")
    svc = LocalService.open(home, module_db_url(request, home))
    svc.ingest([SAMPLES])
    app = create_app(svc, admin_token=TOKEN, max_upload_bytes=MAX_UPLOAD, limits=LIMITS)
    with TestClient(app, raise_server_exceptions=False) as http:
        yield SimpleNamespace(svc=svc, http=http, home=home, uploads=home / "uploads")
    svc.registry.close()


def variant(name: str, folder: Path) -> Path:
    """A new adapter: the watercolor sample with another ``ss_output_name`` (so another sha256)."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(WATERCOLOR), "np") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = {**(f.metadata() or {}), "ss_output_name": name}
    path = folder / f"{name}.safetensors"
    save_file(tensors, str(path), metadata=meta)
    return path


def zip_bytes(members: dict[str, bytes], infos: list[zipfile.ZipInfo] = ()) -> bytes:  # type: ignore[assignment]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        for info in infos:
            z.writestr(info, b"/etc/passwd")
    return buf.getvalue()


def upload(http: TestClient, *files: tuple[str, bytes], headers: dict[str, str] = AUTH, **data: str) -> Any:
    return http.post("/ingest", files=[("files", (n, b)) for n, b in files], data=data or None, headers=headers)


def wait_job(http: TestClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/jobs/{job_id}", headers=AUTH).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


def assert_error(r: Any, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert "Traceback" not in r.text
    return str(body["error"]["message"])


def no_uploads_left(env: SimpleNamespace) -> bool:
    return not env.uploads.exists() or not any(env.uploads.iterdir())


# -- read endpoints ----------------------------------------------------------------------------
def test_openapi_lists_every_endpoint(env: SimpleNamespace) -> None:
    doc = env.http.get("/openapi.json").json()
    paths = doc["paths"]
    for path in ("/health", "/stats", "/adapters", "/adapters/{ref}", "/adapters/{ref}/download",
                 "/adapters/{ref}/preview.png", "/search",
                 "/ingest", "/jobs", "/jobs/{job_id}"):  # fmt: skip
        assert path in paths, path
    assert "delete" in paths["/adapters/{ref}"]
    assert "multipart/form-data" in paths["/ingest"]["post"]["requestBody"]["content"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_health_and_stats(env: SimpleNamespace) -> None:
    health = env.http.get("/health").json()
    assert health["status"] == "ok" and health["database"] == env.svc.registry.engine.dialect.name
    assert health["adapters"] == len(env.svc.list())
    stats = env.http.get("/stats").json()
    assert stats["adapters"] == health["adapters"] and sum(stats["families"].values()) == stats["adapters"]
    assert {"sd1", "sdxl", "sd2", "flux", "gpt2", "llama"} <= set(stats["families"])
    assert set(stats["formats"]) == {"kohya", "diffusers", "peft"}
    text = next(i for i in stats["indexes"] if i["kind"] == "text")
    assert text["size"] >= 6 and text["dim"] == 384
    assert stats["encoders"][0]["kind"] == "text"


def test_list_get_and_filters(env: SimpleNamespace) -> None:
    rows = env.http.get("/adapters").json()
    assert rows == env.svc.list()
    assert [r["name"] for r in env.http.get("/adapters", params={"family": "sd1"}).json()][:1] == ["watercolor_sd15"]
    assert {r["name"] for r in env.http.get("/adapters", params={"tag": "style"}).json()} >= {"Pixel Art XL"}
    assert len(env.http.get("/adapters", params={"limit": 2}).json()) == 2
    first = rows[0]
    assert env.http.get(f"/adapters/{first['id']}").json() == public_detail(env.svc.get(first["id"]))
    assert env.http.get(f"/adapters/{first['id']}", headers=AUTH).json() == env.svc.get(first["id"])
    assert env.http.get(f"/adapters/{first['sha256'][:12]}").json()["id"] == first["id"]
    msg = assert_error(env.http.get("/adapters/999999"), 404, "not_found")
    assert "999999" in msg
    assert_error(env.http.get("/adapters", params={"limit": 0}), 400, "bad_request")


def test_list_pages_sorts_and_refuses_unknown_filters(env: SimpleNamespace) -> None:
    r = env.http.get("/adapters", params={"limit": 2, "sort": "name"})
    assert r.status_code == 200 and len(r.json()) == 2
    total = int(r.headers["x-total-count"])
    assert total == len(env.http.get("/adapters").json()) >= 3
    names = [a["name"] for a in r.json()]
    link = r.headers["link"]
    assert link.endswith('>; rel="next"') and "offset=2" in link and "sort=name" in link
    nxt = env.http.get(link[1 : link.index(">")].replace(str(env.http.base_url), ""))
    assert [a["name"] for a in nxt.json()] == sorted(a["name"] for a in env.http.get("/adapters").json())[2:4]
    assert names == sorted(names)
    last = env.http.get("/adapters", params={"limit": 2, "offset": total - 1})
    assert len(last.json()) == 1 and "link" not in last.headers
    assert env.http.get("/adapters", params={"family": "sd1"}).headers["x-total-count"] == "1"
    msg = assert_error(env.http.get("/adapters", params={"family": "sd15"}), 400, "bad_request")
    assert "unknown family 'sd15'" in msg and "sd1" in msg and "sdxl" in msg
    assert "known: id, name" in assert_error(env.http.get("/adapters", params={"sort": "stars"}), 400, "bad_request")
    msg = assert_error(env.http.post("/search", json={"prompt": "x", "format": "ckpt"}), 400, "bad_request")
    assert "unknown format 'ckpt'" in msg and "kohya" in msg


def test_adapters_by_name_and_paths_for_admins_only(env: SimpleNamespace) -> None:
    by_name = env.http.get("/adapters/watercolor_sd15")
    assert by_name.status_code == 200 and by_name.json()["name"] == "watercolor_sd15"
    assert by_name.json()["source"] == "watercolor_sd15.safetensors"  # the file name, not the server path
    admin = env.http.get("/adapters/watercolor_sd15", headers=AUTH).json()
    assert admin["source"] == str(WATERCOLOR) and admin["id"] == by_name.json()["id"]
    assert env.http.get("/adapters/watercolor_sd15", headers={"Authorization": "Bearer nope"}).json()["source"] == (
        "watercolor_sd15.safetensors"
    )
    assert_error(env.http.get("/adapters/no_such_name"), 404, "not_found")
    usage = env.http.get("/adapters/watercolor_sd15/usage").json()
    assert (
        list(usage) == ["diffusers", "peft", "kohya"]
        and "load_lora_weights('watercolor_sd15-diffusers'" in usage["diffusers"]
    )


def test_missing_and_wrong_tokens_get_different_messages(env: SimpleNamespace) -> None:
    missing = assert_error(env.http.get("/jobs"), 401, "unauthorized")
    wrong = assert_error(env.http.get("/jobs", headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
    assert "send 'Authorization: Bearer" in missing and "wrong admin token" in wrong


def test_search(env: SimpleNamespace) -> None:
    r = env.http.post("/search", json={"prompt": "a soft watercolor painting of a lake", "k": 3})
    body = r.json()
    assert r.status_code == 200 and body["mode"] == "hybrid" and len(body["hits"]) == 3
    top = body["hits"][0]
    assert top["adapter"]["name"] == "watercolor_sd15" and top["scores"]["text"] == pytest.approx(top["score"])
    assert "text similarity" in top["why"]
    hits = env.http.post("/search", json={"prompt": "painting style", "k": 10, "family": "sd1"}).json()["hits"]
    assert {h["adapter"]["family"] for h in hits} == {"sd1"}
    bad = env.http.post("/search", json={"prompt": "x", "family": "no-such-family"})
    assert "unknown family 'no-such-family'" in assert_error(bad, 400, "bad_request")
    other_way = env.http.post("/search", json={"prompt": "Translate Shakespeare's lines into plain modern English"})
    said = other_way.json()
    assert said["nothing_fits"] is True and said["reason"] == "Shakespeare GPT-2 converts the other way round"
    assert said["reason"] in said["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"prompt": "x", "mode": "magic"}, "unknown search mode"),
        ({"prompt": "   "}, "empty prompt"),
        ({"prompt": "x", "mode": "weights"}, "no weight encoder"),
        ({"prompt": "x", "k": 0}, "k must be"),
        ({"prompt": "x", "k": 5000}, "k"),
        ({"k": 3}, "prompt"),
        ({"prompt": "x", "bogus": 1}, "bogus"),
    ],
)
def test_search_errors_are_bad_requests(env: SimpleNamespace, body: dict[str, Any], needle: str) -> None:
    assert needle in assert_error(env.http.post("/search", json=body), 400, "bad_request")


def test_download_zips_the_export(env: SimpleNamespace, tmp_path: Path) -> None:
    peft = next(r for r in env.svc.list() if r["format"] == "peft")
    r = env.http.get(f"/adapters/{peft['id']}/download", params={"format": "peft"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert f"{peft['name']}-peft.zip".replace(" ", "_") in r.headers["content-disposition"]
    expected = env.svc.export(peft["id"], "peft", tmp_path)
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert z.namelist() == [p.relative_to(tmp_path).as_posix() for p in expected]
        assert all(z.read(p.relative_to(tmp_path).as_posix()) == p.read_bytes() for p in expected)
    assert "unknown export format" in assert_error(
        env.http.get(f"/adapters/{peft['id']}/download", params={"format": "onnx"}), 400, "bad_request"
    )
    assert_error(env.http.get("/adapters/999999/download", params={"format": "peft"}), 404, "not_found")
    assert_error(env.http.get(f"/adapters/{peft['id']}/download"), 400, "bad_request")


def test_unknown_routes_and_methods_are_json(env: SimpleNamespace) -> None:
    assert_error(env.http.get("/no/such/route"), 404, "not_found")
    assert_error(env.http.put("/health"), 405, "method_not_allowed")
    assert_error(env.http.post("/search", content=b"{not json", headers={"content-type": "application/json"}),
                 400, "bad_request")  # fmt: skip


def test_unexpected_errors_hide_the_details(tmp_path: Path) -> None:
    class Broken:
        home = tmp_path

        def list(self, **_: Any) -> list[dict[str, Any]]:
            raise RuntimeError("secret detail at /srv/private/path")

    http = TestClient(create_app(Broken()), raise_server_exceptions=False)  # type: ignore[arg-type]
    r = http.get("/adapters")
    assert_error(r, 500, "internal")
    assert "secret" not in r.text and "/srv" not in r.text


def test_known_operational_causes_get_their_code_not_internal(tmp_path: Path) -> None:
    """A database the server cannot write (here SQLite opened read-only) answers ``storage`` with
    the one line that names the cause; an unreachable PostgreSQL maps to ``unavailable``."""
    home = tmp_path / "home"
    LocalService.open(home, embed=False).ingest([WATERCOLOR])  # one adapter to remove
    ro = LocalService.open(home, f"sqlite:///file:{home / 'loradex.db'}?mode=ro&uri=true", embed=False, sync=False)
    http = TestClient(create_app(ro, admin_token=TOKEN), raise_server_exceptions=False)
    assert http.get("/adapters").status_code == 200  # reading still works
    msg = assert_error(http.delete("/adapters/1", headers=AUTH), 507, "storage")
    assert "read-only" in msg and "\n" not in msg and "Traceback" not in msg
    assert [a["name"] for a in http.get("/adapters").json()] == ["watercolor_sd15"]  # nothing removed
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from loradex.errors import ERROR_CODES, error_code, known_cause

    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    with pytest.raises(OperationalError) as e:
        dead.connect()
    known = known_cause(e.value)
    assert known is not None and error_code(known) == "unavailable" and ERROR_CODES["unavailable"] == 503


# -- admin: token ------------------------------------------------------------------------------
def test_admin_endpoints_need_the_token(env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.api.deps

    calls: list[tuple[bytes, bytes]] = []
    real = ui.api.deps.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(ui.api.deps.hmac, "compare_digest", spy)
    target = env.svc.list()[0]["id"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": TOKEN}):  # fmt: skip
        r = env.http.delete(f"/adapters/{target}", headers=headers)
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == ('Bearer error="invalid_token"' if headers == {"Authorization": "Bearer wrong"}
                                                 else "Bearer")  # fmt: skip
        assert_error(upload(env.http, ("a.safetensors", b"x"), headers=headers), 401, "unauthorized")
        assert_error(env.http.get("/jobs", headers=headers), 401, "unauthorized")
    assert (b"wrong", TOKEN.encode()) in calls  # constant-time comparison
    assert env.http.get(f"/adapters/{target}").status_code == 200  # nothing was removed
    assert no_uploads_left(env)


def test_admin_endpoints_are_off_without_a_token(tmp_path: Path) -> None:
    http = TestClient(create_app(SimpleNamespace(home=tmp_path)))
    assert_error(http.delete("/adapters/1", headers=AUTH), 403, "forbidden")
    assert_error(upload(http, ("a.safetensors", b"x")), 403, "forbidden")


# -- admin: ingestion --------------------------------------------------------------------------
def test_ingest_upload_runs_as_a_job(env: SimpleNamespace, tmp_path: Path) -> None:
    new = variant("uploaded_style", tmp_path)
    side = b'{"description": "An uploaded test style.", "tags": ["uploaded"]}'
    r = upload(env.http, (new.name, new.read_bytes()), ("uploaded_style.civitai.info", side),
               (WATERCOLOR.name, WATERCOLOR.read_bytes()))  # fmt: skip
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/jobs/{job['id']}" and job["status"] in ("queued", "running", "done")
    job = wait_job(env.http, job["id"])
    assert job["status"] == "done" and job["done"] == job["total"] == 2 and job["error"] is None
    results = {x["path"]: x for x in job["result"]["results"]}
    assert results["uploaded_style.safetensors"]["status"] == "ingested"
    assert results[WATERCOLOR.name]["status"] == "duplicate"
    info = env.http.get(f"/adapters/{results['uploaded_style.safetensors']['adapter_id']}").json()
    assert info["name"] == "uploaded_style" and info["description"] == "An uploaded test style."
    assert job["id"] in [j["id"] for j in env.http.get("/jobs", headers=AUTH).json()]
    assert_error(env.http.get("/jobs/nope", headers=AUTH), 404, "not_found")
    assert no_uploads_left(env)  # the upload folder goes once the adapters are in the blob store


def test_an_upload_without_adapters_fails_and_says_what_it_held(env: SimpleNamespace) -> None:
    before = len(env.http.get("/adapters").json())
    r = upload(env.http, ("notes.txt", b"my loras"), ("cover.civitai.info", b"{}"))
    assert r.status_code == 202, r.text
    job = wait_job(env.http, r.json()["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "refused", job
    msg = job["error"]["message"]
    assert "no adapter files" in msg and "notes.txt" in msg and ".safetensors" in msg
    assert str(env.home) not in msg  # the staged folder's path stays on the server
    assert len(env.http.get("/adapters").json()) == before and no_uploads_left(env)


def test_ingest_zip_and_loose_peft_files(env: SimpleNamespace, tmp_path: Path) -> None:
    peft = SAMPLES / "sql_helper_llama"
    archive = zip_bytes({f"bundle/{p.name}": p.read_bytes() for p in peft.iterdir()})
    job = wait_job(env.http, upload(env.http, ("bundle.zip", archive)).json()["id"])
    assert [(x["path"], x["status"]) for x in job["result"]["results"]] == [("bundle", "duplicate")]
    loose = [(p.name, p.read_bytes()) for p in peft.iterdir()]
    job = wait_job(env.http, upload(env.http, *loose, folder="my_peft").json()["id"])
    assert [(x["path"], x["status"]) for x in job["result"]["results"]] == [("my_peft", "duplicate")]
    bad = wait_job(
        env.http, upload(env.http, ("broken.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}")).json()["id"]
    )
    (res,) = bad["result"]["results"]
    assert res["status"] == "refused" and res["reason"].startswith("broken.safetensors: ")
    assert str(env.uploads) not in str(bad)  # no server paths in reports
    assert no_uploads_left(env)


@pytest.mark.parametrize("raw", ["../../../evil_dots.safetensors", "/etc/evil_abs.safetensors",
                                 "..\\..\\evil_win.safetensors", "C:\\evil_drive.safetensors"])  # fmt: skip
def test_upload_names_are_reduced_to_a_bare_name(env: SimpleNamespace, tmp_path: Path, raw: str) -> None:
    bare = raw.replace("\\", "/").rsplit("/", 1)[-1]
    new = variant(bare.removesuffix(".safetensors").replace(":", "_"), tmp_path)
    job = wait_job(env.http, upload(env.http, (raw, new.read_bytes())).json()["id"])
    (res,) = job["result"]["results"]
    assert res["status"] == "ingested" and res["path"] == bare.replace(":", "_"), res
    for parent in [env.home, *env.home.parents][:4]:
        assert not (parent / bare).exists()
    assert not Path("/etc", bare).exists()


@pytest.mark.parametrize("raw", ["..", ".hidden.safetensors", "dir/", ""])
def test_unusable_upload_names_are_refused(env: SimpleNamespace, raw: str) -> None:
    r = upload(env.http, (raw, b"data"))
    assert r.status_code in (400, 422), r.text  # an empty name is not even a file part
    assert_error(r, r.status_code, "refused" if r.status_code == 422 else "bad_request")
    assert no_uploads_left(env)


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _encrypted(name: str) -> bytes:
    """A one-member zip whose headers say it is encrypted (zipfile cannot write one)."""
    data = bytearray(zip_bytes({name: b"x"}))
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local header, central directory
        i = data.index(sig) + at
        data[i] |= 0x1
    return bytes(data)


@pytest.mark.parametrize(
    ("archive", "needle"),
    [
        (zip_bytes({"ok.txt": b"x", "../evil.safetensors": b"x"}), "'..'"),
        (zip_bytes({"a/../../evil.safetensors": b"x"}), "'..'"),
        (zip_bytes({"/tmp/evil.safetensors": b"x"}), "absolute path"),
        (zip_bytes({"C:/evil.safetensors": b"x"}), "absolute path"),
        (zip_bytes({}, [_symlink("link.safetensors")]), "symbolic link"),
        (_encrypted("secret.safetensors"), "encrypted"),
        (b"PK\x03\x04 not really a zip", "not a readable zip"),
    ],
)
def test_unsafe_zips_are_refused(env: SimpleNamespace, archive: bytes, needle: str) -> None:
    msg = assert_error(upload(env.http, ("upload.zip", archive)), 422, "refused")
    assert needle in msg
    assert no_uploads_left(env)  # nothing of a refused archive is written
    assert not (env.home.parent / "evil.safetensors").exists()


def test_zip_bombs_and_big_uploads_are_capped(env: SimpleNamespace) -> None:
    bomb = zip_bytes({"zeros.bin": bytes(LIMITS.max_unpacked_bytes + 1)})
    assert len(bomb) < MAX_UPLOAD
    assert "over the cap" in assert_error(upload(env.http, ("bomb.zip", bomb)), 413, "too_large")
    many = zip_bytes({f"f{i}.txt": b"x" for i in range(LIMITS.max_zip_members + 1)})
    assert "members" in assert_error(upload(env.http, ("many.zip", many)), 413, "too_large")
    big = bytes(MAX_UPLOAD + 1)
    assert_error(upload(env.http, ("big.safetensors", big)), 413, "too_large")  # Content-Length says so
    boundary = "b0undary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.safetensors"\r\n\r\n'

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams in
        yield head.encode()
        for _ in range(3):
            yield bytes(MAX_UPLOAD // 2)
        yield f"\r\n--{boundary}--\r\n".encode()

    r = env.http.post("/ingest", content=chunks(),
                      headers={**AUTH, "content-type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert_error(r, 413, "too_large")
    assert no_uploads_left(env)


def test_cors_is_off_by_default(env: SimpleNamespace, tmp_path: Path) -> None:
    origin = {"Origin": "http://evil.example"}
    assert "access-control-allow-origin" not in env.http.get("/health", headers=origin).headers
    pre = env.http.options("/search", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers
    svc = SimpleNamespace(home=tmp_path)
    http = TestClient(create_app(svc, cors_origins=["http://ok.example"]))  # type: ignore[arg-type]
    pre = http.options("/search", headers={"Origin": "http://ok.example", "Access-Control-Request-Method": "POST"})
    assert pre.headers["access-control-allow-origin"] == "http://ok.example"


def test_remove_needs_admin_and_removes(env: SimpleNamespace, tmp_path: Path) -> None:
    new = variant("to_remove", tmp_path)
    job = wait_job(env.http, upload(env.http, (new.name, new.read_bytes())).json()["id"])
    adapter_id = job["result"]["results"][0]["adapter_id"]
    r = env.http.delete(f"/adapters/{adapter_id}", headers=AUTH)
    assert r.status_code == 200 and r.json()["name"] == "to_remove"
    assert_error(env.http.get(f"/adapters/{adapter_id}"), 404, "not_found")
    assert_error(env.http.delete(f"/adapters/{adapter_id}", headers=AUTH), 404, "not_found")


# -- loradex serve -----------------------------------------------------------------------------
def test_prepare_fresh_data_dir(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.ingest import discover
    from ui.server import TOKEN_FILE, bundled_adapters, prepare

    monkeypatch.delenv("LORADEX_ADMIN_TOKEN", raising=False)
    home = tmp_path / "home"
    first = prepare(home, db_url)
    bundled = [u for u in discover(bundled_adapters()) if u.problem is None]  # samples + built zoos
    assert first.fresh and first.samples is not None and first.samples.count("ingested") == len(bundled) >= 6
    assert first.token_path == home / TOKEN_FILE and len(first.token) >= 32
    assert stat.S_IMODE(os.stat(first.token_path).st_mode) == 0o600
    assert first.token_path.read_text().strip() == first.token
    # the zoos declare their training paraphrases: the start fitted the text map on them, and a plain
    # request for one step finds that step first (without the map two-step adapters ending in it won)
    assert first.text_map is not None and first.text_map.startswith("text map tmap:")
    top = first.service.search("make everything upper case", k=3)
    assert top[0].adapter["name"].startswith("upper"), [h.adapter["name"] for h in top]
    first.token_path.chmod(0o644)
    again = prepare(home, db_url)  # not fresh: no second sample ingestion, same token
    assert not again.fresh and again.samples is None and again.token == first.token
    assert stat.S_IMODE(os.stat(first.token_path).st_mode) == 0o600
    monkeypatch.setenv("LORADEX_ADMIN_TOKEN", "from-the-env")
    env_prep = prepare(home, db_url)
    assert env_prep.token == "from-the-env" and env_prep.token_path is None
    for p in (first, again, env_prep):
        p.service.registry.close()


def test_interrupted_first_start_completes_the_bundled_ingestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui.server import BUNDLED_PENDING, bundled_message, prepare

    real_ingest = LocalService.ingest

    def killed(self: LocalService, paths: Any, **kw: Any) -> Any:
        real_ingest(self, [SAMPLES / "watercolor_sd15.safetensors"])  # some rows land, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr("ui.server.bundled_adapters", lambda: [SAMPLES])
    monkeypatch.setattr(LocalService, "ingest", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare(tmp_path, f"sqlite:///{tmp_path / 'loradex.db'}")
    assert (tmp_path / BUNDLED_PENDING).is_file()
    monkeypatch.setattr(LocalService, "ingest", real_ingest)
    again = prepare(tmp_path, f"sqlite:///{tmp_path / 'loradex.db'}")
    assert not again.fresh and again.samples is not None  # not fresh, yet the bundled ingestion ran again
    assert again.samples.count("duplicate") == 1 and not again.samples.refused
    assert again.service.registry.count() == len(again.samples.results) and not (tmp_path / BUNDLED_PENDING).exists()
    said = bundled_message(again)
    assert said.startswith("finished the interrupted first start") and "(1 already in the registry)" in said
    assert prepare(tmp_path, f"sqlite:///{tmp_path / 'loradex.db'}").samples is None  # complete: not again


def test_serve_binds_localhost_and_says_where_the_token_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from ui.cli import build_parser, cmd_serve

    args = build_parser().parse_args(["--home", str(tmp_path / "home"), "serve", "--port", "8123", "--no-samples"])
    assert args.fn is cmd_serve and args.host == "127.0.0.1" and args.cors_origin is None
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.delenv("LORADEX_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("LORADEX_DB_URL", raising=False)  # SQLite in the tmp data dir
    out = io.StringIO()
    from ui.server import serve

    assert serve(tmp_path / "home", samples=False, port=8123, out=out) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    text = out.getvalue()
    assert "http://127.0.0.1:8123/" in text and f"admin token: {tmp_path / 'home' / 'admin_token'}" in text
    paths = TestClient(seen["app"]).get("/openapi.json").json()["paths"]
    assert "/search" in paths


def test_serve_opens_before_the_bundled_ingestion_and_says_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port opens at once on a fresh data dir: the bundled adapters are ingested as a job while
    ``/health`` answers ``starting`` with the job's progress; then ``ok`` with every adapter in."""
    import threading

    import uvicorn

    from ui.server import BUNDLED_PENDING, serve

    monkeypatch.setenv("LORADEX_ADAPTER_SETS", "samples")  # not the zoos: 6 adapters are enough here
    monkeypatch.delenv("LORADEX_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("LORADEX_DB_URL", raising=False)
    gate, seen = threading.Event(), {}
    real_ingest = LocalService.ingest

    def held_ingest(self: LocalService, *a: Any, **kw: Any) -> Any:  # the real ingestion, started when we say
        assert gate.wait(60)
        return real_ingest(self, *a, **kw)

    monkeypatch.setattr(LocalService, "ingest", held_ingest)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app))
    out = io.StringIO()
    assert serve(tmp_path / "home", port=8124, out=out, ui=False) == 0
    http = TestClient(seen["app"])
    h = http.get("/health").json()
    assert h["status"] == "starting" and h["adapters"] == 0 and "ingesting the bundled adapters" in h["detail"]
    assert (tmp_path / "home" / BUNDLED_PENDING).is_file() and "in the background (job" in out.getvalue()
    gate.set()
    deadline = time.monotonic() + 120
    while http.get("/health").json()["status"] == "starting" and time.monotonic() < deadline:
        time.sleep(0.1)
    h = http.get("/health").json()
    assert h["status"] == "ok" and h["adapters"] >= 6 and h["detail"] == ""
    assert not (tmp_path / "home" / BUNDLED_PENDING).exists() and "fresh data dir: ingested" in out.getvalue()
    assert "watercolor_sd15" in {a["name"] for a in http.get("/adapters").json()}


def test_train_encoder_job_refuses_without_enough_data(env: SimpleNamespace) -> None:
    """The samples hold one adapter per family: the job fails with a clear, coded error."""
    assert_error(env.http.post("/encoders/train", json={"family": "sd1"}), 401, "unauthorized")
    r = env.http.post("/encoders/train", json={"family": "sd1", "epochs": 2}, headers=AUTH)
    assert r.status_code == 202 and r.headers["Location"] == f"/jobs/{r.json()['id']}"
    job = wait_job(env.http, r.json()["id"])
    assert job["status"] == "failed" and job["kind"] == "train-encoder"
    from loradex.errors import ERROR_CODES

    assert "at least 4" in job["error"]["message"] and job["error"]["code"] in ERROR_CODES
    assert_error(env.http.post("/encoders/train", json={"family": "", "epochs": 2}, headers=AUTH), 400, "bad_request")


def test_train_encoder_through_the_client(tiny_text_zoo: Path, tmp_path: Path) -> None:
    """A trained encoder over HTTP: the job reports progress, the client gets the version, search uses it."""
    import json

    from benchmarks.zoo import training_texts
    from encoders.weight.train import TrainConfig
    from loradex.client import Client
    from ui.server import BackgroundServer

    svc = LocalService.open(tmp_path / "home")
    svc.ingest([tiny_text_zoo / "adapters"])
    texts = training_texts(json.loads((tiny_text_zoo / "manifest.json").read_text()))
    with BackgroundServer(create_app(svc, admin_token=TOKEN)) as server:
        client = Client(server.url, token=TOKEN)
        out = client.train_encoder("zoo-text", texts=texts, train_config=TrainConfig(epochs=5, val_fraction=0.0))
        assert out["family"] == "zoo-text" and out["version"].startswith("w:zoo-text:")
        assert out["version"] in svc.weight_embedder.families.values()
        hits = client.search("Reverse the string.", k=3, mode="weights")
        assert hits and all(h.scores["weights"] is not None for h in hits)
    svc.registry.close()
