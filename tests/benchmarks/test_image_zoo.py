"""Image zoo: procedural images, adapter list and descriptions, stacked LoRA vs diffusers, the pipeline's
sampler, a tiny end-to-end rebuild, and (when it is committed) the full zoo's quality bars."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.zoo.image.captions import AdapterSpec, all_adapters, caption, vocabulary
from benchmarks.zoo.image.shapes import (
    BASE_SHAPES,
    COLOUR_PAIRS,
    NEW_SHAPES,
    PALETTES,
    SHAPES,
    TEXTURES,
    Scene,
    masks,
    render,
    rng_for,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "image"
MANIFEST_KEYS = {"version", "kind", "base", "prompt_format", "metric", "bars", "judge", "base_quality", "config",
                 "device", "timings", "counts", "dropped", "table", "tasks"}  # fmt: skip
TASK_KEYS = {"id", "family", "params", "split", "canonical", "paraphrases", "seeds", "adapters", "oracle_style_hit",
             "oracle_content_kept", "base_style_hit", "base_content_kept"}  # fmt: skip


# ---------------------------------------------------------------- procedural images
def test_render_is_deterministic_and_seeded() -> None:
    scenes = [Scene("circle", "red", "black", "dots", "sepia"), Scene("heart", "blue", "teal", "noise")]
    a = render(scenes, rng_for("t", 1))
    b = render(scenes, rng_for("t", 1))
    c = render(scenes, rng_for("t", 2))
    assert a.shape == (2, 32, 32, 3) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0.0 <= a.min() and a.max() <= 1.0


def test_shapes_textures_palettes_are_distinct() -> None:
    geom = np.array([[16.0, 16.0, 11.0]] * len(SHAPES))
    m = masks(list(SHAPES), geom)  # (n, 32, 32)
    assert all(0.15 < float(x.mean()) < 0.9 for x in m)  # each shape covers part of the image
    assert len({x.round(2).tobytes() for x in m}) == len(SHAPES)
    assert set(BASE_SHAPES).isdisjoint(NEW_SHAPES)
    plain = render([Scene("square", "orange", "navy")], rng_for("p"), geom[:1])[0]
    styled = [render([Scene("square", "orange", "navy", t)], rng_for("p"), geom[:1])[0] for t in TEXTURES]
    styled += [render([Scene("square", "orange", "navy", None, p)], rng_for("p"), geom[:1])[0] for p in PALETTES]
    assert all(np.abs(s - plain).mean() > 0.02 for s in styled)  # every style changes the image
    assert len({s.round(2).tobytes() for s in styled}) == len(styled)
    with pytest.raises(ValueError, match="unknown palette"):
        Scene("circle", "red", "black", palette="vaporwave")


def test_combos_texture_the_background_and_keep_the_shape_plain() -> None:
    """With a palette, the texture covers only the background: inside the shape the pixels are the
    palette's plain colour; a texture alone covers the shape too."""
    from benchmarks.zoo.image.shapes import apply_palette

    geom = np.array([[16.0, 16.0, 11.0]])
    alpha = masks(["square"], geom)[0]  # (32, 32) coverage
    inside, outside = alpha == 1.0, alpha == 0.0
    plain = render([Scene("square", "orange", "navy")], rng_for("p"), geom)[0]
    combo = render([Scene("square", "orange", "navy", "hstripes", "sepia")], rng_for("p"), geom)[0]
    tinted = apply_palette(plain, "sepia", alpha, np.zeros(3, np.float32))
    assert np.allclose(combo[inside], tinted[inside], atol=1e-6)  # the shape is a plain sepia silhouette
    assert np.abs(combo[outside] - tinted[outside]).max() > 0.3  # the background carries the stripes
    texture_only = render([Scene("square", "orange", "navy", "hstripes")], rng_for("p"), geom)[0]
    assert np.abs(texture_only[inside] - plain[inside]).max() > 0.3


