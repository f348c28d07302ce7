"""``analogy``: a task no expert does, built as ΔW_a + ΔW_b − ΔW_c from three experts that do.

"sepia with horizontal stripes" is in no library, but "sepia with grid lines", "thermal
colours with horizontal stripes" and "thermal colours with grid lines" may be: what the first
and second add, minus what they share through the third. The triple is found in text, not in
weights: description embeddings (through the library's learned map, ``encoders.text_map``) add
up like the requests they describe, so the request q is matched against every
normalize(eₐ + e_b − e_c), with a and b among the experts nearest to q and c any other expert
(eᵢ: the mean of expert i's mapped descriptions). The best ``analogies`` triples are averaged
(exact ΔW sums, never A and B averaged apart), which steadies what a single triple gets wrong.

A real analogy's c shares one part with a and the other with b (sepia_grid + thermal_hstripes −
thermal_grid: c is thermal like b and grid like a); ``bridge`` can ask for that: c must reach
min(cos(e_a, e_c), cos(e_b, e_c)) ≥ ``bridge`` (candidate triples are filtered). It is off by
default: chosen leave-one-out with the margin, a margin of 0.26 alone keeps requests an expert
does off triples (≤ 0.0125 of each source on both zoos) and keeps more of what left-out tasks
get (style hit 0.28 image, exact match 0.13 text) than any bridge ≥ 0.2 did (best: 0.25 / 0.11).

When the best triple does not beat the nearest expert's own cosine by ``margin``, the request
is one an expert already does (or nothing fits it better): the nearest expert is returned, as
``nearest`` would ("write the string backwards": best triple 0.164 over `reverse`).
``margin``, ``bridge`` and ``analogies`` were chosen on training tasks with their own expert left
out of the library (``python -m benchmarks.generation_analogy``, ``results/generation_analogy.md``;
see ``benchmarks/results/generation_notes.md``). Checkpoints saved before ``bridge`` existed
load without one (their saved margin is kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from generators.base import Factors, register_generator
from generators.baselines import BaselineConfig, _LibraryGenerator
from generators.errors import GeneratorTrainingError

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class AnalogyConfig(BaselineConfig):
    candidates: int = 10  # experts nearest the request tried as the two added terms
    analogies: int = 4  # best triples averaged
    margin: float = 0.26  # a triple must beat the nearest expert's cosine by this much
    bridge: float | None = None  # c must reach this cosine with both a and b (None: any c)

    # Values for keys a saved config.json lacks: checkpoints from before the bridge keep their behaviour.
    saved_defaults: ClassVar[dict[str, Any]] = {"bridge": None}

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
    chains = True

    def triples(
        self, emb: torch.Tensor, exclude: list[int] | None = None, bridge: float | None = None
    ) -> tuple[list[tuple[float, tuple[int, int, int]]], float, int]:
        """Best (cosine, (a, b, c)) triples, one c per pair, best first; the nearest expert's cosine
        and index. ``bridge``: only c with min(cos(e_a, e_c), cos(e_b, e_c)) ≥ it (None: any c).
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
        sim = protos @ protos.T if bridge is not None else None  # (E, E)
        found: list[tuple[float, tuple[int, int, int]]] = []
        for x, a in enumerate(top):
            for b in top[x + 1 :]:
                v = torch.nn.functional.normalize(protos[a] + protos[b] - protos, dim=-1)  # (E, d)
                sc = v @ q  # (E,): cosine of q with eₐ + e_b − e_c for every c
                sc[[a, b, *out]] = -2.0
                if sim is not None and bridge is not None:
                    sc[torch.minimum(sim[a], sim[b]) < bridge] = -2.0  # c must share a part with each
                c = int(sc.argmax())
                if c not in (a, b) and float(sc[c]) > -2.0:
                    found.append((float(sc[c]), (a, b, c)))
        found.sort(key=lambda t: -t[0])
        return found, float(s.max()), int(s.argmax())

    def bridge_of(self, triple: tuple[int, int, int]) -> float:
        """min(cos(e_a, e_c), cos(e_b, e_c)) of a triple (a, b, c)."""
        a, b, c = triple
        p = self.library.protos
        return float(min(p[a] @ p[c], p[b] @ p[c]))

    def factors(self, emb: torch.Tensor, example_emb: torch.Tensor | None, seed: int) -> tuple[Factors, dict[str, Any]]:
        found, near, _ = self.triples(emb, bridge=self.config.bridge)
        lib = self.library
        if not found or found[0][0] - near < self.config.margin:
            j = int(lib.scores(emb).argmax())  # as ``nearest`` picks
            return lib.expert(j), {"experts": [{"name": lib.names[j], "weight": 1.0}], "analogy": None}
        chosen = found[: self.config.analogies]  # one (the best) c per pair
        facs, weight = self.blend(chosen)
        experts = [{"name": lib.names[e], "weight": round(w, 6)} for e, w in weight.items()]
        info = {
            "experts": experts,
            "analogy": [{"add": [lib.names[a], lib.names[b]], "subtract": lib.names[c], "cosine": round(s, 4),
                         "bridge": round(self.bridge_of((a, b, c)), 4)} for s, (a, b, c) in chosen],
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
