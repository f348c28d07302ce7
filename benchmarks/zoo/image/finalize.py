"""The last step of an image-zoo build: drop the adapters no retrain round brought over the bars.

After every retrain round, an adapter still below a bar is no oracle. It is removed from
``adapters/`` and listed in the manifest under ``dropped``, with its scores and the rounds it
went through. A task left without adapters leaves the zoo. The held-out combos are then the
first ``n_heldout`` surviving combos in the seeded spread order (``captions.heldout_order``),
so a dropped held-out task is replaced by the next combo in that order, not by a choice made
after seeing the scores. The paraphrase splits follow the task's new split. The same function
runs inside ``build`` and on a manifest a build already wrote (``finalize_written``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.zoo.image.captions import heldout_order
from benchmarks.zoo.image.report import family_table, passes_bars, results_markdown
from benchmarks.zoo.image.suite import spec_of


def drop_below_bars(
    records: list[dict[str, Any]], bars: dict[str, float], out: Path, *, seed: int, n_combos: int, n_heldout: int,
    rounds: dict[str, int] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """(kept task records with their splits redrawn, dropped adapters); removes the dropped folders."""
    dropped: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    for rec in records:
        good = []
        for a in rec["adapters"]:
            if passes_bars(a, bars):
                good.append(a)
                continue
            name = a["path"].rsplit("/", 1)[-1]
            dropped.append({"task": rec["id"], "adapter": name, "seed": a["seed"], "style_hit": a["style_hit"],
                            "content_kept": a["content_kept"], "last_round": (rounds or {}).get(name)})  # fmt: skip
            shutil.rmtree(out / a["path"], ignore_errors=True)
        if good:
            kept.append({**rec, "adapters": good, "seeds": [a["seed"] for a in good],
                         "oracle_style_hit": good[0]["style_hit"], "oracle_content_kept": good[0]["content_kept"]})  # fmt: skip
    alive = {r["id"] for r in kept if r["family"] == "combo"}
    held = [c for c in heldout_order(seed, n_combos) if c in alive][:n_heldout]
    for i, rec in enumerate(kept):
        if rec["family"] != "combo":
            continue
        split = "heldout" if rec["id"] in held else "train"
        if split != rec["split"]:
            kept[i] = {**rec, "split": split, **replace(spec_of(rec), split=split).record()}
    return kept, dropped


def counts(records: list[dict[str, Any]], dropped: list[dict[str, Any]], bars: dict[str, float]) -> dict[str, int]:
    train = [r for r in records if r["split"] == "train"]
    return {
        "tasks": len(records),
        "train_tasks": len(train),
        "heldout_tasks": len(records) - len(train),
        "adapters": sum(len(r["adapters"]) for r in records),
        "train_adapters": sum(len(r["adapters"]) for r in train),
        "dropped": len(dropped),
        "below_bars": sum(not passes_bars(a, bars) for r in records for a in r["adapters"]),
    }


def finalize_written(out: Path) -> dict[str, Any]:
    """Apply ``drop_below_bars`` to the manifest a build wrote in ``out`` (same scores, no re-judging)."""
    from benchmarks.zoo.image.build import ROUNDS_FILE

    manifest = json.loads((out / "manifest.json").read_text())
    cfg = manifest["config"]
    rounds_file = out / ROUNDS_FILE
    rounds = json.loads(rounds_file.read_text()) if rounds_file.is_file() else {}
    records, dropped = drop_below_bars(manifest["tasks"], manifest["bars"], out, seed=cfg["seed"],
                                       n_combos=cfg["n_combos"], n_heldout=cfg["n_heldout"], rounds=rounds)  # fmt: skip
    manifest["config"]["drop_below_bars"] = True
    manifest["dropped"] = manifest.get("dropped", []) + dropped
    manifest["tasks"], manifest["table"] = records, family_table(records)
    manifest["counts"] = counts(records, manifest["dropped"], manifest["bars"])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (out / "RESULTS.md").write_text(results_markdown(manifest))
    return manifest
