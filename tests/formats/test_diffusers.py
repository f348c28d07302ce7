"""diffusers-format reader / writer: real files, files diffusers itself writes, and round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from registry.errors import ExportError
from registry.formats.canonical import LoraAdapter, LoraModule
from tests.formats.lora_checks import assert_model_applies, assert_same_deltas, randomize_lora, read, write
from tests.tiny_models import tiny_sd_pipeline

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TE_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
ATTN = "down_blocks.1.attentions.0.transformer_blocks.0.attn1"


# --- real third-party files -------------------------------------------------------------------


def test_attn_procs_file(real_adapters: Path) -> None:
    path = real_adapters / "diff_attnproc_rick_morty" / "pytorch_lora_weights.safetensors"
    a = read(path)
    assert (a.format, len(a.modules), a.ranks, a.components) == ("diffusers", 128, [4], ["unet"])
    assert {m.scale for m in a.modules.values()} == {1.0}
    raw = load_file(str(path))
    proc = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora"
    m = a.modules["unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0"]
    torch.testing.assert_close(m.delta(), raw[f"{proc}.up.weight"] @ raw[f"{proc}.down.weight"])
    assert "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k" in a.modules
    assert (
        m.in_features == 320
        and a.modules["unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k"].in_features == 768
    )


def test_unet_prefixed_legacy_file(real_adapters: Path) -> None:
    a = read(real_adapters / "diff_unetprefix_flower_sd14" / "pytorch_lora_weights.safetensors")
    assert (a.format, len(a.modules), a.ranks, a.components) == ("diffusers", 128, [4], ["unet"])
    assert sum(n.endswith("to_out.0") for n in a.modules) == 32


def test_flux_transformer_file(real_adapters: Path) -> None:
    a = read(real_adapters / "flux_aitoolkit_yew" / "lora.safetensors")
    assert (len(a.modules), a.ranks, a.components) == (4, [16], ["transformer"])
    m = a.modules["transformer.single_transformer_blocks.12.proj_out"]
    assert (m.in_features, m.out_features, m.down.dtype) == (15360, 3072, torch.float32)
    assert a.metadata["ss_base_model_version"] == "sd_1.5"  # kept as written; family detection judges it


@pytest.mark.parametrize(
    "fixture", ["diff_attnproc_rick_morty/pytorch_lora_weights.safetensors", "flux_aitoolkit_yew/lora.safetensors"]
)
def test_real_file_round_trip(real_adapters: Path, tmp_path: Path, fixture: str) -> None:
    a = read(real_adapters / fixture)
    files = write(a, "diffusers", tmp_path)
    assert [f.name for f in files] == ["pytorch_lora_weights.safetensors"]
    b = read(files[0])
    assert_same_deltas(b, a)
    assert all(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in load_file(str(files[0])))


def test_claims_only_diffusers_naming(real_adapters: Path) -> None:
    from registry.formats import diffusers as fmt
    from registry.formats import load_tensor_file

    for other in ["clos_disney_st/lora_disney.safetensors", "lycoris_lokr_smart_falcon8/smart_falcon_8_lokr.safetensors",
                  "peft_rugpt3small_nested_prefix/adapter_model.safetensors"]:  # fmt: skip
        assert not fmt.claims(load_tensor_file(real_adapters / other), None), other
    tf = load_tensor_file(real_adapters / "diff_anime_unet_peft" / "adapter_model.safetensors")
    assert not fmt.claims(tf, {"peft_type": "LORA"})  # a PEFT folder belongs to the peft reader


# --- files written by diffusers itself ---------------------------------------------------------


def _pipe_with_lora(*, text_encoder: bool = False, **unet_cfg):
    from peft import LoraConfig, inject_adapter_in_model

    pipe = tiny_sd_pipeline()
    pipe.unet.add_adapter(LoraConfig(**{"r": 4, "lora_alpha": 8, "target_modules": UNET_TARGETS, **unet_cfg}))
    randomize_lora(pipe.unet, seed=1)
    if text_encoder:  # what CLIPTextModel.add_adapter wraps (that one wants peft >= 0.22 under transformers 5)
        inject_adapter_in_model(LoraConfig(r=2, lora_alpha=4, target_modules=TE_TARGETS), pipe.text_encoder)
        randomize_lora(pipe.text_encoder, seed=2)
    return pipe


def _save_with_diffusers(pipe, out: Path, *, metadata: bool = True) -> Path:
    from diffusers import StableDiffusionPipeline
    from peft.utils import get_peft_model_state_dict

    layers = {"unet_lora_layers": get_peft_model_state_dict(pipe.unet)}
    if metadata:
        layers["unet_lora_adapter_metadata"] = pipe.unet.peft_config["default"].to_dict()
    if getattr(pipe.text_encoder, "peft_config", None):
        layers["text_encoder_lora_layers"] = get_peft_model_state_dict(pipe.text_encoder)
        if metadata:
            layers["text_encoder_lora_adapter_metadata"] = pipe.text_encoder.peft_config["default"].to_dict()
    StableDiffusionPipeline.save_lora_weights(out, **layers)
    return out / "pytorch_lora_weights.safetensors"


def _load_text_encoder_part(pipe, file: Path) -> None:
    """The PEFT calls diffusers' text-encoder loading makes, minus transformers' load_adapter wrapper."""
    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict
    from safetensors import safe_open

    with safe_open(str(file), "pt") as f:
        meta = json.loads(f.metadata()["lora_adapter_metadata"])
    cfg = {k.removeprefix("text_encoder."): v for k, v in meta.items() if k.startswith("text_encoder.")}
    sd = {k.removeprefix("text_encoder."): v for k, v in load_file(str(file)).items() if k.startswith("text_encoder.")}
    if not hasattr(pipe.text_encoder, "text_model"):  # transformers 5 flattened CLIPTextModel
        sd = {k.removeprefix("text_model."): v for k, v in sd.items()}
    inject_adapter_in_model(LoraConfig(**cfg), pipe.text_encoder, state_dict=sd)
    set_peft_model_state_dict(pipe.text_encoder, sd)


@torch.no_grad()
def _outputs(pipe) -> tuple[torch.Tensor, torch.Tensor]:
    """(text encoder hidden states, UNet noise prediction) for a fixed prompt and latent."""
    ids = pipe.tokenizer(["a red circle"], padding="max_length", max_length=16, return_tensors="pt").input_ids
    emb = pipe.text_encoder(ids)[0]  # (1, 16, 32)
    latents = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(3))
    return emb, pipe.unet(latents, 10, encoder_hidden_states=emb).sample


def test_diffusers_saved_file_reads_as_applied(tmp_path: Path) -> None:
    pipe = _pipe_with_lora(text_encoder=True)
    a = read(_save_with_diffusers(pipe, tmp_path))
    assert a.components == ["text_encoder", "unet"]
    assert len(a.modules) == 6 * 2 * 4 + 2 * 4  # 6 transformer blocks × (attn1, attn2) × q/k/v/out, 2 CLIP layers
    assert "text_encoder.text_model.encoder.layers.0.self_attn.q_proj" in a.modules
    assert {round(m.scale, 6) for n, m in a.modules.items() if n.startswith("unet.")} == {2.0}
    assert_model_applies(a, {"unet": pipe.unet, "text_encoder": pipe.text_encoder})


def test_text_encoder_round_trip(tmp_path: Path) -> None:
    original = _save_with_diffusers(_pipe_with_lora(text_encoder=True), tmp_path / "orig")
    a = read(original)
    written = write(a, "diffusers", tmp_path / "ours")[0]
    assert_same_deltas(read(written), a)
    results = []
    for file in (original, written):
        pipe = tiny_sd_pipeline()
        pipe.unet.load_lora_adapter(str(file.parent), prefix="unet", weight_name=file.name)
        _load_text_encoder_part(pipe, file)
        results.append(_outputs(pipe))
    torch.testing.assert_close(results[1], results[0], rtol=1e-5, atol=1e-6)


def test_no_metadata_means_scale_one_as_diffusers_loads_it(tmp_path: Path) -> None:
    file = _save_with_diffusers(_pipe_with_lora(), tmp_path, metadata=False)
    a = read(file)
    assert {m.scale for m in a.modules.values()} == {1.0}
    pipe = tiny_sd_pipeline()
    pipe.load_lora_weights(tmp_path)
    assert_model_applies(a, {"unet": pipe.unet})


@pytest.mark.parametrize(
    "cfg",
    [
        {},
        {"rank_pattern": {"attn2.to_k": 2}, "alpha_pattern": {"to_out.0": 3}},
        {"use_rslora": True},
        {"use_dora": True},
    ],
    ids=["plain", "patterns", "rslora", "dora"],
)
def test_round_trip_loads_identically(tmp_path: Path, cfg: dict) -> None:
    pipe = _pipe_with_lora(**cfg)
    original = _save_with_diffusers(pipe, tmp_path / "orig")
    a = read(original)
    if cfg.get("use_dora"):
        assert all(m.magnitude is not None for m in a.modules.values())
    else:
        assert_model_applies(a, {"unet": pipe.unet})
    if "rank_pattern" in cfg:
        assert a.ranks == [2, 4]
    written = write(a, "diffusers", tmp_path / "ours")[0]
    assert_same_deltas(read(written), a)

    p1, p2 = tiny_sd_pipeline(), tiny_sd_pipeline()
    p1.load_lora_weights(original.parent)
    p2.load_lora_weights(written.parent)
    _, base_eps = _outputs(tiny_sd_pipeline())
    (_, n1), (_, n2) = _outputs(p1), _outputs(p2)
    assert not torch.allclose(n1, base_eps, atol=1e-4)  # the adapter does something
    torch.testing.assert_close(n2, n1, rtol=1e-5, atol=1e-6)


def test_full_pipeline_output_matches(tmp_path: Path) -> None:
    original = _save_with_diffusers(_pipe_with_lora(), tmp_path / "orig")
    written = write(read(original), "diffusers", tmp_path / "ours")[0]
    images = []
    for d in (original.parent, written.parent):
        pipe = tiny_sd_pipeline()
        pipe.load_lora_weights(d)
        gen = torch.Generator().manual_seed(0)
        out = pipe("a red circle", num_inference_steps=2, guidance_scale=1.0, output_type="np", generator=gen)
        images.append(torch.from_numpy(out.images))
    torch.testing.assert_close(images[1], images[0], rtol=1e-5, atol=1e-5)


# --- legacy spellings, synthesized ---------------------------------------------------------------


def _factors(seed: int, r: int = 2, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(r, n, generator=g), torch.randn(n, r, generator=g)  # A (r, in), B (out, r)


@pytest.mark.parametrize(
    ("keys", "expect"),
    [
        ({f"{ATTN}.processor.to_out_lora.down.weight": "A", f"{ATTN}.processor.to_out_lora.up.weight": "B"},
         f"unet.{ATTN}.to_out.0"),
        ({f"unet.{ATTN}.to_q.lora.down.weight": "A", f"unet.{ATTN}.to_q.lora.up.weight": "B",
          f"unet.{ATTN}.to_q.alpha": 1.0}, f"unet.{ATTN}.to_q"),
        ({"text_encoder.text_model.encoder.layers.0.self_attn.to_v_lora.down.weight": "A",
          "text_encoder.text_model.encoder.layers.0.self_attn.to_v_lora.up.weight": "B"},
         "text_encoder.text_model.encoder.layers.0.self_attn.v_proj"),
        ({"text_encoder.text_model.encoder.layers.1.mlp.fc1.lora_linear_layer.down.weight": "A",
          "text_encoder.text_model.encoder.layers.1.mlp.fc1.lora_linear_layer.up.weight": "B"},
         "text_encoder.text_model.encoder.layers.1.mlp.fc1"),
    ],
    ids=["attn_procs", "lora_down_alpha", "te_attn_procs", "lora_linear_layer"],
)  # fmt: skip
def test_legacy_spellings(tmp_path: Path, keys: dict, expect: str) -> None:
    a_, b_ = _factors(0)
    tensors = {k: {"A": a_, "B": b_}[v] if isinstance(v, str) else torch.tensor(v) for k, v in keys.items()}
    save_file(tensors, str(tmp_path / "legacy.safetensors"))
    a = read(tmp_path / "legacy.safetensors")
    assert list(a.modules) == [expect]
    scale = 0.5 if any(k.endswith(".alpha") for k in keys) else 1.0  # alpha 1 / rank 2
    torch.testing.assert_close(a.modules[expect].delta(), scale * b_ @ a_)


def test_metadata_alpha_and_rslora(tmp_path: Path) -> None:
    a_, b_ = _factors(1, r=4)
    meta = {"unet.r": 4, "unet.lora_alpha": 8, "unet.use_rslora": True, "unet.alpha_pattern": {"attn1.to_k": 2}}
    save_file({f"unet.{ATTN}.to_q.lora_A.weight": a_, f"unet.{ATTN}.to_q.lora_B.weight": b_,
               f"unet.{ATTN}.to_k.lora_A.weight": a_.clone(), f"unet.{ATTN}.to_k.lora_B.weight": b_.clone()},
              str(tmp_path / "m.safetensors"), metadata={"format": "pt", "lora_adapter_metadata": json.dumps(meta)})  # fmt: skip
    a = read(tmp_path / "m.safetensors")
    assert a.modules[f"unet.{ATTN}.to_q"].scale == pytest.approx(8 / 2)  # alpha / sqrt(r)
    assert a.modules[f"unet.{ATTN}.to_k"].scale == pytest.approx(2 / 2)
    assert a.use_rslora


def test_language_model_adapter_is_refused(tmp_path: Path) -> None:
    a_, b_ = _factors(0)
    adapter = LoraAdapter(modules={"model.layers.0.q_proj": LoraModule("model.layers.0.q_proj", a_, b_, 1.0)})
    with pytest.raises(ExportError, match="peft"):
        write(adapter, "diffusers", tmp_path)
    assert not any(tmp_path.iterdir())
