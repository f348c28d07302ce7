"""Training of the gates (generic: the caller brings the pipeline, adapters and data).

* ``train_image_gate``: the AutoLoRA gate on a diffusion pipeline. Each example installs k
  adapters with the request's description scores; the student (base + gated adapters) is
  pulled towards a teacher (the adapter(s) the request asks for, alone, e.g. a combo's own
  adapter or a single adapter) on noised images the caller draws, in the teacher's own
  prediction space (denoising distillation), plus a hinge that keeps the adapters not asked
  for below ``hinge_margin`` (mean gate value per layer).
* ``train_text_router``: the text gate's embedding map, InfoNCE between requests and the
  descriptions of the tasks they name.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from fusion.gate.config import GateConfig
from fusion.gate.model import AutoLoRAGate, TextRouterGate
from fusion.runtime import install

if TYPE_CHECKING:  # pragma: no cover
    from registry.formats.canonical import LoraAdapter


@dataclass
class ImageGateExample:
    adapters: list[LoraAdapter]  # installed together
    scores: torch.Tensor  # (k,) description similarities of the request
    teacher: list[LoraAdapter]  # what the composition should behave like (installed alone, weights 1)
    sample: Callable[
        [int, torch.Generator], tuple[torch.Tensor, list[str]]
    ]  # (n, gen) → latents x0 (n, C, H, W), captions
    quiet: list[int] = field(default_factory=list)  # adapters the request does not ask for


@torch.no_grad()
def _encode(pipe: Any, prompts: list[str]) -> torch.Tensor:
    from fusion.compose import encode_prompts

    return encode_prompts(pipe, prompts)


def train_image_gate(
    pipe: Any, examples: list[ImageGateExample], config: GateConfig, *, steps: int = 150, batch: int = 8,
    lr: float = 0.02, hinge_margin: float = 0.1, hinge_weight: float = 1.0, seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> tuple[AutoLoRAGate, dict[str, Any]]:  # fmt: skip
    """Train a gate for the layers the examples' adapters touch; returns (gate, metrics)."""
    sched = pipe.scheduler
    names = sorted({n for ex in examples for a in ex.adapters for n in a.modules})
    probe = install(pipe, [examples[0].adapters[0]])
    channels = {}
    for n, layer in probe.layers.items():
        channels[n] = int(layer.lora_B.shape[1])
    probe.remove()
    layers = [n for n in names if n in channels]
    config = GateConfig(**{**config.__dict__, "layers": layers, "channels": [channels[n] for n in layers]})
    gate = AutoLoRAGate(config)
    opt = torch.optim.Adam(gate.parameters(), lr=lr)
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    for p in pipe.unet.parameters():
        p.requires_grad_(False)
    losses: list[float] = []
    hinges: list[float] = []
    t0 = time.perf_counter()
    for step in range(steps):
        ex = examples[rng.randrange(len(examples))]
        x0, caps = ex.sample(batch, gen)  # (b, C, H, W)
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, sched.config.num_train_timesteps, (batch,), generator=gen)
        noisy = sched.add_noise(x0, noise, t)
        states = _encode(pipe, caps)
        with torch.no_grad(), install(pipe, ex.teacher):
            target = pipe.unet(noisy, t, encoder_hidden_states=states).sample
        handle = install(pipe, ex.adapters)
        fn = gate.gate_fn(ex.scores)
        quiet_vals: list[torch.Tensor] = []

        def spy(layer: Any, ob: torch.Tensor, o: torch.Tensor, ctx: dict[str, Any], fn: Any = fn,
                quiet: list[int] = ex.quiet, vals: list[torch.Tensor] = quiet_vals) -> torch.Tensor:  # fmt: skip
            g = fn(layer, ob, o, ctx)  # (N, k, C)
            if quiet:
                vals.append(g[:, quiet].mean(dim=(0, 2)))  # (q,)
            return g

        handle.set_gate(spy)
        handle.context["t"] = t.float() / sched.config.num_train_timesteps  # (b,)
        try:
            pred = pipe.unet(noisy, t, encoder_hidden_states=states).sample
        finally:
            handle.remove()
        loss = torch.nn.functional.mse_loss(pred, target)
        hinge = torch.relu(torch.stack(quiet_vals) - hinge_margin).mean() if quiet_vals else torch.zeros(())
        opt.zero_grad()
        (loss + hinge_weight * hinge).backward()
        opt.step()
        losses.append(loss.item())
        hinges.append(hinge.item())
        if log is not None and (step % 10 == 0 or step == steps - 1):
            log(
                f"gate step {step}: distill {loss.item():.5f} hinge {hinge.item():.4f} ({time.perf_counter() - t0:.0f}s)"
            )
    w = max(1, min(10, steps // 5))
    metrics = {
        "steps": steps, "batch": batch, "lr": lr, "hinge_margin": hinge_margin, "examples": len(examples),
        "distill_loss_first": sum(losses[:w]) / w, "distill_loss_last": sum(losses[-w:]) / w,
        "hinge_first": sum(hinges[:w]) / w, "hinge_last": sum(hinges[-w:]) / w,
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    return gate.eval(), metrics


def train_text_router(
    queries: torch.Tensor, labels: torch.Tensor, keys: torch.Tensor, config: GateConfig, *, steps: int = 300,
    lr: float = 0.01, weight_decay: float = 0.0,
) -> tuple[TextRouterGate, dict[str, Any]]:  # fmt: skip
    """queries (n, d) name keys[labels] (keys (m, d)); InfoNCE over all keys at the gate's temperature."""
    gate = TextRouterGate(GateConfig(**{**config.__dict__, "text_dim": int(queries.shape[1])}))
    opt = torch.optim.Adam(gate.parameters(), lr=lr, weight_decay=weight_decay)
    eye = torch.eye(queries.shape[1])
    t0 = time.perf_counter()
    first = None
    loss = torch.zeros(())
    for _ in range(steps):
        logits = gate.scores(queries, keys) / config.temperature  # (n, m)
        loss = torch.nn.functional.cross_entropy(logits, labels) + 1e-3 * (gate.proj - eye).pow(2).sum()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = float((gate.scores(queries, keys).argmax(-1) == labels).float().mean())
    return gate.eval(), {"steps": steps, "loss_first": first, "loss_last": loss.item(), "train_top1": acc,
                         "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
