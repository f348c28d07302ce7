"""LyCORIS module types → ΔW, and ΔW → plain LoRA factors (best low-rank approximation).

Conventions follow LyCORIS (``lycoris/functional``) and A1111's ``network_lokr`` /
``network_hada``; ``scale`` = alpha / r with alpha defaulting to r:

* LoHa: ΔW = (w1a·w1b) ⊙ (w2a·w2b) · scale, r = ``hada_w1_b.shape[0]``. Tucker (``hada_t1/t2``):
  each half is ``einsum("i j k l, j r, i p -> p r k l", t, w_b, w_a)``.
* LoKr: ΔW = kron(w1, w2) · scale, w1 = ``lokr_w1`` or ``lokr_w1_a·lokr_w1_b``, w2 = ``lokr_w2``
  or ``lokr_w2_a·lokr_w2_b`` or Tucker (``lokr_t2``); r = ``w1_b.shape[0]`` if w1 is factored,
  else ``w2_b.shape[0]``; scale = 1 when both are full matrices.
* LoCon with ``lora_mid`` (Tucker conv): ΔW = einsum(mid, up, down) · scale, stored exactly as
  rank-r factors (down' = mid ⊛ down).
* full ``diff``: ΔW as written.

Everything is computed in float64 from low-rank *factors* (never an SVD of a huge dense ΔW
when the structure gives a cheaper one): LoHa's Hadamard product of two rank-r matrices is the
product of their face-splitting factors (rank r1·r2); LoKr's singular values are the products
of the singular values of w1 and w2. ΔW is stored exactly when its rank is at most
``APPROX_MAX_RANK``; otherwise at the smallest rank reaching ``APPROX_TOL`` relative Frobenius
error, capped at ``APPROX_MAX_RANK``. The error is returned either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from registry.formats.canonical import LoraModule, ModuleKind

if TYPE_CHECKING:  # pragma: no cover
    import torch

APPROX_TOL = 0.01  # target relative Frobenius error of the stored low-rank factors
APPROX_MAX_RANK = 64  # store exactly up to this rank; beyond it, truncate to APPROX_TOL (still ≤ this rank)
NUMERICAL_ZERO = 1e-6  # singular values below this fraction of the largest count as zero
# Last path segments of 3×3 convolutions in diffusers / sgm UNets; the 1×1 ones after them.
CONV3_LEAVES = frozenset({"conv", "conv1", "conv2", "conv_in", "conv_out", "op", "in_layers.2", "out_layers.3"})
CONV1_LEAVES = frozenset({"conv_shortcut", "skip_connection"})

Factors = tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]  # (u (m, q), s (q,), vh (q, n))
LowRank = tuple["torch.Tensor", "torch.Tensor", float]  # (up (m, k), down (k, n), relative error)


def kernel_hint(name: str, cols: int) -> tuple[int, int] | None:
    """Kernel of a conv layer whose LyCORIS factors were stored flat (in·kh·kw columns), from its name."""
    parts = name.split(".")
    leaves = {parts[-1], ".".join(parts[-2:])}
    if leaves & CONV3_LEAVES and cols % 9 == 0:
        return (3, 3)
    if leaves & CONV1_LEAVES:
        return (1, 1)
    return None


def _f64(t: torch.Tensor) -> torch.Tensor:
    import torch

    return t.detach().to(torch.float64)


def svd_of_product(u: torch.Tensor, v: torch.Tensor) -> Factors:
    """Thin SVD of u @ v (u (m, R), v (R, n)) through two QRs: cost O((m+n)·R²)."""
    import torch

    if u.shape[1] >= min(u.shape[0], v.shape[1]):  # inner dim not smaller than ΔW: dense is cheaper
        return svd_dense(u @ v)
    qa, ra = torch.linalg.qr(u)  # (m, R'), (R', R)
    qb, rb = torch.linalg.qr(v.T)  # (n, R''), (R'', R)
    uc, s, vhc = torch.linalg.svd(ra @ rb.T, full_matrices=False)  # core (R', R'')
    return qa @ uc, s, vhc @ qb.T  # (m, q), (q,), (q, n)


def svd_dense(w: torch.Tensor) -> Factors:
    import torch

    u, s, vh = torch.linalg.svd(w.reshape(w.shape[0], -1), full_matrices=False)
    return u, s, vh


def choose_rank(s: torch.Tensor, *, tol: float = APPROX_TOL, max_rank: int = APPROX_MAX_RANK) -> tuple[int, float]:
    """Stored rank for singular values ``s`` and the relative Frobenius error it leaves: (k, error).

    Exact (the numerical rank) when that fits in ``max_rank``; otherwise the smallest k whose
    dropped values leave ≤ ``tol`` relative error, capped at ``max_rank``. k ≥ 1.
    """
    import torch

    s = torch.sort(s.abs(), descending=True).values
    total = float(torch.linalg.norm(s))
    if total == 0.0:
        return 1, 0.0
    tail = torch.sqrt(torch.flip(torch.cumsum(torch.flip(s**2, [0]), 0), [0]))  # tail[k] = ‖s[k:]‖
    tail = torch.cat([tail, tail.new_zeros(1)]) / total
    numerical_rank = int((s > NUMERICAL_ZERO * s[0]).sum())
    if numerical_rank <= max_rank:
        k = numerical_rank
    else:
        ok = (tail <= tol).nonzero()
        k = min(int(ok[0]) if ok.numel() else s.numel(), max_rank)
    k = max(1, k)
    return k, float(tail[k])


def truncate(f: Factors, scale: float, *, tol: float = APPROX_TOL, max_rank: int = APPROX_MAX_RANK) -> LowRank:
    """(up (m, k), down (k, n), relative error): best rank-k approximation of scale·u·diag(s)·vh."""
    import torch

    u, s, vh = f
    if u.shape[1] == s.shape[0]:
        order = torch.argsort(s, descending=True)
        u, s, vh = u[:, order], s[order], vh[order]
    # else: partial factors (``lokr_factors``): s is the whole spectrum sorted descending, and
    # u / vh hold only its leading columns, as many as any rank ≤ max_rank needs.
    k, err = choose_rank(s, tol=tol, max_rank=max_rank)
    root = (s[:k].clamp_min(0) * abs(scale)).sqrt()  # (k,)
    up = u[:, :k] * root * (-1.0 if scale < 0 else 1.0)  # (m, k)
    down = root[:, None] * vh[:k]  # (k, n)
    return up.float().contiguous(), down.float().contiguous(), err


def _half_factors(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-rank factors (U (out, r), V (r, in·k·k)) of one LoHa half or a factored LoKr w2."""
    import torch

    if t is None:
        return _f64(a), _f64(b).reshape(b.shape[0], -1)  # w_a (out, r), w_b (r, in[·k·k])
    # Tucker: w_a (r, out), w_b (r, in), t (r, r, k, k)
    core = torch.einsum("i j k l, j r -> i r k l", _f64(t), _f64(b))  # (r, in, k, k)
    return _f64(a).T, core.reshape(core.shape[0], -1)


