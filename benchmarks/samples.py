"""Build the bundled sample adapters in ``samples/adapters`` (``python -m benchmarks.samples``).

Small, seeded adapters with the real key layouts and module shapes of six base families
(SD 1.x kohya, SDXL kohya, SD 2.x diffusers, Flux diffusers, GPT-2 PEFT, Llama PEFT), each
with a description sidecar. They are written key by key here, not by loradex's writers, so
they also test the readers on files the project did not produce. The benchmark zoos
(``benchmarks/zoo``) add adapters whose effect can be measured.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[1] / "samples" / "adapters"
RANK = 4


def _pair(g: torch.Generator, out_f: int, in_f: int, rank: int = RANK) -> tuple[torch.Tensor, torch.Tensor]:
    down = torch.randn(rank, in_f, generator=g) / in_f**0.5  # A: (r, in)
    up = torch.randn(out_f, rank, generator=g) * 0.02  # B: (out, r)
    return down, up


def _kohya(path: Path, modules: dict[str, tuple[int, int]], meta: dict[str, str], seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    t: dict[str, torch.Tensor] = {}
    for name, (out_f, in_f) in modules.items():
        down, up = _pair(g, out_f, in_f)
        t[f"{name}.lora_down.weight"], t[f"{name}.lora_up.weight"] = down, up
        t[f"{name}.alpha"] = torch.tensor(float(RANK))
    save_file(t, str(path), metadata=meta)


def _diffusers(path: Path, modules: dict[str, tuple[int, int]], seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    t: dict[str, torch.Tensor] = {}
    for name, (out_f, in_f) in modules.items():
        t[f"{name}.lora_A.weight"], t[f"{name}.lora_B.weight"] = _pair(g, out_f, in_f)
    save_file(t, str(path), metadata={"format": "pt"})


def _peft(folder: Path, modules: dict[str, tuple[int, int]], config: dict, seed: int, transpose: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    t: dict[str, torch.Tensor] = {}
    for name, (out_f, in_f) in modules.items():
        t[f"base_model.model.{name}.lora_A.weight"], t[f"base_model.model.{name}.lora_B.weight"] = _pair(g, out_f, in_f)
    save_file(t, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": RANK, **config}, indent=2))


def build(out: Path = OUT) -> list[Path]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    sd1 = {
        f"lora_unet_down_blocks_{b}_attentions_0_transformer_blocks_0_attn2_{p}": (
            w,
            768 if p in ("to_k", "to_v") else w,
        )
        for b, w in ((0, 320), (1, 640))
        for p in ("to_q", "to_k", "to_v")
    }
    _kohya(out / "watercolor_sd15.safetensors", sd1, {
        "ss_base_model_version": "sd_v1", "ss_output_name": "watercolor_sd15", "ss_network_dim": str(RANK),
        "ss_network_alpha": str(RANK), "ss_network_module": "networks.lora",
        "ss_tag_frequency": json.dumps({"10_watercolor": {"watercolor": 40, "soft wash": 12, "paper texture": 3}}),
    }, seed=1)  # fmt: skip
    (out / "watercolor_sd15.txt").write_text("unused note")  # non-adapter files are ignored in folders
    (out / "watercolor_sd15.civitai.info").write_text(json.dumps({
        "description": "Soft watercolor painting style: wet washes, bleeding edges and visible paper grain.",
        "trainedWords": ["watercolor"], "tags": ["style", "painting"], "baseModel": "SD 1.5",
    }))  # fmt: skip
    sdxl = {f"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_{p}": (640, 2048 if p in ("to_k", "to_v") else 640)
            for p in ("to_q", "to_k", "to_v")}  # fmt: skip
    sdxl |= {f"lora_te1_text_model_encoder_layers_0_self_attn_{p}": (768, 768) for p in ("q_proj", "v_proj")}
    sdxl |= {f"lora_te2_text_model_encoder_layers_0_self_attn_{p}": (1280, 1280) for p in ("q_proj", "v_proj")}
    _kohya(out / "pixel_art_sdxl.safetensors", sdxl, {
        "modelspec.architecture": "stable-diffusion-xl-v1-base/lora", "modelspec.title": "Pixel Art XL",
        "modelspec.description": "Crisp 16-bit pixel art: hard edges, limited palette, dithered shading.",
        "modelspec.trigger_phrase": "pixel art", "modelspec.license": "openrail++", "modelspec.tags": "style, pixel",
    }, seed=2)  # fmt: skip
    sd2_dir = out / "ink_sketch_sd2"
    sd2_dir.mkdir()
    sd2 = {f"unet.down_blocks.1.attentions.{i}.transformer_blocks.0.attn2.{p}": (640, 1024 if p in ("to_k", "to_v") else 640)
           for i in (0, 1) for p in ("to_q", "to_k", "to_v")}  # fmt: skip
    _diffusers(sd2_dir / "pytorch_lora_weights.safetensors", sd2, seed=3)
    (sd2_dir / "description.txt").write_text("Black ink pen sketch with cross-hatching on white paper, for SD 2.x.\n")
    flux = {f"transformer.transformer_blocks.{i}.attn.{p}": (3072, 3072) for i in (0, 1) for p in ("to_q", "to_v")}
    _diffusers(out / "neon_glow_flux.safetensors", flux, seed=4)
    (out / "neon_glow_flux.json").write_text(
        json.dumps(
            {
                "description": "Neon glow lighting: saturated magenta and cyan rim light at night.",
                "trainedWords": ["neon glow"],
            }
        )
    )
    gpt2 = {f"transformer.h.{i}.attn.c_attn": (2304, 768) for i in (0, 1)}
    _peft(out / "shakespeare_gpt2", gpt2, {"lora_alpha": 8, "target_modules": ["c_attn"], "fan_in_fan_out": True,
          "base_model_name_or_path": "gpt2", "task_type": "CAUSAL_LM"}, seed=5)  # fmt: skip
    (out / "shakespeare_gpt2" / "README.md").write_text(
        "---\nlicense: mit\nbase_model: gpt2\ntags:\n- poetry\n---\n# Shakespeare GPT-2\n\n"
        "Rewrites modern English in the style of Shakespeare's plays, with thee, thou and iambic rhythm.\n"
    )
    llama = {f"model.layers.{i}.self_attn.{p}": (2048, 2048) for i in (0, 1) for p in ("q_proj", "v_proj")}
    _peft(out / "sql_helper_llama", llama, {"lora_alpha": 16, "target_modules": ["q_proj", "v_proj"],
          "base_model_name_or_path": "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "task_type": "CAUSAL_LM"}, seed=6)  # fmt: skip
    (out / "sql_helper_llama" / "description.txt").write_text("Turns questions about a table into SQL queries.\n")
    return sorted(out.rglob("*"))


if __name__ == "__main__":
    files = build()
    print(f"wrote {sum(f.is_file() for f in files)} files to {OUT}")
