"""cloneofsimo lora_diffusion files: module names rebuilt from the injection order."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from registry.errors import AdapterFormatError
from registry.formats import cloneofsimo, load_tensor_file
from registry.formats.canonical import LoraAdapter
from registry.formats.cloneofsimo import BLOCK_ORDERS, UNET_LAYOUTS, match_names, transformer_blocks, unet_targets


def read(path: Path) -> LoraAdapter:
    tf = load_tensor_file(path)
    assert cloneofsimo.claims(tf, None)
    return cloneofsimo.read(tf, None)


def pairs_for(shapes: list[tuple[int, int]], r: int = 1) -> list[torch.Tensor]:
    """[up0, down0, up1, down1, …] with up (out, r), down (r, in)."""
    g = torch.Generator().manual_seed(0)
    out: list[torch.Tensor] = []
    for o, i in shapes:
        out += [torch.randn(o, r, generator=g), torch.randn(r, i, generator=g)]
    return out


@pytest.fixture(scope="module")
def meta_unets() -> dict[str, dict[str, torch.nn.Module]]:
    """Real diffusers SD1 / SD2 UNets on the meta device (no weights, no download)."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        sd1 = UNet2DConditionModel(cross_attention_dim=768)
        sd2 = UNet2DConditionModel(
            cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20], use_linear_projection=True
        )
    return {"sd1": dict(sd1.named_modules()), "sd2": dict(sd2.named_modules())}


def assert_real_linears(adapter: LoraAdapter, modules: dict[str, torch.nn.Module]) -> None:
    for m in adapter.modules.values():
        if m.component == "unet":
            layer = modules[m.path]
            assert isinstance(layer, torch.nn.Linear), m.name
            assert (layer.out_features, layer.in_features) == (m.out_features, m.in_features), m.name


@pytest.mark.parametrize("family", ["sd1", "sd2"])
@pytest.mark.parametrize("order", BLOCK_ORDERS)
def test_walked_layout_matches_diffusers(meta_unets: dict, family: str, order: tuple[str, ...]) -> None:
    layout = next(u for u in UNET_LAYOUTS if u.family == family)
    targets = unet_targets(layout, order)
    assert len(targets) == 16 * (8 + ("ff" in order))
    modules = meta_unets[family]
    for path, (o, i) in targets:
        assert (modules[path].out_features, modules[path].in_features) == (o, i), path
    # mid block last: UNet2DConditionModel registers down_blocks and up_blocks before mid_block
    blocks = [n for n in modules if n.endswith("transformer_blocks.0")]
    assert [p for p, _ in transformer_blocks(layout)] == blocks


def test_disney_safetensors(real_adapters: Path, meta_unets: dict) -> None:
    a = read(real_adapters / "clos_disney_st" / "lora_disney.safetensors")
    assert a.format == "cloneofsimo" and a.family == "sd1" and not a.warnings
    assert len(a.modules) == 192 and a.ranks == [1]
    assert sum(m.component == "unet" for m in a.modules.values()) == 144
    assert sum(m.component == "text_encoder" for m in a.modules.values()) == 48
    assert a.trigger_words == ["<s1>", "<s2>"] and a.extra_tensors["<s1>"].shape == (768,)
    assert sum(n.endswith("ff.net.0.proj") for n in a.modules) == 16  # GEGLU is a target
    assert "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k" in a.modules
    assert "text_encoder.text_model.encoder.layers.11.self_attn.out_proj" in a.modules
    assert all(m.scale == 1.0 and m.alpha is None for m in a.modules.values())
    assert_real_linears(a, meta_unets["sd1"])


def test_illust_pt_list(real_adapters: Path, meta_unets: dict) -> None:
    a = read(real_adapters / "clos_illust_pt" / "lora_illust.pt")
    assert a.format == "cloneofsimo" and a.family == "sd2" and not a.warnings
    assert len(a.modules) == 128 and a.ranks == [4] and a.components == ["unet"]
    assert not any("ff.net" in n for n in a.modules)  # attention-only target set
    k = a.modules["unet.up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k"]
    assert (k.out_features, k.in_features) == (1280, 1024)
    assert_real_linears(a, meta_unets["sd2"])


def test_pair_order_is_up_then_down(tmp_path: Path) -> None:
    layout = UNET_LAYOUTS[0]
    tensors = pairs_for([s for _, s in unet_targets(layout, BLOCK_ORDERS[0])], r=2)
    torch.save(tensors, tmp_path / "lora.pt")
    a = read(tmp_path / "lora.pt")
    first = a.modules["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"]
    torch.testing.assert_close(first.delta(), tensors[0] @ tensors[1])
    last = a.modules["unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0"]
    torch.testing.assert_close(last.delta(), tensors[-2] @ tensors[-1])


def test_text_encoder_pt_list(tmp_path: Path) -> None:
    torch.save(pairs_for([(1024, 1024)] * 92, r=2), tmp_path / "lora_weight.text_encoder.pt")
    a = read(tmp_path / "lora_weight.text_encoder.pt")
    assert a.family == "sd2" and len(a.modules) == 92
    assert list(a.modules)[:2] == [
        "text_encoder.text_model.encoder.layers.0.self_attn.k_proj", "text_encoder.text_model.encoder.layers.0.self_attn.v_proj"
    ]  # fmt: skip


def test_unmatched_shapes_fall_back_with_warning(tmp_path: Path) -> None:
    t = pairs_for([(64, 32), (32, 64), (64, 64)], r=2)
    tensors = {f"unet:{i}:{d}": t[2 * i + (d == "down")] for i in range(3) for d in ("up", "down")}
    save_file(tensors, str(tmp_path / "x.safetensors"), metadata={"unet": '["CrossAttention"]', "unet:0:rank": "2"})
    a = read(tmp_path / "x.safetensors")
    assert sorted(a.modules) == ["unet.lora_0", "unet.lora_1", "unet.lora_2"] and a.family == "unknown"
    assert any("do not follow" in w for w in a.warnings)
    assert match_names("unet", [(64, 32)]) is None


@pytest.mark.parametrize(
    ("tensors", "match"),
    [
        ({"unet:0:up": torch.zeros(8, 2), "unet:0:down": torch.zeros(3, 8)}, "up columns must equal down rows"),
        ({"unet:0:up": torch.zeros(8, 2)}, "not both up and down"),
        ({"unet:1:up": torch.zeros(8, 2), "unet:1:down": torch.zeros(2, 8)}, "indices are not 0"),
    ],
)
def test_bad_safetensors(tmp_path: Path, tensors: dict, match: str) -> None:
    save_file(tensors, str(tmp_path / "bad.safetensors"))
    with pytest.raises(AdapterFormatError, match=match):
        read(tmp_path / "bad.safetensors")


def test_bad_pt_list(tmp_path: Path) -> None:
    torch.save([torch.zeros(8, 2), torch.zeros(2, 8), torch.zeros(8, 2)], tmp_path / "odd.pt")
    with pytest.raises(AdapterFormatError, match="expected \\(up, down\\) pairs"):
        read(tmp_path / "odd.pt")


def test_claims_only_cloneofsimo_keys(tmp_path: Path) -> None:
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(2, 4)}, str(tmp_path / "k.safetensors"))
    assert not cloneofsimo.claims(load_tensor_file(tmp_path / "k.safetensors"), None)
