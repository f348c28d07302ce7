"""Benchmark adapter zoos built from small base models (DESIGN.md §6).

``python -m benchmarks.zoo build text`` builds the text zoo into ``benchmarks/zoo/text/``. Builders are
registered by name as ``"module:function"`` strings, imported only when used, so importing this
package stays cheap. A builder is called as ``fn(out: Path | None, *, tiny: bool, device: str | None)``
and returns the zoo's manifest (a dict); it may also accept ``workers: int`` (``--workers``).

The image zoo lives in ``benchmarks/zoo/image/`` (tiny diffusers pipeline, stacked LoRA training, CNN judge).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

BUILDERS: dict[str, str] = {}


def register_builder(name: str, target: str) -> None:
    """Register ``target`` (``"package.module:function"``) as the builder of zoo ``name``."""
    if name in BUILDERS:
        raise ValueError(f"zoo builder {name!r} is already registered ({BUILDERS[name]})")
    if ":" not in target:
        raise ValueError(f"builder target must look like 'module:function', got {target!r}")
    BUILDERS[name] = target


def get_builder(name: str) -> Callable[..., dict[str, Any]]:
    """The build function of zoo ``name``; unknown or not-yet-written zoos say what exists."""
    if name not in BUILDERS:
        raise KeyError(f"unknown zoo {name!r}; known: {', '.join(sorted(BUILDERS))}")
    module, fn = BUILDERS[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise NotImplementedError(
                f"the {name!r} zoo builder is registered as {BUILDERS[name]} but {module} does not exist yet"
            ) from e
        raise
    return getattr(mod, fn)


register_builder("text", "benchmarks.zoo.text.build:build")
register_builder("image", "benchmarks.zoo.image.build:build")


def training_texts(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A ``loradex train-encoder --texts`` document from a zoo manifest: for every adapter of a
    *training* task, its canonical description and the training-split paraphrases, with the task
    id and task family. Held-out tasks and held-out paraphrases are left out."""
    out: dict[str, dict[str, Any]] = {}
    for t in manifest["tasks"]:
        if t["split"] != "train":
            continue
        texts = [t["canonical"]] + [p["text"] for p in t["paraphrases"] if p["split"] == "train"]
        for a in t["adapters"]:
            out[a["path"].rsplit("/", 1)[-1]] = {"texts": texts, "task": t["id"], "group": t["family"]}
    return out