def test_colour_pairs_keep_styles_apart_from_plain() -> None:
    """Dark backgrounds only (an inverted image is never plain), chromatic foregrounds (a grayscale one
    neither), and every pair keeps a luminance gap so shapes survive the luminance palettes."""
    from benchmarks.zoo.image.shapes import BACKGROUNDS, FOREGROUNDS, luminance

    assert len(COLOUR_PAIRS) >= 16
    assert all(luminance(np.array(c)) < 0.3 for c in BACKGROUNDS.values())
    assert all(max(c) - min(c) > 0.3 for c in FOREGROUNDS.values())
    for fg, bg in COLOUR_PAIRS:
        assert abs(luminance(np.array(FOREGROUNDS[fg])) - luminance(np.array(BACKGROUNDS[bg]))) >= 0.2


# ---------------------------------------------------------------- adapters and descriptions
def test_adapter_list_counts_and_splits() -> None:
    specs = all_adapters()
    ids = [s.id for s in specs]
    assert len(set(ids)) == len(ids)
    assert sum(s.split == "train" for s in specs) >= 60 and sum(s.split == "heldout" for s in specs) >= 12
    fams = {s.family for s in specs}
    assert fams == {"palette", "texture", "shape", "combo"}
    assert {s.palette for s in specs if s.family == "palette"} == set(PALETTES)
    assert {s.texture for s in specs if s.family == "texture"} == set(TEXTURES)
    assert {s.shape for s in specs if s.family == "shape"} == set(NEW_SHAPES)
    held = [s for s in specs if s.split == "heldout"]
    assert all(s.family == "combo" for s in held)  # held-out palette/texture pairs of seen parts
    assert len({s.palette for s in held}) >= 6 and len({s.texture for s in held}) >= 6
    assert [s.id for s in all_adapters()] == ids  # seeded


def test_paraphrases() -> None:
    for spec in all_adapters():
        rec = spec.record()
        texts = [p["text"] for p in rec["paraphrases"]]
        assert len(texts) >= 5 and len(set(texts)) == len(texts), spec.id
        assert rec["canonical"] not in texts
        splits = [p["split"] for p in rec["paraphrases"]]
        if spec.split == "heldout":
            assert set(splits) == {"heldout"}
        else:
            assert splits.count("heldout") >= 1 and splits.count("train") >= 4
    # combos are not one-slot templates: without the part phrases, their sentences still differ
    rec = AdapterSpec("sepia_dots", "combo", palette="sepia", texture="dots").record()
    assert len({p["text"].split(" ")[0] for p in rec["paraphrases"]}) >= 4


def test_captions_and_tokenizer() -> None:
    from benchmarks.zoo.image.model import build_tokenizer

    assert caption(Scene("ring", "orange", "navy")) == "an orange ring on a navy background"
    tok = build_tokenizer(16)
    for w in vocabulary():
        assert len(tok(w).input_ids) == 3, w  # <start> word <end>: one token per caption word
    assert len(tok("a purple zebra").input_ids) > 5  # unknown words fall back to letters


# ---------------------------------------------------------------- stacked LoRA, pipeline, sampler
@pytest.fixture(scope="module")
def tiny_pipe():
    import torch

    from benchmarks.zoo.image.model import ModelConfig, build_pipeline

    torch.set_num_threads(1)
    pipe = build_pipeline(ModelConfig.tiny(), seed=0)
    with torch.no_grad():
        for p in pipe.unet.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return pipe


def test_stacked_lora_matches_diffusers(tiny_pipe, tmp_path: Path) -> None:
    """Stacked adapters (group and row routing) give what ``load_lora_weights`` + ``set_adapters`` give."""
    import torch

    from benchmarks.zoo.image.lora import LoraShape, adapter_state, inject, remove, write_diffusers

    unet = tiny_pipe.unet
    shape = LoraShape(dtype="float32")
    routing, wrapped = inject(unet, 2, shape, [0, 1])
    assert any(w.conv for w in wrapped.values()) and any(not w.conv for w in wrapped.values())
    with torch.no_grad():
        for w in wrapped.values():
            w.B.normal_(0, 0.1)
    g = torch.Generator().manual_seed(0)
    x, t, e = (
        torch.randn(4, 12, 16, 16, generator=g),
        torch.tensor([5, 900, 5, 900]),
        torch.randn(4, 16, 64, generator=g),
    )
    with torch.no_grad():
        routing.group = 2
        grouped = unet(x, t, e).sample
        routing.group, routing.rows = None, torch.tensor([0, 0, 1, 1])
        rows = unet(x, t, e).sample
        routing.rows = torch.tensor([-1, -1, -1, -1])
        none = unet(x, t, e).sample
    assert torch.allclose(grouped, rows, atol=1e-5)
    for i in range(2):
        write_diffusers(tmp_path / f"a{i}", adapter_state(wrapped, i, shape), shape, f"adapter {i}", f"a{i}")
    remove(unet, wrapped)
    with torch.no_grad():
        assert torch.allclose(unet(x, t, e).sample, none, atol=1e-6)  # base weights untouched
        tiny_pipe.load_lora_weights(str(tmp_path / "a0"), adapter_name="a0")
        tiny_pipe.load_lora_weights(str(tmp_path / "a1"), adapter_name="a1")
        for i in range(2):
            tiny_pipe.set_adapters([f"a{i}"])
            got = unet(x[2 * i : 2 * i + 2], t[2 * i : 2 * i + 2], e[2 * i : 2 * i + 2]).sample
            assert torch.allclose(got, rows[2 * i : 2 * i + 2], atol=1e-4)
    tiny_pipe.unload_lora_weights()


