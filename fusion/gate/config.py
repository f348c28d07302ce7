"""Gate configuration, saved as ``config.json`` next to ``model.safetensors``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fusion.errors import GateError

KINDS = ("image", "text")
SCHEDULES = ("flat", "early", "late")
METHODS = ("autolora", "calibrated")  # what a trained image gate is (fusion.gate.model, fusion.gate.calibrated)


@dataclass
class GateConfig:
    kind: str = "image"  # image (per layer, channel and timestep) | text (per task description)
    family: str = "unknown"  # base family the gate was trained for (zoo-image, zoo-text, …)
    temperature: float = 0.05  # of the description-similarity relevance logit z = (cos − threshold) / T
    threshold: float = 0.3  # cosine at which an adapter counts as half asked for
    schedule: str = "flat"  # training-free timestep schedule of the gate: flat | early | late
    g_max: float = 1.0  # gate values lie in (0, g_max)
    layers: list[str] = field(default_factory=list)  # fused layer names of a trained gate (empty: training-free)
    channels: list[int] = field(default_factory=list)  # output channels per layer (same order)
    t_features: int = 8  # sinusoidal timestep features of a trained image gate
    steps: int | None = None  # sampling defaults of the family (None: the caller's)
    guidance: float | None = None
    text_dim: int = 384  # width of the text embeddings (a trained text gate's map is text_dim × text_dim)
    text_encoder: str = "all-MiniLM-L6-v2"  # what embedded requests and descriptions in training
    method: str = "autolora"  # a trained image gate: autolora (learned from outputs) | calibrated (per adapter)
    in_channels: list[int] = field(default_factory=list)  # calibrated: input channels per layer (same order)
    adapters: list[str] = field(default_factory=list)  # calibrated: weight keys of the adapters it knows
    adapter_names: list[str] = field(default_factory=list)  # calibrated: their names (same order; for people)
    # calibrated: the route's relevance adds head_scale × (c − head_offset), c an adapter's best-clause cosine
    # through the family's weight encoder query head (``fusion.compose.head_scores``); 0: descriptions only
    head_scale: float = 0.0
    head_offset: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GateError(f"gate kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.schedule not in SCHEDULES:
            raise GateError(f"gate schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.temperature <= 0:
            raise GateError(f"temperature must be positive, got {self.temperature}")
        if self.head_scale < 0:
            raise GateError(f"head_scale must be ≥ 0, got {self.head_scale}")
        if self.g_max <= 0:
            raise GateError(f"g_max must be positive, got {self.g_max}")
        if len(self.layers) != len(self.channels):
            raise GateError(f"{len(self.layers)} layers but {len(self.channels)} channel counts")
        if self.method not in METHODS:
            raise GateError(f"gate method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.method == "calibrated":
            if len(self.in_channels) != len(self.layers):
                raise GateError(f"{len(self.layers)} layers but {len(self.in_channels)} input channel counts")
            if len(self.adapter_names) != len(self.adapters):
                raise GateError(f"{len(self.adapters)} adapter keys but {len(self.adapter_names)} names")

    def training_free(self) -> GateConfig:
        """This config without what a trained gate learned (layers, channels, calibrated adapters)."""
        return replace(self, layers=[], channels=[], method="autolora", in_channels=[], adapters=[], adapter_names=[],
                       head_scale=0.0, head_offset=0.0)  # fmt: skip

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GateConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})  # unknown keys dropped

    @classmethod
    def load(cls, folder: str | Path) -> GateConfig:
        path = Path(folder) / "config.json"
        if not path.is_file():
            raise GateError(f"no gate config at {path}")
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
