"""Weight-space merges of LoRA adapters, strategies registered by name.

``merge(adapters, weights, strategy="cat")`` combines adapters of one family into one adapter
in the family's native format. Every strategy works on ΔWᵢ = sᵢ·BᵢAᵢ (scales folded in, so
alpha/r, rsLoRA's alpha/√r and different ranks merge correctly) and never combines A and B
separately, which is what adds PEFT ``linear``'s cross terms:

* ``cat`` (exact): Σ wᵢ ΔWᵢ by concatenating rank components, ranks add, any sign of weight.
* ``svd`` (LoRA-Squeeze): the exact sum re-factored at ``rank`` by randomized SVD.
* ``ties``, ``dare_linear``, ``dare_ties``, ``magnitude_prune``: the PEFT ``*_svd`` family on
  ΔW (trim / drop-and-rescale, sign election), re-factored at ``rank``.
* ``lego`` (LoRA-LEGO): rank-1 units of all adapters clustered into ``rank`` groups, each group
  fused into one unit.
* ``zip`` (ZipLoRA-style, exact): Σ mᵢ ⊙ wᵢΔWᵢ with per-channel coefficients mᵢ fitted on the
  base model (``fusion.merge.ziplora.zip_merge``); ``merge`` applies given ``coefficients``.

Approximating strategies report ``relative_error`` = ‖ΔW_merged − Σ wᵢΔWᵢ‖_F / ‖Σ wᵢΔWᵢ‖_F per
module and overall. Refused (``IncompatibleAdaptersError``, naming the adapters): DoRA
magnitudes, different families, a module that is linear in one adapter and conv in another or
has other shapes, and different module sets unless ``missing="zero"`` (default ``"error"``):
with ``"zero"`` an adapter without a module contributes ΔW = 0 there, which is exactly what that
adapter does to the model, so ``cat`` stays exact.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fusion.errors import FusionError, IncompatibleAdaptersError, UnknownStrategyError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from registry.formats.canonical import LoraAdapter, LoraModule

MISSING_POLICIES = ("error", "zero")


@dataclass
class ModuleInput:
    """What a strategy sees for one module name: the present adapters' factors, scales folded in."""

    name: str  # canonical module name
    kind: str  # linear | conv
    shape: tuple[int, ...]  # ΔW shape: (out, in) or (out, in, kh, kw)
    downs: list[torch.Tensor]  # Aᵢ flattened: (rᵢ, in·kh·kw)
    ups: list[torch.Tensor]  # wᵢ·sᵢ·Bᵢ flattened: (out, rᵢ) (the weight is folded in here)
    seed: int  # per-module seed (stable across module order)

    def exact(self) -> torch.Tensor:
        """Σ wᵢ sᵢ BᵢAᵢ: (out, in·kh·kw)."""
        import torch

        out = self.shape[0]
        total = torch.zeros(out, self.downs[0].shape[1]) if self.downs else torch.zeros(out, 1)
        for a, b in zip(self.downs, self.ups, strict=True):
            total += b @ a  # (out, in·kh·kw)
        return total

    def deltas(self) -> list[torch.Tensor]:
        """wᵢ ΔWᵢ each: (out, in·kh·kw)."""
        return [b @ a for a, b in zip(self.downs, self.ups, strict=True)]


@dataclass
class StrategyContext:
    rank: int | None  # target rank (None: the strategy's default)
    seed: int  # base seed for random steps (DARE drops, randomized SVD, LEGO clustering)
    options: dict[str, Any] = field(default_factory=dict)  # strategy options (density, …)


# (module, context) → (down (r, in·kh·kw), up (out, r), exact?) with scale 1
Strategy = Callable[[ModuleInput, StrategyContext], "tuple[torch.Tensor, torch.Tensor, bool]"]
_STRATEGIES: dict[str, Strategy] = {}
_OPTIONS: dict[str, tuple[str, ...]] = {}
_LEARNED: set[str] = set()


def register_strategy(name: str, fn: Strategy, options: tuple[str, ...] = (), *, learned: bool = False) -> None:
    """Add a merge strategy; ``options`` names the keyword options it reads. ``learned``: its
    coefficients are fitted on the family's base model (GPU-heavy; the strategy itself only applies
    given ones)."""
    if name in _STRATEGIES:
        raise ValueError(f"merge strategy {name!r} is already registered")
    _STRATEGIES[name] = fn
    _OPTIONS[name] = options
    if learned:
        _LEARNED.add(name)


