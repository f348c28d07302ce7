"""The suite's picture: per held-out task, base / nearest / best generator / oracle side by side.

Text: one bar row per task (exact match). Image: the first evaluation images of each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLUMNS = ("base", "nearest", "best", "oracle")
COLOURS = {"base": (150, 150, 150), "nearest": (70, 130, 200), "best": (220, 120, 40), "oracle": (60, 160, 80)}


def draw(zoo: str, pic: dict[str, Any], out: Path) -> None:
    from PIL import Image, ImageDraw

    best = pic["best"]
    tasks = pic["tasks"]
    label = {"base": "base", "nearest": "nearest", "best": best, "oracle": "oracle"}
    key = {"base": "base", "nearest": "nearest", "best": best, "oracle": "oracle"}
    if zoo == "text":
        row_h, name_w, bar_w = 18, 260, 90
        img = Image.new("RGB", (name_w + 4 * (bar_w + 10) + 10, 40 + row_h * len(tasks)), "white")
        d = ImageDraw.Draw(img)
        for j, c in enumerate(COLUMNS):
            d.text((name_w + j * (bar_w + 10), 8), f"{label[c]} (exact match)", fill=COLOURS[c])
        for i, (t, ent) in enumerate(sorted(tasks.items())):
            y = 32 + i * row_h
            d.text((6, y), t, fill="black")
            for j, c in enumerate(COLUMNS):
                v = ent.get(key[c], {}).get("score", 0.0)
                x = name_w + j * (bar_w + 10)
                d.rectangle([x, y + 2, x + int(bar_w * v), y + row_h - 4], fill=COLOURS[c])
                d.text((x + 2, y + 1), f"{v:.2f}", fill="black")
    else:
        k, s = 3, 32  # images per cell, pixels per image
        name_w, cell_w = 150, k * s + 12
        img = Image.new("RGB", (name_w + 4 * cell_w, 24 + len(tasks) * (s + 16)), "white")
        d = ImageDraw.Draw(img)
        for j, c in enumerate(COLUMNS):
            d.text((name_w + j * cell_w, 6), label[c], fill="black")
        for i, (t, ent) in enumerate(sorted(tasks.items())):
            y = 22 + i * (s + 16)
            d.text((4, y + 10), t, fill="black")
            for j, c in enumerate(COLUMNS):
                e = ent.get(key[c])
                if not e or e.get("images") is None:
                    continue
                x = name_w + j * cell_w
                for n, im in enumerate(e["images"][:k]):
                    arr = (im.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
                    img.paste(Image.fromarray(arr), (x + n * s, y))
                d.text((x, y + s + 1), f"style {e['score']:.2f}", fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
