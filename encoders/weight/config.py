"""Configuration of a weight encoder: its module vocabulary (slots) and its shape.

Saved as ``config.json`` beside the weights so that a checkpoint rebuilds itself from disk.
No torch here.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_LAYER_INDEX = re.compile(r"\.\d+(?=\.|$)")
# The query head as measured on both zoos (benchmarks/results/retrieval.md): what
# ``loradex train-encoder --query-hidden N`` trains by default, and the bundled zoo encoders' head.
QUERY_HEAD_RECIPE: dict[str, float] = {"query_dropout": 0.5, "query_raw_share": 0.5}
RAW_QUERY_WEIGHT = 2.0  # the TrainConfig.raw_query_weight that goes with it


def module_type(name: str) -> str:
    """The layer-independent type of a module: block indices become ``#``.

    ``model.model.layers.3.self_attn.q_proj`` → ``model.model.layers.#.self_attn.q_proj``.
    """
    return _LAYER_INDEX.sub(".#", name)


@dataclass
class ModuleTypeSpec:
    """One kind of targeted layer: every slot of a type shares its probes and input projection."""

    key: str  # module_type() of its slots
    in_features: int  # columns of ΔW (conv: in·kh·kw)
    out_features: int  # rows of ΔW


@dataclass
class WeightEncoderConfig:
    """Everything that fixes a weight encoder's architecture (and which adapters it can read)."""

    family: str  # base family id the encoder reads (its slots are that family's module names)
    types: list[ModuleTypeSpec] = field(default_factory=list)
    slots: list[str] = field(default_factory=list)  # full module names; a slot's index is its position id
    out_dim: int = 384  # the text encoder's embedding size
    n_probes: int = 8  # learned probe vectors per side (ΔW·P and ΔWᵀ·Q)
    d_model: int = 128  # token width
    n_layers: int = 2  # transformer blocks over the module tokens
    n_heads: int = 4
    ff_mult: int = 2  # feed-forward width = ff_mult · d_model
    dropout: float = 0.1
    query_hidden: int = 0  # hidden width of the query head (0: none; prompts are scored as encoded)
    query_dropout: float = 0.3  # dropout inside the query head while training
    query_raw_share: float = 0.0  # share of the prompt as encoded in the search query (0: the head's output only)
    text_model: str = ""  # version string of the text encoder whose space the output lives in

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if min(self.out_dim, self.n_probes, self.d_model, self.n_layers, self.n_heads, self.ff_mult) <= 0:
            raise ValueError(f"weight encoder sizes must be positive: {self}")
        if self.query_hidden < 0 or not 0 <= self.query_dropout < 1 or not 0 <= self.query_raw_share < 1:
            raise ValueError(f"query_hidden must be ≥ 0, query_dropout and query_raw_share in [0, 1): {self}")
        self.types = [t if isinstance(t, ModuleTypeSpec) else ModuleTypeSpec(**t) for t in self.types]
        keys = [t.key for t in self.types]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate module types in the weight encoder config")
        known = set(keys)
        for s in self.slots:
            if module_type(s) not in known:
                raise ValueError(f"slot {s!r} has no module type in the config")

    def type_index(self) -> dict[str, int]:
        return {t.key: i for i, t in enumerate(self.types)}

    def slot_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.slots)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: Path) -> WeightEncoderConfig:
        return cls(**json.loads(path.read_text()))
