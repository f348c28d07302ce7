"""A fresh data dir fits its text map on the paraphrases the bundled adapter sets declare
(``Settings.bundled_texts``, ``ui.server.fit_bundled_text_map``), in the foreground start, in the
background job of ``serve`` and through ``train-encoder --text --bundled``."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from encoders.registry_text_map import load_text_map
from loradex import settings
from loradex.settings import Settings
from ui.cli import main
from ui.server import bundled_message, prepare, serve

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "adapters"
# other words than the samples' descriptions, keyed by adapter name
TEXTS = {
    "watercolor_sd15": {"texts": ["wet paint bleeding on rough paper", "pictures that look hand-painted"]},
    "Pixel Art XL": {"texts": ["blocky low-resolution video game graphics", "8-bit retro sprites"]},
    "sql_helper_llama": {"texts": ["write database queries for me", "help with SELECT and JOIN statements"]},
    "Shakespeare GPT-2": {"texts": ["speak in Elizabethan English", "old-fashioned theatre dialogue"]},
    "ink_sketch_sd2": {"texts": ["pen drawings with cross-hatching", "black line art like a sketchbook"]},
    "neon_glow_flux": {"texts": ["bright glowing tubes of light at night", "cyberpunk signs shining in the dark"]},
}


@pytest.fixture
def sample_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundled set ``described`` (the samples) that declares paraphrases; the only set a start bundles."""
    settings.adapter_sets(), settings.adapter_texts()  # the entry points are read before the patch
    monkeypatch.setitem(settings._SETS, "described", lambda: [SAMPLES])
    monkeypatch.setitem(settings._TEXTS, "described", lambda: TEXTS)
    monkeypatch.setenv("LORADEX_ADAPTER_SETS", "described")
    monkeypatch.delenv("LORADEX_ADMIN_TOKEN", raising=False)


def test_zoo_sets_declare_their_training_paraphrases_only() -> None:
    manifest = json.loads((REPO / "benchmarks" / "zoo" / "text" / "manifest.json").read_text())
    texts = Settings(adapter_sets=("zoo-text",)).bundled_texts()
    train = [t for t in manifest["tasks"] if t["split"] == "train"]
    heldout = [t for t in manifest["tasks"] if t["split"] != "train"]
    assert train and heldout
    for t in train:
        for a in t["adapters"]:
            mine = texts[Path(a["path"]).name]["texts"]
            assert mine[0] == t["canonical"]
            assert not {p["text"] for p in t["paraphrases"] if p["split"] != "train"} & set(mine)
    assert not {Path(a["path"]).name for t in heldout for a in t["adapters"]} & set(texts)
    assert Settings(adapter_sets=("samples",)).bundled_texts() == {}


def test_a_fresh_start_fits_the_text_map_once(sample_set: None, tmp_path: Path) -> None:
    first = prepare(tmp_path / "home")
    svc = first.service
    try:
        maps = svc.registry.encoders(kind="text")
        assert len(maps) == 1 and maps[0]["version"].startswith("tmap:")
        assert maps[0]["metrics"]["adapters"] == 6 and maps[0]["metrics"]["texts"] == 6 + 12
        said = bundled_message(first)
        assert said.startswith("fresh data dir: ingested 6") and f"text map {maps[0]['version']} fitted" in said
        assert svc.registry.embedders["text"].map_version == maps[0]["version"]  # the text index is mapped
    finally:
        svc.close()
    again = prepare(tmp_path / "home")  # not fresh: nothing ingested, nothing fitted
    try:
        assert again.samples is None and again.text_map is None
        assert [e["version"] for e in again.service.registry.encoders(kind="text")] == [maps[0]["version"]]
    finally:
        again.service.close()


