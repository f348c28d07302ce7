"""``analogy``: a task no expert does, built as ΔW_a + ΔW_b − ΔW_c from three experts that do.

"sepia with horizontal stripes" is in no library, but "sepia with grid lines", "thermal
colours with horizontal stripes" and "thermal colours with grid lines" may be: what the first
and second add, minus what they share through the third. The triple is found in text, not in
weights: description embeddings (through the library's learned map, ``encoders.text_map``) add
up like the requests they describe, so the request q is matched against every
normalize(eₐ + e_b − e_c), with a and b among the experts nearest to q and c any other expert
(eᵢ: the mean of expert i's mapped descriptions). The best ``analogies`` triples are averaged
(exact ΔW sums, never A and B averaged apart), which steadies what a single triple gets wrong.

When the best triple does not beat the nearest expert's own cosine by ``margin``, the request
is one an expert already does (or nothing fits it better): the nearest expert is returned, as
``nearest`` would. ``margin`` and ``analogies`` were chosen on training tasks with their own
expert left out of the library (see ``benchmarks/results/generation_notes.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generators.base import Factors, register_generator
from generators.baselines import BaselineConfig, _LibraryGenerator
from generators.errors import GeneratorTrainingError

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class AnalogyConfig(BaselineConfig):
    candidates: int = 10  # experts nearest the request tried as the two added terms
    analogies: int = 4  # best triples averaged
    margin: float = 0.14  # a triple must beat the nearest expert's cosine by this much

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.candidates < 2:
            raise GeneratorTrainingError(f"candidates must be ≥ 2, got {self.candidates}")
        if self.analogies < 1:
            raise GeneratorTrainingError(f"analogies must be ≥ 1, got {self.analogies}")


class AnalogyGenerator(_LibraryGenerator):
    """Experts a + b − c, found by description-embedding arithmetic (module docstring)."""

    method = "analogy"
    config_cls = AnalogyConfig

    def triples(
        self, emb: torch.Tensor, exclude: list[int] | None = None
    ) -> tuple[list[tuple[float, tuple[int, int, int]]], float, int]:
        """Best (cosine, (a, b, c)) triples, best first; the nearest expert's cosine and index.
        ``exclude``: experts left out (leave-one-out validation of the method)."""
        import torch

        from encoders.text_map import apply_text_map

        q = apply_text_map(emb, self.library.text_map)  # (d,)
        protos = self.library.protos  # (E, d): each expert's mean mapped description
        s = protos @ q  # (E,)
        out = list(exclude or [])
        s[out] = -2.0
        n = len(self.library)
        top = torch.topk(s, min(self.config.candidates, n)).indices.tolist()
        found: list[tuple[float, tuple[int, int, int]]] = []
        for x, a in enumerate(top):
            for b in top[x + 1 :]:
                v = torch.nn.functional.normalize(protos[a] + protos[b] - protos, dim=-1)  # (E, d)
                sc = v @ q  # (E,): cosine of q with eₐ + e_b − e_c for every c
                sc[[a, b, *out]] = -2.0
                c = int(sc.argmax())
                if c not in (a, b):
                    found.append((float(sc[c]), (a, b, c)))
        found.sort(key=lambda t: -t[0])
        return found, float(s.max()), int(s.argmax())

    def factors(self, emb: torch.Tensor, example_emb: torch.Tensor | None, seed: int) -> tuple[Factors, dict[str, Any]]:
        found, near, _ = self.triples(emb)
        lib = self.library
        if not found or found[0][0] - near < self.config.margin:
            j = int(lib.scores(emb).argmax())  # as ``nearest`` picks
            return lib.expert(j), {"experts": [{"name": lib.names[j], "weight": 1.0}], "analogy": None}
        chosen = found[: self.config.analogies]  # one (the best) c per pair
        facs, weight = self.blend(chosen)
        experts = [{"name": lib.names[e], "weight": round(w, 6)} for e, w in weight.items()]
        info = {
            "experts": experts,
            "analogy": [{"add": [lib.names[a], lib.names[b]], "subtract": lib.names[c], "cosine": round(s, 4)}
                        for s, (a, b, c) in chosen],
            "nearest_cosine": round(near, 4),
        }  # fmt: skip
        return facs, info

    def blend(self, chosen: list[tuple[float, tuple[int, int, int]]]) -> tuple[Factors, dict[int, float]]:
        """The mean of the triples' a + b − c: exact ΔW sum of their experts, and each expert's weight."""
        import torch

        weight: dict[int, float] = {}
        for _, (a, b, c) in chosen:
            for e, w in ((a, 1.0), (b, 1.0), (c, -1.0)):
                weight[e] = weight.get(e, 0.0) + w / len(chosen)
        weight = {e: w for e, w in weight.items() if abs(w) > 1e-9}
        idx = list(weight)
        return self.library.mix(idx, torch.tensor([weight[e] for e in idx]), self.layout.rank * len(idx)), weight

    def output_rank(self, factors: Factors) -> int:
        """The sum's own rank (at most 256): truncating a + b − c to the canonical rank drops
        much of what each part adds (style hit 0.39 → 0.23 at rank 4 on left-out training pairs)."""
        return min(256, max(int(a.shape[0]) for a, _ in factors.values()))


register_generator("analogy", AnalogyGenerator)
