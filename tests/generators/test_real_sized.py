"""A generator for real-sized adapters: trained on the real SD1.x fixtures (and synthetic adapters of
their module sets), it writes a diffusers file that loads into a pipeline built from the SD1.5
configs, layer by layer with the generated ΔW. Generation time and memory: the benchmark
``generation_real`` (``benchmarks/generation_real.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks.generation_real import CONFIGS, load_check, sd15_pipeline, synthetic_like, train_items
from generators import load_generator, train_generator


def test_synthetic_adapter_keeps_the_template_modules_and_norms(real_adapters: Path) -> None:
    from registry.formats import read_adapter

    real = read_adapter(real_adapters / "diff_anime_unet_peft")
    syn = synthetic_like(real, 3, "pixel art")
    assert set(syn.modules) == set(real.modules) and syn.family == "sd1"
    for name in list(real.modules)[:8]:
        a, b = real.modules[name], syn.modules[name]
        assert a.down.shape == b.down.shape and a.up.shape == b.up.shape
        assert float(b.delta().norm()) == pytest.approx(float(a.delta().norm()), rel=1e-4)
        assert not torch.allclose(a.delta(), b.delta())


def _generated(items: list, method: str, tmp_path: Path, text_encoder: Any, steps: int) -> Any:
    train_generator(method, "sd1", items, tmp_path / "g", config={**CONFIGS[method], "steps": steps},
                    text_encoder=text_encoder)  # fmt: skip
    gen = load_generator(tmp_path / "g", text_encoder=text_encoder)
    return gen, gen.generate("anime portrait with big eyes", seed=3)


def test_sd15_shaped_generator_output_loads_into_an_sd15_pipeline(real_adapters: Path, text_encoder: Any,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    items = train_items(real_adapters, synthetic_per_real=1)
    gen, out = _generated(items, "cvae", tmp_path, text_encoder, steps=6)
    ad = out.adapter
    # the union of the fixtures' module sets: UNet attention (every block) and CLIP-L attention
    assert len(ad.modules) == len(gen.layout.modules) == 192
    assert {m.component for m in ad.modules.values()} == {"unet", "text_encoder"}
    assert ad.family == "sd1" and ad.format == "diffusers" and ad.ranks == [4]
    assert all(float(m.delta().norm()) > 0 for m in ad.modules.values())
    pipe = sd15_pipeline(init=False)
    check = load_check(pipe, ad, tmp_path / "out")
    assert check["modules"] == 192 and check["max_relative_delta_error"] < 1e-5
    unet_lora = [n for n, mod in pipe.unet.named_modules() if hasattr(mod, "lora_A") and "gen" in mod.lora_A]
    assert len(unet_lora) == sum(m.component == "unet" for m in ad.modules.values())


@pytest.mark.slow
def test_sd15_generator_with_the_lokr_fixture_changes_what_the_pipeline_denoises(real_adapters: Path,
                                                                                 text_encoder: Any,
                                                                                 tmp_path: Path) -> None:  # fmt: skip
    """Every SD1.x fixture, the LoKr's conv and MLP layers included (350 modules); initialised SD1.5 weights."""
    items = train_items(real_adapters, lokr=True, synthetic_per_real=1)
    gen, out = _generated(items, "hypernet", tmp_path, text_encoder, steps=20)
    ad = out.adapter
    assert len(ad.modules) == 350 and any(m.kind == "conv" for m in ad.modules.values())
    pipe = sd15_pipeline(init=True)
    assert load_check(pipe, ad, tmp_path / "out")["max_relative_delta_error"] < 1e-5
    emb = torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(0))
    kw = {"prompt_embeds": emb, "negative_prompt_embeds": torch.zeros_like(emb), "num_inference_steps": 1,
          "height": 64, "width": 64, "output_type": "latent", "guidance_scale": 1.0}  # fmt: skip
    with torch.no_grad():
        with_adapter = pipe(generator=torch.Generator().manual_seed(0), **kw).images
        pipe.disable_lora()
        without = pipe(generator=torch.Generator().manual_seed(0), **kw).images
    assert torch.isfinite(with_adapter).all() and with_adapter.shape == (1, 4, 8, 8)
    assert not torch.allclose(with_adapter, without, atol=1e-5)
