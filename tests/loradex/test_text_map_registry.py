"""The registry's text map (``train-encoder --text``): fitted, recorded, re-embedded, used by search."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from encoders.registry_text_map import REGISTRY_MAP_CONFIG
from encoders.text import METADATA_TEXT_RULES, metadata_text
from encoders.weight.registry_training import EncoderTrainingError
from loradex.service import LocalService
from ui.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"
# paraphrases in other words than the samples' descriptions, keyed by adapter name (a texts file)
TEXTS = {
    "watercolor_sd15": ["wet paint bleeding on rough paper", "pictures that look hand-painted with water colours"],
    "Pixel Art XL": ["blocky low-resolution video game graphics", "8-bit retro sprites"],
    "sql_helper_llama": ["write database queries for me", "help with SELECT and JOIN statements"],
    "Shakespeare GPT-2": ["speak in Elizabethan English", "old-fashioned theatre dialogue"],
    "ink_sketch_sd2": ["pen drawings with cross-hatching", "black line art like a sketchbook"],
    "neon_glow_flux": ["bright glowing tubes of light at night", "cyberpunk signs shining in the dark"],
}
FEW_STEPS = replace(REGISTRY_MAP_CONFIG, steps=60)  # six adapters: enough to learn the paraphrases
PROMPT = "blocky low-resolution video game graphics"  # a training paraphrase of Pixel Art XL


def _texts() -> dict[str, dict[str, list[str]]]:
    return {name: {"texts": ts} for name, ts in TEXTS.items()}


def _text_vectors(svc: LocalService) -> dict[int, np.ndarray]:
    return {i: v for i, kind, v in svc.embeddings() if kind == "text"}


@pytest.fixture
def service(tmp_path: Path, db_url: str) -> LocalService:
    svc = LocalService.open(tmp_path / "home", db_url)
    svc.ingest([SAMPLES])
    yield svc
    svc.close()


def test_fit_records_the_map_and_reembeds(service: LocalService, tmp_path: Path, db_url: str) -> None:
    plain_version = service.registry.indexes["text"].version
    before = _text_vectors(service)
    assert len(before) == 6
    result = service.train_text_map(_texts(), FEW_STEPS)
    version = result["version"]
    assert version.startswith("tmap:") and result["metrics"]["adapters"] == 6
    assert result["metrics"]["loo_top1_after"] >= result["metrics"]["loo_top1_before"]
    recorded = [e for e in service.encoders() if e["kind"] == "text"]
    assert [e["version"] for e in recorded] == [version]
    assert Path(recorded[0]["path"]).is_relative_to(service.home)  # stored relative to the data dir
    # the text index moved to a new version and every stored text vector was made again, mapped
    index_version = service.registry.indexes["text"].version
    assert index_version == f"{plain_version}+{version}"
    after = _text_vectors(service)
    assert set(after) == set(before)
    embedder = service.registry.embedders["text"]
    for i, vec in before.items():
        assert not np.allclose(after[i], vec, atol=1e-3)
        np.testing.assert_allclose(after[i], embedder.embed(service.get(i)), atol=1e-5)
        # the plain vector through the map is nearer to it than the plain vector
        assert float(embedder.query(vec) @ after[i]) > float(vec @ after[i])
        assert abs(float(np.linalg.norm(after[i])) - 1.0) < 1e-5
    hits = service.search(PROMPT, k=2, mode="text")
    assert hits[0].adapter["name"] == "Pixel Art XL", [(h.adapter["name"], h.score) for h in hits]
    assert any(e.kind == "text" and e.source == "trained" and e.version == version for e in service.stats().encoders)
    # a later open of the same data dir finds the map in the database: same vectors, no re-embed
    service.close()
    again = LocalService.open(tmp_path / "home", db_url)
    try:
        assert again.registry.indexes["text"].version == index_version
        reopened = _text_vectors(again)
        for i, vec in after.items():
            np.testing.assert_array_equal(reopened[i], vec)
        assert again.search(PROMPT, k=1, mode="text")[0].adapter["name"] == "Pixel Art XL"
    finally:
        again.close()


def test_ingest_batches_map_their_texts_like_single_ones(service: LocalService) -> None:
    """Ingest embeds a commit group's texts together (``embed_many``): under a map each comes out
    mapped, as ``embed`` gives it, and an adapter ingested after the fit is stored that way."""
    service.train_text_map(_texts(), FEW_STEPS)
    embedder = service.registry.embedders["text"]
    infos = [service.get(i) for i in sorted(_text_vectors(service))]
    many = embedder.embed_many(infos)
    for info, vec in zip(infos, many, strict=True):
        np.testing.assert_allclose(vec, embedder.embed(info), atol=1e-6)
        assert not np.allclose(vec, service.text_encoder.encode([metadata_text(info)])[0], atol=1e-3)


def test_a_registry_without_a_map_keeps_its_vectors(service: LocalService) -> None:
    """Old registries have no text map: the version is the one they were embedded with, so opening
    them with this code re-embeds nothing and search scores are plain cosines."""
    enc = service.text_encoder
    assert service.registry.indexes["text"].version == f"{enc.version}+{METADATA_TEXT_RULES}"
    assert service.registry.embedders["text"].map_version is None
    hit = service.search("a soft watercolor painting of a lake", k=1, mode="text")[0]
    stored = _text_vectors(service)[hit.adapter["id"]]
    q = enc.encode(["a soft watercolor painting of a lake"])[0]
    assert hit.scores["text"] == pytest.approx(float(q @ stored), abs=1e-4)


def test_nothing_to_learn_is_refused_and_changes_nothing(service: LocalService) -> None:
    version = service.registry.indexes["text"].version
    with pytest.raises(EncoderTrainingError, match="more than one text"):
        service.train_text_map()  # descriptions only: one text per adapter
    assert [e for e in service.encoders() if e["kind"] == "text"] == []
    assert service.registry.indexes["text"].version == version


def test_a_map_of_another_encoder_is_refused(service: LocalService, tmp_path: Path) -> None:
    result = service.train_text_map(_texts(), FEW_STEPS)
    vectors = _text_vectors(service)
    folder = tmp_path / "foreign"
    folder.mkdir()
    (folder / "text_map.safetensors").write_bytes((Path(result["path"]) / "text_map.safetensors").read_bytes())
    cfg = json.loads((Path(result["path"]) / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "base": "st:another-model:0"}))
    with pytest.raises(EncoderTrainingError, match="another-model"):
        service.add_text_map(folder)
    with pytest.raises(EncoderTrainingError, match="not a text map folder"):
        service.add_text_map(tmp_path)
    assert [e["version"] for e in service.encoders() if e["kind"] == "text"] == [result["version"]]
    assert all(np.array_equal(v, vectors[i]) for i, v in _text_vectors(service).items())


@pytest.mark.slow  # the full fit (300 steps) through the command line
def test_cli_fits_the_text_map(capsys: pytest.CaptureFixture[str], tmp_path: Path, db_url: str) -> None:
    home = ["--home", str(tmp_path / "home"), "--db", db_url]
    assert main([*home, "ingest", str(SAMPLES), "-q"]) == 0
    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps(TEXTS))
    capsys.readouterr()
    assert main([*home, "train-encoder", "--text", "--texts", str(texts), "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["version"].startswith("tmap:")
    assert main([*home, "encoders"]) == 0
    assert fitted["version"] in capsys.readouterr().out
    assert main([*home, "train-encoder"]) == 2  # neither --family nor --text
    assert "--family" in capsys.readouterr().err


@pytest.mark.slow  # ingests the 12 real fixtures and fits a full map
def test_real_fixtures_are_still_found_by_their_descriptions_under_a_map(real_adapters: Path, tmp_path: Path) -> None:
    """The text map is fitted on the registry's adapters with paraphrases (the samples); the real
    fixtures have their descriptions only and must stay first for them (as without a map)."""
    svc = LocalService.open(tmp_path / "home")
    try:
        assert svc.ingest([real_adapters]).count("ingested") == 12
        svc.ingest([SAMPLES])
        svc.train_text_map(_texts())
        assert svc.registry.embedders["text"].map_version is not None
        described = [a for a in svc.list() if (a["description"] or "").strip() and a["name"] not in TEXTS]
        assert len(described) >= 4
        for a in described:
            hits = svc.search(a["description"][:300], k=3)
            assert a["id"] == hits[0].adapter["id"], (a["name"], [h.adapter["name"] for h in hits])
    finally:
        svc.close()


def test_the_fit_is_the_same_for_texts_embedded_a_hair_apart(service: LocalService) -> None:
    """Encoding the same texts in other batches moves their vectors by ~1e-6; the fitted map must not
    move more than that warrants (with Adam at lr 0.01, seven text zoo tasks' texts fitted maps as far
    from each other as from the identity, and search ranked differently on other machines)."""
    import torch

    from benchmarks.zoo import training_texts
    from encoders.text_map import fit_text_map
    from tests.conftest import TEXT_ZOO

    manifest = json.loads((TEXT_ZOO / "manifest.json").read_text())
    said, canonical = training_texts(manifest), {t["id"]: t["canonical"] for t in manifest["tasks"]}
    tasks = ("rotl_2", "rotr_2", "rotl_1", "rotr_1", "sort", "sortdesc", "reverse")  # rotr_2 is held out: one text
    groups = [[canonical[t], *said.get(t, {}).get("texts", [])] for t in tasks]
    emb = torch.from_numpy(service.text_encoder.encode([t for g in groups for t in g]))  # (m, d)
    owner = torch.tensor([i for i, g in enumerate(groups) for _ in g])
    nudged = emb + 1e-6 * torch.randn(emb.shape, generator=torch.Generator().manual_seed(1))
    w, _ = fit_text_map(emb, owner, REGISTRY_MAP_CONFIG)
    w2, _ = fit_text_map(nudged, owner, REGISTRY_MAP_CONFIG)
    eye = torch.eye(w.shape[0])
    assert float((w - w2).norm() / (w - eye).norm()) < 0.1
