"""Which adapters a weight encoder was trained on, so search can tell when to trust it.

A weight encoder's query head learned to point prompts at the adapters it was trained with; for an
adapter of a task it never saw it still points somewhere, often confidently at a sibling task
(``benchmarks/results/retrieval_trust.md``). A checkpoint therefore records, next to its weights,
``TRAINED_ADAPTERS`` (``trained_adapters.json``): ``{"sha256": [...]}`` of the adapters it was
trained on (registry sha256: the same in every registry holding those files). A checkpoint without
it (written before it existed) does not say. Loading needs json only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

TRAINED_ADAPTERS = "trained_adapters.json"


def write_trained_adapters(folder: Path, sha256s: Iterable[str]) -> Path:
    """Record the adapters checkpoint ``folder`` was trained on (sorted, repeats dropped)."""
    hashes = sorted(set(sha256s))
    if not hashes:
        raise ValueError(f"{folder}: no trained adapters to record")
    out = Path(folder) / TRAINED_ADAPTERS
    out.write_text(json.dumps({"sha256": hashes}, indent=0) + "\n")
    return out


def load_trained_adapters(folder: Path) -> frozenset[str] | None:
    """sha256 of the adapters a checkpoint was trained on, None when it does not record them; a
    clear error naming the file when it is not readable."""
    path = Path(folder) / TRAINED_ADAPTERS
    if not path.is_file():
        return None
    try:
        hashes = json.loads(path.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a trained-adapters file ({e})") from e
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise ValueError(f'{path}: "sha256" must be a list of strings')
    return frozenset(hashes)
