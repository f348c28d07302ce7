"""Train a family's weight encoder from the registry (``loradex train-encoder``).

Training data: the family's adapters that have a description, plus optional extra texts
(paraphrases), task ids and task groups from a JSON file keyed by adapter name or sha256::

    {"caesar_3": {"texts": ["shift each letter three places", ...], "task": "caesar_3", "group": "caesar"},
     "reverse": ["write it backwards", ...]}

The checkpoint goes to ``<data dir>/encoders/weights/<family>/<version hash>/``; the service
records it in the database and re-embeds the registry with it (``LocalService.add_encoder``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from registry.errors import RegistryError
from registry.storage import move_into_place


class EncoderTrainingError(RegistryError):
    """Not enough (or unusable) data to train a weight encoder."""


def load_texts_file(path: Path) -> dict[str, dict[str, Any]]:
    """Normalise a texts file to key → {"texts": [...], "task": str | None, "group": str | None,
    "examples": [(input, output), ...]} (examples: what generators also read from the same file)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise EncoderTrainingError(f"{path}: cannot read texts file ({e})") from e
    if not isinstance(raw, dict):
        raise EncoderTrainingError(f"{path}: a texts file is a JSON object keyed by adapter name or sha256")
    out: dict[str, dict[str, Any]] = {}
    for key, v in raw.items():
        entry = {"texts": v} if isinstance(v, list) else v
        if not isinstance(entry, dict) or not all(isinstance(t, str) for t in entry.get("texts", [])):
            raise EncoderTrainingError(f"{path}: entry {key!r} must be a list of strings or {{'texts': [...]}}")
        examples = entry.get("examples") or []
        if not all(isinstance(e, list | tuple) and len(e) == 2 for e in examples):
            raise EncoderTrainingError(f"{path}: entry {key!r}: examples are [input, output] pairs")
        out[str(key)] = {"texts": list(entry.get("texts", [])), "task": entry.get("task"), "group": entry.get("group"),
                         "examples": [(str(a), str(b)) for a, b in examples]}  # fmt: skip
    return out


def training_selection(registry: Any, family: str, texts: dict[str, dict[str, Any]] | None = None, *,
                       only_listed: bool = False) -> list[tuple[dict[str, Any], list[str], str, str]]:  # fmt: skip
    """The family's adapters a weight encoder trains on, each as (info, its texts, task, group): the
    ones with a description or texts-file texts (only those in ``texts`` when ``only_listed``)."""
    texts = texts or {}
    rows = [registry.get(r["id"]) for r in registry.list(family=family)]
    chosen: list[tuple[dict[str, Any], list[str], str, str]] = []
    for info in rows:
        extra = texts.get(info["name"]) or texts.get(info["sha256"])
        if only_listed and extra is None:
            continue
        desc = (info.get("description") or "").strip()
        all_texts = list(dict.fromkeys([t for t in [desc, *((extra or {}).get("texts") or [])] if t.strip()]))
        if not all_texts:
            continue
        task = (extra or {}).get("task") or all_texts[0]
        chosen.append((info, all_texts, str(task), str((extra or {}).get("group") or "")))
    return chosen


def record_training(folder: Path, chosen: list[tuple[dict[str, Any], list[str], str, str]]) -> None:
    """Write into checkpoint ``folder`` which adapters it was trained on (``encoders.weight.trained``)."""
    from encoders.weight.trained import write_trained_adapters

    write_trained_adapters(folder, [info["sha256"] for info, *_ in chosen])


def train_from_registry(
    registry: Any,
    family: str,
    text_encoder: Any,
    *,
    texts: dict[str, dict[str, Any]] | None = None,
    only_listed: bool = False,
    train_config: Any = None,
    model_config: dict[str, Any] | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    from encoders.weight.config import WeightEncoderConfig
    from encoders.weight.features import adapter_factors, vocabulary
    from encoders.weight.train import TrainItem, train_encoder

    chosen = training_selection(registry, family, texts, only_listed=only_listed)
    if len(chosen) < 4:
        raise EncoderTrainingError(
            f"family {family!r} has {len(chosen)} described adapters; a weight encoder needs at least 4 "
            "(its adapters stay searchable by metadata text)"
        )
    adapters = [registry.load(info["id"]) for info, *_ in chosen]
    types, slots = vocabulary(adapters)
    slot_cfg = WeightEncoderConfig(family=family, types=types, slots=slots)  # what adapter_factors needs
    items = [
        TrainItem(adapter_factors(ad, slot_cfg), t, task, group, info["name"])
        for ad, (info, t, task, group) in zip(adapters, chosen, strict=True)
    ]
    model, metrics = train_encoder(
        items, family, text_encoder.encode, model_cfg=model_config, cfg=train_config,
        text_model=text_encoder.version, vocab=(types, slots), progress=progress,
    )  # fmt: skip
    metrics["adapter_ids"] = [info["id"] for info, *_ in chosen]
    root = registry.home / "encoders" / "weights" / family
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    try:
        version = model.save(tmp, metrics)
        record_training(tmp, chosen)
        final = move_into_place(tmp, root / version.rsplit(":", 1)[-1])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"family": family, "version": version, "path": str(final), "metrics": metrics}
