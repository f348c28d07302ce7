"""Train a family's generator from the registry (``loradex train-generator``).

Training data, gathered like the weight encoder's (``encoders.weight.registry_training``): the
family's adapters that have a description, plus optional extra texts (paraphrases), task ids
and examples from a JSON file keyed by adapter name or sha256 (``load_texts_file`` reads it;
the zoos write one with ``python -m benchmarks.zoo texts {text,image} --out FILE``, training
tasks and training paraphrases only)::

    {"caesar_3": {"texts": ["shift each letter three places", ...], "task": "caesar_3",
                  "examples": [["abc", "def"], ...]}}

Adapters of one ``task`` are seeds of one task (the library keeps one per task; the learned
methods train on all). The checkpoint goes to ``<data dir>/generators/<family>/<method>/<version>/``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from generators.base import TrainItem, train_generator
from generators.errors import GeneratorTrainingError
from registry.storage import move_into_place

MIN_ITEMS = 2  # fewest described adapters a generator trains on


def load_texts_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """The texts file the weight encoder reads too (``encoders.weight.registry_training``): key →
    {"texts": [...], "task": str | None, "group": str | None, "examples": [(in, out), ...]}."""
    from encoders.weight.registry_training import EncoderTrainingError
    from encoders.weight.registry_training import load_texts_file as read

    try:
        return read(Path(path))
    except EncoderTrainingError as e:
        raise GeneratorTrainingError(str(e)) from e


def items_from_registry(
    registry: Any,
    family: str,
    *,
    texts: dict[str, dict[str, Any]] | None = None,
    only_listed: bool = False,
    exclude_origins: tuple[str, ...] = ("generated",),
) -> list[TrainItem]:
    """The family's described adapters as training items (generated adapters are left out)."""
    texts = texts or {}
    items: list[TrainItem] = []
    for row in registry.list(family=family):
        info = registry.get(row["id"])
        if info.get("origin") in exclude_origins:
            continue
        extra = texts.get(info["name"]) or texts.get(info["sha256"])
        if only_listed and extra is None:
            continue
        desc = (info.get("description") or "").strip()
        all_texts = list(dict.fromkeys(t for t in [desc, *((extra or {}).get("texts") or [])] if t.strip()))
        if not all_texts:
            continue
        task = str((extra or {}).get("task") or all_texts[0])
        examples = list((extra or {}).get("examples") or [])
        items.append(TrainItem(str(info["name"]), registry.load(info["id"]), all_texts, task, examples))
    if len(items) < MIN_ITEMS:
        raise GeneratorTrainingError(
            f"family {family!r} has {len(items)} described adapters; a generator needs at least {MIN_ITEMS}"
        )
    return items


def train_from_registry(
    registry: Any,
    family: str,
    method: str,
    text_encoder: Any,
    *,
    texts: dict[str, dict[str, Any]] | None = None,
    only_listed: bool = False,
    config: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    task_model: Any = None,
) -> dict[str, Any]:
    """Train ``method`` for ``family`` and store the checkpoint under the registry's home.

    ``task_model``: the family's ``(base model, tokenizer)`` for end-to-end objectives.

    Returns ``{"family", "method", "version", "path", "metrics", "seconds", "items"}`` (items: adapter names).
    """
    items = items_from_registry(registry, family, texts=texts, only_listed=only_listed)
    root = Path(registry.home) / "generators" / family / method
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    try:
        res = train_generator(method, family, items, tmp, config=config, text_encoder=text_encoder, progress=progress,
                              task_model=task_model)  # fmt: skip
        final = move_into_place(tmp, root / res["version"])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**res, "family": family, "method": method, "path": str(final), "items": [it.name for it in items]}
