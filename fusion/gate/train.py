"""Training of the gates (generic: the caller brings the pipeline, adapters and data).

* ``train_image_gate``: the AutoLoRA gate on a diffusion pipeline. Each example installs k
  adapters with the request's description scores; the student (base + gated adapters) is
  pulled towards a teacher (the adapter(s) the request asks for, alone, e.g. a combo's own
  adapter or a single adapter) on noised images the caller draws, in the teacher's own
  prediction space (denoising distillation), plus a hinge that keeps the adapters not asked
  for below ``hinge_margin`` (mean gate value per layer).
* ``train_calibrated_gate``: the calibrated gate (``fusion.gate.calibrated``) on a diffusion
  pipeline: every library adapter installed side by side, each row composing one example's parts
  (row weights), their coefficients folded into the stacked factors; the composition is distilled
  towards the example's teacher on a pool of noised latents drawn once per example.
  ``fit_route`` then trains its route (embedding map W and bias b): binary cross-entropy of
  σ((sᵢ − b) / T) against which adapters each request asks for.
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

from fusion.errors import GateError
from fusion.gate.calibrated import CalibratedGate, adapter_key, new_gate
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


def _teacher_batch(
    pipe: Any, sample: Callable[[int, torch.Generator], tuple[torch.Tensor, list[str]]], teacher: list[LoraAdapter],
    n: int, gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """n drawn rows noised at random timesteps and the teacher's prediction on them: (noisy (n, C, H, W),
    t (n,), text states (n, tokens, width), target (n, C, H, W))."""
    sched = pipe.scheduler
    with torch.no_grad():
        x0, caps = sample(n, gen)  # (n, C, H, W)
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, sched.config.num_train_timesteps, (n,), generator=gen)
        noisy = sched.add_noise(x0, noise, t)
        states = _encode(pipe, caps)
        with install(pipe, teacher):
            target = pipe.unet(noisy, t, encoder_hidden_states=states).sample
    return noisy, t, states, target


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
        noisy, t, states, target = _teacher_batch(pipe, ex.sample, ex.teacher, batch, gen)
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


@dataclass
class CalibrationExample:
    parts: list[LoraAdapter]  # composed together; each one of the library's adapters
    teacher: LoraAdapter  # what the composition should behave like (installed alone)
    sample: Callable[[int, torch.Generator], tuple[torch.Tensor, list[str]]]  # as ImageGateExample.sample
    name: str = ""  # for errors and logs


def train_calibrated_gate(
    pipe: Any, library: list[LoraAdapter], names: list[str], examples: list[CalibrationExample],
    config: GateConfig, *, steps: int = 800, per_step: int = 4, batch: int = 4, pool: int = 48, lr: float = 0.02,
    seed: int = 0, log: Callable[[str], None] | None = None, progress: Callable[[int, int], None] | None = None,
) -> tuple[CalibratedGate, dict[str, Any]]:  # fmt: skip
    """Fit the coefficients of every ``library`` adapter on ``examples``; returns (gate, metrics).
    Each step composes ``per_step`` examples × ``batch`` rows of their pools. ``progress(done, total)``
    counts the examples' pools, then the optimizer steps."""
    if len(library) != len(names):
        raise GateError(f"{len(names)} names for {len(library)} adapters")
    if not examples:
        raise GateError("a calibrated gate learns from at least one example composition")
    keys = {adapter_key(a): i for i, a in enumerate(library)}
    rows_of: list[list[int]] = []
    for ex in examples:
        idx = [keys.get(adapter_key(a)) for a in ex.parts]
        if len(ex.parts) < 2 or any(i is None for i in idx):
            raise GateError(f"example {ex.name or '?'}: its parts must be two or more of the library's adapters")
        rows_of.append([int(i) for i in idx])  # type: ignore[arg-type]
    total = len(examples) + steps
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    params = [p for c in (pipe.unet, getattr(pipe, "text_encoder", None)) if c is not None for p in c.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    t0 = time.perf_counter()
    pools = []
    for i, ex in enumerate(examples):
        pools.append(_teacher_batch(pipe, ex.sample, [ex.teacher], pool, gen))
        if progress is not None:
            progress(i + 1, total)
    handle = install(pipe, library)
    layers = handle.layers
    a0 = {n: lay.lora_A.clone() for n, lay in layers.items()}  # (K, r, in[, kh, kw])
    b0 = {n: lay.lora_B.clone() for n, lay in layers.items()}  # (K, out, r)
    losses: list[float] = []
    try:
        gate = new_gate(config, library, names,
                        {n: (int(lay.lora_B.shape[1]), int(lay.lora_A.shape[2])) for n, lay in layers.items()})  # fmt: skip
        k = len(library)
        opt = torch.optim.Adam(gate.parameters(), lr=lr)
        for step in range(steps):
            chosen = rng.sample(range(len(examples)), min(per_step, len(examples)))
            picks = [torch.randint(0, pool, (batch,), generator=gen) for _ in chosen]
            noisy, t, states, target = (torch.cat([pools[c][j][r] for c, r in zip(chosen, picks, strict=True)])
                                        for j in range(4))  # fmt: skip
            row_w = torch.zeros(len(chosen) * batch, k)  # (N, K): each row composes its example's parts
            for e, c in enumerate(chosen):
                row_w[e * batch : (e + 1) * batch, rows_of[c]] = 1.0
            handle.set_row_weights(row_w)
            everyone = torch.arange(k)
            for n, lay in layers.items():
                co, ci = gate.coefficients(n, everyone)  # type: ignore[misc]  # (K, C_out), (K, C_in)
                lay.lora_B = b0[n] * co[:, :, None]
                lay.lora_A = a0[n] * ci.reshape(k, 1, -1, *([1] * (a0[n].dim() - 3)))
            pred = pipe.unet(noisy, t, encoder_hidden_states=states).sample
            loss = torch.nn.functional.mse_loss(pred, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if log is not None and (step % 50 == 0 or step == steps - 1):
                log(f"calibration step {step}: distill {loss.item():.5f} ({time.perf_counter() - t0:.0f}s)")
            if progress is not None:
                progress(len(examples) + step + 1, total)
    finally:
        for n, lay in layers.items():
            lay.lora_A, lay.lora_B = a0[n], b0[n]
        handle.remove()
        for p, f in zip(params, flags, strict=True):
            p.requires_grad_(f)
    w = max(1, min(50, steps // 5))
    metrics = {
        "method": "calibrated", "steps": steps, "per_step": per_step, "batch": batch, "pool": pool, "lr": lr,
        "seed": seed, "examples": len(examples), "adapters": len(library),
        "loss_first": sum(losses[:w]) / w if losses else None, "loss_last": sum(losses[-w:]) / w if losses else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    return gate.eval(), metrics


def fit_route(
    gate: CalibratedGate, requests: list[torch.Tensor], keys: torch.Tensor, asked: list[list[int]], *,
    steps: int = 300, lr: float = 0.01, reg: float = 1e-3, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Train ``gate``'s route in place: ``requests[j]`` (c_j, d) are request j's clause embeddings (the
    request first), ``keys`` (m, d) the descriptions of every adapter a request could be routed to,
    ``asked[j]`` the rows of ``keys`` request j asks for (positives; every other row is a negative)."""
    if len(requests) != len(asked) or not requests:
        raise GateError(f"{len(requests)} requests but {len(asked)} answer lists")
    torch.manual_seed(seed)
    target = torch.zeros(len(requests), keys.shape[0])  # (n, m)
    for j, rows in enumerate(asked):
        target[j, rows] = 1.0
    pos_w = (target.numel() - target.sum()) / target.sum().clamp(min=1)  # positives weigh as much as negatives
    eye = torch.eye(keys.shape[1])
    params = [gate.proj, gate.bias]
    opt = torch.optim.Adam(params, lr=lr)
    t0 = time.perf_counter()
    first, loss = None, torch.zeros(())

    def logits() -> torch.Tensor:
        s = torch.stack([gate.scores(q, keys) for q in requests])  # (n, m)
        return (s - gate.bias) / gate.config.temperature

    for _ in range(steps):
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits(), target, pos_weight=pos_w)
        loss = bce + reg * (gate.proj - eye).pow(2).sum()  # W stays near the plain cosine
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        on = logits() > 0
        pos, neg = target.bool(), ~target.bool()
        metrics = {"route_steps": steps, "route_lr": lr, "route_reg": reg, "route_loss_first": first, "route_loss_last": loss.item(),
                   "route_asked_on": float(on[pos].float().mean()), "route_others_on": float(on[neg].float().mean()),
                   "route_bias": float(gate.bias), "route_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    return metrics


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