def test_a_map_that_cannot_be_fitted_does_not_stop_the_start(
    sample_set: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(settings._TEXTS, "described", lambda: {"not-in-the-registry": {"texts": ["a", "b"]}})
    prep = prepare(tmp_path / "home")
    try:
        assert prep.samples is not None and prep.samples.count("ingested") == 6
        assert prep.text_map is not None and prep.text_map.startswith("text map not fitted (")
        assert "more than one text" in prep.text_map and prep.text_map in bundled_message(prep)
        assert prep.service.registry.encoders(kind="text") == []
        assert prep.service.search("a soft watercolor painting", k=1)[0].adapter["name"] == "watercolor_sd15"
    finally:
        prep.service.close()


def test_serve_fits_the_map_in_the_background_job(
    sample_set: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.delenv("LORADEX_DB_URL", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app))
    out = io.StringIO()
    assert serve(tmp_path / "home", port=8125, out=out, ui=False) == 0
    http = TestClient(seen["app"])
    deadline = time.monotonic() + 120
    while http.get("/health").json()["status"] == "starting" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert http.get("/health").json()["status"] == "ok"
    versions = [e["version"] for e in seen["app"].state.service.registry.encoders(kind="text")]
    assert len(versions) == 1 and f"text map {versions[0]} fitted" in out.getvalue()
    assert seen["app"].state.service.registry.embedders["text"].map_version == versions[0]
    seen["app"].state.service.close()


def test_cli_fits_the_map_on_the_bundled_texts(
    sample_set: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = ["--home", str(tmp_path / "home")]
    assert main([*home, "ingest", str(SAMPLES), "-q"]) == 0
    assert main([*home, "train-encoder", "--bundled"]) == 2
    assert "--bundled goes with --text" in capsys.readouterr().err
    extra = tmp_path / "texts.json"
    extra.write_text(json.dumps({"neon_glow_flux": ["lit-up signs in a rainy city street"]}))
    assert main([*home, "train-encoder", "--text", "--bundled", "--texts", str(extra), "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    # the bundled paraphrases of all six, but the file's entry replaces the set's for neon_glow_flux
    assert fitted["metrics"]["adapters"] == 6 and fitted["metrics"]["texts"] == 6 + 10 + 1


def test_serve_then_tunes_the_text_encoder_in_a_second_job(
    sample_set: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``LORADEX_TEXT_TUNE`` on (the default outside the tests), the first serve's plain map
    serves at once and a second job fine-tunes the text encoder on the same paraphrases and swaps
    the tuned map in; a second start tunes nothing again."""
    import uvicorn

    from encoders.registry_text_tune import TuneConfig
    from ui import server

    seen: dict[str, Any] = {}
    monkeypatch.setenv("LORADEX_TEXT_TUNE", "1")
    monkeypatch.setattr(server, "BUNDLED_TUNE_STEPS", 2)  # the job's length, not what it does
    monkeypatch.delenv("LORADEX_DB_URL", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app))
    out = io.StringIO()
    assert serve(tmp_path / "home", port=8126, out=out, ui=False) == 0
    app = seen["app"]
    http = TestClient(app)
    deadline = time.monotonic() + 300
    while http.get("/health").json()["status"] == "starting" and time.monotonic() < deadline:
        time.sleep(0.1)
    first_ok = http.get("/health").json()
    assert first_ok["status"] == "ok"
    # the tune was queued before the ingestion job ended, and takes seconds: still running here
    assert first_ok["detail"].startswith("fine-tuning the text encoder: ")
    svc = app.state.service
    try:
        tune_jobs = [j for j in app.state.jobs.list() if j.kind == "train-text-map"]
        assert len(tune_jobs) == 1 and f"(job {tune_jobs[0].id})" in out.getvalue()
        while app.state.jobs.get(tune_jobs[0].id).status in ("queued", "running") and time.monotonic() < deadline:
            assert http.post("/search", json={"prompt": "8-bit retro sprites", "k": 1}).status_code == 200
            time.sleep(0.2)
        job = app.state.jobs.get(tune_jobs[0].id)
        assert job.status == "done" and job.output["metrics"]["tune"]["steps"] == 2
        assert http.get("/health").json()["detail"] == ""
        maps = svc.registry.encoders(kind="text")
        assert len(maps) == 2 and "tune" not in maps[0]["metrics"] and maps[1]["version"] == job.output["version"]
        assert svc.text_map() == {"version": maps[1]["version"], "tuned": True}
        assert svc.registry.indexes["text"].dim == 768
        tuned_cfg = load_text_map(Path(maps[1]["path"]))[1]
        assert TuneConfig.from_dict(tuned_cfg["tune"]) == TuneConfig(max_steps=2)
        first_jobs = {j.id for j in app.state.jobs.list()}
        hit = http.post("/search", json={"prompt": "8-bit retro sprites", "k": 1}).json()
        assert hit["hits"][0]["adapter"]["name"] == "Pixel Art XL"
    finally:
        svc.close()
    assert serve(tmp_path / "home", port=8126, out=io.StringIO(), ui=False) == 0  # not fresh: no new job
    assert seen["app"] is not app and {j.id for j in seen["app"].state.jobs.list()} == first_jobs
    seen["app"].state.service.close()


def test_the_tune_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LORADEX_TEXT_TUNE", raising=False)
    assert Settings.from_env().text_tune is True  # on unless turned off
    monkeypatch.setenv("LORADEX_TEXT_TUNE", "off")
    assert Settings.from_env().text_tune is False
    monkeypatch.setenv("LORADEX_TEXT_TUNE", "later")
    with pytest.raises(ValueError, match="LORADEX_TEXT_TUNE='later' is not on/off"):
        Settings.from_env()