def test_stacked_training_is_independent_of_the_batch(tiny_pipe) -> None:
    """An adapter trained alone or stacked with others ends with the same factors (own data, noise, init)."""
    import torch

    from benchmarks.zoo.image.captions import tiny_adapters
    from benchmarks.zoo.image.lora import LoraShape, remove
    from benchmarks.zoo.image.train import AdapterTrainConfig, train_adapters

    a, b = tiny_adapters()[:2]
    cfg, shape = AdapterTrainConfig(steps=3, per_adapter=2, warmup=1), LoraShape()
    factors = []
    for jobs in ([(a, 0)], [(b, 0), (a, 0)]):
        wrapped, _ = train_adapters(tiny_pipe, jobs, shape, cfg, "cpu")
        i = len(jobs) - 1
        factors.append(torch.cat([torch.cat([w.A[i].flatten(), w.B[i].flatten()]) for w in wrapped.values()]))
        remove(tiny_pipe.unet, wrapped)
    assert factors[0].abs().max() > 0 and torch.allclose(factors[0], factors[1], atol=1e-4)


def test_sampler_matches_pipeline(tiny_pipe) -> None:
    import torch

    from benchmarks.zoo.image.evaluate import sample

    prompts, seeds = ["a red circle on a black background", "a star in cyan on teal"], [3, 4]
    mine = sample(tiny_pipe, prompts, seeds, steps=4, guidance=3.0)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    ref = tiny_pipe(prompts, num_inference_steps=4, guidance_scale=3.0, generator=gens, output_type="pt").images
    assert mine.shape == ref.shape == (2, 3, 32, 32)
    assert torch.allclose(mine, ref, atol=1e-5)


def test_pixel_shuffle_vae_is_lossless() -> None:
    import torch

    from benchmarks.zoo.image.model import PixelShuffleVAE

    vae = PixelShuffleVAE()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z = vae.encode(x).latents
    assert z.shape == (2, 12, 16, 16) and torch.equal(vae.decode(z).sample, x)


# ---------------------------------------------------------------- tiny rebuild
def test_tiny_rebuild_layout_and_manifest(tiny_image_zoo: Path) -> None:
    m = json.loads((tiny_image_zoo / "manifest.json").read_text())
    assert MANIFEST_KEYS <= set(m) and m["kind"] == "image"
    for name in ("RESULTS.md", "samples.png", "classifiers/classifier.safetensors", "base/model_index.json",
                 "base/unet/diffusion_pytorch_model.safetensors", "base/tokenizer/tokenizer_config.json"):  # fmt: skip
        assert (tiny_image_zoo / name).is_file(), name
    assert m["counts"]["train_tasks"] >= 1 and m["counts"]["heldout_tasks"] >= 1
    adapters = [a for t in m["tasks"] for a in t["adapters"]]
    assert len(adapters) == m["counts"]["adapters"] > len(m["tasks"])  # extra seeds
    for t in m["tasks"]:
        assert TASK_KEYS <= set(t), t["id"]
        for a in t["adapters"]:
            folder = tiny_image_zoo / a["path"]
            assert {p.name for p in folder.iterdir()} == {"pytorch_lora_weights.safetensors", "description.txt"}
            assert (folder / "description.txt").read_text().strip() == t["canonical"]
            assert 0.0 <= a["style_hit"] <= 1.0 and 0.0 <= a["content_kept"] <= 1.0
    from benchmarks.zoo import training_texts

    texts = training_texts(m)
    assert texts and all(v["texts"][0] for v in texts.values())
    assert not set(texts) & {t["id"] for t in m["tasks"] if t["split"] == "heldout"}


