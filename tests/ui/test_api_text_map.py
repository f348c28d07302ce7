"""The registry's text map over REST (``POST /encoders/text-map``, a job) and ``Client.train_text_map``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loradex.service import LocalService
from tests.loradex.test_text_map_registry import FEW_STEPS, PROMPT, SAMPLES, TEXTS
from tests.ui.test_api import AUTH, TOKEN, assert_error, wait_job
from ui.api import create_app


@pytest.fixture
def svc(tmp_path: Path, db_url: str) -> Iterator[LocalService]:
    service = LocalService.open(tmp_path / "home", db_url)
    service.ingest([SAMPLES])
    yield service
    service.close()


def _names(hits: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [h["adapter"]["name"] for h in hits]


def test_text_map_job_over_rest(svc: LocalService) -> None:
    http = TestClient(create_app(svc, admin_token=TOKEN), raise_server_exceptions=False)
    assert "/encoders/text-map" in http.get("/openapi.json").json()["paths"]
    assert_error(http.post("/encoders/text-map", json={}), 401, "unauthorized")
    assert_error(http.post("/encoders/text-map", json={"steps": 0}, headers=AUTH), 400, "bad_request")
    index_version = svc.registry.indexes["text"].version

    # descriptions only: nothing to learn; the job fails with a coded error that hides the data dir
    r = http.post("/encoders/text-map", json={}, headers=AUTH)
    assert r.status_code == 202 and r.headers["Location"] == f"/jobs/{r.json()['id']}"
    job = wait_job(http, r.json()["id"])
    assert job["status"] == "failed" and job["kind"] == "train-text-map"
    assert job["error"]["code"] == "bad_request" and "more than one text" in job["error"]["message"]
    assert str(svc.home) not in job["error"]["message"]
    assert svc.registry.indexes["text"].version == index_version and svc.encoders() == []

    body = {"texts": TEXTS, **{k: v for k, v in asdict(FEW_STEPS).items() if k in ("steps", "reg")}}
    job = wait_job(http, http.post("/encoders/text-map", json=body, headers=AUTH).json()["id"])
    assert job["status"] == "done" and job["done"] == job["total"] == 1, job
    version = job["output"]["version"]
    assert version.startswith("tmap:") and job["output"]["metrics"]["adapters"] == 6
    assert job["output"]["metrics"]["config"]["steps"] == FEW_STEPS.steps
    assert [e["version"] for e in svc.encoders()] == [version]
    assert svc.registry.indexes["text"].version == f"{index_version}+{version}"
    hits = http.post("/search", json={"prompt": PROMPT, "k": 2, "mode": "text"}).json()["hits"]
    assert _names(hits)[0] == "Pixel Art XL"


def test_client_fits_the_text_map(svc: LocalService) -> None:
    from loradex.client import Client, ClientError
    from ui.server import BackgroundServer

    with BackgroundServer(create_app(svc, admin_token=TOKEN)) as server:
        client = Client(server.url, token=TOKEN)
        with pytest.raises(ClientError, match="more than one text"):
            client.train_text_map()
        out = client.train_text_map({k: {"texts": v} for k, v in TEXTS.items()}, FEW_STEPS)
        assert out["version"] == svc.registry.embedders["text"].map_version
        assert out["metrics"]["config"] == asdict(FEW_STEPS) and "path" not in out
        remote = [(h.adapter["name"], round(h.score, 5)) for h in client.search(PROMPT, k=6, mode="text")]
        local = [(h.adapter["name"], round(h.score, 5)) for h in svc.search(PROMPT, k=6, mode="text")]
        assert remote == local and remote[0][0] == "Pixel Art XL"