def _load_builtin() -> None:
    from fusion.merge import exact, lego, sparse, ziplora  # noqa: F401


def strategies() -> list[str]:
    _load_builtin()
    return list(_STRATEGIES)


def learned_strategies() -> list[str]:
    """The strategies fitted on the family's base model (``zip``): a merge or a ``merge:S``
    composition with one of them runs the base, so it goes where the GPU work goes."""
    _load_builtin()
    return [s for s in _STRATEGIES if s in _LEARNED]


def get_strategy(name: str) -> Strategy:
    _load_builtin()
    if name not in _STRATEGIES:
        raise UnknownStrategyError("merge", name, list(_STRATEGIES))
    return _STRATEGIES[name]


@dataclass
class MergeResult:
    adapter: LoraAdapter  # in the family's native format (format/metadata/base_model of the first input)
    info: dict[str, Any]  # strategy, weights, rank, relative_error, per_module_error, warnings


def _label(adapter: LoraAdapter, i: int) -> str:
    title = adapter.metadata.get("name") or adapter.metadata.get("modelspec.title") or adapter.base_model
    return f"adapter {i}" + (f" ({title})" if isinstance(title, str) and title else "")


def check_compatible(adapters: list[LoraAdapter], missing: str = "error") -> list[str]:
    """Raise ``IncompatibleAdaptersError`` for what cannot merge exactly; return the module names."""
    if not adapters:
        raise FusionError("merge needs at least one adapter")
    if missing not in MISSING_POLICIES:
        raise FusionError(f"unknown missing-module policy {missing!r}; choose one of {', '.join(MISSING_POLICIES)}")
    families = {a.family for a in adapters}
    if len(families) > 1:
        who = "; ".join(f"{_label(a, i)}: {a.family}" for i, a in enumerate(adapters))
        raise IncompatibleAdaptersError(f"adapters of different families cannot merge ({who})")
    for i, a in enumerate(adapters):
        dora = [m.name for m in a.modules.values() if m.magnitude is not None]
        if dora:
            raise IncompatibleAdaptersError(
                f"{_label(a, i)} is a DoRA adapter (magnitude vectors, e.g. {dora[0]}): its ΔW depends on "
                "the base weight's column norms, so no exact weight-space merge exists"
            )
    names: list[str] = []
    for a in adapters:
        names += [n for n in a.modules if n not in names]
    for n in names:
        present = [(i, a.modules[n]) for i, a in enumerate(adapters) if n in a.modules]
        if len(present) < len(adapters) and missing == "error":
            absent = [_label(a, i) for i, a in enumerate(adapters) if n not in a.modules]
            raise IncompatibleAdaptersError(
                f"module {n!r} is missing from {', '.join(absent)} (different module sets); pass missing='zero' "
                "to treat an absent module as ΔW = 0"
            )
        i0, m0 = present[0]
        for i, m in present[1:]:
            if m.kind != m0.kind:
                raise IncompatibleAdaptersError(
                    f"module {n!r} is {m0.kind} in {_label(adapters[i0], i0)} but {m.kind} in {_label(adapters[i], i)}"
                )
            if _shape(m) != _shape(m0):
                raise IncompatibleAdaptersError(
                    f"module {n!r} has ΔW shape {_shape(m0)} in {_label(adapters[i0], i0)} but {_shape(m)} in "
                    f"{_label(adapters[i], i)}"
                )
    return names


def _shape(m: LoraModule) -> tuple[int, ...]:
    """ΔW shape: (out, in) or (out, in, kh, kw)."""
    return (int(m.up.shape[0]), *(int(s) for s in m.down.shape[1:]))


def _module_seed(seed: int, name: str) -> int:
    import zlib

    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**31 - 1)