def rank_mismatch(p: Mapping[str, torch.Tensor], a_key: str, b_key: str, t_key: str) -> str | None:
    """Why ``a_key`` · ``b_key`` (through Tucker core ``t_key``) is not a valid product, or None."""
    a, b, t = p.get(a_key), p.get(b_key), p.get(t_key)
    if a is None or b is None:
        return None
    if t is None:  # a (out, r) · b (r, in[·k·k])
        ok = a.dim() == 2 and b.dim() >= 2 and a.shape[1] == b.shape[0]
    else:  # a (r, out), b (r, in), t (r, r, k, k)
        ok = a.dim() == 2 and b.dim() == 2 and t.dim() >= 3 and tuple(t.shape[:2]) == (a.shape[0], b.shape[0])
    via = "" if t is None else f" through {t_key} {tuple(t.shape)}"
    return None if ok else f"{a_key} {tuple(a.shape)} and {b_key} {tuple(b.shape)}{via} do not share a rank"


def loha_factors(p: Mapping[str, torch.Tensor]) -> tuple[Factors, int]:
    """SVD factors of the unscaled LoHa ΔW (out, in·k·k) and its rank r (for alpha / r)."""
    u1, v1 = _half_factors(p["hada_w1_a"], p["hada_w1_b"], p.get("hada_t1"))
    u2, v2 = _half_factors(p["hada_w2_a"], p["hada_w2_b"], p.get("hada_t2"))
    if u1.shape[0] != u2.shape[0] or v1.shape[1] != v2.shape[1]:
        raise ValueError(f"LoHa halves differ: ({u1.shape[0]}, {v1.shape[1]}) vs ({u2.shape[0]}, {v2.shape[1]})")
    u = (u1[:, :, None] * u2[:, None, :]).reshape(u1.shape[0], -1)  # (out, r1·r2) face-splitting
    v = (v1[:, None, :] * v2[None, :, :]).reshape(-1, v1.shape[1])  # (r1·r2, in·k·k)
    return svd_of_product(u, v), int(p["hada_w1_b"].shape[0])


