"""Tables and the sample grid of the image zoo (used by the build and by the ``zoo`` suite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def passes_bars(scores: dict[str, Any], bars: dict[str, float]) -> bool:
    """Do an adapter's ``style_hit`` / ``content_kept`` reach the manifest's oracle bars?"""
    return scores["style_hit"] >= bars["oracle_style_hit"] and scores["content_kept"] >= bars["oracle_content_kept"]


def family_table(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per family: oracle style hit / content kept (all seeds), base style hit."""
    rows = []
    for fam in dict.fromkeys(t["family"] for t in tasks):
        ts = [t for t in tasks if t["family"] == fam]
        hit = [a["style_hit"] for t in ts for a in t["adapters"]]
        kept = [a["content_kept"] for t in ts for a in t["adapters"]]
        base = [t["base_style_hit"] for t in ts]
        rows.append({
            "family": fam, "tasks": len(ts), "heldout_tasks": sum(t["split"] == "heldout" for t in ts),
            "adapters": len(hit), "oracle_style_mean": float(np.mean(hit)), "oracle_style_min": min(hit),
            "content_kept_mean": float(np.mean(kept)), "content_kept_min": min(kept),
            "base_style_mean": float(np.mean(base)), "base_style_max": max(base),
        })  # fmt: skip
    return rows


def table_markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| family | tasks | held-out | adapters | oracle style hit (mean) | (min) | content kept (mean) | (min) "
            "| base style hit (mean) | (max) |")  # fmt: skip
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['family']} | {r['tasks']} | {r['heldout_tasks']} | {r['adapters']} | {r['oracle_style_mean']:.3f} | "
            f"{r['oracle_style_min']:.3f} | {r['content_kept_mean']:.3f} | {r['content_kept_min']:.3f} | "
            f"{r['base_style_mean']:.3f} | {r['base_style_max']:.3f} |"
        )
    return "\n".join(lines)


def results_markdown(manifest: dict[str, Any]) -> str:
    bars, t = manifest["bars"], manifest["timings"]
    below = [f"{task['id']} (seed {a['seed']}: {a['style_hit']:.2f} / {a['content_kept']:.2f})"
             for task in manifest["tasks"] for a in task["adapters"]
             if not passes_bars(a, bars)]  # fmt: skip
    judge = ", ".join(f"{k} {v:.3f}" for k, v in manifest["judge"]["holdout_accuracy"].items())
    base = ", ".join(f"{k} {v:.3f}" for k, v in manifest["base_quality"].items())
    return (
        f"# Image zoo quality\n\n{manifest['metric']}.\n\n"
        f"Bars: every oracle adapter style hit >= {bars['oracle_style_hit']} with content kept >= "
        f"{bars['oracle_content_kept']}; the base (no adapter) style hit <= {bars['base_style_hit']}.\n\n"
        f"device: {manifest['device']}; build time {t['total_s'] / 60:.1f} min "
        f"(pre-training {t['pretrain_s'] / 60:.1f} min, adapters {t['adapters_s'] / 60:.1f} min)\n\n"
        f"Judge accuracy on fresh procedural images: {judge}.\n\n"
        f"Base on plain prompts: {base}.\n\n{table_markdown(manifest['table'])}\n\n"
        f"Adapters below the bars: {', '.join(below) if below else 'none'}.\n"
    )


def sample_grid(rows: list[tuple[str, np.ndarray, np.ndarray]], path: Path, max_rows: int = 32) -> None:
    """PNG: one row per adapter, base images (left) | adapter images (right), each ``(k, 3, 32, 32)`` uint8.

    The first ``max_rows`` rows are drawn (the zoo lists palettes, textures and shapes before combos)."""
    from PIL import Image

    if not rows:
        return
    picked = rows[:max_rows]
    gap = np.full((32, 4, 3), 255, dtype=np.uint8)
    lines = []
    for _, base, adapter in picked:
        left = np.concatenate(list(base.transpose(0, 2, 3, 1)), axis=1)  # (32, k*32, 3)
        right = np.concatenate(list(adapter.transpose(0, 2, 3, 1)), axis=1)
        lines.append(np.concatenate([left, gap, right], axis=1))
        lines.append(np.full((2, lines[-1].shape[1], 3), 255, dtype=np.uint8))
    Image.fromarray(np.concatenate(lines, axis=0)).save(path)
