"""LoKr's low-rank factors from the parts' SVDs (``lokr_lowrank``) against a dense SVD of the
Kronecker product and against the float64 path (``truncate(lokr_factors(...))``): the same rank,
the same recorded error (the optimal one, Eckart–Young), and stored factors whose actual error is
the recorded one, on random modules with full, factored and Tucker parts, rank-deficient parts
and tied singular values."""

from __future__ import annotations

import pytest
import torch

from registry.formats.lycoris_ops import (
    APPROX_MAX_RANK,
    APPROX_TOL,
    choose_rank,
    lokr_delta,
    lokr_factors,
    lokr_lowrank,
    truncate,
)


def _rnd(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _orthogonal(n: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(_rnd(n, n, seed=seed))
    return q


def _cases() -> dict[str, tuple[dict[str, torch.Tensor], float]]:
    """name → (LyCORIS tensors of one module, scale)."""
    return {
        # rank 4 · rank 4 = 16 ≤ 64: stored exactly
        "factored_both": (
            {
                "lokr_w1_a": _rnd(6, 4, seed=1),
                "lokr_w1_b": _rnd(4, 5, seed=2),
                "lokr_w2_a": _rnd(20, 4, seed=3),
                "lokr_w2_b": _rnd(4, 24, seed=4),
            },
            0.5,
        ),
        # full w1 (8·8 = 64 values of rank 8) ⊗ factored rank-12 w2: 96 > 64, truncated
        "full_w1_truncated": (
            {"lokr_w1": _rnd(8, 8, seed=5), "lokr_w2_a": _rnd(30, 12, seed=6), "lokr_w2_b": _rnd(12, 40, seed=7)},
            1.0,
        ),
        # a full w2 that is rank-deficient (rank 3 in a 16×18 matrix), negative scale
        "rank_deficient": (
            {"lokr_w1": _rnd(4, 4, seed=8), "lokr_w2": _rnd(16, 3, seed=9) @ _rnd(3, 18, seed=10)},
            -0.75,
        ),
        # orthogonal parts: every singular value 1, 12·10 = 120 tied values across the cut at 64
        "all_tied": ({"lokr_w1": _orthogonal(12, 11), "lokr_w2": 2.0 * _orthogonal(10, 12)}, 1.0),
        # w1's values tied in pairs, w2 graded: products tie across pairs
        "pairs_tied": (
            {
                "lokr_w1": torch.diag(torch.tensor([3.0, 3.0, 1.0, 1.0, 0.5, 0.5])) @ _orthogonal(6, 13),
                "lokr_w2": _rnd(14, 15, seed=14),
            },
            0.25,
        ),
        # a Tucker conv w2 (r = 3, 3×3 kernel), flattened to (out, in·9)
        "tucker_conv": (
            {
                "lokr_w1": _rnd(4, 2, seed=15),
                "lokr_t2": _rnd(3, 3, 3, 3, seed=16),
                "lokr_w2_a": _rnd(3, 8, seed=17),
                "lokr_w2_b": _rnd(3, 5, seed=18),
            },
            2.0,
        ),
    }


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


@pytest.mark.parametrize("name", list(_cases()))
def test_fast_lokr_matches_a_dense_svd(name: str) -> None:
    p, scale = _cases()[name]
    p = {k: v.double() for k, v in p.items()}
    dw = scale * lokr_delta(p).reshape(lokr_delta(p).shape[0], -1)  # (out, in·k·k) float64
    s_dense = torch.linalg.svdvals(dw)  # (min(out, in),)
    k_dense, err_dense = choose_rank(s_dense)
    up, down, err = lokr_lowrank(p, scale)  # (out, k), (k, in·k·k)
    assert up.dtype == down.dtype == torch.float32
    assert up.shape == (dw.shape[0], k_dense) and down.shape == (k_dense, dw.shape[1])
    assert err == pytest.approx(err_dense, abs=1e-9)  # the optimal error for that rank
    got = up.double() @ down.double()
    assert _rel(got, dw) == pytest.approx(err, abs=1e-5)  # the stored factors have the recorded error
    if err_dense < 1e-9:
        assert _rel(got, dw) < 1e-6  # exact ΔW when the rank fits
    elif name != "all_tied" and s_dense[k_dense - 1] - s_dense[k_dense] > 1e-6 * s_dense[0]:
        # a gap at the cut: the best rank-k approximation is unique, the dense one's
        u, s, vh = torch.linalg.svd(dw, full_matrices=False)
        best = (u[:, :k_dense] * s[:k_dense]) @ vh[:k_dense]
        assert _rel(got, best) < 1e-5


@pytest.mark.parametrize("name", list(_cases()))
@pytest.mark.parametrize("max_rank", [APPROX_MAX_RANK, 5])
def test_fast_lokr_matches_the_float64_path(name: str, max_rank: int) -> None:
    p, scale = _cases()[name]
    up, down, err = lokr_lowrank(p, scale, max_rank=max_rank)
    up0, down0, err0 = truncate(lokr_factors(p, max_rank=max_rank), scale, tol=APPROX_TOL, max_rank=max_rank)
    assert err == err0 and up.shape == up0.shape and down.shape == down0.shape
    torch.testing.assert_close(up, up0, rtol=1e-5, atol=1e-6 * float(up0.abs().max()))
    torch.testing.assert_close(down, down0, rtol=1e-5, atol=1e-6 * float(down0.abs().max()))
