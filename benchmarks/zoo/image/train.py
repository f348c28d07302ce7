"""Training: pre-train the base pipeline on captioned plain scenes; train many UNet LoRAs at once.

Both use the denoising objective of the pipeline's scheduler (v-prediction, cosine schedule) on
pixel-unshuffled images, with min-SNR-γ loss weights, and drop 10 % of captions to the empty
prompt so that classifier-free guidance works (for adapters too: their unconditional branch
shows the style as well).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from benchmarks.zoo.common import lr_at  # noqa: F401 (used below, re-exported)
from benchmarks.zoo.image.captions import TEMPLATES, AdapterSpec, caption
from benchmarks.zoo.image.lora import LoraShape, StackedLoRA, inject, lora_parameters, stable_seed
from benchmarks.zoo.image.model import tokenize
from benchmarks.zoo.image.shapes import BASE_SHAPES, Scene, random_scenes, render, rng_for, to_tensor_range

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline


@dataclass
class PretrainConfig:
    """Base pre-training schedule (saved as ``zoo_pretrain_config.json`` beside the checkpoint)."""

    steps: int = 6000  # optimizer steps
    batch_size: int = 64  # images per step
    lr: float = 1e-3  # peak AdamW learning rate (linear warm-up, cosine decay to 10 %)
    warmup: int = 200  # warm-up steps
    weight_decay: float = 0.01  # AdamW weight decay
    ema: float = 0.999  # decay of the weight average that is saved (0 = save the raw weights)
    uncond: float = 0.1  # share of empty captions (classifier-free guidance)
    snr_gamma: float = 5.0  # min-SNR-γ loss weighting; 0 = plain MSE
    seed: int = 0  # data and init seed

    def __post_init__(self) -> None:
        if self.steps <= 0 or self.batch_size <= 0:
            raise ValueError(f"steps and batch_size must be positive: {self}")
        if not 0.0 <= self.uncond < 1.0 or not 0.0 <= self.ema < 1.0:
            raise ValueError(f"uncond and ema must be in [0, 1): {self}")


@dataclass
class AdapterTrainConfig:
    """Schedule for one round of stacked LoRA training."""

    steps: int = 400  # optimizer steps
    per_adapter: int = 8  # images per adapter per step
    chunk: int = 32  # adapters trained together (one stacked batch)
    lr: float = 3e-3  # peak Adam learning rate (linear warm-up, cosine decay to 10 %)
    warmup: int = 20  # warm-up steps
    uncond: float = 0.1  # share of empty captions
    snr_gamma: float = 5.0  # min-SNR-γ loss weighting; 0 = plain MSE

    def __post_init__(self) -> None:
        if min(self.steps, self.per_adapter, self.chunk) <= 0:
            raise ValueError(f"steps, per_adapter and chunk must be positive: {self}")


def images_and_captions(scenes: list[Scene], rng: np.random.Generator, uncond: float) -> tuple[torch.Tensor, list[str]]:
    """Pixel batch ``(B, 3, 32, 32)`` in [-1, 1] and captions (random template, some empty)."""
    x = torch.from_numpy(to_tensor_range(render(scenes, rng)))
    templates = rng.integers(0, len(TEMPLATES), size=len(scenes))
    drop = rng.random(len(scenes)) < uncond
    return x, ["" if d else caption(s, int(k)) for s, k, d in zip(scenes, templates, drop, strict=True)]


def denoising_losses(
    pipe: StableDiffusionPipeline, x: torch.Tensor, states: torch.Tensor, gens: list[torch.Generator], snr_gamma: float
) -> torch.Tensor:
    """Per-image weighted v-prediction MSE ``(B,)`` at uniform random timesteps.

    Noise and timesteps of rows ``[i*k, (i+1)*k)`` come from ``gens[i]`` (``k = B / len(gens)``), so an
    adapter sees the same noise whichever other adapters share its batch.
    """
    sched = pipe.scheduler
    latents = pipe.vae.encode(x).latents * pipe.vae.config.scaling_factor  # (B, 12, 16, 16)
    k = latents.shape[0] // len(gens)
    noise = torch.cat([torch.randn((k, *latents.shape[1:]), generator=g) for g in gens]).to(latents.device)
    steps = sched.config.num_train_timesteps
    t = torch.cat([torch.randint(0, steps, (k,), generator=g) for g in gens]).to(latents.device)  # (B,)
    noisy = sched.add_noise(latents, noise, t)
    target = sched.get_velocity(latents, noise, t)
    pred = pipe.unet(noisy, t, encoder_hidden_states=states).sample
    mse = F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3))  # (B,)
    if snr_gamma > 0:
        ab = sched.alphas_cumprod.to(latents.device)[t]
        snr = ab / (1 - ab)
        mse = mse * torch.clamp(snr, max=snr_gamma) / (snr + 1)  # min-SNR-γ for v-prediction
    return mse


def pretrain(pipe: StableDiffusionPipeline, cfg: PretrainConfig, device: str) -> list[float]:
    """Train UNet and text encoder from scratch on plain scenes of the base shapes; returns the losses.

    With ``cfg.ema`` the pipeline ends up holding the exponential moving average of the weights.
    """
    rng = rng_for("pretrain", cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    pipe.to(device)
    modules = [pipe.unet, pipe.text_encoder]
    for m in modules:
        m.train()
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = [copy.deepcopy(m).eval().requires_grad_(False) for m in modules] if cfg.ema > 0 else []
    losses: list[float] = []
    bar = tqdm(range(cfg.steps), desc="pretrain base", unit="step")
    for step in bar:
        x, captions = images_and_captions(random_scenes(rng, cfg.batch_size, shapes=BASE_SHAPES), rng, cfg.uncond)
        states = pipe.text_encoder(tokenize(pipe, captions).to(device))[0]  # (B, tokens, width)
        loss = denoising_losses(pipe, x.to(device), states, [gen], cfg.snr_gamma).mean()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.steps, cfg.warmup, cfg.lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if ema:
            decay = min(cfg.ema, (1 + step) / (10 + step))  # short warm-up of the average
            with torch.no_grad():
                for m, e in zip(modules, ema, strict=True):
                    for p, q in zip(m.parameters(), e.parameters(), strict=True):
                        q.lerp_(p, 1 - decay)
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
    if ema:
        with torch.no_grad():
            for m, e in zip(modules, ema, strict=True):
                m.load_state_dict(e.state_dict())
    for m in modules:
        m.eval()
    return losses


def adapter_batch(
    specs: list[AdapterSpec], k: int, rngs: list[np.random.Generator], uncond: float
) -> tuple[torch.Tensor, list[str]]:
    """``k`` training images and captions per adapter, grouped contiguously by adapter."""
    xs, caps = [], []
    for spec, rng in zip(specs, rngs, strict=True):
        scenes = [spec.scene(s) for s in random_scenes(rng, k, shapes=BASE_SHAPES)]
        x, c = images_and_captions(scenes, rng, uncond)
        xs.append(x)
        caps += c
    return torch.cat(xs), caps


def train_adapters(
    pipe: StableDiffusionPipeline,
    jobs: list[tuple[AdapterSpec, int]],
    shape: LoraShape,
    cfg: AdapterTrainConfig,
    device: str,
    desc: str = "train adapters",
    position: int | None = None,
) -> tuple[dict[str, StackedLoRA], list[float]]:
    """Train one UNet LoRA per ``(adapter, seed)`` job, all stacked in one batch.

    Each adapter's loss is the mean over its own images and Adam is elementwise, so the adapters
    train independently. The text encoder is frozen and its states for the batch computed once per
    step. Returns the wrapped layers (still injected; ``lora.remove`` restores the UNet) and the
    final running loss of each adapter.
    """
    pipe.to(device)
    for m in (pipe.unet, pipe.text_encoder):
        m.requires_grad_(False)
    routing, wrapped = inject(pipe.unet, len(jobs), shape, [stable_seed(s.id, seed) for s, seed in jobs])
    params = lora_parameters(wrapped)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    rngs = [rng_for("adapter", s.id, seed) for s, seed in jobs]
    gens = [torch.Generator().manual_seed(stable_seed("adapter-noise", s.id, seed) % 2**31) for s, seed in jobs]
    routing.enabled, routing.group, routing.rows = True, cfg.per_adapter, None
    n, k = len(jobs), cfg.per_adapter
    last = torch.zeros(n)
    pipe.unet.train()
    bar = tqdm(range(cfg.steps), desc=desc, unit="step", leave=False, position=position)
    for step in bar:
        x, captions = adapter_batch([s for s, _ in jobs], k, rngs, cfg.uncond)
        with torch.no_grad():
            states = pipe.text_encoder(tokenize(pipe, captions).to(device))[0]  # (n*k, tokens, width)
        per_image = denoising_losses(pipe, x.to(device), states, gens, cfg.snr_gamma)  # (n*k,)
        per_adapter = per_image.view(n, k).mean(1)  # (n,)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.steps, cfg.warmup, cfg.lr)
        opt.zero_grad(set_to_none=True)
        per_adapter.sum().backward()
        opt.step()
        cur = per_adapter.detach().cpu()
        last = 0.95 * last + 0.05 * cur if step else cur
        if step % 10 == 0:
            bar.set_postfix(mean=f"{last.mean():.4f}", worst=f"{last.max():.4f}")
    pipe.unet.eval()
    return wrapped, last.tolist()