def _lokr_part(p: Mapping[str, torch.Tensor], i: int) -> Factors:
    full = p.get(f"lokr_w{i}")
    if full is not None:
        return svd_dense(_f64(full))
    u, v = _half_factors(p[f"lokr_w{i}_a"], p[f"lokr_w{i}_b"], p.get(f"lokr_t{i}"))
    return svd_of_product(u, v)


def lokr_rank(p: Mapping[str, torch.Tensor]) -> int | None:
    """LyCORIS's r for alpha / r: the factored part's inner dim; None (scale 1) when both are full."""
    if "lokr_w1_b" in p:
        return int(p["lokr_w1_b"].shape[0])
    if "lokr_w2_b" in p:
        return int(p["lokr_w2_b"].shape[0])
    return None


def lokr_factors(p: Mapping[str, torch.Tensor], max_rank: int = APPROX_MAX_RANK) -> Factors:
    """SVD factors of the unscaled kron(w1, w2) (out, in·k·k) from the SVDs of w1 and w2."""
    import torch

    u1, s1, vh1 = _lokr_part(p, 1)  # w1 (a, c)
    u2, s2, vh2 = _lokr_part(p, 2)  # w2 (b, d·k·k)
    s = torch.outer(s1, s2).reshape(-1)  # pair (i, j) at i·len(s2) + j
    order = torch.argsort(s, descending=True)
    s = s[order]  # the whole spectrum, sorted: what the rank choice and its error need
    # Only the leading pairs' singular vectors are ever kept (rank ≤ max_rank): forming all
    # len(s1)·len(s2) Kronecker columns costs (out · in) per pair, most of them thrown away.
    top = order[:max_rank]
    i, j = top // len(s2), top % len(s2)
    u = (u1[:, i][:, None, :] * u2[:, j][None, :, :]).reshape(u1.shape[0] * u2.shape[0], -1)  # (a·b, m) kron columns
    vh = (vh1[i][:, :, None] * vh2[j][:, None, :]).reshape(len(top), -1)  # (m, c·d·k·k) kron rows
    return u, s, vh


