"""A tuned text map (``train-encoder --text --tune``, ``encoders.registry_text_tune``): a LoRA of the
text encoder and a second map fitted with the linear one; the text index holds both sides."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from encoders.registry_text_map import load_text_map
from encoders.registry_text_tune import LORA_FILE, TUNED_MAP_FILE, TuneConfig, TunedTextEncoder
from encoders.text import metadata_text
from encoders.weight.registry_training import EncoderTrainingError
from loradex.search import readable_for
from loradex.service import LocalService
from tests.loradex.test_text_map_registry import FEW_STEPS, PROMPT, SAMPLES, TEXTS, _text_vectors, _texts
from ui.cli import main

TUNE = TuneConfig(max_steps=2)  # six adapters, two paraphrases each: two batches of six


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def service(tmp_path: Path) -> LocalService:
    svc = LocalService.open(tmp_path / "home")
    svc.ingest([SAMPLES])
    yield svc
    svc.close()


def test_a_tuned_map_stores_both_sides_and_search_reads_both(service: LocalService) -> None:
    plain = service.train_text_map(_texts(), FEW_STEPS)
    steps: list[tuple[int, int]] = []
    tuned = service.train_text_map(_texts(), FEW_STEPS, tune=TUNE, progress=lambda d, t: steps.append((d, t)))
    folder = Path(tuned["path"])
    # the LoRA and W_t beside the same W: a new version (the digest covers every weight file)
    assert (folder / LORA_FILE).is_file() and (folder / TUNED_MAP_FILE).is_file()
    assert (folder / "text_map.safetensors").read_bytes() == (Path(plain["path"]) / "text_map.safetensors").read_bytes()
    assert tuned["version"] != plain["version"]
    assert steps == [(1, 2), (2, 2)] and tuned["metrics"]["tune"]["steps"] == 2
    w, cfg = load_text_map(folder)
    assert TuneConfig.from_dict(cfg["tune"]) == TUNE and cfg["index_dim"] == 2 * w.shape[0]
    index = service.registry.indexes["text"]
    assert index.version.endswith("+" + tuned["version"]) and index.dim == 768
    # each stored vector: [unit(W·plain), unit(W_t·tuned)] / √2, with the LoRA as saved
    from safetensors.numpy import load_file

    w_t = load_file(str(folder / TUNED_MAP_FILE))["w"]
    side = TunedTextEncoder(service.text_encoder, folder, TUNE)
    stored = _text_vectors(service)
    assert len(stored) == 6
    for i, vec in stored.items():
        text = metadata_text(service.get(i))
        a = _unit(w @ service.text_encoder.encode([text])[0])
        b = _unit(w_t @ side.encode([text])[0])
        assert not np.allclose(side.encode([text])[0], service.text_encoder.encode([text])[0], atol=1e-3)
        np.testing.assert_allclose(vec, np.concatenate([a, b]) / np.sqrt(2), atol=1e-5)
    # a prompt's text cosine is the mean of both sides' cosines, not the plain map's alone
    embedder = service.registry.embedders["text"]
    with pytest.raises(ValueError, match="query_text"):
        embedder.query(service.text_encoder.encode([PROMPT])[0])
    hits = service.search(PROMPT, k=6, mode="text")
    assert hits[0].adapter["name"] == "Pixel Art XL"
    read = readable_for(service.text_encoder, PROMPT)
    qa = _unit(w @ service.text_encoder.encode([read])[0])
    qb = _unit(w_t @ side.encode([read])[0])
    for h in hits:
        vec = stored[h.adapter["id"]]
        da, db = vec[:384] * np.sqrt(2), vec[384:] * np.sqrt(2)
        assert h.scores["text"] == pytest.approx((float(qa @ da) + float(qb @ db)) / 2, abs=1e-4)
    assert any(abs(float(qa @ stored[h.adapter["id"]][:384] * np.sqrt(2)) - h.scores["text"]) > 1e-3 for h in hits)
    # hybrid search and a search among chosen adapters read the same space
    assert service.search(PROMPT, k=3)[0].adapter["name"] == "Pixel Art XL"
    among = service.searcher.scores_among(PROMPT, sorted(stored))
    assert among[hits[0].adapter["id"]][1]["text"] == pytest.approx(hits[0].scores["text"], abs=1e-5)
    # a plain map recorded after it: back to 384-d vectors, rebuilt cleanly
    service.train_text_map(_texts(), replace(FEW_STEPS, steps=50))  # another W: the latest recorded map
    assert service.registry.indexes["text"].dim == 384
    assert {v.shape for v in _text_vectors(service).values()} == {(384,)}
    assert service.search(PROMPT, k=1, mode="text")[0].adapter["name"] == "Pixel Art XL"


def test_a_bad_tune_is_refused_and_changes_nothing(service: LocalService, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rank must be an integer"):
        TuneConfig(rank=0)
    version = service.registry.indexes["text"].version
    for bad, said in (({"rank": 0}, "rank"), ({"bogus": 1}, "unknown field"), ("yes", "TuneConfig")):
        with pytest.raises(EncoderTrainingError, match=said):
            service.train_text_map(_texts(), FEW_STEPS, tune=bad)
    from encoders.registry_text_map import fit_registry_text_map
    from encoders.text import TextEncoder, TextEncoderConfig

    int8 = TextEncoder(TextEncoderConfig(quantize=True))  # not loaded: refused before any model runs
    with pytest.raises(EncoderTrainingError, match="int8"):
        fit_registry_text_map(service.registry, int8, texts=_texts(), config=FEW_STEPS, tune=TUNE)
    assert [e for e in service.encoders() if e["kind"] == "text"] == []
    assert service.registry.indexes["text"].version == version
    assert not (service.home / "encoders" / "text").is_dir() or not any((service.home / "encoders" / "text").iterdir())
    # a tuned map folder without its LoRA is not recorded
    plain = Path(service.train_text_map(_texts(), FEW_STEPS)["path"])
    broken = tmp_path / "broken"
    shutil.copytree(plain, broken)
    cfg = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**cfg, "tune": TUNE.to_dict()}))
    with pytest.raises(EncoderTrainingError, match=LORA_FILE):
        service.add_text_map(broken)
    assert len([e for e in service.encoders() if e["kind"] == "text"]) == 1


def test_cli_tunes_the_text_map(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    home = ["--home", str(tmp_path / "home")]
    assert main([*home, "ingest", str(SAMPLES), "-q"]) == 0
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps(TEXTS))
    assert main([*home, "train-encoder", "--tune"]) == 2  # --tune without --text
    assert "--tune goes with --text" in capsys.readouterr().err
    assert main([*home, "train-encoder", "--text", "--tune", "--texts", str(texts), "--json", "-q"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["metrics"]["tune"]["steps"] >= 1
    assert (Path(fitted["path"]) / LORA_FILE).is_file()
    assert main([*home, "search", PROMPT, "--mode", "text", "-k", "1", "--json"]) == 0
    assert "Pixel Art XL" in capsys.readouterr().out


def test_a_tune_over_rest_and_the_client(service: LocalService) -> None:
    from fastapi.testclient import TestClient

    from loradex.client import Client
    from tests.ui.test_api import AUTH, TOKEN, assert_error, wait_job
    from ui.api import create_app
    from ui.server import BackgroundServer

    app = create_app(service, admin_token=TOKEN)
    http = TestClient(app, raise_server_exceptions=False)
    body = {"texts": TEXTS, "steps": FEW_STEPS.steps}
    for bad in ({"rank": 0}, {"bogus": 1}, {"max_steps": 0}):
        assert_error(http.post("/encoders/text-map", json={**body, "tune": bad}, headers=AUTH), 400, "bad_request")
    assert service.encoders() == []
    job = wait_job(
        http, http.post("/encoders/text-map", json={**body, "tune": {"max_steps": 1}}, headers=AUTH).json()["id"]
    )
    assert job["status"] == "done" and job["done"] == job["total"] == 2, job  # one tune step, then the fit
    assert job["output"]["metrics"]["tune"]["steps"] == 1
    assert job["output"]["version"] == service.registry.embedders["text"].map_version
    assert service.registry.indexes["text"].dim == 768
    with BackgroundServer(app) as server:
        client = Client(server.url, token=TOKEN)
        out = client.train_text_map(_texts(), FEW_STEPS, tune=TuneConfig(max_steps=2))
        assert out["metrics"]["tune"]["steps"] == 2 and out["version"] != job["output"]["version"]
        remote = [(h.adapter["name"], round(h.score, 5)) for h in client.search(PROMPT, k=6, mode="text")]
        local = [(h.adapter["name"], round(h.score, 5)) for h in service.search(PROMPT, k=6, mode="text")]
        assert remote == local and remote[0][0] == "Pixel Art XL"


def test_the_version_follows_the_tune(service: LocalService) -> None:
    """The same tune again gives the same files (a deterministic fit: kept once); another seed, another
    LoRA under the same W: another version."""
    one = service.train_text_map(_texts(), FEW_STEPS, tune=TuneConfig(max_steps=1))
    again = service.train_text_map(_texts(), FEW_STEPS, tune=TuneConfig(max_steps=1))
    other = service.train_text_map(_texts(), FEW_STEPS, tune=TuneConfig(max_steps=1, seed=1))
    assert again["version"] == one["version"] and again["path"] == one["path"]
    assert other["version"] != one["version"]
    assert (Path(other["path"]) / LORA_FILE).read_bytes() != (Path(one["path"]) / LORA_FILE).read_bytes()
    assert service.registry.embedders["text"].map_version == other["version"]


def test_searches_wait_out_the_swap_to_a_tuned_map(service: LocalService) -> None:
    """Swapping in a tuned map changes the text index's dimension (384 → 768) and re-embeds every
    adapter; searches running meanwhile (a serve's background tune) see the old index or the new,
    never a query of one with vectors of the other (``registry.swap``)."""
    service.train_text_map(_texts(), FEW_STEPS)
    assert service.registry.indexes["text"].dim == 384
    errors: list[str] = []
    found: list[str] = []
    stop = threading.Event()

    def keep_searching() -> None:
        while not stop.is_set():
            try:
                found.append(service.search(PROMPT, k=1)[0].adapter["name"])
            except Exception as e:  # what a request would have answered with
                errors.append(repr(e))

    t = threading.Thread(target=keep_searching, daemon=True)
    t.start()
    try:
        service.train_text_map(_texts(), FEW_STEPS, tune=TUNE)
    finally:
        stop.set()
        t.join(60)
    assert errors == [] and found and set(found) == {"Pixel Art XL"}
    assert service.registry.indexes["text"].dim == 768

    answered = threading.Event()
    late: list[str] = []

    def one_search() -> None:
        late.append(service.search(PROMPT, k=1)[0].adapter["name"])
        answered.set()

    with service.registry.swap.writing():  # a swap in progress: the search waits for it
        s = threading.Thread(target=one_search, daemon=True)
        s.start()
        assert not answered.wait(0.5)
    s.join(60)
    assert late == ["Pixel Art XL"]


def test_an_ingest_waits_out_the_swap_and_lands_in_the_new_index(service: LocalService) -> None:
    """An adapter ingested while a tuned map is swapped in (384 → 768-d text index) is embedded with
    one version and added to that version's index: the ingest waits for the swap, then its text
    vector is of the tuned map and the index holds every adapter once."""
    zoo = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "text" / "adapters"
    if not (zoo / "reverse").is_dir():
        pytest.skip("the text zoo is not built")
    service.train_text_map(_texts(), FEW_STEPS)
    done = threading.Event()
    report: list = []

    def ingest() -> None:
        report.append(service.ingest([zoo / "reverse", zoo / "upper"]))
        done.set()

    with service.registry.swap.writing():  # a swap in progress
        t = threading.Thread(target=ingest, daemon=True)
        t.start()
        assert not done.wait(1.0)  # parsed, but not embedded or written while the swap runs
        service.train_text_map(_texts(), FEW_STEPS, tune=TUNE)  # the swap itself (re-entrant for its thread)
    t.join(120)
    assert done.is_set() and report[0].count("ingested") == 2
    text = service.registry.embedders["text"]
    index = service.registry.indexes["text"]
    rows = service.registry.list()
    assert index.dim == 768 and len(index) == len(rows)
    vecs = service.registry.embeddings_of(next(r["id"] for r in rows if r["name"] == "reverse"))
    assert vecs["text"].shape == (768,)
    assert service.search("write the string backwards", k=1)[0].adapter["name"] == "reverse"
    assert text.map_version == service.text_map()["version"]
