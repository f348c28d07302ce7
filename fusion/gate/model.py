"""Gates: the training-free description gate and the trained AutoLoRA gate.

Both start from how well each adapter's description matches the request (cosine of text
embeddings): the relevance logit zᵢ = (cosᵢ − threshold) / T.

* ``DescriptionGate`` (training-free default): image families weight adapter i by σ(zᵢ) × a
  timestep schedule (flat, early or late); text families by softmax(cos / T) (the adapters
  compete for one task).
* ``AutoLoRAGate`` (trained, image families): per layer l and channel c,
  gᵢ = g_max·σ(mean_pos[w_l⊙LN(oᵢ) + w_c⊙(LN(o_base)⊙LN(oᵢ))] + b + (a_l + α_l(t))·zᵢ + β_l(t))
  where oᵢ is adapter i's output at the layer, o_base the base output, and α, β small linear
  maps of sinusoidal timestep features (AutoLoRA's gate with MoLE-style conditioning on the
  prompt embedding through zᵢ). Initialised to the description gate (w = 0, a = 1).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fusion.errors import GateError
from fusion.gate.config import GateConfig

if TYPE_CHECKING:  # pragma: no cover
    from fusion.runtime import FusedLayer, GateFn


def relevance_logits(scores: torch.Tensor, cfg: GateConfig) -> torch.Tensor:
    """zᵢ = (cosᵢ − threshold) / T for scores (k,) or (N, k)."""
    return (scores - cfg.threshold) / cfg.temperature


def schedule(name: str, t: float) -> float:
    """Timestep weight: t in [0, 1] (1 = pure noise, the first step)."""
    if name == "early":
        return 0.5 + 0.5 * t
    if name == "late":
        return 1.0 - 0.5 * t
    return 1.0


class DescriptionGate:
    """Training-free: weights from description similarity, times a timestep schedule."""

    trained = False

    def __init__(self, config: GateConfig | None = None) -> None:
        self.config = config or GateConfig()

    def route(self, scores: torch.Tensor) -> torch.Tensor:
        """Static adapter weights (k,) from description similarities (k,)."""
        cfg = self.config
        if cfg.kind == "text":
            return torch.softmax(scores / cfg.temperature, dim=-1)
        return cfg.g_max * torch.sigmoid(relevance_logits(scores, cfg))

    def gate_fn(self, scores: torch.Tensor) -> GateFn | None:
        """Per-step factor of the schedule (None when flat: the static weights say it all)."""
        if self.config.schedule == "flat" or self.config.kind == "text":
            return None
        name = self.config.schedule

        def fn(layer: FusedLayer, o_base: torch.Tensor, o: torch.Tensor, context: dict[str, Any]) -> torch.Tensor:
            v = schedule(name, float(context.get("t", 0.0)))
            return torch.full((1, layer.k, 1), v, dtype=o.dtype, device=o.device)

        return fn


def time_features(t: torch.Tensor, n: int) -> torch.Tensor:
    """Sinusoidal features (…, n) of t in [0, 1]."""
    freqs = torch.arange(n // 2, dtype=torch.float32, device=t.device)
    ang = t[..., None] * math.pi * (2.0**freqs)  # (…, n/2)
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class AutoLoRAGate(nn.Module):
    """Per-layer, per-channel gate over the k installed adapters (see module docstring)."""

    trained = True

    def __init__(self, config: GateConfig) -> None:
        super().__init__()
        if not config.layers:
            raise GateError("a trained gate needs its layer list (config.layers)")
        self.config = config
        self.index = {name: i for i, name in enumerate(config.layers)}
        n_l, c_max = len(config.layers), max(config.channels)
        self.w_l = nn.Parameter(torch.zeros(n_l, c_max))  # (L, C)
        self.w_c = nn.Parameter(torch.zeros(n_l, c_max))  # (L, C)
        self.b = nn.Parameter(torch.zeros(n_l, c_max))  # (L, C)
        self.a = nn.Parameter(torch.ones(n_l))  # (L,) relevance scale
        self.alpha = nn.Linear(config.t_features, n_l)  # timestep → relevance scale change
        self.beta = nn.Linear(config.t_features, n_l)  # timestep → bias
        for lin in (self.alpha, self.beta):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def check_layers(self, names: list[str]) -> None:
        missing = [n for n in names if n not in self.index]
        if missing:
            raise GateError(
                f"the gate was trained for other layers; it lacks {missing[:3]} (+{max(0, len(missing) - 3)})"
            )

    def route(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(scores)  # the per-layer gate does the weighting

    def logits(
        self, name: str, o_base: torch.Tensor, o: torch.Tensor, z: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """Gate logits (N, k, C) at layer ``name``: o_base (N, …, C), o (N, …, k, C), z (N|1, k), t (N|1,)."""
        li = self.index[name]
        c = o.shape[-1]
        ln_o = nn.functional.layer_norm(o, (c,))  # (N, …, k, C)
        ln_b = nn.functional.layer_norm(o_base, (c,)).unsqueeze(-2)  # (N, …, 1, C)
        x = self.w_l[li, :c] * ln_o + self.w_c[li, :c] * (ln_b * ln_o)  # (N, …, k, C)
        x = x.flatten(1, -3).mean(dim=1) if x.dim() > 3 else x  # (N, k, C): mean over positions
        tf = time_features(t, self.config.t_features)  # (N|1, F)
        scale = self.a[li] + self.alpha(tf)[:, li]  # (N|1,)
        bias = self.beta(tf)[:, li]  # (N|1,)
        return x + self.b[li, :c] + (scale[:, None] * z + bias[:, None])[..., None]  # (N, k, C)

    def gate_fn(self, scores: torch.Tensor) -> GateFn:
        """A runtime gate for one request; scores (k,) or (N, k). Reads ``context["t"]`` in [0, 1]."""
        z_all = relevance_logits(scores, self.config)
        z_all = z_all[None] if z_all.dim() == 1 else z_all  # (N|1, k)

        def fn(layer: FusedLayer, o_base: torch.Tensor, o: torch.Tensor, context: dict[str, Any]) -> torch.Tensor:
            t = torch.as_tensor(context.get("t", 0.0), dtype=torch.float32, device=o.device).reshape(-1)
            z = context.get("z", z_all).to(o.device)
            logit = self.logits(layer.name, o_base.float(), o.float(), z, t)
            return (self.config.g_max * torch.sigmoid(logit)).to(o.dtype)

        return fn


class TextRouterGate(nn.Module):
    """Trained text gate: a linear map W of the text embeddings before the cosine,
    sᵢ = cos(W q, W dᵢ), weights softmax(s / T) (MoLE-style routing by the task description)."""

    trained = True

    def __init__(self, config: GateConfig) -> None:
        super().__init__()
        self.config = config
        self.proj = nn.Parameter(torch.eye(config.text_dim))  # (d, d), starts as the plain cosine

    def scores(self, query: torch.Tensor, descriptions: torch.Tensor) -> torch.Tensor:
        """query (d,) or (n, d), descriptions (k, d) → (k,) or (n, k)."""
        q = nn.functional.normalize(query.float() @ self.proj.T, dim=-1)
        d = nn.functional.normalize(descriptions.float() @ self.proj.T, dim=-1)  # (k, d)
        return q @ d.T

    def route(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.softmax(scores / self.config.temperature, dim=-1)

    def gate_fn(self, scores: torch.Tensor) -> None:
        return None


Gate = DescriptionGate | AutoLoRAGate | TextRouterGate
