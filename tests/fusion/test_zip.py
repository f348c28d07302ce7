"""The ``zip`` merge: exact application of coefficients, learning on a tiny pipeline, refusals, the
fit's progress."""

from __future__ import annotations

import pytest
import torch

from fusion.errors import FusionError, IncompatibleAdaptersError
from fusion.merge import merge, strategies
from fusion.merge.ziplora import ZipConfig, learn, zip_merge
from registry.formats import read_adapter, write_adapter
from tests.fusion.helpers import LLM, adapter
from tests.fusion.test_runtime import UNET_TARGETS, random_adapter, snapshot
from tests.tiny_models import tiny_sd_pipeline

DIFF = {"unet.a.to_q": (8, 6)}
CONV = {"unet.b.conv1": (6, 4, 3, 3)}


def flat(d: torch.Tensor) -> torch.Tensor:
    return d.reshape(d.shape[0], -1)  # (out, in·kh·kw)


def expected(adapters, weights, coefs, axis):
    out = {}
    for n in adapters[0].modules:
        total = 0
        for i, (a, w) in enumerate(zip(adapters, weights, strict=True)):
            m = coefs[n][i]
            d = w * flat(a.modules[n].delta())
            total = total + (m[:, None] * d if axis == "out" else m[None, :] * d)
        out[n] = total
    return out


