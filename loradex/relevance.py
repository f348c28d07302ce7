"""Calibrated relevance: the probability that an adapter does what a prompt asks, from its raw cosines.

A search's ranking score (a standardised similarity, ``loradex.search.fuse``) orders one query's
candidates but says nothing across queries: the best hit of a request no adapter does still
scores high. ``relevance`` is a logistic model of the raw cosines (weights via the family's query
head, metadata text), fitted per weight encoder on training-task queries and on requests no
adapter does (``benchmarks/relevance.py``), so 0.8 means about 8 in 10 such hits do the task,
whatever the query and whatever k. Each bundled weight encoder carries its fit in
``calibration.json``; the text-only fit and the "nothing fits" threshold are in
``encoders/text_calibration.json``. A registry text map carries the fits and thresholds of mapped
text cosines (``Calibration.for_mapped_text``). An adapter whose signals have no fit gets ``None``.
Importing this module does not import torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEXT_CALIBRATION = Path(__file__).resolve().parents[1] / "encoders" / "text_calibration.json"
DEFAULT_NOTHING_FITS_BELOW = 0.3  # used only when no calibration file says otherwise


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))


@dataclass
class Calibration:
    """``text``: [a_t, b] for adapters scored by metadata text only; ``families``: family →
    ``{"weights": [a_w, b], "both": [a_w, a_t, b]}`` for adapters its weight encoder scores."""

    text: list[float] | None = None
    families: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    nothing_fits_below: float = DEFAULT_NOTHING_FITS_BELOW
    # and the prompt's best metadata-text cosine in the registry is under this (None: not required)
    nothing_fits_text_below: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        floor = d.get("nothing_fits_text_below")
        return cls(d.get("text"), dict(d.get("families", {})),
                   float(d.get("nothing_fits_below", DEFAULT_NOTHING_FITS_BELOW)),
                   None if floor is None else float(floor))  # fmt: skip

    @classmethod
    def load(cls, weight_fits: dict[str, dict[str, list[float]]] | None = None,
             text_file: Path = TEXT_CALIBRATION) -> Calibration:  # fmt: skip
        """The text fit and threshold from ``text_file`` (if present) plus the weight encoders' fits."""
        base = json.loads(text_file.read_text()) if text_file.is_file() else {}
        return cls.from_dict({**base, "families": dict(weight_fits or {})})

    def for_mapped_text(self, mapped: dict[str, Any]) -> Calibration:
        """This calibration for a text index of mapped cosines (a registry text map's
        ``"calibration"``): its text fit and thresholds, and per weight encoder its weights-and-text
        fit; a family without a joint fit in ``mapped`` keeps only its weights-only fit (its joint
        fit was made on plain cosines)."""
        joint = dict(mapped.get("families", {}))
        families = {}
        for family, fits in self.families.items():
            mine = {k: v for k, v in fits.items() if k != "both"}
            if "both" in joint.get(family, {}):
                mine["both"] = joint[family]["both"]
            families[family] = mine
        floor = mapped.get("nothing_fits_text_below", self.nothing_fits_text_below)
        return Calibration(mapped.get("text", self.text), families,
                           float(mapped.get("nothing_fits_below", self.nothing_fits_below)),
                           None if floor is None else float(floor))  # fmt: skip

    def relevance(self, family: str, scores: dict[str, float | None]) -> float | None:
        """P(relevant) of one hit from its raw cosines (``SearchHit.scores``), or None when the
        signals it has were never fitted."""
        w, t = scores.get("weights"), scores.get("text")
        fam = self.families.get(family) or {}
        if w is not None and t is not None and "both" in fam:
            aw, at, b = fam["both"]
            return _sigmoid(aw * w + at * t + b)
        if w is not None and "weights" in fam:
            aw, b = fam["weights"]
            return _sigmoid(aw * w + b)
        if t is not None and self.text:
            at, b = self.text
            return _sigmoid(at * t + b)
        return None

    def nothing_fits(self, relevances: list[float | None], best_text: float | None = None) -> bool | None:
        """True when no hit is likely to do the task (every relevance under the threshold, and the
        prompt's best metadata-text cosine ``best_text`` under the text floor); None when that cannot
        be told (no hits, or a hit without a calibrated relevance and none above the threshold)."""
        if any(r is not None and r >= self.nothing_fits_below for r in relevances):
            return False
        if not relevances or any(r is None for r in relevances):
            return None  # an uncalibrated hit might fit: say nothing
        # both signals must agree: a description that reads like the request vetoes the verdict
        floor = self.nothing_fits_text_below
        return not (floor is not None and best_text is not None and best_text >= floor)
