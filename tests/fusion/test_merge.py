"""Weight-space merges: exactness, approximation errors, refusals, writable results."""

from __future__ import annotations

import pytest
import torch

from fusion.errors import FusionError, IncompatibleAdaptersError, UnknownStrategyError
from fusion.merge import merge, strategies
from registry.formats import read_adapter, write_adapter
from registry.formats.canonical import LoraModule
from tests.fusion.helpers import LLM, adapter

DIFF = {"unet.down.attn.to_q": (32, 32), "unet.mid.proj_in": (64, 32)}
CONV = {"unet.down.conv1": (32, 16, 3, 3), "unet.conv_out": (4, 32, 1, 1)}


def weighted_sum(adapters, weights):
    return {n: sum(w * a.modules[n].delta() for a, w in zip(adapters, weights, strict=True) if n in a.modules)
            for n in {n for a in adapters for n in a.modules}}  # fmt: skip


def test_cat_is_the_exact_weighted_sum_across_ranks_scales_rslora_and_convs():
    a = adapter(LLM, 4, seed=1, alpha=8)  # scale 2
    b = adapter(LLM, 8, seed=2, alpha=4, rslora=True)  # scale 4/√8
    c = adapter(LLM, 2, seed=3)  # alpha defaults to r: scale 1
    weights = [0.7, -1.3, 2.0]
    res = merge([a, b, c], weights, strategy="cat")
    expect = weighted_sum([a, b, c], weights)
    for n, m in res.adapter.modules.items():
        assert m.rank == 14
        torch.testing.assert_close(m.delta(), expect[n], rtol=1e-5, atol=1e-6)
    assert res.info["exact"] and res.info["relative_error"] is None
    assert not res.adapter.use_rslora and res.adapter.family == a.family

    d1 = adapter(DIFF, 4, seed=4, family="zoo-image", fmt="diffusers", convs=CONV)
    d2 = adapter(DIFF, 2, seed=5, family="zoo-image", fmt="diffusers", convs=CONV, alpha=1)
    res = merge([d1, d2], [1.0, 0.5])
    expect = weighted_sum([d1, d2], [1.0, 0.5])
    for n, m in res.adapter.modules.items():
        assert m.delta().shape == expect[n].shape
        torch.testing.assert_close(m.delta(), expect[n], rtol=1e-5, atol=1e-6)
    assert res.adapter.modules["unet.down.conv1"].kind == "conv"


def test_merging_an_adapter_with_its_negative_gives_zero():
    a = adapter(LLM, 4, seed=1, alpha=8)
    for strategy in ("cat", "svd"):
        res = merge([a, a], [1.0, -1.0], strategy=strategy)
        for m in res.adapter.modules.values():
            assert float(m.delta().abs().max()) < 1e-6


def test_averaging_a_and_b_separately_adds_cross_terms_that_cat_avoids():
    a, b = adapter(LLM, 4, seed=1), adapter(LLM, 4, seed=2)
    w = [0.5, 0.5]
    exact = weighted_sum([a, b], w)
    res = merge([a, b], w)
    for n in LLM:
        ma, mb = a.modules[n], b.modules[n]
        # PEFT ``linear``: A and B combined separately → (Σ√wᵢBᵢ)(Σ√wᵢAᵢ) = Σ wᵢBᵢAᵢ + cross terms
        peft_linear = (0.5**0.5 * ma.up + 0.5**0.5 * mb.up) @ (0.5**0.5 * ma.down + 0.5**0.5 * mb.down)
        cross = float(torch.linalg.norm(peft_linear - exact[n]) / torch.linalg.norm(exact[n]))
        ours = float(torch.linalg.norm(res.adapter.modules[n].delta() - exact[n]) / torch.linalg.norm(exact[n]))
        assert cross > 0.3 and ours < 1e-5


def test_svd_error_falls_with_rank_and_vanishes_at_the_sum_of_ranks():
    a, b = adapter(LLM, 4, seed=1), adapter(LLM, 4, seed=2)
    errs = [merge([a, b], strategy="svd", rank=r).info["relative_error"] for r in (1, 2, 4, 6, 8)]
    assert all(x > y for x, y in zip(errs, errs[1:-1], strict=False)), errs
    assert errs[0] > 0.2 and errs[-1] < 1e-5
    res = merge([a, b], strategy="svd", rank=3)
    assert res.adapter.ranks == [3] and set(res.info["per_module_error"]) == set(LLM)