def test_tiny_adapters_load_into_saved_pipeline(tiny_image_zoo: Path) -> None:
    """``load_lora_weights`` on the saved pipeline changes its output, and ``set_adapters`` switches it off."""
    import torch

    from benchmarks.zoo.image.model import load_base

    pipe = load_base(tiny_image_zoo / "base")

    def run() -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        return pipe("a red circle on a black background", num_inference_steps=3, generator=g, output_type="pt").images

    before = run()
    pipe.load_lora_weights(str(tiny_image_zoo / "adapters" / "grayscale"), adapter_name="grayscale")
    pipe.load_lora_weights(str(tiny_image_zoo / "adapters" / "hstripes"), adapter_name="hstripes")
    pipe.set_adapters(["grayscale"])
    gray = run()
    pipe.set_adapters(["grayscale", "hstripes"], adapter_weights=[0.0, 0.0])
    off = run()
    assert not torch.allclose(before, gray, atol=1e-4)
    assert torch.allclose(before, off, atol=1e-5)


def test_judge_accepts_generated_and_procedural_images(tiny_image_zoo: Path) -> None:
    import torch

    from benchmarks.zoo.image.classifiers import HEADS, load_classifier, predict, to_batch

    judge = load_classifier(tiny_image_zoo / "classifiers")
    images = torch.cat([to_batch(render([Scene("star", "pink", "navy", "grid", "night")], rng_for("j"))),
                        torch.rand(2, 3, 32, 32)])  # fmt: skip
    pred = predict(judge, images)
    assert set(pred) == set(HEADS) and all(len(v) == 3 and set(v) <= set(HEADS[k]) for k, v in pred.items())


def test_registry_reads_tiny_adapters(tiny_image_zoo: Path) -> None:
    from registry.formats import read_adapter

    a = read_adapter(tiny_image_zoo / "adapters" / "grayscale" / "pytorch_lora_weights.safetensors")
    assert a.format == "diffusers" and a.modules
    assert {m.kind for m in a.modules.values()} == {"linear", "conv"}
    assert all(abs(m.scale - 1.0) < 1e-6 for m in a.modules.values())  # alpha / r from lora_adapter_metadata
    assert a.metadata["modelspec.architecture"] == "loradex-zoo-image/lora"


def test_registry_family_is_zoo_image(tiny_image_zoo: Path) -> None:
    from registry.formats import read_adapter

    a = read_adapter(tiny_image_zoo / "adapters" / "heart" / "pytorch_lora_weights.safetensors")
    assert a.family == "zoo-image" and not a.warnings


def test_resume_base_reuses_the_pretrained_base(tiny_image_zoo: Path, tmp_path: Path) -> None:
    from benchmarks.zoo.image.build import BuildConfig, build

    out = tmp_path / "zoo"
    shutil.copytree(tiny_image_zoo, out)
    weights = out / "base" / "unet" / "diffusion_pytorch_model.safetensors"
    before = weights.read_bytes()
    (out / "adapters" / "heart" / "pytorch_lora_weights.safetensors").unlink()
    manifest = build(out, tiny=True, device="cpu", resume_base=True)
    assert weights.read_bytes() == before  # not pre-trained again
    assert (out / "adapters" / "heart" / "pytorch_lora_weights.safetensors").is_file()
    assert manifest["counts"] == json.loads((tiny_image_zoo / "manifest.json").read_text())["counts"]
    cfg = BuildConfig.tiny_config()
    cfg.pretrain.steps += 1
    with pytest.raises(ValueError, match="another config"):
        build(out, config=cfg, device="cpu", resume_base=True)