@pytest.mark.parametrize("axis", ["out", "in"])
def test_zip_writes_exactly_the_learned_combination(axis, tmp_path):
    assert "zip" in strategies()
    g = torch.Generator().manual_seed(0)
    d1 = adapter(DIFF, 4, seed=4, family="zoo-image", fmt="diffusers", convs=CONV, alpha=8)
    d2 = adapter(DIFF, 2, seed=5, family="zoo-image", fmt="diffusers", convs=CONV)
    coefs = {}
    for n, m in d1.modules.items():
        size = m.out_features if axis == "out" else flat(m.delta()).shape[1]
        coefs[n] = torch.rand(2, size, generator=g) * 2 - 0.5  # any sign, far from 1
    w = [1.0, -0.7]
    res = merge([d1, d2], w, strategy="zip", coefficients=coefs, axis=axis)
    assert res.info["exact"] and res.info["relative_error"] is None
    want = expected([d1, d2], w, coefs, axis)
    files = write_adapter(res.adapter, "diffusers", tmp_path / "z")
    back = read_adapter(files[0])
    for n, m in res.adapter.modules.items():
        torch.testing.assert_close(flat(m.delta()), want[n], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(back.modules[n].delta(), m.delta(), rtol=1e-5, atol=1e-6)
    ones = {n: torch.ones_like(c) for n, c in coefs.items()}  # coefficients of 1: the plain sum (cat)
    plain, cat = merge([d1, d2], w, strategy="zip", coefficients=ones, axis=axis), merge([d1, d2], w)
    for n, m in plain.adapter.modules.items():
        torch.testing.assert_close(m.delta(), cat.adapter.modules[n].delta())


def test_zip_refuses_bad_input_before_any_training():
    a, b = adapter(LLM, 4, seed=1), adapter(LLM, 2, seed=2)
    with pytest.raises(FusionError, match="learns its coefficients"):
        merge([a, b], strategy="zip")
    bad = {n: torch.ones(2, 3) for n in a.modules}
    with pytest.raises(FusionError, match=r"model.layers.0.q.*shape \(2, 3\).*expected \(2, 16\)"):
        merge([a, b], strategy="zip", coefficients=bad)
    with pytest.raises(FusionError, match="no entry for module"):
        merge([a, b], strategy="zip", coefficients={})
    with pytest.raises(FusionError, match="axis"):
        merge([a, b], strategy="zip", coefficients=bad, axis="diagonal")
    with pytest.raises(FusionError, match="takes no option density"):
        merge([a, b], strategy="zip", density=0.5)
    # zip_merge checks the adapters first: no pipeline is touched (None here) when they cannot merge
    with pytest.raises(IncompatibleAdaptersError, match="different families.*zoo-image"):
        zip_merge(None, [a, adapter(LLM, 4, seed=3, family="zoo-image")], [])
    dora = adapter(LLM, 4, seed=2)
    dora.modules["model.layers.0.q"].magnitude = torch.ones(16)
    with pytest.raises(IncompatibleAdaptersError, match="DoRA"):
        zip_merge(None, [a, dora], [])
    with pytest.raises(IncompatibleAdaptersError, match="missing from"):
        zip_merge(None, [a, adapter({"model.layers.0.q": (16, 12)}, 4, seed=4)], [])
    with pytest.raises(FusionError, match="one sampler per adapter"):
        learn(None, [a, b], [])
    with pytest.raises(FusionError, match="at least two"):
        learn(None, [a], [])
    with pytest.raises(FusionError, match="axis"):
        ZipConfig(axis="rows")
    with pytest.raises(FusionError, match="lr > 0"):
        ZipConfig(lr=0.0)


def latent_sampler(seed: int):
    def sample(n: int, gen: torch.Generator):
        return torch.randn(n, 4, 8, 8, generator=gen) * (1 + seed), ["a circle"] * n  # (n, C, 8, 8)

    return sample


def test_learning_moves_the_coefficients_and_leaves_the_pipeline_as_it_was():
    pipe = tiny_sd_pipeline()
    a = random_adapter(pipe.unet, "unet", UNET_TARGETS, 4, 1, "tiny")
    b = random_adapter(pipe.unet, "unet", UNET_TARGETS, 2, 2, "tiny")
    before = snapshot(pipe.unet)
    flags = [p.requires_grad for p in pipe.unet.parameters()]
    cfg = ZipConfig(steps=3, batch=1, lr=0.05)
    res = zip_merge(pipe, [a, b], [latent_sampler(0), latent_sampler(1)], [1.0, 0.8], cfg)
    coefs = res.info["coefficients"]
    assert set(coefs) == set(a.modules)
    moved = max(float((c - 1).abs().max()) for c in coefs.values())
    assert 0.01 < moved <= 3 * cfg.lr * 1.01  # Adam moves an entry by at most about lr per step
    z = res.info["zip"]
    assert z["config"]["steps"] == 3 and len(z["coefficient_mean"]) == 2 and z["mse_first"] > 0
    assert res.adapter.metadata["merge"]["strategy"] == "zip"
    want = expected([a, b], [1.0, 0.8], coefs, "out")
    for n, m in res.adapter.modules.items():
        torch.testing.assert_close(flat(m.delta()), want[n], rtol=1e-5, atol=1e-6)
    after = snapshot(pipe.unet)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(type(m).__name__ != "FusedLayer" for m in pipe.unet.modules())
    assert [p.requires_grad for p in pipe.unet.parameters()] == flags


def test_zip_options_are_checked_and_named_before_anything_runs():
    from fusion.compose import compose_text
    from fusion.merge import learned_strategies
    from fusion.merge.ziplora import ZipData, option_names, zip_options
    from fusion.strategies import compose_strategies

    cfg, data = zip_options({"steps": 3, "lr": 1, "samples": 2, "prompts": ["a star"], "axis": "in"}, seed=7)
    assert (cfg.steps, cfg.lr, cfg.axis, cfg.seed) == (3, 1.0, "in", 7) and data == ZipData(["a star"], 2)
    assert zip_options({"seed": 2}, seed=7)[0].seed == 2 and zip_options(None)[1] == ZipData()
    for bad, match in [
        ({"density": 0.5}, "takes no option density; its options: " + ", ".join(option_names())),
        ({"steps": "many"}, "zip option steps must be an integer, got 'many'"),
        ({"steps": True}, "zip option steps must be an integer"),
        ({"lr": "fast"}, "zip option lr must be a number"),
        ({"prompts": "a star"}, "prompts must be a list of non-empty strings"),
        ({"prompts": []}, "prompts must be a list of non-empty strings"),
        ({"samples": 0}, "samples ≥ 1"),
        ({"steps": -1}, "steps ≥ 0"),
    ]:
        with pytest.raises(FusionError, match=match):
            zip_options(bad)
    # listed wherever strategies are offered, fitted on a diffusion base only
    assert learned_strategies() == ["zip"]
    assert "merge:zip" in compose_strategies("image") and "merge:zip" in compose_strategies()
    assert compose_strategies("text")[:3] == ["gate", "linear", "chain"] and "switch" not in compose_strategies("text")
    a, b = adapter(LLM, 4, seed=1), adapter(LLM, 2, seed=2)
    with pytest.raises(
        FusionError, match="'merge:zip' learns on a diffusion base; family 'zoo-text' is a language model"
    ):
        compose_text(None, None, [a, b], "a task", ["abc"], strategy="merge:zip")


def rises_to_the_end(calls: list[tuple[int, int]]) -> int:
    """The one total every call reported; done never falls and ends there."""
    (total,) = {t for _, t in calls}
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[0] == 0 and done[-1] == total
    return total


@pytest.fixture(scope="module")
def pipe():
    return tiny_sd_pipeline()  # a zip fit leaves it as it was (above)


def test_the_fit_reports_each_optimizer_step_then_each_drawn_step_before_them(pipe):
    from fusion.merge.ziplora import ZipData, fit_merge, fit_units

    a = random_adapter(pipe.unet, "unet", UNET_TARGETS, 4, 1, "tiny")
    b = random_adapter(pipe.unet, "unet", UNET_TARGETS, 2, 2, "tiny")
    calls: list[tuple[int, int]] = []
    cfg = ZipConfig(steps=3, batch=1)
    zip_merge(pipe, [a, b], [latent_sampler(0), latent_sampler(1)], config=cfg,
              progress=lambda d, t: calls.append((d, t)))  # fmt: skip
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]  # before the first step, then after each

    calls.clear()
    data = ZipData(prompts=["a circle"], samples=1, sample_steps=2)
    res = fit_merge(pipe, [a, b], [["a"], ["b"]], config=cfg, data=data, progress=lambda d, t: calls.append((d, t)))
    assert rises_to_the_end(calls) == fit_units(2, cfg, data) == 2 * 2 + 3  # two draws of 2 steps, 3 fit steps
    assert [d for d, _ in calls].count(7) == 1 and len({d for d, _ in calls}) == 8  # every unit reported
    plain = fit_merge(pipe, [a, b], [["a"], ["b"]], config=cfg, data=data)  # no progress: the same fit
    for n, m in res.adapter.modules.items():
        torch.testing.assert_close(m.delta(), plain.adapter.modules[n].delta())


def test_compose_with_merge_zip_reports_the_fit_then_the_rendering_on_one_scale(pipe):
    from fusion.compose import compose_images

    ads = [random_adapter(pipe.unet, "unet", UNET_TARGETS, 4, s, "tiny") for s in (1, 2)]
    opts = {"steps": 2, "batch": 1, "samples": 1, "sample_steps": 1, "prompts": ["a circle"]}
    calls: list[tuple[int, int]] = []
    compose_images(pipe, ads, "a circle", strategy="merge:zip", steps=3, guidance=3.0, merge_options=opts,
                   progress=lambda d, t: calls.append((d, t)))  # fmt: skip
    assert rises_to_the_end(calls) == (2 * 1 + 2) + 3  # the fit's 4 units, then 3 denoising steps
    calls.clear()
    compose_images(pipe, ads, "a circle", strategy="merge:cat", steps=3, guidance=3.0,
                   progress=lambda d, t: calls.append((d, t)))  # fmt: skip
    assert rises_to_the_end(calls) == 3  # a quick merge reports only the rendering, as before
