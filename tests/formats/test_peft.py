"""PEFT reader / writer: real adapters, adapters PEFT itself saves, and exact round trips."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from registry.errors import AdapterFormatError, UnsupportedAdapterError
from tests.formats.lora_checks import assert_model_applies, assert_same_deltas, randomize_lora, read, write
from tests.tiny_models import tiny_gpt2, tiny_llama, tiny_unet

# name → (module count, ranks, component, scales, extra tensors, fan_in_fan_out)
REAL = {
    "peft_bloom560m_alpaca_oldpeft_bin": (24, [16], "model", {2.0}, [], True),
    "peft_distilbert_imdb": (12, [8], "model", {2.0}, ["classifier.bias", "classifier.weight",
                                                      "pre_classifier.bias", "pre_classifier.weight"], False),
    "peft_gpt2_emotion": (12, [8], "model", {1.0}, ["score.weight"], True),
    "peft_qwen25_05b_inference_engine": (48, [8], "model", {2.0}, [], False),
    "peft_rugpt3small_nested_prefix": (48, [4, 8], "model", {1.0, 2.0}, [], False),
    "diff_anime_unet_peft": (96, [4], "unet", {4.0}, [], False),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_adapter_reads(real_adapters: Path, name: str) -> None:
    n, ranks, component, scales, extra, fifo = REAL[name]
    a = read(real_adapters / name)
    assert (a.format, len(a.modules), a.ranks, a.components) == ("peft", n, ranks, [component])
    assert {round(m.scale, 6) for m in a.modules.values()} == scales
    assert sorted(a.extra_tensors) == [f"{component}.{k}" for k in extra]
    assert a.fan_in_fan_out is fifo
    cfg = json.loads((real_adapters / name / "adapter_config.json").read_text())
    assert a.base_model == cfg["base_model_name_or_path"]
    assert a.metadata["task_type"] == cfg["task_type"]


def test_real_adapter_details(real_adapters: Path) -> None:
    rugpt = read(real_adapters / "peft_rugpt3small_nested_prefix")
    assert rugpt.modules["model.transformer.h.0.attn.c_attn"].rank == 4
    assert rugpt.modules["model.transformer.h.0.mlp.c_proj"].rank == 8
    assert any("r=4" in w for w in rugpt.warnings) and any("nested" in w for w in rugpt.warnings)
    qwen = read(real_adapters / "peft_qwen25_05b_inference_engine")
    assert qwen.modules["model.model.layers.0.self_attn.v_proj"].out_features == 128
    anime = read(real_adapters / "diff_anime_unet_peft")
    assert "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q" in anime.modules


def _old_peft_delta(a: torch.Tensor, b: torch.Tensor, enable: list[bool], scale: float) -> torch.Tensor:
    """ΔW (out, in) exactly as old PEFT's MergedLinear.forward adds it (grouped conv1d + zero_pad)."""
    x = torch.eye(a.shape[1])  # (in, in): one unit input per row
    after_a = x @ a.T  # (in, k*r)
    after_b = F.conv1d(after_a.T.unsqueeze(0), b, groups=a.shape[0] // b.shape[1]).squeeze(0).T  # (in, out_k)
    out_features = len(enable) * after_b.shape[1] // sum(enable)
    ind = torch.zeros(len(enable), out_features // len(enable), dtype=torch.bool)
    ind[torch.tensor(enable)] = True
    result = torch.zeros(x.shape[0], out_features)
    result[:, ind.reshape(-1)] = after_b
    return (result * scale).T


def test_bloom_fused_qkv_matches_old_peft(real_adapters: Path) -> None:
    folder = real_adapters / "peft_bloom560m_alpaca_oldpeft_bin"
    a = read(folder)
    raw = torch.load(folder / "adapter_model.bin", map_location="cpu", weights_only=True)
    for i in (0, 11, 23):
        key = f"base_model.model.transformer.h.{i}.self_attention.query_key_value"
        m = a.modules[f"model.transformer.h.{i}.self_attention.query_key_value"]
        assert (m.source_type, m.down.shape, m.up.shape) == ("fused_qkv", (16, 1024), (3072, 16))
        want = _old_peft_delta(raw[f"{key}.lora_A.weight"], raw[f"{key}.lora_B.weight"], [True, False, True], 16 / 8)
        torch.testing.assert_close(m.delta(), want, rtol=1e-5, atol=1e-6)
        assert m.up[1024:2048].abs().max() == 0  # the disabled k slice stays untouched


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_adapter_round_trip(real_adapters: Path, tmp_path: Path, name: str) -> None:
    a = read(real_adapters / name)
    files = write(a, "peft", tmp_path)
    assert sorted(f.name for f in files) == ["adapter_config.json", "adapter_model.safetensors"]
    b = read(tmp_path)
    assert_same_deltas(b, a)
    assert sorted(b.extra_tensors) == sorted(a.extra_tensors)
    for k, t in a.extra_tensors.items():
        torch.testing.assert_close(b.extra_tensors[k], t)
    assert (b.components, b.fan_in_fan_out, b.base_model) == (a.components, a.fan_in_fan_out, a.base_model)
    assert not any("r=" in w for w in b.warnings), b.warnings  # mixed ranks now spelled out in rank_pattern


@pytest.mark.parametrize("name", ["peft_gpt2_emotion", "peft_distilbert_imdb"])
def test_real_adapter_loads_like_the_original(real_adapters: Path, tmp_path: Path, name: str) -> None:
    """Shape-matched random base models: PEFT applies our copy exactly as it applies the original."""
    from peft import PeftModel
    from transformers import (
        DistilBertConfig,
        DistilBertForSequenceClassification,
        GPT2Config,
        GPT2ForSequenceClassification,
    )

    torch.manual_seed(0)
    if name == "peft_gpt2_emotion":
        base = GPT2ForSequenceClassification(GPT2Config(n_embd=768, n_layer=12, n_head=12, n_inner=8, vocab_size=32,
                                                        n_positions=16, num_labels=6, pad_token_id=0))  # fmt: skip
    else:
        base = DistilBertForSequenceClassification(
            DistilBertConfig(dim=768, n_layers=6, n_heads=12, hidden_dim=8, vocab_size=32, max_position_embeddings=16)
        )
    write(read(real_adapters / name), "peft", tmp_path)
    ids = torch.randint(1, 32, (2, 8), generator=torch.Generator().manual_seed(1))
    logits = []
    for folder in (real_adapters / name, tmp_path):
        model = PeftModel.from_pretrained(copy.deepcopy(base).eval(), str(folder)).eval()
        with torch.no_grad():
            logits.append(model(input_ids=ids).logits)
    with torch.no_grad():
        assert not torch.allclose(logits[0], base.eval()(input_ids=ids).logits, atol=1e-4)
    torch.testing.assert_close(logits[1], logits[0], rtol=1e-5, atol=1e-5)


# --- adapters PEFT itself saves -------------------------------------------------------------------

LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj"]
CASES = {
    "plain": (tiny_llama, {"r": 4, "lora_alpha": 8, "target_modules": LLAMA_TARGETS}),
    "patterns": (tiny_llama, {"r": 4, "lora_alpha": 8, "target_modules": LLAMA_TARGETS,
                              "rank_pattern": {"v_proj": 2, "layers.1.self_attn.q_proj": 8},
                              "alpha_pattern": {"o_proj": 3, "gate_proj": 16}}),
    "rslora": (tiny_llama, {"r": 4, "lora_alpha": 8, "target_modules": LLAMA_TARGETS, "use_rslora": True}),
    "dora": (tiny_llama, {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "use_dora": True}),
    "modules_to_save": (tiny_llama, {"r": 4, "lora_alpha": 4, "target_modules": ["q_proj"],
                                     "modules_to_save": ["lm_head"], "task_type": "CAUSAL_LM"}),
    "gpt2_fan_in_fan_out": (tiny_gpt2, {"r": 4, "lora_alpha": 8, "target_modules": ["c_attn", "c_proj", "c_fc"],
                                        "fan_in_fan_out": True}),
}  # fmt: skip


def _peft_saved(make, cfg: dict, out: Path):
    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(make(), LoraConfig(**cfg))
    randomize_lora(pm, seed=5)
    if "modules_to_save" in cfg:
        with torch.no_grad():
            pm.base_model.model.lm_head.modules_to_save["default"].weight.add_(0.5)
    pm.save_pretrained(str(out))
    return pm.eval()


@torch.no_grad()
def _logits(model, seed: int = 2) -> torch.Tensor:
    ids = torch.randint(3, 64, (2, 12), generator=torch.Generator().manual_seed(seed))
    return model(input_ids=ids).logits


@pytest.mark.parametrize("case", sorted(CASES))
def test_peft_saved_adapter_round_trip(tmp_path: Path, case: str) -> None:
    from peft import PeftModel

    make, cfg = CASES[case]
    pm = _peft_saved(make, cfg, tmp_path / "orig")
    a = read(tmp_path / "orig")
    assert a.components == ["model"] and a.format == "peft"
    if case == "dora":
        assert all(m.magnitude is not None for m in a.modules.values())
    else:
        assert_model_applies(a, {"model": pm.base_model.model})
    if case == "patterns":
        assert a.ranks == [2, 4, 8] and a.modules["model.model.layers.0.mlp.gate_proj"].scale == 16 / 4
    if case == "rslora":
        assert a.use_rslora and {m.scale for m in a.modules.values()} == {8 / 2}
    if case == "modules_to_save":
        assert list(a.extra_tensors) == ["model.lm_head.weight"]
    assert a.fan_in_fan_out is (case == "gpt2_fan_in_fan_out")

    write(a, "peft", tmp_path / "ours")
    assert_same_deltas(read(tmp_path / "ours"), a)
    original = PeftModel.from_pretrained(make(), str(tmp_path / "orig")).eval()
    ours = PeftModel.from_pretrained(make(), str(tmp_path / "ours")).eval()
    want = _logits(original)
    assert not torch.allclose(want, _logits(make()), atol=1e-4)
    torch.testing.assert_close(_logits(ours), want, rtol=1e-5, atol=1e-5)


def test_unet_peft_folder_round_trip(tmp_path: Path) -> None:
    """A PEFT folder saved from a diffusers UNet reads as ``unet.``; both writers load back exactly."""
    from peft import LoraConfig, PeftModel, get_peft_model

    from tests.tiny_models import tiny_sd_pipeline

    pm = get_peft_model(tiny_unet(), LoraConfig(r=4, lora_alpha=8, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    randomize_lora(pm, seed=7)
    pm.save_pretrained(str(tmp_path / "orig"))
    a = read(tmp_path / "orig")
    assert (a.format, a.components, len(a.modules)) == ("peft", ["unet"], 48)
    assert_model_applies(a, {"unet": pm.base_model.model})
    write(a, "peft", tmp_path / "ours")
    write(a, "diffusers", tmp_path / "diff")
    assert json.loads((tmp_path / "ours" / "adapter_config.json").read_text())["auto_mapping"]["base_model_class"] == (
        "UNet2DConditionModel"
    )
    latents = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    emb = torch.randn(1, 8, 32, generator=torch.Generator().manual_seed(1))
    outs = []
    with torch.no_grad():
        for folder in ("orig", "ours"):
            unet = PeftModel.from_pretrained(tiny_unet(), str(tmp_path / folder)).eval()
            outs.append(unet(latents, 10, encoder_hidden_states=emb).sample)
        pipe = tiny_sd_pipeline()
        pipe.load_lora_weights(tmp_path / "diff")
        outs.append(pipe.unet(latents, 10, encoder_hidden_states=emb).sample)
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(outs[2], outs[0], rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:fan_in_fan_out is set to True")
def test_old_fused_qkv_adapter_loads_into_modern_peft(tmp_path: Path) -> None:
    """A synthetic old-PEFT bloom adapter (enable_lora) → our PEFT folder → same function as old PEFT."""
    from peft import PeftModel
    from transformers import BloomConfig, BloomForCausalLM

    def bloom():
        torch.manual_seed(0)
        return BloomForCausalLM(BloomConfig(vocab_size=64, hidden_size=32, n_layer=2, n_head=4)).eval()

    g = torch.Generator().manual_seed(3)
    enable, r, alpha = [True, False, True], 2, 4
    tensors, deltas = {}, {}
    for i in range(2):
        key = f"base_model.model.transformer.h.{i}.self_attention.query_key_value"
        a_, b_ = torch.randn(2 * r, 32, generator=g), torch.randn(64, r, 1, generator=g)  # A (k*r, in), B (out_k, r, 1)
        tensors |= {f"{key}.lora_A.weight": a_, f"{key}.lora_B.weight": b_}
        deltas[i] = _old_peft_delta(a_, b_, enable, alpha / r)  # (96, 32)
    old = tmp_path / "old"
    old.mkdir()
    torch.save(tensors, old / "adapter_model.bin")
    cfg = {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "enable_lora": enable, "fan_in_fan_out": True,
           "merge_weights": False, "target_modules": ["query_key_value"], "task_type": "CAUSAL_LM",
           "base_model_name_or_path": "bigscience/bloom-560m"}  # fmt: skip
    (old / "adapter_config.json").write_text(json.dumps(cfg))
    a = read(old)
    assert a.ranks == [4] and {m.source_type for m in a.modules.values()} == {"fused_qkv"}
    write(a, "peft", tmp_path / "new")
    reference = bloom()
    with torch.no_grad():
        for i, d in deltas.items():
            reference.transformer.h[i].self_attention.query_key_value.weight.add_(d)  # W (out, in) += ΔW
    ours = PeftModel.from_pretrained(bloom(), str(tmp_path / "new")).eval()
    torch.testing.assert_close(_logits(ours), _logits(reference), rtol=1e-5, atol=1e-5)


# --- configs and keys that must be refused or tolerated -------------------------------------------


def _folder(tmp_path: Path, config: dict) -> Path:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps(config))
    save_file({"base_model.model.layers.0.q.lora_A.weight": torch.randn(8, 16),
               "base_model.model.layers.0.q.lora_B.weight": torch.randn(16, 8)}, str(d / "adapter_model.safetensors"))  # fmt: skip
    return d


@pytest.mark.parametrize(
    ("config", "error", "phrase"),
    [
        ({"peft_type": "LORA", "r": "eight", "lora_alpha": 16}, AdapterFormatError, "'r'"),
        ({"peft_type": "LORA", "r": 8, "lora_alpha": "16"}, AdapterFormatError, "'lora_alpha'"),
        (
            {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "rank_pattern": {"q": "big"}},
            AdapterFormatError,
            "'rank_pattern'",
        ),
        ({"peft_type": "IA3", "target_modules": ["q"]}, UnsupportedAdapterError, "IA3"),
    ],
    ids=["r", "lora_alpha", "rank_pattern", "peft_type"],
)
def test_bad_config_names_file_and_field(tmp_path: Path, config: dict, error: type, phrase: str) -> None:
    with pytest.raises(error) as exc:
        read(_folder(tmp_path, config))
    assert phrase in str(exc.value) and "adapter_config.json" in str(exc.value)


def test_state_dict_without_config(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    p = tmp_path / "weights.safetensors"
    save_file({"base_model.model.base_model.model.lm.h.0.q.lora_A.weight": torch.randn(2, 8, generator=g),
               "base_model.model.base_model.model.lm.h.0.q.lora_B.weight": torch.randn(8, 2, generator=g)}, str(p))  # fmt: skip
    a = read(p)
    assert list(a.modules) == ["model.lm.h.0.q"] and a.modules["model.lm.h.0.q"].scale == 1.0
    assert any("adapter_config.json" in w for w in a.warnings)


def test_writer_refuses_multi_component_adapters(tmp_path: Path) -> None:
    from registry.errors import ExportError
    from registry.formats.canonical import LoraAdapter, LoraModule

    a_, b_ = torch.randn(2, 8), torch.randn(8, 2)
    mods = {n: LoraModule(n, a_, b_, 1.0) for n in ("unet.mid_block.attn.to_q", "text_encoder.text_model.fc1")}
    with pytest.raises(ExportError, match="diffusers"):
        write(LoraAdapter(modules=mods), "peft", tmp_path)
