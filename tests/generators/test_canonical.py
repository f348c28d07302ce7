"""The canonical parameterization keeps ΔW and is invariant to the gauge of A and B."""

from __future__ import annotations

import pytest
import torch

from generators.canonical import Layout, combine, delta_error, lowrank_svd, module_factors, stack
from registry.formats.canonical import LoraAdapter, LoraModule


def synthetic(seed: int, rank: int = 3, scale: float = 2.0) -> LoraAdapter:
    g = torch.Generator().manual_seed(seed)
    mods = {
        "model.layers.0.q_proj": LoraModule("model.layers.0.q_proj", torch.randn(rank, 16, generator=g),
                                            torch.randn(24, rank, generator=g), scale),
        "model.layers.0.conv": LoraModule("model.layers.0.conv", torch.randn(rank, 8, 3, 3, generator=g),
                                          torch.randn(12, rank, 1, 1, generator=g), scale, kind="conv"),
    }  # fmt: skip
    return LoraAdapter(mods, family="toy", format="peft")


def test_round_trip_keeps_delta_at_full_rank() -> None:
    ad = synthetic(0, rank=3)
    layout = Layout.from_adapters([ad])
    assert layout.rank == 3
    facs = {s.name: module_factors(ad, s, 3) for s in layout.modules}
    assert delta_error(ad, facs) < 1e-6
    a, b = facs["model.layers.0.conv"]
    assert a.shape == (3, 72) and b.shape == (12, 3)


def test_truncation_error_is_the_svd_tail() -> None:
    ad = synthetic(1, rank=5)
    spec = Layout.from_adapters([ad]).modules[1]  # q_proj
    a, b = module_factors(ad, spec, 2)
    d = ad.modules[spec.name].delta()
    s = torch.linalg.svdvals(d)
    err = torch.linalg.norm(d - b @ a) / torch.linalg.norm(d)
    assert float(err) == pytest.approx(float(s[2:].norm() / s.norm()), rel=1e-4)


def test_canonical_factors_ignore_rotation_scaling_and_sign_of_the_factors() -> None:
    g = torch.Generator().manual_seed(3)
    up, down = torch.randn(20, 4, generator=g), torch.randn(4, 10, generator=g)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g))
    d = torch.diag(torch.tensor([2.0, -0.5, 3.0, 1.0]))
    a1, b1 = lowrank_svd(up, down, 4)
    a2, b2 = lowrank_svd(up @ q @ d, torch.linalg.inv(d) @ q.T @ down, 4)
    assert torch.allclose(a1, a2, atol=1e-4) and torch.allclose(b1, b2, atol=1e-4)
    # sign convention: the largest-|.| entry of each column of B is positive
    col = b1.abs().argmax(0)
    assert bool((b1[col, torch.arange(4)] > 0).all())
    # A and B carry √S each: the rows of A and the columns of B have equal norms
    assert torch.allclose(a1.norm(dim=1), b1.norm(dim=0), atol=1e-5)


def test_combine_is_the_exact_delta_sum() -> None:
    ads = [synthetic(s, rank=2) for s in range(3)]
    layout = Layout.from_adapters(ads)
    st = stack(ads, layout)
    w = torch.tensor([0.5, -1.0, 2.0])
    mixed = combine(st, w, rank=6)
    for name in layout.names:
        want = sum(float(wi) * ad.modules[name].delta().reshape(ad.modules[name].out_features, -1)
                   for wi, ad in zip(w, ads, strict=True))  # fmt: skip
        a, b = mixed[name]
        assert torch.allclose(b @ a, want, atol=1e-4)


def test_every_text_zoo_adapter_sample_keeps_delta(text_items: list) -> None:
    for it in text_items:
        layout = Layout.from_adapters([it.adapter])
        facs = {s.name: module_factors(it.adapter, s, layout.rank) for s in layout.modules}
        assert delta_error(it.adapter, facs) < 1e-5, it.name


def test_norm_stats_energy_is_the_mean_squared_delta_norm() -> None:
    from generators.canonical import norm_stats

    ads = [synthetic(s, rank=3) for s in range(3)]
    layout = Layout.from_adapters(ads)
    facs = stack(ads, layout)
    stats = norm_stats(facs)
    for name, (a, b) in facs.items():
        want = torch.stack([(b[i] @ a[i]).pow(2).sum() for i in range(3)]).mean()  # ΔW formed explicitly
        assert float(stats[f"norm.{name}.energy"]) == pytest.approx(float(want), rel=1e-5)
