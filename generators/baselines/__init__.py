"""Baseline generators: ``nearest`` expert, weighted ``topk_mean`` of experts, ``mean_all``.

They keep the expert library (canonical factors + description embeddings + the learned
description map) in the checkpoint and pick or mix experts by description cosine. Mixing is the exact ΔW sum (never A and B
averaged separately), re-expressed at the target rank.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generators.base import Factors, Generator, TrainData, register_generator
from generators.errors import GeneratorTrainingError

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class BaselineConfig:
    k: int = 4  # experts mixed by topk_mean (and tried as candidates on examples)
    temperature: float = 0.05  # softmax temperature over description cosines
    rank: int | None = None  # canonical rank (None: the largest rank among the training adapters)
    mean_rank: int = 16  # rank at which mean_all keeps the mean of every adapter
    text_map_steps: int = 300  # steps of the library's description map (encoders.text_map); 0: plain cosine

    def __post_init__(self) -> None:
        if self.k < 1:
            raise GeneratorTrainingError(f"k must be ≥ 1, got {self.k}")
        if self.temperature <= 0:
            raise GeneratorTrainingError(f"temperature must be > 0, got {self.temperature}")
        if self.rank is not None and self.rank < 1:
            raise GeneratorTrainingError(f"rank must be ≥ 1, got {self.rank}")
        if self.mean_rank < 1:
            raise GeneratorTrainingError(f"mean_rank must be ≥ 1, got {self.mean_rank}")
        if self.text_map_steps < 0:
            raise GeneratorTrainingError(f"text_map_steps must be ≥ 0, got {self.text_map_steps}")


def held_chain(picked: list[str], signatures: list[list[str] | None], whole: torch.Tensor) -> int | None:
    """The chain expert whose own steps are the request's: ``picked``, each step's one-step expert;
    ``signatures``, per expert, the one-step experts its steps match (None for one-step experts).
    Of several (both orders of two steps), the one the whole request (``whole`` (E,)) matches best."""
    asked = sorted(picked)
    held = [j for j, sig in enumerate(signatures) if sig == asked]
    return max(held, key=lambda j: float(whole[j])) if held else None


class _LibraryGenerator(Generator):
    config_cls = BaselineConfig
    uses_library = True
    chains = False  # requests that chain steps get the sum of their steps' experts (``chain``)

    def setup(self) -> None:
        from generators.library import Library

        if self.uses_library:
            self.library = Library(self.state, self.info["experts"], self.layout.names)

    @classmethod
    def fit(
        cls, data: TrainData, config: Any, progress: Callable[[int, int], None] | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
        from generators.library import library_state

        state, info = library_state(data, map_steps=config.text_map_steps)
        if progress:
            progress(1, 1)
        size = sum(int(t.numel() * t.element_size()) for t in state.values())
        return state, info, {"library_bytes": size, "experts": len(info["experts"]), "text_map": info.get("text_map")}

    def chain(self, text: str, emb: torch.Tensor) -> tuple[Factors, dict[str, Any]] | None:
        """A request that chains steps (``generators.steps.split_steps``): each part's nearest one-step
        expert (every expert when the checkpoint does not say how many steps each chains), summed
        exactly, when normalize(Σ e_part expert) fits the request better than the nearest expert
        (a chain the library holds keeps its own expert). None otherwise: the method's own answer.

        With chain signatures in the checkpoint (``generators.library.chain_signatures``: the
        one-step experts each chain expert's own descriptions split into), a chain expert whose
        steps are exactly the request's answers first (``held_chain``), even when the whole request
        lands nearer a sibling chain ("… then rotate it one to the left" matched whole lands on
        "Caesar 2 then rotate right"). A looser match (a step within a margin of the signature's)
        was measured and not kept: it summed more held-out chains but lost training chains whose
        signature names a sibling of a step the library lacks (``generation_notes.md``)."""
        import torch

        from encoders.text_map import apply_text_map
        from generators.steps import split_steps

        parts = split_steps(text)
        if not self.chains or not self.uses_library or len(parts) < 2:
            return None
        lib = self.library
        whole = lib.protos @ apply_text_map(emb, lib.text_map)  # (E,)
        steps = self.info.get("expert_steps")
        one = (
            torch.tensor([s == 1 for s in steps])
            if steps and len(steps) == len(lib)
            else torch.ones(len(lib), dtype=torch.bool)
        )
        picks = lib.step_picks(self.embed(parts), one)  # per part: (one-step expert, cosine)
        idx = [j for j, _ in picks]
        if len(set(idx)) < len(idx):
            return None
        near = int(whole.argmax())
        signatures = self.info.get("expert_chains")
        if signatures and len(signatures) == len(lib):
            held = held_chain([lib.names[j] for j in idx], signatures, whole)
            if held is not None:  # the library holds these steps as one chain expert
                return lib.expert(held), {"experts": [{"name": lib.names[held], "weight": 1.0}],
                                          "chain_held": signatures[held]}  # fmt: skip
        fit = float(torch.nn.functional.normalize(lib.protos[idx].sum(0), dim=-1) @ apply_text_map(emb, lib.text_map))
        if (not bool(one[near]) or not steps) and fit <= float(whole[near]):
            return None  # a chain expert (or, unknown, any expert) holds the request better than the sum
        info = {
            "experts": [{"name": lib.names[j], "weight": 1.0} for j in idx],
            "chain": [
                {"step": p, "expert": lib.names[j], "cosine": round(c, 4)}
                for p, (j, c) in zip(parts, picks, strict=True)
            ],
            "chain_cosine": round(fit, 4),
            "nearest_cosine": round(float(whole[near]), 4),
        }
        return lib.mix(idx, torch.ones(len(idx)), self.layout.rank * len(idx)), info

    def output_rank(self, factors: Factors) -> int:
        """A chain keeps its sum's rank (the sum of its experts' ranks); one expert keeps its own."""
        if not self.chains:
            return self.layout.rank
        return min(256, max(int(a.shape[0]) for a, _ in factors.values()))

    def candidates(self, emb: torch.Tensor, ex_emb: torch.Tensor | None) -> list[tuple[str, Factors, dict[str, Any]]]:
        if not self.uses_library:
            return []
        idx, _ = self.library.top(emb, max(self.config.k, 8), self.config.temperature)
        return [
            (
                self.library.names[i],
                self.library.expert(i),
                {"experts": [{"name": self.library.names[i], "weight": 1.0}]},
            )
            for i in idx
        ]


class NearestGenerator(_LibraryGenerator):
    """The expert whose descriptions are closest to the query (a chain of steps: their sum, ``chain``)."""

    method = "nearest"
    chains = True

    def factors(self, emb: torch.Tensor, example_emb: torch.Tensor | None, seed: int) -> tuple[Factors, dict[str, Any]]:
        s = self.library.scores(emb)
        i = int(s.argmax())
        return self.library.expert(i), {"experts": [{"name": self.library.names[i], "weight": 1.0}]}


class TopKMeanGenerator(_LibraryGenerator):
    """softmax(cos / τ)-weighted exact ΔW sum of the top-K experts."""

    method = "topk_mean"

    def factors(self, emb: torch.Tensor, example_emb: torch.Tensor | None, seed: int) -> tuple[Factors, dict[str, Any]]:
        idx, w = self.library.top(emb, self.config.k, self.config.temperature)
        experts = [{"name": self.library.names[i], "weight": float(x)} for i, x in zip(idx, w, strict=True)]
        return self.library.mix(idx, w, self.layout.rank * len(idx)), {"experts": experts}


class MeanAllGenerator(_LibraryGenerator):
    """The mean ΔW of every training task's adapter (ignores the description)."""

    method = "mean_all"
    uses_library = False

    @classmethod
    def fit(
        cls, data: TrainData, config: Any, progress: Callable[[int, int], None] | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
        import torch

        from generators.canonical import combine
        from generators.library import experts_of

        idx = experts_of(data)
        w = torch.full((len(idx),), 1.0 / len(idx))
        sub = {m: (a[idx], b[idx]) for m, (a, b) in data.factors.items()}
        mean = combine(sub, w, config.mean_rank)
        state = {}
        for m, (a, b) in mean.items():
            state[f"mean.{m}.A"], state[f"mean.{m}.B"] = a, b
        if progress:
            progress(1, 1)
        return state, {"experts": [data.names[i] for i in idx]}, {"experts": len(idx)}

    def factors(self, emb: torch.Tensor, example_emb: torch.Tensor | None, seed: int) -> tuple[Factors, dict[str, Any]]:
        facs = {m: (self.state[f"mean.{m}.A"], self.state[f"mean.{m}.B"]) for m in self.layout.names}
        n = len(self.info["experts"])
        return facs, {"experts": [{"name": e, "weight": 1.0 / n} for e in self.info["experts"]]}


register_generator("nearest", NearestGenerator)
register_generator("topk_mean", TopKMeanGenerator)
register_generator("mean_all", MeanAllGenerator)
