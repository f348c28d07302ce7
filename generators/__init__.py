"""Adapter generators: a task description (and optionally a few examples) → a new LoRA adapter.

Public API (cheap to import; torch loads when a generator is built or trained)::

    from generators import load_generator, train_generator, generator_methods
    gen = load_generator("generators/checkpoints/zoo-text/hypernet")
    out = gen.generate("shift every letter by eight", seed=0)   # GeneratedAdapter
    write_adapter(out.adapter, out.adapter.format, folder)

Methods live one per folder (``baselines/``, ``analogy/``, ``hypernet/``, ``semantic/``, ``cvae/``), each
ending in ``register_generator`` calls.
"""

from __future__ import annotations

from pathlib import Path

from generators.base import (
    Expert,
    GeneratedAdapter,
    Generator,
    TrainItem,
    generator_methods,
    get_generator_class,
    load_generator,
    register_generator,
    train_generator,
)
from generators.errors import (
    MAX_DESCRIPTION_CHARS,
    DescriptionError,
    GeneratorCheckpointError,
    GeneratorError,
    GeneratorTrainingError,
    UnknownGeneratorError,
    UntrainedFamilyError,
)

BUNDLED = Path(__file__).resolve().parent / "checkpoints"  # committed checkpoints: <family>/<method>/


def bundled_generators() -> dict[str, list[str]]:
    """Family → methods with a committed checkpoint under ``generators/checkpoints``."""
    out: dict[str, list[str]] = {}
    if BUNDLED.is_dir():
        for fam in sorted(p for p in BUNDLED.iterdir() if p.is_dir()):
            methods = sorted(m.name for m in fam.iterdir() if (m / "config.json").is_file())
            if methods:
                out[fam.name] = methods
    return out


def bundled_checkpoint(family: str, method: str | None = None) -> Path:
    """The committed checkpoint folder of ``family`` (default method: the first of DEFAULT_METHODS present)."""
    have = bundled_generators().get(family, [])
    if method is None:
        method = next((m for m in DEFAULT_METHODS if m in have), None)
    if method is None or method not in have:
        raise UntrainedFamilyError(family, method, have)
    return BUNDLED / family / method


# Preference order when no method is named. ``analogy`` (margin 0.26, chosen leave-one-out on
# training tasks) gives requests an expert does that expert, as ``nearest`` does (generation suite:
# validation and unseen paraphrases equal to nearest on both zoos), and builds a triple for tasks
# the library lacks (held-out gain: image 0.065 vs 0.000, text 0.009 vs 0.006); see
# benchmarks/results/generation_notes.md. ``nearest`` next: the best on validation before analogy.
DEFAULT_METHODS = ("analogy", "nearest", "topk_mean", "semantic", "cvae", "hypernet", "mean_all")

__all__ = [
    "BUNDLED",
    "DEFAULT_METHODS",
    "MAX_DESCRIPTION_CHARS",
    "DescriptionError",
    "Expert",
    "GeneratedAdapter",
    "Generator",
    "GeneratorCheckpointError",
    "GeneratorError",
    "GeneratorTrainingError",
    "TrainItem",
    "UnknownGeneratorError",
    "UntrainedFamilyError",
    "bundled_checkpoint",
    "bundled_generators",
    "generator_methods",
    "get_generator_class",
    "load_generator",
    "register_generator",
    "train_generator",
]
