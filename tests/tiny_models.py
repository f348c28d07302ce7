"""Tiny, seeded, fully offline models for tests (diffusers ``tests/lora/utils.py`` sizes).

``tiny_unet()``, ``tiny_sd_pipeline()`` (a real ``StableDiffusionPipeline``: UNet, VAE, CLIP
text encoder, and a CLIP tokenizer built from a small vocab written to a temp dir),
``tiny_llama()`` and ``tiny_gpt2()`` (GPT-2 keeps its ``Conv1D`` layers: PEFT's
``fan_in_fan_out``). Each call builds a fresh model from the same seed, in well under a second.
Nothing touches a hub.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_OFFLINE", "1")

UNET_KWARGS: dict[str, Any] = {
    "block_out_channels": (32, 64),
    "layers_per_block": 2,
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "cross_attention_dim": 32,
    "norm_num_groups": 32,
}
VAE_KWARGS: dict[str, Any] = {
    "block_out_channels": [32, 64],
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"],
    "latent_channels": 4,
    "sample_size": 32,
}
TEXT_KWARGS: dict[str, Any] = {
    "bos_token_id": 0,
    "eos_token_id": 1,
    "pad_token_id": 1,
    "hidden_size": 32,
    "intermediate_size": 37,
    "layer_norm_eps": 1e-05,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "vocab_size": 128,
    "max_position_embeddings": 77,
}
SEED = 0


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def tiny_unet(seed: int = SEED):  # -> UNet2DConditionModel
    """UNet2DConditionModel, block_out_channels (32, 64), cross_attention_dim 32, 32×32 latents."""
    from diffusers import UNet2DConditionModel

    _seed(seed)
    return UNet2DConditionModel(**UNET_KWARGS).eval()


def tiny_vae(seed: int = SEED):  # -> AutoencoderKL
    from diffusers import AutoencoderKL

    _seed(seed)
    return AutoencoderKL(**VAE_KWARGS).eval()


def tiny_text_encoder(seed: int = SEED):  # -> CLIPTextModel
    from transformers import CLIPTextConfig, CLIPTextModel

    _seed(seed)
    return CLIPTextModel(CLIPTextConfig(**TEXT_KWARGS)).eval()


@cache
def _tokenizer_dir() -> Path:
    """vocab.json + merges.txt for a byte-level BPE over lowercase letters, digits and a few marks."""
    specials = ["<|startoftext|>", "<|endoftext|>"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    merges = ["t h", "th e</w>", "a n", "o n</w>", "i n", "e r</w>", "s t"]
    vocab_tokens = specials + chars + [c + "</w>" for c in chars]
    for merge in merges:
        vocab_tokens.append(merge.replace(" ", ""))
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(vocab_tokens))}
    assert len(vocab) <= TEXT_KWARGS["vocab_size"]
    d = Path(tempfile.mkdtemp(prefix="loradex-tiny-clip-tok-"))
    atexit.register(shutil.rmtree, d, True)
    (d / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return d


def tiny_tokenizer():  # -> CLIPTokenizer
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(_tokenizer_dir()), model_max_length=TEXT_KWARGS["max_position_embeddings"])


def tiny_scheduler():  # -> DDIMScheduler
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def tiny_sd_pipeline(seed: int = SEED):  # -> StableDiffusionPipeline
    """A real StableDiffusionPipeline from configs (no safety checker), on CPU, seeded."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(
        unet=tiny_unet(seed),
        vae=tiny_vae(seed),
        text_encoder=tiny_text_encoder(seed),
        tokenizer=tiny_tokenizer(),
        scheduler=tiny_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_llama(seed: int = SEED):  # -> LlamaForCausalLM
    """LlamaForCausalLM: 2 layers, hidden 32, GQA (4 heads, 2 kv heads), vocab 64."""
    from transformers import LlamaConfig, LlamaForCausalLM

    _seed(seed)
    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    return LlamaForCausalLM(cfg).eval()


def tiny_gpt2(seed: int = SEED, **overrides: Any):  # -> GPT2LMHeadModel
    """GPT2LMHeadModel: 2 layers, n_embd 32, vocab 64; attn/mlp projections are ``Conv1D``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    _seed(seed)
    kwargs: dict[str, Any] = {
        "vocab_size": 64, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64,
        "bos_token_id": 0, "eos_token_id": 1,
    }  # fmt: skip
    kwargs.update(overrides)
    return GPT2LMHeadModel(GPT2Config(**kwargs)).eval()
