"""Suite ``retrieval`` end to end on the tiny zoos, with zoo encoders trained through the registry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest


@pytest.mark.parametrize("kind", ["text", "image"])
def test_retrieval_suite_on_tiny_zoo(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from benchmarks.retrieval import suite_retrieval, train_zoo_encoder

    zoo: Path = request.getfixturevalue(f"tiny_{kind}_zoo")
    trained = train_zoo_encoder(zoo, epochs=10, out=tmp_path / "enc", val_fraction=0.0)
    assert trained["family"] == f"zoo-{kind}"
    assert (tmp_path / "enc" / "model.safetensors").is_file()
    manifest = json.loads((zoo / "manifest.json").read_text())
    train_adapters = sum(len(t["adapters"]) for t in manifest["tasks"] if t["split"] == "train")
    assert trained["metrics"]["adapters"] == train_adapters  # held-out tasks never reach the encoder

    res = suite_retrieval(argparse.Namespace(zoo_dir=str(zoo), encoder_dir=str(tmp_path / "enc")))
    out = res["zoos"][kind]
    assert out["family"] == f"zoo-{kind}" and out["encoder"] == trained["version"]
    assert out["gallery"] == manifest["counts"]["adapters"]
    assert {r["zoo"] for r in res["rows"]} == {kind}
    got = {(r["registry"], r["mode"], r["queries"]): r for r in res["rows"]}
    for mode in ("weights", "text", "hybrid", "random"):
        for q in ("unseen_paraphrases", "heldout_tasks"):
            r = got[("described", mode, q)]
            assert 0.0 <= r["recall@1"] <= r["recall@5"] <= r["recall@10"] <= 1.0
    # with descriptions hidden there is no text signal: hybrid ranks exactly as weights do
    for q in ("unseen_paraphrases", "heldout_tasks"):
        w, h = got[("descriptions hidden", "weights", q)], got[("descriptions hidden", "hybrid", q)]
        assert {k: w[k] for k in ("recall@1", "mrr")} == {k: h[k] for k in ("recall@1", "mrr")}
    assert out["ingest"]["ratio_to_bare"] > 0 and out["search_latency_ms"]["p50"] > 0
    assert "text_map" not in out  # the namespace did not ask for one


def test_retrieval_suite_fits_the_text_map_by_default(tiny_text_zoo: Path, tmp_path: Path) -> None:
    """``benchmarks.run retrieval`` measures the registry a fresh start makes: with its text map."""
    from benchmarks.retrieval import suite_retrieval, train_zoo_encoder
    from benchmarks.run import build_parser

    assert build_parser().parse_args(["retrieval"]).text_map is True
    assert build_parser().parse_args(["retrieval", "--no-text-map"]).text_map is False
    train_zoo_encoder(tiny_text_zoo, epochs=5, out=tmp_path / "enc", val_fraction=0.0)
    args = argparse.Namespace(zoo_dir=str(tiny_text_zoo), encoder_dir=str(tmp_path / "enc"), text_map=True)
    out = suite_retrieval(args)["zoos"]["text"]
    manifest = json.loads((tiny_text_zoo / "manifest.json").read_text())
    trained = sum(len(t["adapters"]) for t in manifest["tasks"] if t["split"] == "train")
    assert out["text_map"]["version"].startswith("tmap:") and out["text_map"]["adapters"] == out["gallery"]
    assert out["text_map"]["texts"] > out["gallery"] + trained  # paraphrases of training tasks' adapters


def test_stripped_image_adapters_carry_no_text(tiny_image_zoo: Path, tmp_path: Path) -> None:
    """The hidden-descriptions registry sees weights only: no sidecar, no title, no description."""
    from safetensors import safe_open

    from benchmarks.retrieval import TEXT_KEYS, _strip_descriptions
    from registry.store import Registry

    names = _strip_descriptions(tiny_image_zoo / "adapters", tmp_path / "stripped")
    assert sorted(names.values()) == sorted(p.name for p in (tiny_image_zoo / "adapters").iterdir())
    for opaque, original in names.items():
        files = sorted(p.name for p in (tmp_path / "stripped" / opaque).iterdir())
        assert files == ["pytorch_lora_weights.safetensors"], files
        src = tiny_image_zoo / "adapters" / original / "pytorch_lora_weights.safetensors"
        dst = tmp_path / "stripped" / opaque / "pytorch_lora_weights.safetensors"
        with safe_open(str(src), "np") as a, safe_open(str(dst), "np") as b:
            assert a.metadata()["modelspec.title"] == original
            assert not set(TEXT_KEYS) & set(b.metadata())
            assert b.metadata()["modelspec.architecture"] == a.metadata()["modelspec.architecture"]
            assert sorted(a.keys()) == sorted(b.keys())
            k = sorted(a.keys())[0]
            assert (a.get_tensor(k) == b.get_tensor(k)).all()
    reg = Registry(home=tmp_path / "home")
    reg.init()
    rep = reg.ingest([tmp_path / "stripped"])
    assert rep.count("ingested") == len(names)
    rows = reg.list()
    assert {r["name"] for r in rows} == set(names) and all(not r["description"] for r in rows)
    assert {r["family"] for r in rows} == {"zoo-image"}
    reg.close()


@pytest.mark.parametrize("kind", ["text", "image"])
def test_bundled_zoo_encoders_follow_the_recipe(kind: str) -> None:
    """The bundled checkpoints are what ``python -m benchmarks.retrieval train-encoder KIND`` writes."""
    from benchmarks.retrieval import BUNDLED, BUNDLED_RECIPE

    folder = BUNDLED / f"zoo-{kind}"
    config = json.loads((folder / "config.json").read_text())
    trained = json.loads((folder / "metrics.json").read_text())["train_config"]
    assert {k: config[k] for k in BUNDLED_RECIPE["model_config"]} == BUNDLED_RECIPE["model_config"]
    assert (trained["epochs"], trained["val_fraction"], trained["raw_query_weight"]) == (
        BUNDLED_RECIPE["epochs"], BUNDLED_RECIPE["val_fraction"], BUNDLED_RECIPE["raw_query_weight"],
    )  # fmt: skip


def test_voice_queries_cover_both_splits_of_both_zoos() -> None:
    """Every voice has queries on training and on held-out tasks of each zoo; the held-out voice is one of them."""
    from benchmarks.retrieval import VOICES, ZOOS, voice_queries

    data = json.loads(VOICES.read_text())
    assert data["held_out_voice"] in data["voices"]
    for zoo in ZOOS.values():
        manifest = json.loads((zoo / "manifest.json").read_text())
        tasks = {t["id"] for t in manifest["tasks"]}
        assert set(data[manifest["kind"]]) <= tasks  # no query names a task the zoo lacks
        sets = voice_queries(manifest)
        assert set(sets) == {f"{v}/{s}" for v in data["voices"] for s in ("training tasks", "held-out tasks")}
        assert all(text.strip() and task in tasks for qs in sets.values() for text, task in qs)


def test_fusion_sweep_replays_rules_on_dumped_signals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The offline sweep reads a dump and scores every rule; main's rule ranks the right task first here."""
    from benchmarks.retrieval_fusion_sweep import rules, sweep

    q = {"set": "keywords/training tasks", "query": "q", "task": "a",
         "weights": {"1": 0.9, "2": 0.2, "3": 0.1}, "text": {"1": 0.5, "2": 0.4, "3": 0.1}}  # fmt: skip
    dump = {"held_out_voice": "long", "text": {"task_of": {"1": "a", "2": "b", "3": "c"},
            "queries": [q, {**q, "set": "unseen_paraphrases"}, {**q, "set": "jargon/held-out tasks"}]}}  # fmt: skip
    (tmp_path / "d.json").write_text(json.dumps(dump))
    sweep(tmp_path / "d.json")
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 + len(rules())
    assert "1.000/1.000/1.000" in next(line for line in out if line.startswith("z 0.7/0.3 "))