def test_dare_is_seeded_and_sparse_strategies_report_their_deviation():
    a, b = adapter(LLM, 4, seed=1), adapter(LLM, 4, seed=2)
    r1 = merge([a, b], strategy="dare_linear", seed=3, density=0.5)
    r2 = merge([a, b], strategy="dare_linear", seed=3, density=0.5)
    r3 = merge([a, b], strategy="dare_linear", seed=4, density=0.5)
    n = next(iter(LLM))
    assert torch.equal(r1.adapter.modules[n].delta(), r2.adapter.modules[n].delta())
    assert not torch.equal(r1.adapter.modules[n].delta(), r3.adapter.modules[n].delta())
    for s in ("ties", "dare_ties", "magnitude_prune"):
        assert 0 < merge([a, b], strategy=s).info["relative_error"] < 2
    full = merge([a, b], strategy="magnitude_prune", density=1.0)  # nothing pruned: the exact sum
    assert full.info["relative_error"] < 1e-5
    with pytest.raises(FusionError, match="density"):
        merge([a, b], strategy="ties", density=0.0)
    with pytest.raises(FusionError, match="takes no option"):
        merge([a, b], strategy="cat", density=0.5)


def test_lego_clusters_rank_one_units():
    a, b = adapter(LLM, 4, seed=1), adapter(LLM, 4, seed=2)
    res = merge([a, b], strategy="lego", rank=4)
    assert max(res.adapter.ranks) <= 4 and 0 < res.info["relative_error"] < 1.0
    same = merge([a, a], [1.0, 1.0], strategy="lego", rank=4)  # identical units cluster together
    assert same.info["relative_error"] < 1e-4
    small = merge([a, b], strategy="lego", rank=8)  # no more units than rank: exact
    assert small.info["exact"]


def test_refusals_name_the_adapters_and_the_reason():
    a = adapter(LLM, 4, seed=1)
    with pytest.raises(UnknownStrategyError, match="known: .*cat"):
        merge([a], strategy="nope")
    with pytest.raises(IncompatibleAdaptersError, match="different families.*zoo-image"):
        merge([a, adapter(LLM, 4, seed=2, family="zoo-image")])
    dora = adapter(LLM, 4, seed=2)
    m = dora.modules["model.layers.0.q"]
    m.magnitude = torch.ones(m.out_features)
    with pytest.raises(IncompatibleAdaptersError, match="synthetic-2.*DoRA"):
        merge([a, dora])
    shaped = adapter({"model.layers.0.q": (16, 10), "model.layers.0.v": (8, 12)}, 4, seed=3)
    with pytest.raises(IncompatibleAdaptersError, match="shape"):
        merge([a, shaped])
    lin = adapter({"unet.x": (8, 8)}, 2, family="zoo-image")
    conv = adapter({}, 2, family="zoo-image", convs={"unet.x": (8, 8, 1, 1)})
    with pytest.raises(IncompatibleAdaptersError, match="linear in .* but conv"):
        merge([lin, conv])
    partial = adapter({"model.layers.0.q": (16, 12)}, 4, seed=4)
    with pytest.raises(IncompatibleAdaptersError, match="missing from adapter 1.*missing='zero'"):
        merge([a, partial])
    res = merge([a, partial], [1.0, 2.0], missing="zero")
    expect = weighted_sum([a, partial], [1.0, 2.0])
    for n, mod in res.adapter.modules.items():
        torch.testing.assert_close(mod.delta(), expect[n], rtol=1e-5, atol=1e-6)
    with pytest.raises(FusionError, match="weights"):
        merge([a, partial], [1.0])
    with pytest.raises(FusionError, match=r"weights \[1e\+308, 1e\+308\] overflow"):
        merge([a, adapter(LLM, 4, seed=5)], [1e308, 1e308])


@pytest.mark.parametrize("strategy", ["cat", "svd", "ties", "dare_linear", "dare_ties", "magnitude_prune", "lego"])
def test_every_strategy_writes_a_readable_adapter(strategy, tmp_path):
    assert strategy in strategies()
    a, b = adapter(LLM, 4, seed=1, alpha=8), adapter(LLM, 2, seed=2, rslora=True, alpha=4)
    res = merge([a, b], [1.0, 0.5], strategy=strategy)
    write_adapter(res.adapter, res.adapter.format, tmp_path / "peft")
    back = read_adapter(tmp_path / "peft")
    for n, m in res.adapter.modules.items():
        torch.testing.assert_close(back.modules[n].delta(), m.delta(), rtol=1e-5, atol=1e-6)
    d1 = adapter(DIFF, 4, seed=4, family="zoo-image", fmt="diffusers", convs=CONV)
    d2 = adapter(DIFF, 2, seed=5, family="zoo-image", fmt="diffusers", convs=CONV)
    res = merge([d1, d2], strategy=strategy)
    files = write_adapter(res.adapter, "diffusers", tmp_path / "diff")
    back = read_adapter(files[0])
    for n, m in res.adapter.modules.items():
        assert isinstance(back.modules[n], LoraModule)
        torch.testing.assert_close(back.modules[n].delta(), m.delta(), rtol=1e-5, atol=1e-6)