def merge(
    adapters: list[LoraAdapter],
    weights: list[float] | None = None,
    *,
    strategy: str = "cat",
    rank: int | None = None,
    seed: int = 0,
    missing: str = "error",
    **options: Any,
) -> MergeResult:
    """Merge ``adapters`` (weights default to 1 each) with a registered ``strategy``.

    ``rank``: target rank of approximating strategies (``svd`` and ``lego`` default to the
    largest input rank; the sparse strategies default to the sum of ranks). ``missing``:
    ``"error"`` (default) refuses different module sets, ``"zero"`` treats an absent module as
    ΔW = 0. Options: ``density`` (ties, dare_*, magnitude_prune; default 0.5), ``majority_sign``
    (ties, dare_ties: ``"total"`` or ``"frequency"``), ``oversample`` / ``niter`` (randomized SVD),
    ``iters`` (lego k-means).
    """
    import torch

    from registry.formats.canonical import LoraAdapter, LoraModule

    fn = get_strategy(strategy)
    unknown = set(options) - set(_OPTIONS[strategy])
    if unknown:
        raise FusionError(
            f"strategy {strategy!r} takes no option {', '.join(sorted(unknown))}; its options: "
            f"{', '.join(_OPTIONS[strategy]) or 'none'}"
        )
    if weights is None:
        weights = [1.0] * len(adapters)
    if len(weights) != len(adapters):
        raise FusionError(f"{len(weights)} weights for {len(adapters)} adapters")
    if any(not math.isfinite(float(w)) for w in weights):
        raise FusionError(f"weights must be finite numbers, got {weights}")
    if rank is not None and rank < 1:
        raise FusionError(f"rank must be a positive integer, got {rank}")
    names = check_compatible(adapters, missing)
    ctx = StrategyContext(rank=rank, seed=seed, options=dict(options))
    modules: dict[str, LoraModule] = {}
    per_module: dict[str, float] = {}
    num = den = 0.0
    exact_all = True
    for name in names:
        present = [(a.modules[name], float(w)) for a, w in zip(adapters, weights, strict=True) if name in a.modules]
        m0 = present[0][0]
        shape = _shape(m0)
        downs = [m.down.detach().float().reshape(m.rank, -1).cpu() for m, _ in present]  # (rᵢ, in·kh·kw)
        ups = [(w * m.scale) * m.up.detach().float().reshape(m.out_features, m.rank).cpu() for m, w in present]
        mi = ModuleInput(name, m0.kind, shape, downs, ups, _module_seed(seed, name))
        with torch.no_grad():
            down, up, exact = fn(mi, ctx)  # (r, in·kh·kw), (out, r)
        if not (bool(torch.isfinite(down).all()) and bool(torch.isfinite(up).all())):
            raise FusionError(f"module {name}: weights {list(weights)} overflow the merged factors (not finite numbers); "
                              "use smaller weights")  # fmt: skip
        if not exact:
            exact_all = False
            target = mi.exact()  # (out, in·kh·kw)
            diff = float(torch.linalg.norm(up @ down - target))
            ref = float(torch.linalg.norm(target))
            per_module[name] = diff / ref if ref > 0 else (0.0 if diff == 0 else float("inf"))
            num += diff**2
            den += ref**2
        r = int(down.shape[0])
        if m0.kind == "conv":
            down = down.reshape(r, *shape[1:])  # (r, in, kh, kw)
            up = up.reshape(shape[0], r, 1, 1)  # (out, r, 1, 1)
        modules[name] = LoraModule(
            name, down.contiguous(), up.contiguous(), 1.0, float(r), m0.kind,
            approx_error=None if exact else per_module[name], source_type="merged",
        )  # fmt: skip
    first = adapters[0]
    warnings: list[str] = []
    formats = {a.format for a in adapters}
    if len(formats) > 1:
        warnings.append(f"inputs come in formats {sorted(formats)}; the result is written as {first.format!r}")
    metadata = copy.deepcopy(first.metadata)
    metadata["merge"] = {"strategy": strategy, "weights": [float(w) for w in weights], "rank": rank, "seed": seed}
    out = LoraAdapter(
        modules=modules, family=first.family, format=first.format, metadata=metadata,
        description=None, base_model=first.base_model, fan_in_fan_out=first.fan_in_fan_out,
        use_rslora=False, warnings=warnings,
    )  # fmt: skip
    overall = None if exact_all else (math.sqrt(num) / math.sqrt(den) if den > 0 else 0.0)
    info: dict[str, Any] = {
        "strategy": strategy,
        "weights": [float(w) for w in weights],
        "rank": max(out.ranks) if out.ranks else 0,
        "ranks": out.ranks,
        "exact": exact_all,
        "relative_error": overall,
        "per_module_error": per_module,
        "missing": missing,
        "options": dict(options),
        "seed": seed,
        "warnings": warnings,
    }
    return MergeResult(adapter=out, info=info)


__all__ = ["MergeResult", "merge", "register_strategy", "strategies", "learned_strategies", "get_strategy",
           "check_compatible"]  # fmt: skip