def test_trust_gate_fuses_text_led_only_below_its_threshold() -> None:
    """Weights and text disagree on the best adapter: the map's fixed fusion follows weights; the
    gate keeps that when the query's feature reaches the threshold and lets text lead below it."""
    from benchmarks.retrieval_fusion_sweep import trust_gate

    w, t = {1: 0.9, 2: 0.1, 3: 0.1}, {1: 0.5, 2: 0.6, 3: 0.1}
    rule = trust_gate(0.6, "fam")

    def best(s: dict[int, float]) -> int:
        return max(s, key=lambda i: s[i])

    assert best(rule(w, t, {"fam": 0.6})) == 1 and best(rule(w, t, {"fam": 0.9})) == 1
    assert best(rule(w, t, {"fam": 0.59})) == 2


def test_trust_features_tell_trained_from_untrained_tasks() -> None:
    """On the committed text zoo's manifest: a training task's own description is a trained text
    (best cosine 1) until leave-one-task-out removes it; a held-out task's never is; "known top"
    follows whether text's best adapter is of a training task."""
    from benchmarks.retrieval import ZOO_TEXT
    from benchmarks.retrieval_fusion_sweep import trust_features

    manifest = json.loads((ZOO_TEXT / "manifest.json").read_text())
    task = {t["id"]: t for t in manifest["tasks"]}
    if not {"reverse", "caesar_3"} <= task.keys() or task["caesar_3"]["split"] != "heldout":
        pytest.skip("the committed text zoo changed")
    task_of = {"1": "reverse", "2": "caesar_3", "3": "upper"}
    queries = [{"set": "unseen_paraphrases", "query": task[name]["canonical"], "task": name,
                "weights": {"1": 0.2, "2": 0.9, "3": 0.1}, "text": {k: 0.9 if v == name else 0.2 for k, v in task_of.items()}}
               for name in ("reverse", "caesar_3")]  # fmt: skip
    f = trust_features({"held_out_voice": "long", "text": {"task_of": task_of, "queries": queries}})["text"]
    assert f["fam"][0] == pytest.approx(1.0, abs=1e-4) and f["fam_loo"][0] < f["fam"][0] - 0.02
    assert f["fam"][1] < 0.999 and f["fam_loo"][1] == f["fam"][1]
    assert (f["known"], f["known_loo"]) == ([1.0, 0.0], [0.0, 0.0])
    assert f["top-1 agree"] == [0.0, 1.0]
