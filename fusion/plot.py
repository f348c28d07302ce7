"""The picture of gate values: one heat map per adapter, layers down, timesteps across (PIL only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CELL_W, CELL_H, LABEL_W, TITLE_H = 14, 4, 8, 32


def _colour(v: float, vmax: float) -> tuple[int, int, int]:
    """Dark blue (0) → yellow (vmax)."""
    x = 0.0 if vmax <= 0 else max(0.0, min(1.0, v / vmax))
    return (int(20 + 235 * x), int(30 + 200 * x), int(90 + 40 * (1 - x)))


def plot_gates(trace: dict[str, Any], path: str | Path) -> Path:
    """Save ``trace`` (``ComposeResult.gate_trace``: values[layer][step][adapter]) as a PNG."""
    from PIL import Image, ImageDraw

    names = list(trace.get("adapters") or [])
    values = trace.get("values") or []
    if not names or not values:
        raise ValueError("the gate trace is empty (nothing was recorded)")
    n_layers, n_steps = len(values), max(len(v) for v in values)
    vmax = max((x for layer in values for step in layer for x in step), default=1.0) or 1.0
    panel_w, panel_h = LABEL_W + n_steps * CELL_W, n_layers * CELL_H
    img = Image.new("RGB", (len(names) * (panel_w + 10) + 10, panel_h + TITLE_H + 26), "white")
    draw = ImageDraw.Draw(img)
    for a, name in enumerate(names):
        x0 = 10 + a * (panel_w + 10)
        draw.text((x0, 4), str(name)[:30], fill="black")
        for li, layer in enumerate(values):
            for si, step in enumerate(layer):
                v = step[a] if a < len(step) else 0.0
                x, y = x0 + LABEL_W + si * CELL_W, TITLE_H + li * CELL_H
                draw.rectangle([x, y, x + CELL_W - 1, y + CELL_H - 1], fill=_colour(v, vmax))
        draw.text((x0, TITLE_H + panel_h + 4), "steps -> (rows: layers)", fill="black")
    draw.text((10, 16), f"colour scale 0 .. {vmax:.2f}", fill="black")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out