def test_resume_keeps_the_adapters_an_interrupted_build_wrote(
    tiny_image_zoo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import benchmarks.zoo.image.build as build_module
    from benchmarks.zoo.image.build import BuildConfig, build

    out = tmp_path / "zoo"
    shutil.copytree(tiny_image_zoo, out)
    original = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").unlink()  # interrupted before the manifest
    kept = {n: (out / "adapters" / n / "pytorch_lora_weights.safetensors").read_bytes() for n in ("grayscale", "heart")}
    shutil.rmtree(out / "adapters" / "hstripes")  # its chunk never finished
    half = out / "adapters" / "sepia_dots" / "pytorch_lora_weights.safetensors"
    half.write_bytes(half.read_bytes()[:100])  # cut off while writing
    manifest = build(out, tiny=True, device="cpu", resume=True)
    for name, data in kept.items():  # judged again, not retrained
        assert (out / "adapters" / name / "pytorch_lora_weights.safetensors").read_bytes() == data
    from safetensors.torch import load_file

    assert load_file(str(half))  # retrained and whole again
    assert (out / "adapters" / "hstripes" / "pytorch_lora_weights.safetensors").is_file()
    assert manifest["counts"] == original["counts"]
    rounds = json.loads((out / "zoo_rounds.json").read_text())  # the last retrain round each adapter went through
    assert set(rounds) == {p.name for p in (out / "adapters").iterdir()}
    assert manifest["counts"]["below_bars"] > 0  # the tiny zoo has adapters a resume would retrain
    tiny = BuildConfig.tiny_config()
    below = next(a["path"].rsplit("/", 1)[-1] for t in manifest["tasks"] for a in t["adapters"]
                 if not build_module.passes(a, tiny))  # fmt: skip
    last = len(tiny.retrain)
    (out / "zoo_rounds.json").write_text(json.dumps({n: 0 if n == below else last for n in rounds}))
    (out / "manifest.json").unlink()
    trained: list[list[str]] = []
    real = build_module._train_round

    def spy(jobs: list, *args: Any, **kw: Any) -> None:
        trained.append([build_module.adapter_name(*j) for j in jobs])
        real(jobs, *args, **kw)

    monkeypatch.setattr(build_module, "_train_round", spy)
    again = build(out, tiny=True, device="cpu", resume=True)  # seeded rounds already tried are not replayed
    assert trained == [[below]] * last  # only the adapter whose record says it never went through a retrain round
    assert again["counts"] == manifest["counts"]

    from benchmarks.zoo.image.lora import LoraShape

    cfg = BuildConfig.tiny_config()
    cfg.lora = LoraShape(r=2)
    with pytest.raises(ValueError, match="another recipe"):  # another LoRA shape invalidates every adapter
        build(out, config=cfg, device="cpu", resume=True)
    by_id = {t["id"]: t for t in original["tasks"]}
    for t in manifest["tasks"]:
        first = t["adapters"][0]
        if t["id"] == "grayscale":  # re-judging reproduces the build's own scores
            assert first.get("resumed") is True
            assert (first["style_hit"], first["content_kept"]) == (
                by_id[t["id"]]["adapters"][0]["style_hit"],
                by_id[t["id"]]["adapters"][0]["content_kept"],
            )
        if t["id"] == "hstripes" and first["round"] == 0:
            assert not first.get("resumed")


def test_resume_trains_again_only_the_families_whose_recipe_changed(tiny_image_zoo: Path, tmp_path: Path) -> None:
    """A recipe file of the first format (one schedule for all, combos textured all over) keeps the
    palette, texture and shape adapters and retrains the combos; unlisted folders are removed."""
    from dataclasses import asdict

    from benchmarks.zoo.image.build import ADAPTER_RECIPE, BuildConfig, build
    from benchmarks.zoo.image.lora import shape_dict

    out = tmp_path / "zoo"
    shutil.copytree(tiny_image_zoo, out)
    (out / "manifest.json").unlink()
    cfg = BuildConfig.tiny_config()
    old = {"adapters": asdict(cfg.adapters), "lora": shape_dict(cfg.lora), "seed": cfg.seed}
    (out / ADAPTER_RECIPE).write_text(json.dumps(old))
    weights = "pytorch_lora_weights.safetensors"
    before = {n: (out / "adapters" / n / weights).read_bytes() for n in ("grayscale", "heart", "sepia_dots")}
    shutil.copytree(out / "adapters" / "heart", out / "adapters" / "inverted_grid")  # no longer in the list
    manifest = build(out, config=cfg, device="cpu", resume=True)
    assert (out / "adapters" / "grayscale" / weights).read_bytes() == before["grayscale"]
    assert (out / "adapters" / "heart" / weights).read_bytes() == before["heart"]
    assert (out / "adapters" / "sepia_dots" / weights).read_bytes() != before["sepia_dots"]
    assert not (out / "adapters" / "inverted_grid").exists()
    by_id = {t["id"]: t for t in manifest["tasks"]}
    assert by_id["grayscale"]["adapters"][0].get("resumed") is True
    assert not by_id["sepia_dots"]["adapters"][0].get("resumed")
    saved = json.loads((out / ADAPTER_RECIPE).read_text())
    assert saved == cfg.recipe() and saved["families"]["combo"]["data"] == {"texture_region": "background"}
    assert saved["families"]["combo"]["train"]["steps"] == cfg.adapters.steps * cfg.combo_steps_factor


def test_half_built_zoos_are_not_bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmarks.zoo.plugins
    import loradex.settings
    from loradex.settings import Settings

    for kind in ("text", "image"):
        (tmp_path / "zoo" / kind / "adapters").mkdir(parents=True)
    (tmp_path / "zoo" / "text" / "manifest.json").write_text("{}")
    (tmp_path / "samples" / "adapters").mkdir(parents=True)
    monkeypatch.setattr(benchmarks.zoo.plugins, "ZOO", tmp_path / "zoo")
    monkeypatch.setattr(loradex.settings, "REPO", tmp_path)
    assert set(loradex.settings.adapter_sets()) >= {"samples", "zoo-text", "zoo-image"}  # the entry points
    assert Settings().bundled_adapters() == [tmp_path / "samples" / "adapters", tmp_path / "zoo" / "text" / "adapters"]


def test_zoo_suite_reports_the_image_zoo(tiny_image_zoo: Path, tmp_path: Path) -> None:
    import argparse

    from benchmarks.zoo_suite import suite_zoo

    args = argparse.Namespace(quick=False, zoo_dir=str(tmp_path / "no-text-zoo"), image_zoo_dir=str(tiny_image_zoo),
                              out=str(tmp_path))  # fmt: skip
    result = suite_zoo(args)
    image = result["zoos"]["image"]
    m = json.loads((tiny_image_zoo / "manifest.json").read_text())
    rows = [r for r in result["rows"] if r["zoo"] == "image"]  # the image rows join the suite's table rows
    assert image["tasks"] == len(m["tasks"]) and {r["family"] for r in rows} == {t["family"] for t in m["tasks"]}
    assert {"oracle_style_mean", "random_adapter_style_mean", "base_style_mean", "below_bars"} <= set(image)
    assert image["matches_manifest"] >= len(m["tasks"]) - 1  # same prompts, seeds and adapters as the build
    assert (tmp_path / "zoo_image_samples.png").is_file()


# ---------------------------------------------------------------- the committed zoo
@pytest.fixture(scope="module")
def committed_manifest() -> dict:
    path = ZOO / "manifest.json"
    if not path.is_file():
        pytest.skip(f"the full image zoo has not been built at {ZOO} (python -m benchmarks.zoo build image)")
    return json.loads(path.read_text())


def test_committed_zoo_quality(committed_manifest: dict) -> None:
    m = committed_manifest
    assert m["counts"]["train_adapters"] >= 60 and m["counts"]["heldout_tasks"] >= 12
    listed = {a["path"].rsplit("/", 1)[-1] for t in m["tasks"] for a in t["adapters"]}
    assert {f.name for f in (ZOO / "adapters").iterdir()} == listed  # dropped adapters left no folder behind
    assert not listed & {d["adapter"] for d in m["dropped"]}
    for t in m["tasks"]:
        assert t["base_style_hit"] <= 0.2, t["id"]
        assert t["adapters"], t["id"]
        for a in t["adapters"]:
            assert a["style_hit"] >= 0.8 and a["content_kept"] >= 0.7, (t["id"], a)
            assert (ZOO / a["path"] / "pytorch_lora_weights.safetensors").is_file()
    assert sum(len(t["adapters"]) > 1 for t in m["tasks"]) >= 4  # several seeds for some adapters


def test_committed_zoo_reevaluates(committed_manifest: dict) -> None:
    """A palette adapter and a held-out combo, loaded with plain diffusers, still hit their style."""
    import torch

    from benchmarks.zoo.image.classifiers import load_classifier, predict
    from benchmarks.zoo.image.evaluate import eval_scenes, eval_seeds, style_hits
    from benchmarks.zoo.image.model import load_base

    torch.set_num_threads(1)
    specs = {s.id: s for s in all_adapters(committed_manifest["config"]["seed"], committed_manifest["config"]["n_combos"],
                                           committed_manifest["config"]["n_heldout"])}  # fmt: skip
    picks = [next(t for t in committed_manifest["tasks"] if t["family"] == "palette"),
             next(t for t in committed_manifest["tasks"] if t["split"] == "heldout")]  # fmt: skip
    judge = load_classifier(ZOO / "classifiers")
    cfg = committed_manifest["config"]
    for rec in picks:
        pipe = load_base(ZOO / "base")
        pipe.load_lora_weights(str(ZOO / rec["adapters"][0]["path"]))
        spec, n = specs[rec["id"]], 12
        scenes, seeds = eval_scenes(spec, n, cfg["seed"]), eval_seeds(n, cfg["seed"])
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        images = pipe([caption(s) for s in scenes], num_inference_steps=cfg["eval_steps"],
                      guidance_scale=cfg["guidance"], generator=gens, output_type="pt").images  # fmt: skip
        hits = style_hits(spec, predict(judge, images), list(range(n)))
        assert sum(hits) / n >= 0.7, (rec["id"], hits)


def test_adapters_no_round_brought_over_the_bars_are_dropped(tmp_path: Path) -> None:
    """``finalize.drop_below_bars``: failing adapters leave (folder and all), a task with no adapter
    left leaves, and the next combo in the seeded held-out order takes a dropped held-out task's place."""
    from benchmarks.zoo.image.captions import all_adapters, heldout_order
    from benchmarks.zoo.image.finalize import counts, drop_below_bars

    specs = all_adapters()
    order = heldout_order()
    held = [s.id for s in specs if s.split == "heldout"]
    assert set(held) == set(order[:12])
    bars = {"oracle_style_hit": 0.8, "oracle_content_kept": 0.7, "base_style_hit": 0.2}
    good, bad = {"style_hit": 0.9, "content_kept": 0.9}, {"style_hit": 0.9, "content_kept": 0.5}
    victim, weak_seed = order[0], next(s.id for s in specs if s.split == "train" and s.family == "palette")
    records = []
    for s in specs:
        ads = [{"seed": 0, "path": f"adapters/{s.id}", **(bad if s.id == victim else good)}]
        if s.id == weak_seed:
            ads.append({"seed": 1, "path": f"adapters/{s.id}_s1", **bad})
        for a in ads:
            (tmp_path / a["path"]).mkdir(parents=True)
        records.append({"id": s.id, "family": s.family, "params": s.params, "split": s.split, **s.record(),
                        "seeds": [a["seed"] for a in ads], "adapters": ads})  # fmt: skip
    kept, dropped = drop_below_bars(records, bars, tmp_path, seed=0, n_combos=48, n_heldout=12,
                                    rounds={victim: 3})  # fmt: skip
    assert [(d["adapter"], d["last_round"]) for d in dropped] == [(f"{weak_seed}_s1", None), (victim, 3)]
    assert not (tmp_path / "adapters" / victim).exists() and not (tmp_path / "adapters" / f"{weak_seed}_s1").exists()
    by_id = {r["id"]: r for r in kept}
    assert victim not in by_id and [a["seed"] for a in by_id[weak_seed]["adapters"]] == [0]
    now_held = {r["id"] for r in kept if r["split"] == "heldout"}
    assert now_held == set(order[1:13])  # the next combo in the order replaced the dropped one
    newcomer = by_id[order[12]]
    assert all(p["split"] == "heldout" for p in newcomer["paraphrases"])  # its paraphrases follow its split
    c = counts(kept, dropped, bars)
    assert (c["tasks"], c["heldout_tasks"], c["dropped"], c["below_bars"]) == (len(specs) - 1, 12, 2, 0)
