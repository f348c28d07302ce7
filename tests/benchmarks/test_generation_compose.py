"""The held-out experiment's expert pursuit: two different experts, the second chosen on what the
first leaves unexplained, added at full strength (exact ΔW sum)."""

from __future__ import annotations

import torch

from benchmarks.generation_compose import expert_directions, pursuit
from benchmarks.generation_data import CHECKPOINTS
from generators import load_generator


def test_pursuit_adds_two_distinct_experts_exactly() -> None:
    gen = load_generator(CHECKPOINTS / "zoo-image" / "topk_mean")
    lib = gen.library
    dirs = expert_directions(lib)
    assert torch.allclose(dirs.norm(dim=1), torch.ones(len(lib.names)), atol=1e-5)
    one, pair, cos, (n1, n2) = pursuit(gen, "old brownish photo with horizontal lines", None, rank=2 * gen.layout.rank)
    assert n1 != n2 and -1.0 <= cos <= 1.0
    i1, i2 = lib.names.index(n1), lib.names.index(n2)
    for name, m in pair.modules.items():
        want = torch.zeros_like(m.delta().reshape(m.out_features, -1))
        for i in (i1, i2):
            a, b = lib.expert(i)[name]
            want += b @ a  # (out, in_flat)
        got = m.delta().reshape(m.out_features, -1)
        assert torch.allclose(got, want, atol=1e-4 * float(want.abs().max()) + 1e-7), name
    # excluding the first choice changes it (the leave-one-task-out validation relies on this)
    _, _, _, (m1, _) = pursuit(gen, "old brownish photo with horizontal lines", i1)
    assert m1 != n1
