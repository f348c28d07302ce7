"""Calibrated gate: how much of each channel every library adapter keeps when it is composed.

Adapters trained alone interfere when summed: a palette adapter and a texture adapter of the image
zoo, installed together at full weight, keep the texture and lose the palette and the prompt's
content (``benchmarks/results/fusion_notes.md``). The calibrated gate learns, for every adapter of a
family's library, layer l and channel, two coefficient vectors, on the input side (columns of A)
and on the output side (rows of B)::

    ΔWᵢ' = sᵢ · (Bᵢ ⊙ outᵢₗ[:, None]) (Aᵢ ⊙ inᵢₗ[None, :])        (same rank, exact factors)

fitted across many compositions at once (``fusion.gate.train.train_calibrated_gate``): for each
known composite (adapters that together should do what one teacher adapter does, e.g. a training
combo's palette and texture adapters against the combo's own adapter), the composed model is
distilled towards the teacher on the composite's data. An adapter's coefficients are shared by
every composition it takes part in, so they transfer to pairs never trained together.

At composition time the gate is static per request: adapters it knows are rescaled (only when
at least two of them are composed: one adapter alone is left as it is), adapters it does not
know are installed as they are, and the request routes: each adapter's relevance is the cosine of
its description with the request's best-matching clause, half through the gate's embedding map W
and half plain (``scores``; W trained by ``fusion.gate.train.fit_route`` so that a request's clauses land on the
descriptions of the adapters it asks for), plus, when the config says so (``head_scale``), the
weights signal of the family's weight encoder query head (``fusion.compose.head_scores``), which
reads wordings the descriptions lack; an adapter asked for (sᵢ ≥ b) or named by the request
(``names_in``: "… in sepia with polka dots" names the adapter called sepia) is on at weight 1, one
below is off (weight 0).
A request that asks for none of the adapters (a content-only prompt: the user chose them) keeps
them all at 1.

Adapters are recognised by ``adapter_key``: a sha256 of their module names, shapes, scales and
half-precision factors, so a copy read from the registry (any format holding the same factors)
matches the file the gate was trained on.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from fusion.errors import GateError
from fusion.gate.config import GateConfig

if TYPE_CHECKING:  # pragma: no cover
    from registry.formats.canonical import LoraAdapter


def adapter_key(adapter: LoraAdapter) -> str:
    """sha256 over the sorted module names, each module's scale and its factors in float16."""
    h = hashlib.sha256()
    for name in sorted(adapter.modules):
        m = adapter.modules[name]
        r = m.rank
        down = m.down.detach().float().reshape(r, -1).half().contiguous()  # (r, in·kh·kw)
        up = m.up.detach().float().reshape(-1, r).half().contiguous()  # (out, r)
        h.update(f"{name}|{tuple(down.shape)}|{tuple(up.shape)}|{float(m.scale):.6g}|".encode())
        h.update(down.numpy().tobytes())
        h.update(up.numpy().tobytes())
    return h.hexdigest()


