"""Runtime fusion on a tiny diffusers UNet and a tiny transformers Llama."""

from __future__ import annotations

import copy

import pytest
import torch

from fusion.errors import FusionError, InstallError
from fusion.runtime import FusedLayer, install
from registry.formats.canonical import LoraAdapter, LoraModule
from tests.tiny_models import tiny_llama, tiny_unet

UNET_TARGETS = [
    "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
    "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k",
    "down_blocks.1.attentions.0.proj_in",
    "up_blocks.0.attentions.1.transformer_blocks.0.ff.net.2",
    "down_blocks.0.resnets.0.conv1",
    "conv_in",
    "up_blocks.1.resnets.2.conv_shortcut",
]
LLAMA_TARGETS = ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj", "model.layers.1.mlp.down_proj"]


def random_adapter(
    model: torch.nn.Module, comp: str, paths: list[str], rank: int, seed: int, family: str
) -> LoraAdapter:
    g = torch.Generator().manual_seed(seed)
    mods = {}
    for p in paths:
        w = model.get_submodule(p).weight
        if w.dim() == 4:  # conv (out, in, kh, kw)
            down = torch.randn(rank, *w.shape[1:], generator=g) * 0.2
            up = torch.randn(w.shape[0], rank, 1, 1, generator=g) * 0.2
            kind = "conv"
        else:
            down = torch.randn(rank, w.shape[1], generator=g) * 0.2
            up = torch.randn(w.shape[0], rank, generator=g) * 0.2
            kind = "linear"
        mods[f"{comp}.{p}"] = LoraModule(f"{comp}.{p}", down, up, 1.5 / rank, None, kind)  # type: ignore[arg-type]
    return LoraAdapter(modules=mods, family=family, format="diffusers")


def materialized(model: torch.nn.Module, adapters: list[LoraAdapter], weights: list[float]) -> torch.nn.Module:
    merged = copy.deepcopy(model)
    with torch.no_grad():
        for ad, w in zip(adapters, weights, strict=True):
            for m in ad.modules.values():
                merged.get_submodule(m.path).weight += w * m.delta()
    return merged


def unet_inputs(n: int = 2):
    g = torch.Generator().manual_seed(7)
    return torch.randn(n, 4, 32, 32, generator=g), torch.tensor(10), torch.randn(n, 5, 32, generator=g)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def test_unet_install_matches_materialized_merge_and_removal_is_bit_identical():
    unet = tiny_unet()
    before = snapshot(unet)
    params_before = dict(unet.named_parameters())
    # different ranks and partially different module sets
    a = random_adapter(unet, "unet", UNET_TARGETS, 4, 1, "tiny")
    b = random_adapter(unet, "unet", UNET_TARGETS[:4] + UNET_TARGETS[5:], 2, 2, "tiny")
    c = random_adapter(unet, "unet", UNET_TARGETS[2:], 3, 3, "tiny")
    x, t, ctx = unet_inputs()
    base_out = unet(x, t, encoder_hidden_states=ctx).sample
    weights = [0.8, -0.5, 1.2]
    handle = install(unet, [a, b, c], ["a", "b", "c"], component="unet")
    handle.set_weights(weights)
    assert isinstance(unet.get_submodule(UNET_TARGETS[0]), FusedLayer)
    fused = unet(x, t, encoder_hidden_states=ctx).sample
    expect = materialized(unet_without(handle, unet), [a, b, c], weights)(x, t, encoder_hidden_states=ctx).sample
    torch.testing.assert_close(fused, expect, rtol=1e-4, atol=1e-4)
    assert (fused - base_out).abs().max() > 1e-2  # the adapters do something

    # per layer, the one batched product == k separate adapters' outputs summed
    for name, layer in handle.layers.items():
        w = layer.base.weight
        xin = torch.randn(3, 6, w.shape[1]) if w.dim() == 2 else torch.randn(2, w.shape[1], 8, 8)
        separate = layer.base(xin)
        for ad, wt in zip([a, b, c], weights, strict=True):
            if name in ad.modules:
                m = ad.modules[name]
                if m.kind == "conv":
                    conv = layer.base
                    separate = separate + wt * torch.nn.functional.conv2d(
                        xin, m.delta(), None, conv.stride, conv.padding, conv.dilation
                    )
                else:
                    separate = separate + wt * xin @ m.delta().T
        torch.testing.assert_close(layer(xin), separate, rtol=1e-5, atol=1e-5)
    handle.remove()

    after = snapshot(unet)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p is params_before[n] for n, p in unet.named_parameters())
    assert not any(isinstance(m, FusedLayer) for m in unet.modules())
    torch.testing.assert_close(unet(x, t, encoder_hidden_states=ctx).sample, base_out, rtol=0, atol=0)


