"""The canonical parameterization every generator shares.

Per module, ΔW = scale·B·A is re-expressed at a fixed rank ``r`` by truncated SVD with the signs
fixed: ``ΔW ≈ U_r S_r V_rᵀ``, ``A = √S·Vᵀ`` (r, in·kh·kw), ``B = U·√S`` (out, r), and each singular
pair flipped so that the largest-|.| entry of its column of U is positive. The scale is folded
in (canonical factors multiply to ΔW). Modules whose ΔW has rank below ``r`` get zero rows.

The SVD never forms ΔW: with ΔW = B·A of rank k, QR of B and Aᵀ reduce it to a k×k core, so a
real SD1.5 module (out 1280, in 1280·9) costs microseconds. The same routine re-expresses sums
of adapters (concatenate the factors: ``[w₁B₁ … w_kB_k]·[A₁; …; A_k]`` is the exact ΔW sum).

``Layout`` fixes the module order and shapes of one family; ``stack`` turns adapters into per-
module tensors ``A (n, r, in)``, ``B (n, out, r)``; ``NormStats`` holds per-module statistics.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from registry.formats.canonical import LoraAdapter


_THREADS_LOCK = threading.RLock()


@contextlib.contextmanager
def few_threads() -> Iterator[None]:
    """Run many tiny LAPACK calls on one intra-op thread.

    QR/SVD of (out, 4) factors cost ~1 ms on one thread and ~80 ms on two busy cores (thread
    hand-off dominates), so stacking a zoo or mixing experts runs single-threaded.
    """
    import torch

    with _THREADS_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def lowrank_svd(up: torch.Tensor, down: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical factors of ΔW = up @ down, ``up`` (out, k), ``down`` (k, in): (A (rank, in), B (out, rank))."""
    import torch

    up = up.double()
    down = down.double()
    out_f, k = up.shape
    in_f = down.shape[1]
    qb, rb = torch.linalg.qr(up)  # (out, k'), (k', k)
    qa, ra = torch.linalg.qr(down.T)  # (in, k''), (k'', k)
    core = rb @ ra.T  # (k', k'')
    u, s, vh = torch.linalg.svd(core, full_matrices=False)
    u = qb @ u  # (out, m)
    v = qa @ vh.T  # (in, m)
    m = min(rank, s.numel())
    u, s, v = u[:, :m], s[:m], v[:, :m]
    # Sign fix: the largest-|.| entry of each column of U is positive.
    idx = u.abs().argmax(dim=0)  # (m,)
    sign = torch.sign(u[idx, torch.arange(m)])
    sign[sign == 0] = 1.0
    u = u * sign
    v = v * sign
    sq = s.clamp_min(0).sqrt()
    a = torch.zeros(rank, in_f, dtype=torch.float64)
    b = torch.zeros(out_f, rank, dtype=torch.float64)
    a[:m] = sq[:, None] * v.T  # (m, in)
    b[:, :m] = u * sq  # (out, m)
    del k
    return a.float(), b.float()


@dataclass
class ModuleSpec:
    """One targeted layer of a family: name and shapes (conv kernels flattened into ``in_flat``)."""

    name: str  # LoraModule.name, component prefix included
    kind: str  # linear | conv
    out_features: int  # rows of ΔW
    in_features: int  # input channels
    kernel: tuple[int, ...]  # () for linear, (kh, kw) for conv
    scale: float  # scale of the template adapter's module (generated files use it too)

    @property
    def in_flat(self) -> int:
        n = self.in_features
        for k in self.kernel:
            n *= k
        return n

    @property
    def shape_key(self) -> str:
        return f"{self.out_features}x{self.in_flat}"


@dataclass
class Layout:
    """The module set of a family at the canonical rank."""

    modules: list[ModuleSpec]  # sorted by name
    rank: int  # canonical rank r

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "modules": [{**asdict(m), "kernel": list(m.kernel)} for m in self.modules]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Layout:
        mods = [ModuleSpec(**{**m, "kernel": tuple(m["kernel"])}) for m in d["modules"]]
        return cls(mods, int(d["rank"]))

    @classmethod
    def from_adapters(cls, adapters: list[LoraAdapter], rank: int | None = None) -> Layout:
        """The union of the adapters' modules (the first adapter naming a module gives its shape)."""
        specs: dict[str, ModuleSpec] = {}
        for ad in adapters:
            for name, m in ad.modules.items():
                if name not in specs:
                    kernel = tuple(int(k) for k in m.down.shape[2:]) if m.kind == "conv" else ()
                    specs[name] = ModuleSpec(name, m.kind, m.out_features, m.in_features, kernel, float(m.scale))
        r = rank or max((max(ad.ranks) for ad in adapters if ad.modules), default=4)
        return cls([specs[k] for k in sorted(specs)], int(r))

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.modules]

    def param_count(self, rank: int | None = None) -> int:
        r = rank or self.rank
        return sum(r * (m.out_features + m.in_flat) for m in self.modules)


