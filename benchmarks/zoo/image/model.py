"""The image zoo's base: a tiny ``StableDiffusionPipeline`` built from configs, fully offline.

* **UNet** ``UNet2DConditionModel`` on 16×16×12 "latents", cross-attention to the text states.
* **VAE** ``PixelShuffleVAE``: pixel space. ``encode`` folds each 2×2 pixel block into channels
  (32×32×3 → 16×16×12) and ``decode`` unfolds it, exactly and without parameters; it has the
  ``config.block_out_channels`` / ``scaling_factor`` the pipeline reads (scale factor 2).
* **Text encoder** a small ``CLIPTextModel`` and a ``CLIPTokenizer`` whose BPE vocabulary
  (written locally) makes every caption word one token; any other text falls back to letters.
* **Scheduler** ``DDIMScheduler``: cosine betas, v-prediction, trailing timesteps.

``save_base`` writes the pipeline folder with ``save_pretrained`` (``model_index.json`` names
``benchmarks.zoo.image.model.PixelShuffleVAE``, importable from the repository root), and
``load_base`` / ``StableDiffusionPipeline.from_pretrained`` read it back.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput
from torch import nn

from benchmarks.zoo.common import FromDict
from benchmarks.zoo.image.captions import vocabulary

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MODEL_CONFIG_FILE = "zoo_model_config.json"
BASE_NAME = "benchmarks/zoo/image/base"  # how adapters name their base model (registry family zoo-image)
SPECIALS = ("<|startoftext|>", "<|endoftext|>")
CHARS = "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-:;()&/"


@dataclass
class ModelConfig(FromDict):
    """Shape of the base pipeline (saved as ``zoo_model_config.json`` in the pipeline folder)."""

    channels: tuple[int, ...] = (32, 64)  # UNet block widths: 16×16, then 8×8
    layers_per_block: int = 2  # ResNet + transformer layers per down block (up blocks have one more)
    heads: int = 2  # attention heads (diffusers' legacy ``attention_head_dim`` = heads)
    norm_groups: int = 16  # GroupNorm groups in the UNet
    text_width: int = 64  # CLIP hidden size = UNet cross-attention width
    text_layers: int = 2  # CLIP encoder layers
    text_heads: int = 2  # CLIP attention heads
    max_tokens: int = 16  # tokenizer model_max_length (captions are at most 12 tokens)

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        if any(c % self.norm_groups for c in self.channels):
            raise ValueError(f"channels {self.channels} must be multiples of norm_groups {self.norm_groups}")
        if self.text_width % self.text_heads:
            raise ValueError(f"text_width {self.text_width} is not divisible by text_heads {self.text_heads}")

    @classmethod
    def tiny(cls) -> ModelConfig:
        return cls(channels=(16, 32), layers_per_block=1, norm_groups=8, text_layers=1)


class PixelShuffleVAE(ModelMixin, ConfigMixin):
    """Pixel space for ``StableDiffusionPipeline``: a lossless, parameter-free 2×2 space-to-depth map."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        factor: int = 2,
        in_channels: int = 3,
        latent_channels: int = 12,
        block_out_channels: tuple[int, ...] = (12, 12),
        scaling_factor: float = 1.0,
        force_upcast: bool = False,
    ) -> None:
        super().__init__()
        if latent_channels != in_channels * factor * factor or 2 ** (len(block_out_channels) - 1) != factor:
            raise ValueError(f"inconsistent PixelShuffleVAE config: factor {factor}, latents {latent_channels}")
        self.register_buffer("step", torch.zeros(()), persistent=True)  # gives the model a device and a file

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> Any:  # x: (B, 3, 32, 32) in [-1, 1]
        latents = nn.functional.pixel_unshuffle(x, self.config.factor)  # (B, 12, 16, 16)
        return _Latents(latents) if return_dict else (latents,)

    def decode(self, z: torch.Tensor, return_dict: bool = True, generator: Any = None) -> Any:  # z: (B, 12, 16, 16)
        image = nn.functional.pixel_shuffle(z, self.config.factor)  # (B, 3, 32, 32)
        return DecoderOutput(sample=image) if return_dict else (image,)


class _Latents:
    """Encoder output with ``.latents`` (what ``retrieve_latents`` in the img2img pipeline reads)."""

    def __init__(self, latents: torch.Tensor) -> None:
        self.latents = latents


