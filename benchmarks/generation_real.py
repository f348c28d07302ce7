"""A generator for a family with real-sized adapters (SD1.5 module shapes), end to end.

Training data: the real third-party SD1.x adapters beside the repo (``../shared/fixtures``:
diffusers attn-procs, diffusers ``unet.``-prefixed, PEFT UNet, cloneofsimo UNet + CLIP; with
``lokr=True`` also the LyCORIS LoKr, whose conv and MLP modules widen the module set to 350
layers) plus synthetic adapters with exactly their module sets, ranks and per-module ‖ΔW‖.
A small generator is trained on them, generates an adapter, and the diffusers file it writes
is loaded into a ``StableDiffusionPipeline`` built from the SD1.5 configs below (no download:
the weights are random or left uninitialised).

``python -m benchmarks.run generation_real`` → ``results/generation_real.{json,md}``: per
method, training seconds, generation latency p50, the peak memory of loading the checkpoint and
making one adapter (peak resident memory of a fresh process doing it, minus that of one that only
loads the text encoder), checkpoint size, and the load check.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

# name → (path under the fixtures folder, a short description in the fixture's own words)
SD1_FIXTURES: dict[str, tuple[str, str]] = {
    "diff_attnproc_rick_morty": (
        "diff_attnproc_rick_morty/pytorch_lora_weights.safetensors",
        "Rick and Morty cartoon art style characters",
    ),
    "diff_unetprefix_flower_sd14": (
        "diff_unetprefix_flower_sd14/pytorch_lora_weights.safetensors",
        "photorealistic or stylized flowers from a curated flower dataset",
    ),
    "diff_anime_unet_peft": ("diff_anime_unet_peft", "anime faces"),
    "clos_disney_st": ("clos_disney_st/lora_disney.safetensors", "disney style, baby lion in disney style"),
}
LOKR_FIXTURE = ("lycoris_lokr_smart_falcon8/smart_falcon_8_lokr.safetensors", "Smart Falcon anime character, LoKr")
SYNTHETIC_STYLES = [
    "soft watercolor painting", "pixel art sprites", "thick oil paint brush strokes", "pencil sketch",
    "neon cyberpunk city at night", "ukiyo-e woodblock print", "claymation figures", "vintage sepia photograph",
    "low poly 3d render", "stained glass window", "comic book ink lines", "pastel chalk drawing",
]  # fmt: skip
RANK = 4  # canonical rank of the real-sized generators (the LoKr has rank-64 modules; canonical SVD truncates)
# Small generators: a few dozen steps are enough to exercise the whole path at real module shapes.
CONFIGS: dict[str, dict[str, Any]] = {
    "hypernet": {"width": 16, "steps": 40, "batch_size": 4, "rank": RANK},
    "cvae": {"width": 16, "latent": 8, "steps": 40, "batch_size": 4, "rank": RANK},
    "semantic": {"width": 16, "latent": 8, "steps": 40, "batch_size": 4, "contexts": 1, "k": 2, "rank": RANK},
    "topk_mean": {"k": 2, "rank": RANK},
}

# SD1.5 configs (runwayml/stable-diffusion-v1-5 unet/, vae/, text_encoder/ config.json)
SD15_UNET: dict[str, Any] = {
    "sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280), "cross_attention_dim": 768, "attention_head_dim": 8,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "norm_num_groups": 32,
}  # fmt: skip
SD15_VAE: dict[str, Any] = {
    "sample_size": 512, "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2,
    "block_out_channels": (128, 256, 512, 512), "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
}  # fmt: skip
SD15_TEXT: dict[str, Any] = {
    "vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "projection_dim": 768,
}  # fmt: skip


def sd15_pipeline(init: bool = False) -> Any:
    """A ``StableDiffusionPipeline`` with the SD1.5 UNet, VAE and CLIP-L text encoder, from configs.

    ``init=False``: built on the meta device and given uninitialised CPU storage (seconds, and
    untouched pages cost no memory): enough to install and inspect adapters. ``init=True``:
    randomly initialised weights, so the pipeline can run. No tokenizer: pass ``prompt_embeds``.
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    def build() -> tuple[Any, Any, Any]:
        torch.manual_seed(0)
        return (UNet2DConditionModel(**SD15_UNET), AutoencoderKL(**SD15_VAE),
                CLIPTextModel(CLIPTextConfig(**SD15_TEXT)))  # fmt: skip

    if init:
        unet, vae, te = build()
    else:
        with torch.device("meta"):
            unet, vae, te = build()
        unet, vae, te = (m.to_empty(device="cpu") for m in (unet, vae, te))
    sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)  # fmt: skip
    pipe = StableDiffusionPipeline(unet=unet.eval(), vae=vae.eval(), text_encoder=te.eval(), tokenizer=None,
                                   scheduler=sched, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def synthetic_like(template: Any, seed: int, description: str) -> Any:
    """An adapter with ``template``'s modules, ranks, scales and per-module ‖ΔW‖, random directions."""
    import torch

    from registry.formats.canonical import LoraAdapter, LoraModule

    g = torch.Generator().manual_seed(seed)
    mods = {}
    for name, m in sorted(template.modules.items()):
        down = torch.randn(m.down.shape, generator=g)  # (r, in[, kh, kw])
        up = torch.randn(m.up.shape, generator=g)  # (out, r[, 1, 1])
        k = (_norm(m.up, m.down) / max(_norm(up, down), 1e-12)) ** 0.5  # scale shared by the two
        mods[name] = LoraModule(name, down * k, up * k, m.scale, alpha=m.alpha, kind=m.kind)
    return LoraAdapter(modules=mods, family=template.family, format=template.format, metadata={},
                       description=description, base_model=template.base_model,
                       fan_in_fan_out=template.fan_in_fan_out)  # fmt: skip


def _norm(up: Any, down: Any) -> float:
    """‖up·down‖ without forming the product: ‖BA‖² = Σ (BᵀB) ⊙ (AAᵀ)."""
    b = up.reshape(up.shape[0], -1).double()  # (out, r)
    a = down.reshape(down.shape[0], -1).double()  # (r, in_flat)
    return float(((b.T @ b) * (a @ a.T)).sum().clamp_min(0)) ** 0.5


def train_items(fixtures: Path, *, lokr: bool = False, synthetic_per_real: int = 2) -> list[Any]:
    """The SD1.x fixtures and ``synthetic_per_real`` synthetic adapters per fixture, as training items."""
    from generators import TrainItem
    from registry.formats import read_adapter

    real = dict(SD1_FIXTURES)
    if lokr:
        real["lycoris_lokr_smart_falcon8"] = LOKR_FIXTURE
    items = []
    styles = iter(SYNTHETIC_STYLES * 4)
    for i, (name, (rel, desc)) in enumerate(real.items()):
        ad = read_adapter(fixtures / rel)
        if ad.family != "sd1":
            raise ValueError(f"{name}: family {ad.family!r}, expected sd1")
        items.append(TrainItem(name, ad, [desc], name))
        for j in range(synthetic_per_real):
            style = next(styles)
            syn = synthetic_like(ad, 1000 * i + j, style)
            items.append(TrainItem(f"synthetic_{i}_{j}", syn, [style, f"in the style of {style}"], f"syn_{i}_{j}"))
    return items


_CHILD = """
import resource, sys
import torch
from encoders.text import get_text_encoder
torch.set_num_threads(1)
te = get_text_encoder()
te.encode(["warm up"])
if sys.argv[1]:
    from generators import load_generator
    load_generator(sys.argv[1], text_encoder=te).generate("stained glass flowers", seed=2)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def child_peak_mb(folder: Path | None) -> float:
    """Peak resident MB of a fresh process that loads the text encoder and, with ``folder``, loads that
    generator checkpoint and makes one adapter (the difference of the two is what generation costs)."""
    import os
    import subprocess
    import sys

    from benchmarks.run import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(folder or "")], env=env, cwd=REPO, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return int(out.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def load_check(pipe: Any, adapter: Any, folder: Path, name: str = "gen") -> dict[str, Any]:
    """Write ``adapter`` as a diffusers file, load it into ``pipe``; every layer's installed ΔW vs the adapter's."""
    from registry.formats import write_adapter

    (path,) = write_adapter(adapter, "diffusers", folder)
    import torch

    pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=name)
    worst = 0.0
    with torch.no_grad():
        for mname, m in adapter.modules.items():
            comp, _, sub = mname.partition(".")
            model = getattr(pipe, comp)
            layer = model.get_submodule(sub) if comp == "unet" else _te_layer(model, sub)
            got = layer.get_delta_weight(name).float()  # (out, in[, kh, kw]): what the pipeline will add
            if tuple(got.shape) != tuple(layer.base_layer.weight.shape):
                raise ValueError(f"{mname}: ΔW {tuple(got.shape)} vs layer {tuple(layer.base_layer.weight.shape)}")
            want = m.delta().float().reshape(got.shape)
            worst = max(worst, float((got - want).norm() / want.norm().clamp_min(1e-12)))
    return {"modules": len(adapter.modules), "max_relative_delta_error": worst, "file_bytes": path.stat().st_size}


def _te_layer(model: Any, sub: str) -> Any:
    """A CLIP layer by its adapter path (transformers 5 dropped the ``text_model.`` level on some models)."""
    try:
        return model.get_submodule(sub)
    except AttributeError:
        return model.get_submodule(sub.removeprefix("text_model."))


def suite_generation_real(args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    import torch

    from benchmarks.run import FIXTURES
    from encoders.text import get_text_encoder
    from generators import load_generator, train_generator
    from generators.base import prepare

    torch.set_num_threads(1)
    quick = bool(getattr(args, "quick", False))
    te = get_text_encoder()
    rows = []
    out: dict[str, Any] = {}
    baseline = child_peak_mb(None)
    for lokr in (False, True):
        t0 = time.perf_counter()
        items = train_items(FIXTURES, lokr=lokr)
        data = prepare(items, te, RANK)
        prep_s = time.perf_counter() - t0
        layout = data.layout
        pipe = sd15_pipeline(init=False)
        with tempfile.TemporaryDirectory() as d:
            for method, cfg in CONFIGS.items():
                res = train_generator(method, "sd1", items, Path(d) / method, config=cfg, text_encoder=te,
                                      prepared=data)  # fmt: skip
                gen = load_generator(Path(d) / method, text_encoder=te)
                made = gen.generate("stained glass flowers", seed=2)
                peak = child_peak_mb(Path(d) / method)
                times = []
                queries = ["a watercolor painting of a fox", "anime portrait, big eyes", "cartoon characters"]
                for q in queries * (1 if quick else 3):
                    te.clear_cache()
                    t1 = time.perf_counter()
                    gen.generate(q, seed=1)
                    times.append(time.perf_counter() - t1)
                check = load_check(pipe, made.adapter, Path(d) / f"{method}-out", name=method)
                pipe.delete_adapters(method)
                size = sum(f.stat().st_size for f in (Path(d) / method).iterdir())
                rows.append({"fixtures": "with LoKr" if lokr else "attention-only", "method": method,
                             "modules": len(layout.modules), "train_s": round(res["seconds"], 1),
                             "latency_p50_ms": round(1000 * statistics.median(times), 1),
                             "load_and_generate_peak_mb": round(peak - baseline, 1),
                             "adapter_mb": round(4 * layout.param_count() / 1e6, 1),
                             "checkpoint_mb": round(size / 1e6, 2),
                             "max_relative_delta_error": check["max_relative_delta_error"]})  # fmt: skip
        out["lokr" if lokr else "attention"] = {"items": len(items), "modules": len(layout.modules),
                                                "rank": layout.rank, "prepare_s": round(prep_s, 1),
                                                "params_per_adapter": layout.param_count()}  # fmt: skip
        del pipe
    import resource

    out["process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return {"notes": __doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else "", "runs": out, "rows": rows}
