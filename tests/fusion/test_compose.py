"""compose_images / compose_text / plot_gates on a tiny diffusers pipeline and the text zoo's base."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fusion.compose import compose_images, compose_text
from fusion.errors import UnknownStrategyError
from fusion.plot import plot_gates
from fusion.runtime import install
from tests.fusion.test_runtime import UNET_TARGETS, random_adapter, snapshot
from tests.tiny_models import tiny_sd_pipeline

REPO = Path(__file__).resolve().parents[2]
TEXT_ZOO = REPO / "benchmarks" / "zoo" / "text"


@pytest.fixture(scope="module")
def pipe():
    return tiny_sd_pipeline()


def adapters(pipe):
    a = random_adapter(pipe.unet, "unet", UNET_TARGETS, 4, 1, "tiny")
    b = random_adapter(pipe.unet, "unet", UNET_TARGETS[2:], 2, 2, "tiny")
    a.description, b.description = "sepia tone", "polka dots"
    return [a, b]


def test_compose_images_strategies_leave_the_pipeline_as_it_was(pipe, tmp_path):
    ads = adapters(pipe)
    before = snapshot(pipe.unet)
    kw = {"n_images": 2, "steps": 3, "guidance": 3.0, "seed": 5}
    lin = compose_images(pipe, ads, "a circle", strategy="linear", weights=[1.0, 0.5], **kw)
    assert len(lin.images) == 2 and lin.images[0].size == (64, 64)
    assert lin.tensor is not None and lin.tensor.shape == (2, 3, 64, 64)
    merged = compose_images(pipe, ads, "a circle", strategy="merge:cat", weights=[1.0, 0.5], **kw)
    torch.testing.assert_close(merged.tensor, lin.tensor, atol=2e-3, rtol=0)  # cat is the exact sum
    base = compose_images(pipe, ads, "a circle", strategy="linear", weights=[0.0, 0.0], **kw)
    assert (base.tensor - lin.tensor).abs().max() > 1e-3

    sw = compose_images(pipe, ads, "a circle", strategy="switch", **kw)
    layer = UNET_TARGETS[0]
    steps = sw.gate_trace["values"][sw.gate_trace["layers"].index(f"unet.{layer}")]
    assert [s for s in steps] == [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]

    comp = compose_images(pipe, ads, "a circle", strategy="composite", **kw)
    assert comp.tensor.shape == lin.tensor.shape and (comp.tensor - lin.tensor).abs().max() > 1e-4

    gate = compose_images(pipe, ads, "a circle", strategy="gate", scores=torch.tensor([0.6, 0.0]), **kw)
    assert gate.weights[0] > 0.8 and gate.weights[1] < 0.01  # the second adapter is not asked for
    trace = gate.gate_trace
    assert len(trace["values"]) == len(trace["layers"]) and len(trace["values"][0]) == 3
    assert len(trace["values"][0][0]) == 2 and len(trace["timesteps"]) == 3
    png = plot_gates(trace, tmp_path / "gates.png")
    assert png.stat().st_size > 100

    with pytest.raises(UnknownStrategyError, match="known: .*composite"):
        compose_images(pipe, ads, "a circle", strategy="bogus")
    after = snapshot(pipe.unet)
    assert all(torch.equal(before[k], after[k]) for k in before)


@torch.no_grad()
def test_a_gate_of_ones_on_convs_equals_the_static_path(pipe):
    ads = adapters(pipe)
    g = torch.Generator().manual_seed(0)
    x, ctx = torch.randn(2, 4, 32, 32, generator=g), torch.randn(2, 5, 32, generator=g)
    with install(pipe, ads) as h:
        h.set_weights([0.7, 1.3])
        static = pipe.unet(x, 3, encoder_hidden_states=ctx).sample
        h.set_gate(lambda layer, ob, o, c: torch.ones(1, layer.k, 1))
        gated = pipe.unet(x, 3, encoder_hidden_states=ctx).sample
    torch.testing.assert_close(gated, static, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not (TEXT_ZOO / "base").is_dir(), reason="text zoo not built")
def test_compose_text_routes_to_the_described_adapter_and_chains():
    from benchmarks.zoo.text.model import load_base
    from registry.formats import read_adapter

    model, tok = load_base(TEXT_ZOO / "base")
    ads = [read_adapter(TEXT_ZOO / "adapters" / n) for n in ("caesar_3", "reverse")]
    inputs = ["hello", "abcxyz"]
    routed = compose_text(model, tok, ads, "shift letters", inputs, scores=torch.tensor([0.7, 0.2]))
    assert routed.weights[0] > 0.99
    assert routed.outputs == ["khoor", "defabc"]
    rev = compose_text(model, tok, ads, "reverse it", inputs, strategy="linear", weights=[0.0, 1.0])
    assert rev.outputs == ["olleh", "zyxcba"]
    chained = compose_text(model, tok, ads, "shift then reverse", inputs, strategy="chain")
    assert chained.outputs == ["roohk", "cbafed"]
