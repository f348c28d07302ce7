"""The suite's picture: per held-out task, base / nearest / best generator / analogy / oracle side by side.

Text: one bar row per task (exact match). Image: the first evaluation images of each. The best
generator is the one best on validation; when that is nearest or analogy it has one column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLUMNS = ("base", "nearest", "best", "analogy", "oracle")  # "best": the method best on validation
COLOURS = {"base": (150, 150, 150), "nearest": (70, 130, 200), "best": (220, 120, 40), "analogy": (170, 70, 170),
           "oracle": (60, 160, 80)}  # fmt: skip


def columns(pic: dict[str, Any]) -> list[tuple[str, str, tuple[int, int, int]]]:
    """(label, method key, colour) per column; the best method merged into nearest's or analogy's."""
    best = pic["best"]
    # a run with --methods lacks some columns (no per-task scores given: every column)
    ran = {k for ent in pic["tasks"].values() for k in ent} if pic.get("tasks") else set(COLUMNS) | {best}
    out = []
    for c in COLUMNS:
        if c == "best" and best in ("nearest", "analogy"):
            continue
        key = best if c == "best" else c
        if key not in ran:
            continue
        label = f"{key} (best on validation)" if key == best else key
        out.append((label, key, COLOURS[c]))
    return out


def draw(zoo: str, pic: dict[str, Any], out: Path) -> None:
    from PIL import Image, ImageDraw

    tasks = pic["tasks"]
    cols = columns(pic)
    if zoo == "text":
        row_h, name_w, bar_w = 18, 260, 150
        img = Image.new("RGB", (name_w + len(cols) * (bar_w + 10) + 10, 40 + row_h * len(tasks)), "white")
        d = ImageDraw.Draw(img)
        for j, (label, _, colour) in enumerate(cols):
            d.text((name_w + j * (bar_w + 10), 8), label, fill=colour)
        for i, (t, ent) in enumerate(sorted(tasks.items())):
            y = 32 + i * row_h
            d.text((6, y), t, fill="black")
            for j, (_, key, colour) in enumerate(cols):
                v = ent.get(key, {}).get("score", 0.0)
                x = name_w + j * (bar_w + 10)
                d.rectangle([x, y + 2, x + int(bar_w * v), y + row_h - 4], fill=colour)
                d.text((x + 2, y + 1), f"{v:.2f}", fill="black")
        d.text((6, 8), "exact match, held-out tasks", fill="black")
    else:
        k, s = 3, 32  # images per cell, pixels per image
        name_w, cell_w = 150, k * s + 24
        img = Image.new("RGB", (name_w + len(cols) * cell_w, 24 + len(tasks) * (s + 16)), "white")
        d = ImageDraw.Draw(img)
        for j, (label, _, _) in enumerate(cols):
            d.text((name_w + j * cell_w, 6), label.replace(" (best on validation)", "*"), fill="black")
        d.text((4, 6), "* best on validation", fill="black")
        for i, (t, ent) in enumerate(sorted(tasks.items())):
            y = 22 + i * (s + 16)
            d.text((4, y + 10), t, fill="black")
            for j, (_, key, _) in enumerate(cols):
                e = ent.get(key)
                if not e or e.get("images") is None:
                    continue
                x = name_w + j * cell_w
                for n, im in enumerate(e["images"][:k]):
                    arr = (im.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
                    img.paste(Image.fromarray(arr), (x + n * s, y))
                d.text((x, y + s + 1), f"style {e['score']:.2f}", fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
