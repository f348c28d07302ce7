"""kohya flat names ↔ canonical dotted names."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.formats.names import dotted_to_kohya, kohya_to_dotted, split_identifiers, unet_naming

CASES = [
    # SD1/2 diffusers UNet
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
     "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"),
    ("lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_out_0",
     "unet.up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_out.0"),
    ("lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj",
     "unet.mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj"),
    ("lora_unet_down_blocks_1_attentions_1_proj_in", "unet.down_blocks.1.attentions.1.proj_in"),
    ("lora_unet_up_blocks_2_resnets_0_conv_shortcut", "unet.up_blocks.2.resnets.0.conv_shortcut"),
    ("lora_unet_up_blocks_2_resnets_0_time_emb_proj", "unet.up_blocks.2.resnets.0.time_emb_proj"),
    ("lora_unet_down_blocks_0_downsamplers_0_conv", "unet.down_blocks.0.downsamplers.0.conv"),
    ("lora_unet_conv_in", "unet.conv_in"),
    ("lora_unet_time_embedding_linear_1", "unet.time_embedding.linear_1"),
    # CLIP text encoders (SD1/2: lora_te; SDXL: lora_te1 / lora_te2)
    ("lora_te_text_model_encoder_layers_0_self_attn_q_proj", "text_encoder.text_model.encoder.layers.0.self_attn.q_proj"),
    ("lora_te_text_model_encoder_layers_11_mlp_fc2", "text_encoder.text_model.encoder.layers.11.mlp.fc2"),
    ("lora_te1_text_model_encoder_layers_3_self_attn_out_proj",
     "text_encoder.text_model.encoder.layers.3.self_attn.out_proj"),
    ("lora_te2_text_model_encoder_layers_31_self_attn_k_proj",
     "text_encoder_2.text_model.encoder.layers.31.self_attn.k_proj"),
    ("lora_te3_encoder_block_0_layer_1_DenseReluDense_wi_0", "text_encoder_3.encoder.block.0.layer.1.DenseReluDense.wi_0"),
    # SDXL sgm names stay sgm
    ("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k",
     "unet.input_blocks.4.1.transformer_blocks.0.attn2.to_k"),
    ("lora_unet_middle_block_1_proj_in", "unet.middle_block.1.proj_in"),
    ("lora_unet_output_blocks_2_1_conv", "unet.output_blocks.2.1.conv"),
    ("lora_unet_input_blocks_1_0_in_layers_2", "unet.input_blocks.1.0.in_layers.2"),
    ("lora_unet_output_blocks_0_0_skip_connection", "unet.output_blocks.0.0.skip_connection"),
    ("lora_unet_input_blocks_1_0_emb_layers_1", "unet.input_blocks.1.0.emb_layers.1"),
    # Flux, kohya (BFL names under lora_unet_)
    ("lora_unet_double_blocks_0_img_attn_qkv", "transformer.double_blocks.0.img_attn.qkv"),
    ("lora_unet_double_blocks_18_txt_attn_proj", "transformer.double_blocks.18.txt_attn.proj"),
    ("lora_unet_double_blocks_3_img_mlp_0", "transformer.double_blocks.3.img_mlp.0"),
    ("lora_unet_double_blocks_3_txt_mod_lin", "transformer.double_blocks.3.txt_mod.lin"),
    ("lora_unet_single_blocks_37_linear1", "transformer.single_blocks.37.linear1"),
    ("lora_unet_single_blocks_2_modulation_lin", "transformer.single_blocks.2.modulation.lin"),
    ("lora_unet_final_layer_adaLN_modulation_1", "transformer.final_layer.adaLN_modulation.1"),
    ("lora_unet_guidance_in_in_layer", "transformer.guidance_in.in_layer"),
    # diffusers-named DiT
    ("lora_transformer_single_transformer_blocks_0_attn_to_q", "transformer.single_transformer_blocks.0.attn.to_q"),
    ("lora_transformer_transformer_blocks_5_attn_add_q_proj", "transformer.transformer_blocks.5.attn.add_q_proj"),
    ("lora_transformer_transformer_blocks_5_attn_to_add_out", "transformer.transformer_blocks.5.attn.to_add_out"),
]  # fmt: skip
LYCORIS_CASES = [
    ("lycoris_down_blocks_0_attentions_0_proj_out", "unet.down_blocks.0.attentions.0.proj_out"),
    ("lycoris_transformer_blocks_0_ff_net_0_proj", "transformer.transformer_blocks.0.ff.net.0.proj"),
    ("lycoris_text_model_encoder_layers_0_mlp_fc1", "text_encoder.text_model.encoder.layers.0.mlp.fc1"),
]


@pytest.mark.parametrize(("flat", "dotted"), CASES + LYCORIS_CASES)
def test_kohya_to_dotted(flat: str, dotted: str) -> None:
    assert kohya_to_dotted(flat) == dotted


@pytest.mark.parametrize(("flat", "dotted"), CASES)
def test_round_trip(flat: str, dotted: str) -> None:
    two = flat.startswith(("lora_te1_", "lora_te2_"))
    assert dotted_to_kohya(dotted, two_text_encoders=two) == flat
    assert kohya_to_dotted(dotted_to_kohya(dotted)) == dotted


def test_text_encoder_prefix_style() -> None:
    name = "text_encoder.text_model.encoder.layers.0.self_attn.q_proj"
    assert dotted_to_kohya(name).startswith("lora_te_text_model")
    assert dotted_to_kohya(name, two_text_encoders=True).startswith("lora_te1_text_model")


def test_split_identifiers_prefers_longest_compound() -> None:
    assert split_identifiers("single_transformer_blocks_0_attn_to_q") == [
        "single_transformer_blocks", "0", "attn", "to_q"
    ]  # fmt: skip
    assert split_identifiers("time_emb_proj") == ["time_emb_proj"]
    assert split_identifiers("foo_bar_0") == ["foo", "bar", "0"]  # unknown identifiers split on every "_"


def test_bad_names() -> None:
    with pytest.raises(ValueError, match="not a kohya module name"):
        kohya_to_dotted("unet_down_blocks_0")
    with pytest.raises(ValueError, match="no naming convention"):
        dotted_to_kohya("model.transformer.h.0.attn.c_attn")
    with pytest.raises(ValueError, match="no component prefix"):
        dotted_to_kohya("conv_in")


def test_unet_naming() -> None:
    assert unet_naming(["unet.input_blocks.4.1.proj_in", "text_encoder.text_model.x"]) == "sgm"
    assert unet_naming(["unet.down_blocks.0.attentions.0.proj_in"]) == "diffusers"
    assert unet_naming(["transformer.double_blocks.0.img_attn.qkv"]) == "bfl"
    assert unet_naming(["text_encoder.text_model.encoder.layers.0.mlp.fc1"]) is None


def _module_names(model: object) -> set[str]:
    return {n for n, _ in model.named_modules()}  # type: ignore[attr-defined]


def test_every_lokr_fixture_name_is_a_real_module(real_adapters: Path) -> None:
    """All 350 names of the LyCORIS fixture convert to modules of a real SD1 UNet / CLIP text encoder."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors import safe_open
    from transformers import CLIPTextConfig, CLIPTextModel

    path = real_adapters / "lycoris_lokr_smart_falcon8" / "smart_falcon_8_lokr.safetensors"
    with safe_open(str(path), "pt") as f:
        flats = sorted({k.split(".", 1)[0] for k in f.keys()})
    assert len(flats) == 350
    with torch.device("meta"):
        unet = _module_names(UNet2DConditionModel(cross_attention_dim=768))
        clip = _module_names(CLIPTextModel(CLIPTextConfig()))
    clip |= {f"text_model.{n}" for n in clip}  # transformers 5 dropped the text_model level
    for flat in flats:
        dotted = kohya_to_dotted(flat)
        component, _, path_in = dotted.partition(".")
        assert path_in in {"unet": unet, "text_encoder": clip}[component], dotted
        assert dotted_to_kohya(dotted) == flat