def _merge_order(words: list[str]) -> list[str]:
    """Words ordered so that no word's merge chain cuts another's.

    Word ``w`` is built by the merges ``(w[:k], w[k])``. If ``w``'s first letter pair occurs inside
    ``v`` anywhere but at ``v``'s start, ``v``'s merges must rank first, or ``w``'s pair would
    merge inside ``v`` and split it. A topological sort (ties in the given order) respects that.
    """
    after: dict[str, set[str]] = {w: set() for w in words}  # w -> words that must come before w
    for w in words:
        for v in words:
            if v != w and len(w) > 1 and w[:2] in v[1:] + "\0":
                after[w].add(v)
    order: list[str] = []
    todo = list(words)
    while todo:
        ready = [w for w in todo if after[w] <= set(order)] or todo[:1]  # a cycle: take the first
        order.append(ready[0])
        todo.remove(ready[0])
    return order


def _bpe_files(words: list[str], folder: Path) -> None:
    """``vocab.json`` + ``merges.txt`` for CLIP's BPE: single letters, and one token per word.

    Each word is built left to right (``c i`` → ``ci``, ``ci r`` → ``cir`` …), word after word in
    ``_merge_order``; ``build_tokenizer`` checks that every word comes out as one token.
    """
    tokens: list[str] = list(SPECIALS) + list(CHARS) + [c + "</w>" for c in CHARS]
    merges: list[tuple[str, str]] = []
    for w in _merge_order(words):
        for k in range(1, len(w)):
            merges.append((w[:k], w[k] + ("</w>" if k == len(w) - 1 else "")))
    merges = list(dict.fromkeys(merges))
    tokens += [a + b for a, b in merges]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")


def build_tokenizer(max_tokens: int = 16) -> Any:  # -> CLIPTokenizer
    """The zoo's CLIP tokenizer (every caption word is one token), built without any download."""
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory(prefix="zoo-image-tok-") as d:
        _bpe_files(vocabulary(), Path(d))
        tok = CLIPTokenizer.from_pretrained(d, model_max_length=max_tokens)
    split = [w for w in vocabulary() if len(tok(w).input_ids) != 3]
    if split:
        raise RuntimeError(f"caption words split into several tokens: {split}")
    return tok


def scheduler_config() -> dict[str, Any]:
    return {
        "num_train_timesteps": 1000,
        "beta_schedule": "squaredcos_cap_v2",
        "prediction_type": "v_prediction",
        "timestep_spacing": "trailing",
        "clip_sample": False,  # StableDiffusionPipeline turns it off anyway
        "set_alpha_to_one": True,
        "steps_offset": 1,
    }


def build_pipeline(cfg: ModelConfig, seed: int = 0) -> StableDiffusionPipeline:
    """A freshly initialised pipeline (seeded), on CPU, progress bar off."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = build_tokenizer(cfg.max_tokens)
    n = len(cfg.channels)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=12,
        out_channels=12,
        block_out_channels=cfg.channels,
        layers_per_block=cfg.layers_per_block,
        down_block_types=("CrossAttnDownBlock2D",) * n,
        up_block_types=("CrossAttnUpBlock2D",) * n,
        only_cross_attention=(True,) + (False,) * (n - 1),  # no self-attention at 16×16: cheap on CPU
        cross_attention_dim=cfg.text_width,
        attention_head_dim=cfg.heads,
        norm_num_groups=cfg.norm_groups,
        use_linear_projection=True,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tok),
            hidden_size=cfg.text_width,
            intermediate_size=cfg.text_width * 2,
            num_hidden_layers=cfg.text_layers,
            num_attention_heads=cfg.text_heads,
            max_position_embeddings=cfg.max_tokens,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=PixelShuffleVAE(),
        text_encoder=text,
        tokenizer=tok,
        scheduler=DDIMScheduler(**scheduler_config()),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_base(pipe: StableDiffusionPipeline, cfg: ModelConfig, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out, safe_serialization=True)
    (out / MODEL_CONFIG_FILE).write_text(json.dumps(asdict(cfg), indent=2))


def load_base(path: str | Path, device: str = "cpu") -> StableDiffusionPipeline:
    """The saved pipeline (fp32, eval mode, progress bar off) on ``device``."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # silence "Expected types for vae: AutoencoderKL" (pixel space by design)
    try:
        pipe = StableDiffusionPipeline.from_pretrained(str(path), safety_checker=None, requires_safety_checker=False)
    finally:
        diffusers_logging.set_verbosity(level)
    pipe = pipe.to(device)
    pipe.unet.eval()
    pipe.text_encoder.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def encode_prompts(pipe: StableDiffusionPipeline, prompts: list[str]) -> torch.Tensor:
    """Text states ``(B, max_tokens, width)`` exactly as the pipeline computes them."""
    tok = pipe.tokenizer
    ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
    return pipe.text_encoder(ids.input_ids.to(pipe.text_encoder.device))[0]


def tokenize(pipe: StableDiffusionPipeline, prompts: list[str]) -> torch.Tensor:
    tok = pipe.tokenizer
    return tok(
        prompts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