def lokr_lowrank(
    p: Mapping[str, torch.Tensor], scale: float, *, tol: float = APPROX_TOL, max_rank: int = APPROX_MAX_RANK
) -> LowRank:
    """``truncate(lokr_factors(p), scale)`` without the float64 (out, m) / (m, in) intermediates.

    The kept pairs' singular values are split between the parts before the Kronecker product:
    column (i, j) of up is ±√(s1ᵢ·|scale|)·u1ᵢ ⊗ √s2ⱼ·u2ⱼ (± the sign of ``scale``), row (i, j) of
    down √(s1ᵢ·|scale|)·vh1ᵢ ⊗ √s2ⱼ·vh2ⱼ; their products are formed once, in float32, at the kept
    rank k only. The same pairs, order, rank and error as ``truncate``; the factors differ from
    its (float64 products rounded once) by float32 rounding (``tests/formats/test_lokr_fast.py``)."""
    import torch

    u1, s1, vh1 = _lokr_part(p, 1)  # w1 (a, c): (a, q1), (q1,), (q1, c)
    u2, s2, vh2 = _lokr_part(p, 2)  # w2 (b, d·k·k): (b, q2), (q2,), (q2, d·k·k)
    s = torch.outer(s1, s2).reshape(-1)  # pair (i, j) at i·len(s2) + j
    order = torch.argsort(s, descending=True)
    k, err = choose_rank(s[order], tol=tol, max_rank=max_rank)
    top = order[:k]
    i, j = top // len(s2), top % len(s2)  # (k,), (k,)
    r1, r2 = s1.clamp_min(0).sqrt(), s2.clamp_min(0).sqrt()  # (q1,), (q2,)
    c = abs(scale) ** 0.5  # √|scale| on each side, the sign on up
    a1 = (u1[:, i] * (r1[i] * (-c if scale < 0 else c))).float()  # (a, k)
    a2 = (u2[:, j] * r2[j]).float()  # (b, k)
    b1 = (vh1[i] * (r1[i, None] * c)).float()  # (k, c)
    b2 = (vh2[j] * r2[j, None]).float()  # (k, d·k·k)
    up = (a1[:, None, :] * a2[None, :, :]).reshape(a1.shape[0] * a2.shape[0], k)  # (a·b, k) kron columns
    down = (b1[:, :, None] * b2[:, None, :]).reshape(k, -1)  # (k, c·d·k·k) kron rows
    return up, down, err


def lokr_delta(p: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Dense unscaled kron(w1, w2) as LyCORIS ``make_kron`` builds it, flattened to (out, in·k·k)."""
    import torch

    def part(i: int) -> torch.Tensor:
        if f"lokr_w{i}" in p:
            w = _f64(p[f"lokr_w{i}"])
            return w.reshape(w.shape[0], -1)
        u, v = _half_factors(p[f"lokr_w{i}_a"], p[f"lokr_w{i}_b"], p.get(f"lokr_t{i}"))
        return u @ v

    return torch.kron(part(1), part(2))


def locon_mid_factors(up: torch.Tensor, mid: torch.Tensor, down: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact LoRA factors of a Tucker LoCon: (up (out, r, 1, 1), down' (r, in, k, k)); ΔW = up ⊛ mid ⊛ down."""
    import torch

    d2 = _f64(down).reshape(down.shape[0], -1)  # (r_in, in)
    new_down = torch.einsum("n m k l, m j -> n j k l", _f64(mid), d2)  # (r, in, k, k)
    up4 = _f64(up).reshape(up.shape[0], -1, 1, 1)  # (out, r, 1, 1)
    return up4.float(), new_down.float()


def kernel_of(p: Mapping[str, torch.Tensor]) -> tuple[int, int] | None:
    """Kernel size when any factor of the module is 4-D (conv written unflattened); the largest wins."""
    kernels = [(int(t.shape[-2]), int(t.shape[-1])) for t in p.values() if t.dim() == 4]
    return max(kernels, key=lambda k: k[0] * k[1]) if kernels else None


def as_lora_module(
    name: str, factors: Factors, scale: float, p: Mapping[str, torch.Tensor], source_type: str
) -> LoraModule:
    """Best low-rank factors of scale·ΔW as a module (scale 1, error recorded); conv when the kernel is known."""
    return lowrank_module(name, truncate(factors, scale), p, source_type)


def lowrank_module(name: str, lowrank: LowRank, p: Mapping[str, torch.Tensor], source_type: str) -> LoraModule:
    """``as_lora_module`` of factors already truncated: (up (out, k), down (k, in·kh·kw), error)."""
    up, down, err = lowrank
    cols = int(down.shape[1])
    kernel = kernel_of({k: v for k, v in p.items() if k != "diff_b"}) or kernel_hint(name, cols)
    kind: ModuleKind = "linear"
    if kernel is not None and cols % (kernel[0] * kernel[1]) == 0:
        down = down.reshape(down.shape[0], -1, *kernel)  # (k, in, kh, kw)
        up = up[:, :, None, None]  # (out, k, 1, 1)
        kind = "conv"
    return LoraModule(name, down, up, 1.0, None, kind, approx_error=err, source_type=source_type)
