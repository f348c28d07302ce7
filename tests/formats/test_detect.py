"""Base family detection: every shape rule, metadata vs shapes, and the 12 real fixtures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from registry.formats.canonical import LoraAdapter, LoraModule
from registry.formats.detect import FAMILIES, detect_family
from registry.formats.families import family_from_name
from registry.formats.shapes import LLM_RULES

UNET_BLOCK = "unet.down_blocks.{b}.attentions.0.transformer_blocks.{t}"


def mod(name: str, n_in: int, n_out: int, *, conv: bool = False) -> LoraModule:
    down = torch.zeros(1, n_in, 1, 1) if conv else torch.zeros(1, n_in)  # (r, in[, 1, 1])
    up = torch.zeros(n_out, 1, 1, 1) if conv else torch.zeros(n_out, 1)  # (out, r[, 1, 1])
    return LoraModule(name, down, up, 1.0, kind="conv" if conv else "linear")


def adapter(specs: list[tuple[str, int, int]], *, base_model: str | None = None, **meta: object) -> LoraAdapter:
    mods = [mod(n, i, o) for n, i, o in specs]
    return LoraAdapter({m.name: m for m in mods}, metadata=dict(meta), base_model=base_model)


def detected(a: LoraAdapter) -> LoraAdapter:
    detect_family(a)
    return a


def family_warnings(a: LoraAdapter) -> list[str]:
    return [w for w in a.warnings if w.startswith("family: ")]


def unet_attn(channels: int, cross: int, *, block: int = 0, depth: int = 0) -> list[tuple[str, int, int]]:
    p = UNET_BLOCK.format(b=block, t=depth)
    return [(f"{p}.attn1.to_q", channels, channels), (f"{p}.attn2.to_k", cross, channels),
            (f"{p}.attn2.to_v", cross, channels), (f"{p}.attn2.to_out.0", channels, channels)]  # fmt: skip


def self_attn_only(channels: int = 320) -> list[tuple[str, int, int]]:
    p = UNET_BLOCK.format(b=0, t=0)
    return [(f"{p}.attn1.{x}", channels, channels) for x in ("to_q", "to_k", "to_v")]


TE = "text_encoder.text_model.encoder.layers.0.self_attn.q_proj"


# ---------------------------------------------------------------- diffusion
@pytest.mark.parametrize(("cross", "family"), [(768, "sd1"), (1024, "sd2"), (2048, "sdxl")])
def test_unet_cross_attention_width(cross: int, family: str) -> None:
    a = detected(adapter(unet_attn(640, cross, block=1)))
    assert a.family == family
    assert str(cross) in a.metadata["family_evidence"]
    assert not family_warnings(a)


def test_sdxl_sgm_names_and_second_text_encoder() -> None:
    sgm = "unet.input_blocks.4.1.transformer_blocks.0.attn2.to_k"
    assert detected(adapter([(sgm, 2048, 640)])).family == "sdxl"
    te2 = [(TE, 768, 768), ("text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj", 1280, 1280)]
    deep = [(f"{UNET_BLOCK.format(b=2, t=5)}.attn1.to_q", 1280, 1280)]
    assert detected(adapter(te2 + deep)).family == "sdxl"


def test_self_attention_only_decided_by_proj_in_or_text_encoder() -> None:
    conv_proj = mod("unet.down_blocks.0.attentions.0.proj_in", 320, 320, conv=True)
    a = adapter(self_attn_only())
    a.modules[conv_proj.name] = conv_proj
    assert detected(a).family == "sd1"
    assert detected(adapter(self_attn_only() + [(TE, 1024, 1024)])).family == "sd2"
    assert detected(adapter(self_attn_only() + [(TE, 768, 768)])).family == "sd1"  # 320-ch attention: not SDXL
    flat_proj = [("unet.down_blocks.0.attentions.0.proj_in", 320, 320)]  # LyCORIS stores SD1's 1×1 conv flat
    assert detected(adapter(self_attn_only() + flat_proj + [(TE, 768, 768)])).family == "sd1"


def test_self_attention_only_without_evidence_is_unknown() -> None:
    a = detected(adapter(self_attn_only()))
    assert a.family == "unknown"
    assert "sd1" in a.metadata["family_evidence"] and "sd2" in a.metadata["family_evidence"]
    assert detected(adapter(self_attn_only(), ss_base_model_version="sd_v2")).family == "sd2"


def test_metadata_outside_what_shapes_allow_gives_unknown_and_warning() -> None:
    a = detected(adapter(self_attn_only(), **{"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"}))
    assert a.family == "unknown"
    (w,) = family_warnings(a)
    assert "sdxl" in w and "rule it out" in w


def test_tiny_unet_is_unknown() -> None:
    assert detected(adapter(unet_attn(32, 32))).family == "unknown"


def test_text_encoder_only_needs_metadata() -> None:
    assert detected(adapter([(TE, 768, 768)])).family == "unknown"
    assert detected(adapter([(TE, 768, 768)], ss_base_model_version="sdxl_base_v1-0")).family == "sdxl"
    assert detected(adapter([(TE, 1024, 1024)])).family == "sd2"


@pytest.mark.parametrize(
    ("specs", "family"),
    [
        ([("transformer.double_blocks.0.img_attn.qkv", 3072, 9216)], "flux"),
        ([("transformer.single_blocks.3.linear2", 15360, 3072)], "flux"),
        ([("transformer.single_transformer_blocks.7.proj_out", 15360, 3072)], "flux"),
        ([("transformer.transformer_blocks.0.attn.to_q", 3072, 3072)], "flux"),
        ([("transformer.transformer_blocks.0.attn.to_q", 1536, 1536)], "sd3"),
        ([("transformer.joint_blocks.0.x_block.attn.qkv", 1536, 4608)], "sd3"),
    ],
)
def test_dit_families(specs: list[tuple[str, int, int]], family: str) -> None:
    assert detected(adapter(specs)).family == family


def test_dit_of_unknown_width_is_unknown_unless_metadata_fits() -> None:
    specs = [("transformer.transformer_blocks.0.attn.to_q", 1152, 1152)]  # PixArt-sized
    assert detected(adapter(specs)).family == "unknown"
    assert detected(adapter(specs, **{"modelspec.architecture": "flux-1-dev/lora"})).family == "flux"


def test_shapes_beat_wrong_metadata_with_a_warning_naming_both() -> None:
    specs = [(f"transformer.single_transformer_blocks.{i}.proj_out", 15360, 3072) for i in (7, 12)]
    a = detected(adapter(specs, ss_base_model_version="sd_1.5"))
    assert a.family == "flux"
    (w,) = family_warnings(a)
    assert "sd1" in w and "sd_1.5" in w and "flux" in w
    assert "overrides" in a.metadata["family_evidence"]


def test_detection_is_idempotent() -> None:
    specs = [("transformer.single_transformer_blocks.7.proj_out", 15360, 3072)]
    a = adapter(specs, ss_base_model_version="sd_1.5")
    a.warnings.append("unrelated reader warning")
    detect_family(a)
    detect_family(a)
    assert len(family_warnings(a)) == 1 and "unrelated reader warning" in a.warnings


def test_reader_family_used_when_nothing_else_decides() -> None:
    a = adapter([("unet.lora_0", 320, 320)])
    a.family = "sd2"
    assert detected(a).family == "sd2"
    assert detected(a).family == "sd2"  # still on a second run


# ---------------------------------------------------------------- language / encoder models
GPT2 = [(f"model.transformer.h.{i}.attn.c_attn", 768, 2304) for i in range(2)]
LLAMA = [(f"model.model.layers.0.self_attn.{p}_proj", 64, 64) for p in "qkvo"]


@pytest.mark.parametrize(
    ("specs", "family"),
    [
        (GPT2, "gpt2"),
        ([("model.transformer.h.0.attn.c_attn", 2048, 2304)], "gpt_bigcode"),  # MQA: out != 3·in
        ([("model.transformer.h.0.self_attention.query_key_value", 1024, 3072)], "bloom"),
        ([("model.transformer.h.0.self_attention.query_key_value", 4544, 4672)], "falcon"),
        ([("model.model.layers.0.self_attn.q_proj", 896, 896), ("model.model.layers.0.self_attn.v_proj", 896, 128)],
         "qwen2"),
        ([("model.distilbert.transformer.layer.0.attention.q_lin", 768, 768)], "distilbert"),
        ([("model.roberta.encoder.layer.0.attention.self.query", 768, 768)], "roberta"),
        ([("model.encoder.block.0.layer.0.SelfAttention.q", 512, 512)], "t5"),
        ([("model.model.decoder.layers.0.self_attn.q_proj", 768, 768)], "opt"),
        ([("model.text_model.encoder.layers.0.self_attn.q_proj", 512, 512)], "clip"),
        ([("model.gpt_neox.layers.0.attention.query_key_value", 512, 1536)], "gpt_neox"),
        ([("model.model.layers.0.self_attn.qkv_proj", 3072, 9216)], "phi3"),
    ],
)  # fmt: skip
def test_llm_layouts(specs: list[tuple[str, int, int]], family: str) -> None:
    a = detected(adapter(specs))
    assert a.family == family, a.metadata["family_evidence"]
    assert not family_warnings(a)


def test_llama_layout_without_metadata_is_a_flagged_guess() -> None:
    a = detected(adapter(LLAMA))
    assert a.family == "llama"
    (w,) = family_warnings(a)
    assert "guessed" in w and "mistral" in w


@pytest.mark.parametrize(("base", "family"), [("mistralai/Mistral-7B-v0.1", "mistral"), ("Qwen/Qwen3-0.6B", "qwen3")])
def test_metadata_picks_among_llama_style_models(base: str, family: str) -> None:
    a = detected(adapter(LLAMA, base_model=base))
    assert a.family == family and not family_warnings(a)


def test_encoder_decoder_needs_metadata() -> None:
    specs = [("model.model.encoder.layers.0.self_attn.q_proj", 512, 512),
             ("model.model.decoder.layers.0.encoder_attn.q_proj", 512, 512)]  # fmt: skip
    assert detected(adapter(specs)).family == "unknown"
    assert detected(adapter(specs, base_model="openai/whisper-base")).family == "whisper"


def test_gpt2_shapes_beat_llama_metadata() -> None:
    a = detected(adapter(GPT2, base_model="meta-llama/Llama-2-7b-hf"))
    assert a.family == "gpt2"
    assert "llama" in family_warnings(a)[0]


def test_peft_config_base_model_and_unfamiliar_names() -> None:
    cfg = {"base_model_name_or_path": "bigscience/bloom-560m"}
    assert detected(adapter([("model.foo.bar", 8, 8)], peft_config=cfg)).family == "bloom"
    a = detected(adapter([("model.foo.bar", 8, 8)]))
    assert a.family == "unknown" and a.metadata["family_evidence"].startswith("none")


# ---------------------------------------------------------------- tables
def test_families_table_covers_every_id_detection_can_return() -> None:
    ids = {fam for _, _, cands, _ in LLM_RULES for fam in cands} | {"sd1", "sd2", "sdxl", "flux", "sd3"}
    assert ids <= set(FAMILIES)
    for fam, info in FAMILIES.items():
        assert info.kind in ("diffusion", "llm", "encoder"), fam
        assert info.label and info.widths and all(isinstance(w, int) for w in info.widths)


@pytest.mark.parametrize(
    ("name", "family"),
    [("sd_v1", "sd1"), ("sd_1.5", "sd1"), ("sd_v2_v", "sd2"), ("sdxl_base_v1-0", "sdxl"), ("flux1", "flux"),
     ("stable-diffusion-v1/lora", "sd1"), ("stable-diffusion-xl-v1-base/lora", "sdxl"), ("flux-1-dev/lora", "flux"),
     ("SD 3.5 Large", "sd3"), ("SD 2.1 768", "sd2"), ("v1-5-pruned-emaonly.safetensors", "sd1"),
     ("gpt2", "gpt2"), ("bigscience/bloom-560m", "bloom"), ("Qwen/Qwen2.5-0.5B-Instruct", "qwen2"),
     ("distilbert-base-uncased", "distilbert"), ("ai-forever/rugpt3small_based_on_gpt2", "gpt2"),
     ("facebook/opt-350m", "opt"), ("google/flan-t5-base", "t5"), ("Qwen2ForCausalLM", "qwen2"),
     ("animefull-final-pruned.safetensors", None), ("adapter-options", None), (None, None)],
)  # fmt: skip
def test_family_from_name(name: str | None, family: str | None) -> None:
    assert family_from_name(name) == family
    assert family is None or family in FAMILIES


def test_detect_imports_no_torch() -> None:
    code = "import sys, registry.formats.detect, registry.formats.meta; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


# ---------------------------------------------------------------- real fixtures
EXPECTED = {
    "clos_disney_st": "sd1",
    "clos_illust_pt": "sd2",
    "diff_anime_unet_peft": "sd1",
    "diff_attnproc_rick_morty": "sd1",
    "diff_unetprefix_flower_sd14": "sd1",
    "flux_aitoolkit_yew": "flux",
    "lycoris_lokr_smart_falcon8": "sd1",
    "peft_bloom560m_alpaca_oldpeft_bin": "bloom",
    "peft_distilbert_imdb": "distilbert",
    "peft_gpt2_emotion": "gpt2",
    "peft_qwen25_05b_inference_engine": "qwen2",
    "peft_rugpt3small_nested_prefix": "gpt2",
}


def fixture_path(folder: Path) -> Path:
    """The PEFT folder itself, or the one weights file in the folder."""
    if (folder / "adapter_config.json").is_file():
        return folder
    (weights,) = [p for p in folder.iterdir() if p.suffix in (".safetensors", ".pt", ".bin")]
    return weights


def test_fixture_list_matches_manifest(real_adapters: Path) -> None:
    rows = (real_adapters / "MANIFEST.tsv").read_text().splitlines()[1:]
    assert {r.split("\t")[0] for r in rows if r.strip()} == set(EXPECTED)


@pytest.mark.parametrize(("name", "family"), sorted(EXPECTED.items()))
def test_real_fixture_family(real_adapters: Path, name: str, family: str) -> None:
    from registry.formats import read_adapter

    a = read_adapter(fixture_path(real_adapters / name))
    assert a.family == family, a.metadata.get("family_evidence")
    assert a.metadata["family_evidence"]
    warnings = family_warnings(a)
    if name == "flux_aitoolkit_yew":  # metadata says SD 1.5; the weights are Flux
        assert len(warnings) == 1 and "sd_1.5" in warnings[0] and "flux" in warnings[0]
    else:
        assert not warnings