def unet_without(handle, unet):
    """A deepcopy of the model with the original modules (for the materialized reference)."""
    clone = copy.deepcopy(unet)
    for name in handle.layers:
        path = name.split(".", 1)[1]
        parent_path, _, leaf = path.rpartition(".")
        parent = clone.get_submodule(parent_path) if parent_path else clone
        setattr(parent, leaf, getattr(parent, leaf).base)
    return clone


@torch.no_grad()
def test_llama_install_matches_materialized_weights_per_block_and_per_row():
    model = tiny_llama()
    a = random_adapter(model, "model", LLAMA_TARGETS, 4, 1, "tiny-llama")
    b = random_adapter(model, "model", LLAMA_TARGETS, 2, 2, "tiny-llama")
    ids = torch.randint(3, 64, (2, 9), generator=torch.Generator().manual_seed(0))
    base_logits = model(ids).logits
    with install(model, [a, b], ["a", "b"]) as handle:
        handle.set_weights([1.0, 0.5])
        out = model(ids).logits
        ref = materialized(model_base(model), [a, b], [1.0, 0.5])(ids).logits
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
        # per block: layer 1 off → only layer 0's modules act
        handle.set_weights([1.0, 0.5], blocks={"model.model.layers.1": 0.0})
        only0 = [
            LoraAdapter({n: m for n, m in ad.modules.items() if ".layers.0." in n}, family="tiny-llama")
            for ad in (a, b)
        ]
        ref0 = materialized(model_base(model), only0, [1.0, 0.5])(ids).logits
        torch.testing.assert_close(model(ids).logits, ref0, rtol=1e-4, atol=1e-4)
        # per row: row 0 uses adapter a, row 1 adapter b
        handle.set_weights([1.0, 1.0])
        handle.set_row_weights([[1.0, 0.0], [0.0, 1.0]])
        rows = model(ids).logits
        ra = materialized(model_base(model), [a], [1.0])(ids).logits
        rb = materialized(model_base(model), [b], [1.0])(ids).logits
        torch.testing.assert_close(rows[0], ra[0], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(rows[1], rb[1], rtol=1e-4, atol=1e-4)
        handle.set_row_weights(None)
        # a gate of zeros gives the base; a per-channel gate has the documented shape
        seen = {}

        def gate(layer, o_base, o, context):
            seen[layer.name] = (tuple(o_base.shape), tuple(o.shape))
            return torch.zeros(1, layer.k, 1)

        handle.set_gate(gate)
        torch.testing.assert_close(model(ids).logits, base_logits, rtol=1e-5, atol=1e-5)
        q = "model.model.layers.0.self_attn.q_proj"
        assert seen[q] == ((2, 9, 32), (2, 9, 2, 32))
        handle.set_gate(lambda layer, ob, o, c: torch.ones(2, layer.k, o.shape[-1]))
        handle.set_weights([1.0, 0.5])
        torch.testing.assert_close(model(ids).logits, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model(ids).logits, base_logits, rtol=0, atol=0)


def model_base(model):
    clone = copy.deepcopy(model)
    for name, mod in list(clone.named_modules()):
        if isinstance(mod, FusedLayer):
            parent_path, _, leaf = name.rpartition(".")
            setattr(clone.get_submodule(parent_path), leaf, mod.base)
    return clone


def test_mismatches_are_refused_before_anything_is_replaced():
    model = tiny_llama()
    good = random_adapter(model, "model", LLAMA_TARGETS, 4, 1, "x")
    bad = random_adapter(model, "model", LLAMA_TARGETS, 4, 2, "x")
    m = bad.modules["model.model.layers.1.mlp.down_proj"]
    m.down = torch.zeros(4, 7)
    with pytest.raises(InstallError, match="down_proj is linear \\(32, 7\\).*\\(32, 48\\)"):
        install(model, [good, bad], ["good", "bad"])
    assert not any(isinstance(x, FusedLayer) for x in model.modules())
    q = good.modules["model.model.layers.0.self_attn.q_proj"]
    wrong = LoraAdapter({"unet.conv_in": LoraModule("unet.conv_in", q.down, q.up, 1.0)}, family="x")
    with pytest.raises(InstallError, match="component 'unet'"):
        install(model, [wrong])
    with pytest.raises(FusionError, match="distinct name"):
        install(model, [good, good], ["a", "a"])
    h = install(model, [good])
    with pytest.raises(InstallError, match="already has adapters"):
        install(model, [good])
    with pytest.raises(FusionError, match="weights for 1"):
        h.set_weights([1.0, 2.0])
    h.remove()


@torch.no_grad()
def test_row_adapters_equal_one_hot_row_weights_and_reinstall_reuses_the_stack():
    model = tiny_llama()
    ads = [random_adapter(model, "model", LLAMA_TARGETS, r, s, "tiny-llama") for r, s in ((4, 1), (2, 2), (3, 3))]
    ids = torch.randint(3, 64, (5, 7), generator=torch.Generator().manual_seed(1))
    route = [2, 0, 1, 1, 2]
    base_logits = model(ids).logits
    handle = install(model, ads, ["a", "b", "c"])
    handle.set_weights([1.0, 0.5, 2.0])
    handle.set_row_weights(torch.nn.functional.one_hot(torch.tensor(route), 3).float())
    weighted = model(ids).logits
    handle.set_row_weights(None)
    handle.set_row_adapters(route)
    routed = model(ids).logits
    torch.testing.assert_close(routed, weighted, rtol=1e-5, atol=1e-5)
    assert (routed - base_logits).abs().max() > 1e-3  # the adapters do something
    # each row is what that adapter alone gives
    plain = model_base(model)
    for row, a in enumerate(route):
        with install(plain, [ads[a]], ["x"]) as alone:
            alone.set_weights([[1.0, 0.5, 2.0][a]])
            torch.testing.assert_close(routed[row], plain(ids[row : row + 1]).logits[0], rtol=1e-4, atol=1e-4)
    with pytest.raises(FusionError, match="0 … 2"):
        handle.set_row_adapters([0, 3])
    handle.set_row_adapters([0, 1])  # 2 rows for a batch of 5
    with pytest.raises(FusionError, match="row adapters for 2 rows"):
        model(ids)
    handle.set_row_adapters(route)
    # removed, then put back: the same layers, the same outputs; the tree in between is the base
    handle.remove()
    torch.testing.assert_close(model(ids).logits, base_logits, rtol=0, atol=0)
    layer = handle.layers[f"model.{LLAMA_TARGETS[0]}"]
    handle.reinstall()
    assert model.get_submodule(LLAMA_TARGETS[0]) is layer
    torch.testing.assert_close(model(ids).logits, routed, rtol=0, atol=0)
    with pytest.raises(FusionError, match="remove\\(\\) it before"):
        handle.reinstall()
    handle.remove()
    # another handle installed meanwhile: reinstalling would stack on it, so it is refused, nothing changed
    with install(model, ads[:1], ["other"]):
        with pytest.raises(InstallError, match="no longer the module"):
            handle.reinstall()
        assert model.get_submodule(LLAMA_TARGETS[0]).handle.names == ["other"]
    assert not any(isinstance(m, FusedLayer) for m in model.modules())
