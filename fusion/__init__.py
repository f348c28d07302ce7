"""Composition of LoRA adapters: exact weight-space merges and runtime (gated) fusion.

* ``fusion.merge``: ``merge(adapters, weights, strategy=…)`` → ``MergeResult`` (strategies
  registered by name: ``cat``, ``svd``, ``ties``, ``dare_linear``, ``dare_ties``,
  ``magnitude_prune``, ``lego``, ``zip``: fitted on the base, ``fusion.merge.ziplora``).
* ``fusion.runtime``: ``install(model_or_pipe, adapters, names)`` → ``FusionHandle`` (k adapters
  side by side, one batched product, base weights untouched).
* ``fusion.gate``: the AutoLoRA-style gate and the training-free default.
* ``fusion.compose``: ``compose_images``, ``compose_text``, ``plot_gates``.
* ``fusion.strategies``: the names of both, listed without torch (``compose_strategies``).

Importing ``fusion`` is cheap: torch is imported by the submodules only.
"""

from __future__ import annotations

from typing import Any

from fusion.errors import FusionError, GateError, IncompatibleAdaptersError, InstallError, UnknownStrategyError

__all__ = [
    "FusionError",
    "GateError",
    "IncompatibleAdaptersError",
    "InstallError",
    "UnknownStrategyError",
    "MergeResult",
    "merge",
    "strategies",
    "install",
    "FusionHandle",
    "compose_images",
    "compose_text",
    "plot_gates",
    "ComposeResult",
]

_LAZY = {
    "MergeResult": "fusion.merge",
    "merge": "fusion.merge",
    "strategies": "fusion.merge",
    "install": "fusion.runtime",
    "FusionHandle": "fusion.runtime",
    "compose_images": "fusion.compose",
    "compose_text": "fusion.compose",
    "plot_gates": "fusion.plot",
    "ComposeResult": "fusion.compose",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fusion' has no attribute {name!r}")