class CalibratedGate(nn.Module):
    """Per adapter, layer and channel coefficients (see the module docstring)."""

    trained = True

    def __init__(self, config: GateConfig) -> None:
        super().__init__()
        if not config.layers or not config.adapters:
            raise GateError("a calibrated gate needs its layers and adapters (config.layers, config.adapters)")
        self.config = config
        self.index = {name: i for i, name in enumerate(config.layers)}
        self.keys = {k: i for i, k in enumerate(config.adapters)}
        n = len(config.adapters)
        self.proj = nn.Parameter(torch.eye(config.text_dim))  # (d, d): the route's embedding map W
        self.bias = nn.Parameter(torch.tensor(float(config.threshold)))  # b: the cosine at which an adapter is half on
        self.out = nn.ParameterList([nn.Parameter(torch.ones(n, c)) for c in config.channels])  # L × (n, C_out)
        self.inp = nn.ParameterList([nn.Parameter(torch.ones(n, c)) for c in config.in_channels])  # L × (n, C_in)

    def scores(self, clauses: torch.Tensor, descriptions: torch.Tensor) -> torch.Tensor:
        """Relevance (k,) of descriptions (k, d) to a request's clause embeddings (q, d): the best clause's
        mean of the cosine through W and the plain cosine (the map alone, fitted on a few hundred
        training requests, forgets wordings they lack: "a black-and-white look" fell to 0.06 against
        grayscale's description; the plain cosine keeps them)."""
        q = nn.functional.normalize(clauses.float() @ self.proj.T, dim=-1)  # (q, d)
        d = nn.functional.normalize(descriptions.float() @ self.proj.T, dim=-1)  # (k, d)
        q0 = nn.functional.normalize(clauses.float(), dim=-1)  # (q, d)
        d0 = nn.functional.normalize(descriptions.float(), dim=-1)  # (k, d)
        return 0.5 * ((d @ q.T) + (d0 @ q0.T)).max(dim=1).values  # (k,): mapped and plain cosine, halves

    def route(self, scores: torch.Tensor, named: list[bool] | None = None) -> torch.Tensor:
        """Weights (k,) from relevances (k,): 1 for an adapter asked for (sᵢ ≥ b: the coefficients were
        learned at full weight) or ``named`` by the request, 0 below (a partial weight σ((sᵢ − b) / T) let
        adapters nobody asked for leak in: with 8 loaded, validation combos kept 0.34 of the content against
        0.49 switched off); all 1 when no relevance reaches b (the request's wording asks for none of them)."""
        w = torch.sigmoid((scores.detach() - self.bias.detach()) / self.config.temperature)
        if float(w.max()) < 0.5:  # the wording matches none of them: the user chose them all (a name alone
            return torch.ones_like(w)  # does not switch the others off: "a star on navy" with star, sepia, dots)
        if named is not None:
            w = torch.where(torch.tensor(named, dtype=torch.bool), torch.ones_like(w), w)
        return torch.where(w >= 0.5, torch.ones_like(w), torch.zeros_like(w))

    def gate_fn(self, scores: torch.Tensor) -> None:
        return None  # static: the coefficients are folded into the factors (``calibrate``)

    def known(self, adapters: list[LoraAdapter]) -> list[int | None]:
        """The gate's index of each adapter, None for adapters it was not trained with."""
        return [self.keys.get(adapter_key(a)) for a in adapters]

    def coefficients(self, layer: str, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(out (len(rows), C_out), in (len(rows), C_in)) of the adapters ``rows`` at ``layer``; None if untrained."""
        li = self.index.get(layer)
        if li is None:
            return None
        return self.out[li][rows], self.inp[li][rows]

    @torch.no_grad()
    def calibrate(self, adapters: list[LoraAdapter]) -> tuple[list[LoraAdapter], list[bool]]:
        """The adapters with their coefficients folded in (exact factors, same rank), and which were.
        Fewer than two known adapters: every adapter as it is (the gate learned compositions)."""
        idx = self.known(adapters)
        if sum(i is not None for i in idx) < 2:
            return list(adapters), [False] * len(adapters)
        out: list[LoraAdapter] = []
        for a, i in zip(adapters, idx, strict=True):
            if i is None:
                out.append(a)
                continue
            mods = {}
            for name, m in a.modules.items():
                c = self.coefficients(name, torch.tensor([i]))
                if c is None:
                    mods[name] = m
                    continue
                co, ci = c[0][0].detach(), c[1][0].detach()  # (C_out,), (C_in,)
                if co.numel() != m.up.shape[0] or ci.numel() != m.down.shape[1]:
                    raise GateError(f"gate coefficients of {name} do not fit the adapter's shapes")
                up = m.up.float() * co.reshape(-1, *([1] * (m.up.dim() - 1)))  # (out, r[, 1, 1])
                down = m.down.float() * ci.reshape(1, -1, *([1] * (m.down.dim() - 2)))  # (r, in[, kh, kw])
                mods[name] = replace(m, up=up.to(m.up.dtype), down=down.to(m.down.dtype))
            out.append(replace(a, modules=mods))
        return out, [i is not None for i in idx]


@torch.no_grad()
def scale_ratios(before: list[LoraAdapter], after: list[LoraAdapter]) -> dict[str, list[float]]:
    """Per layer, ‖ΔWᵢ'‖ / ‖ΔWᵢ‖ of each adapter after ``calibrate`` (1 where a layer is untouched or absent):
    what the gate does to each adapter, layer by layer (the compose picture draws it)."""
    names = sorted({n for a in before for n in a.modules})
    out: dict[str, list[float]] = {}
    for n in names:
        row = []
        for a, b in zip(before, after, strict=True):
            m0, m1 = a.modules.get(n), b.modules.get(n)
            if m0 is None or m1 is None or m1 is m0:
                row.append(1.0)
                continue
            d0 = float(m0.delta().norm())
            row.append(float(m1.delta().norm()) / d0 if d0 > 0 else 1.0)
        out[n] = row
    return out


def names_in(request: str, names: list[str]) -> list[bool]:
    """Whether the request names each adapter: every word of its name (split at _ - . and spaces) is a
    word of the request ("sepia" in "… in sepia with polka dots"; "grayscale_dots" needs both words;
    parts of one or two letters or only digits never match).
    A single word cosine of a one-word clause against a sentence description is too weak to say so."""
    import re

    words = set(re.findall(r"[a-z0-9]+", request.lower()))
    out = []
    for n in names:
        parts = [p for p in re.split(r"[\s_.\-]+", n.lower()) if p]
        # a part of one or two letters ("a", "v2") or only digits says nothing about what is asked for
        out.append(bool(parts) and all(len(p) > 2 and not p.isdigit() and p in words for p in parts))
    return out


def new_gate(config: GateConfig, adapters: list[LoraAdapter], names: list[str], layers: dict[str, tuple[int, int]]
             ) -> CalibratedGate:  # fmt: skip
    """An untrained calibrated gate (every coefficient 1) for ``adapters`` over ``layers``:
    name → (output channels, input channels)."""
    keys = [adapter_key(a) for a in adapters]
    if len(set(keys)) != len(keys):
        raise GateError("two of the adapters to calibrate hold the same weights")
    order = sorted(layers)
    cfg = replace(config, kind="image", method="calibrated", layers=order, channels=[layers[n][0] for n in order],
                  in_channels=[layers[n][1] for n in order], adapters=keys, adapter_names=list(names))  # fmt: skip
    return CalibratedGate(cfg)


__all__ = ["CalibratedGate", "adapter_key", "names_in", "new_gate", "scale_ratios"]