def module_factors(adapter: LoraAdapter, spec: ModuleSpec, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical (A (rank, in_flat), B (out, rank)) of one module of ``adapter`` (zeros when absent)."""
    import torch

    m = adapter.modules.get(spec.name)
    if m is None:
        return torch.zeros(rank, spec.in_flat), torch.zeros(spec.out_features, rank)
    k = m.rank
    down = m.down.float().reshape(k, -1)  # (k, in_flat)
    up = m.up.float().reshape(m.up.shape[0], k) * float(m.scale)  # (out, k)
    if tuple(down.shape) != (k, spec.in_flat) or up.shape[0] != spec.out_features:
        raise ValueError(
            f"module {spec.name!r}: shape ({up.shape[0]}, {down.shape[1]}) differs from the family's "
            f"({spec.out_features}, {spec.in_flat})"
        )
    return lowrank_svd(up, down, rank)


def stack(adapters: list[LoraAdapter], layout: Layout) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per module name: A (n, r, in_flat), B (n, out, r) of every adapter, canonical."""
    import torch

    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    with few_threads():
        for spec in layout.modules:
            pairs = [module_factors(ad, spec, layout.rank) for ad in adapters]
            out[spec.name] = (torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]))
    return out


def combine(
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]], weights: torch.Tensor, rank: int
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Exact Σᵢ wᵢ·ΔWᵢ of stacked factors (A (n, r, in), B (n, out, r)), re-expressed at ``rank``."""
    out = {}
    nz = [i for i in range(int(weights.numel())) if float(weights[i]) != 0.0]
    for name, (a, b) in factors.items():
        n, r, in_f = a.shape
        sel_a = a[nz].reshape(len(nz) * r, in_f)  # (n·r, in)
        sel_b = (b[nz] * weights[nz].to(b.dtype)[:, None, None]).permute(1, 0, 2).reshape(b.shape[1], len(nz) * r)
        out[name] = lowrank_svd(sel_b, sel_a, rank)  # exact sum, then truncated
        del n
    return out


def recanonical(
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]], rank: int
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Single-adapter factors (A (r, in), B (out, r)) re-expressed canonically at ``rank``."""
    return {name: lowrank_svd(b, a, rank) for name, (a, b) in factors.items()}


def delta_error(adapter: LoraAdapter, factors: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Relative Frobenius error ‖ΔW − B·A‖ / ‖ΔW‖ over all modules of ``adapter``."""
    import torch

    num = 0.0
    den = 0.0
    for name, m in adapter.modules.items():
        d = m.delta().reshape(m.out_features, -1).double()  # (out, in_flat)
        a, b = factors[name]
        num += float(torch.linalg.norm(d - b.double() @ a.double()) ** 2)
        den += float(torch.linalg.norm(d) ** 2)
    return (num / den) ** 0.5 if den > 0 else 0.0


def to_adapter(
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]],
    layout: Layout,
    template: dict[str, Any],
    description: str,
) -> LoraAdapter:
    """A ``LoraAdapter`` in the family's native format from canonical factors.

    Each module keeps its template scale ``s`` (alpha = s·r), so ``A/√s`` and ``B/√s`` are stored.
    """
    import copy

    from registry.formats.canonical import LoraAdapter, LoraModule

    mods = {}
    for spec in layout.modules:
        a, b = factors[spec.name]
        r = int(a.shape[0])
        root = abs(spec.scale) ** 0.5 or 1.0
        sign = -1.0 if spec.scale < 0 else 1.0
        down = (a / root).reshape(r, spec.in_features, *spec.kernel).contiguous()  # (r, in[, kh, kw])
        up = (b * sign / root).contiguous()  # (out, r)
        if spec.kind == "conv":
            up = up.reshape(spec.out_features, r, 1, 1)
        mods[spec.name] = LoraModule(spec.name, down, up, spec.scale, alpha=spec.scale * r, kind=spec.kind)  # type: ignore[arg-type]
    return LoraAdapter(
        modules=mods,
        family=template.get("family", "unknown"),
        format=template.get("format", "unknown"),
        metadata=copy.deepcopy(template.get("metadata") or {}),
        description=description,
        base_model=template.get("base_model"),
        fan_in_fan_out=bool(template.get("fan_in_fan_out", False)),
    )


def template_of(adapter: LoraAdapter) -> dict[str, Any]:
    """What a generated adapter copies from a training adapter of the family (JSON-safe)."""
    import json

    meta = {}
    for k, v in (adapter.metadata or {}).items():
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        meta[k] = v
    return {
        "family": adapter.family,
        "format": adapter.format,
        "metadata": meta,
        "base_model": adapter.base_model,
        "fan_in_fan_out": adapter.fan_in_fan_out,
    }


def norm_stats(factors: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per-module normalization statistics of stacked training factors, as checkpoint tensors.

    ``norm.<module>.A_mean`` (r, in), ``.B_mean`` (out, r): elementwise means; ``.std`` (1,): one
    standard deviation of the centred A and B entries together; ``.energy`` (1,): mean ‖ΔW‖².
    """
    import torch

    out = {}
    for name, (a, b) in factors.items():
        am, bm = a.mean(0), b.mean(0)  # (r, in), (out, r)
        cen = torch.cat([(a - am).flatten(1), (b - bm).flatten(1)], dim=1)  # (n, r·(in+out))
        std = cen.std().clamp_min(1e-8)
        # mean ‖ΔW‖² without forming ΔW (a real SD1.5 conv ΔW is 1280 × 11520): ‖BA‖² = Σ (BᵀB) ⊙ (AAᵀ)
        gram = (b.transpose(1, 2) @ b) * (a @ a.transpose(1, 2))  # (n, r, r)
        energy = gram.sum((1, 2)).mean().clamp_min(1e-12)
        out[f"norm.{name}.A_mean"] = am
        out[f"norm.{name}.B_mean"] = bm
        out[f"norm.{name}.std"] = std.reshape(1)
        out[f"norm.{name}.energy"] = energy.reshape(1)
    return out
