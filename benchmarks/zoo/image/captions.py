"""Captions of procedural scenes, and the image zoo's adapters with their descriptions and splits.

Prompts describe content only (``"a red circle on a navy background"``): an adapter supplies the
style or teaches the new shape word, the prompt never names a style. Adapters come in four
families: ``palette`` (10), ``texture`` (8), ``shape`` (6 shapes the base never saw) and ``combo``
(a pixel palette together with a texture; some combos are held-out tasks). Each adapter has
one canonical description and at least 7 paraphrases written in varied natural language;
combos combine short hand-written phrases of their palette and texture through several
sentence structures. Per training adapter two paraphrases are held out; every paraphrase of a
held-out adapter is held out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from benchmarks.zoo.image.descriptions import PALETTE_TEXT, SHAPE_TEXT, TEXTURE_TEXT, combo_sentences
from benchmarks.zoo.image.shapes import (
    BACKGROUNDS,
    FOREGROUNDS,
    MASK_PALETTES,
    NEW_SHAPES,
    PALETTES,
    SHAPES,
    TEXTURES,
    Scene,
)

TEMPLATES = (
    "{a} {colour} {shape} on a {background} background",
    "{colour} {shape}, {background} background",
    "a {shape} in {colour} on {background}",
    "a picture of {a} {colour} {shape} against a {background} background",
    "{background} background with {a} {colour} {shape}",
)
CAPTION_WORDS = ("a", "an", "on", "in", "of", "with", "picture", "against", "background")
N_HELDOUT_PARAPHRASES = 2  # held-out paraphrases per training adapter
FAMILIES = ("palette", "texture", "shape", "combo")  # adapter families
# Palettes that combine with a texture. Not neon (it needs the shape mask), nor pastel (its pale
# tones left the texture too faint to learn: style hit 0.19 in a trial of 400 steps), nor redscale
# (it replaced the inverted palette after the combos were drawn; letting it combine would redraw
# every combo). Inverted combos had lost the shape (content kept 0.03-0.09).
COMBO_PALETTES = tuple(p for p in PALETTES if p not in (*MASK_PALETTES, "pastel", "redscale"))


def vocabulary() -> list[str]:
    """Every word a caption can contain (the tokenizer gives each one token)."""
    return list(dict.fromkeys([*CAPTION_WORDS, *FOREGROUNDS, *BACKGROUNDS, *SHAPES]))


def caption(scene: Scene, template: int = 0) -> str:
    """The content caption of ``scene``; style and texture are never named."""
    article = "an" if scene.colour[0] in "aeiou" else "a"
    return TEMPLATES[template].format(a=article, colour=scene.colour, shape=scene.shape, background=scene.background)


@dataclass(frozen=True)
class AdapterSpec:
    """One adapter of the zoo: what its training images show and how it is described."""

    id: str
    family: str  # palette | texture | shape | combo
    palette: str | None = None
    texture: str | None = None
    shape: str | None = None  # a new shape (family "shape")
    split: str = "train"  # train | heldout

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown adapter family {self.family!r}")
        if self.split not in ("train", "heldout"):
            raise ValueError(f"split must be train or heldout, got {self.split!r}")

    @property
    def params(self) -> dict[str, str]:
        return {k: v for k, v in (("palette", self.palette), ("texture", self.texture), ("shape", self.shape)) if v}

    def scene(self, base: Scene) -> Scene:
        """``base`` (a content scene) as this adapter's training images show it."""
        shape = self.shape or base.shape
        return Scene(shape, base.colour, base.background, self.texture, self.palette)

    def descriptions(self) -> list[str]:
        """Canonical description first, then the paraphrases (all distinct)."""
        if self.family == "palette":
            return PALETTE_TEXT[self.palette][0]  # type: ignore[index]
        if self.family == "texture":
            return TEXTURE_TEXT[self.texture][0]  # type: ignore[index]
        if self.family == "shape":
            return SHAPE_TEXT[self.shape]  # type: ignore[index]
        return combo_sentences(self.palette, self.texture)  # type: ignore[arg-type]

    def record(self) -> dict[str, Any]:
        """``canonical`` and ``paraphrases`` (each ``{"text", "split"}``) for the manifest."""
        texts = self.descriptions()
        rng = random.Random(f"paraphrase-split-{self.id}")
        held = set(rng.sample(range(1, len(texts)), N_HELDOUT_PARAPHRASES))
        paraphrases = [
            {"text": t, "split": "heldout" if (self.split == "heldout" or i in held) else "train"}
            for i, t in enumerate(texts)
            if i > 0
        ]
        return {"canonical": texts[0], "paraphrases": paraphrases}


def combo_id(palette: str, texture: str) -> str:
    return f"{palette}_{texture}"


def all_adapters(seed: int = 0, n_combos: int = 48, n_heldout: int = 12) -> list[AdapterSpec]:
    """The full zoo: every palette, texture and new shape, plus ``n_combos`` palette × texture pairs
    (drawn with ``seed``), of which ``n_heldout`` are held-out tasks."""
    if not 0 < n_heldout < n_combos:
        raise ValueError(f"need 0 < n_heldout < n_combos, got {n_heldout}, {n_combos}")
    chosen, order = _draw_combos(seed, n_combos)
    held = set(order[:n_heldout])
    out = [AdapterSpec(p, "palette", palette=p) for p in PALETTES]
    out += [AdapterSpec(t, "texture", texture=t) for t in TEXTURES]
    out += [AdapterSpec(s, "shape", shape=s) for s in NEW_SHAPES]
    for p, t in sorted(chosen, key=lambda pt: (COMBO_PALETTES.index(pt[0]), TEXTURES.index(pt[1]))):
        split = "heldout" if (p, t) in held else "train"
        out.append(AdapterSpec(combo_id(p, t), "combo", palette=p, texture=t, split=split))
    return out


def _draw_combos(seed: int, n_combos: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(the ``n_combos`` drawn palette × texture pairs, the same pairs in held-out order)."""
    pairs = [(p, t) for p in COMBO_PALETTES for t in TEXTURES]
    if not 0 < n_combos <= len(pairs):
        raise ValueError(f"need 0 < n_combos <= {len(pairs)}, got {n_combos}")
    rng = random.Random(f"combos-{seed}")
    chosen = rng.sample(pairs, n_combos)
    return chosen, _spread(chosen, n_combos, rng)  # greedy: its first n are what _spread(chosen, n) picks


def heldout_order(seed: int = 0, n_combos: int = 48) -> list[str]:
    """Combo ids in the order they become held-out tasks: the first ``n_heldout`` are held out
    (``all_adapters``); when a build drops one, the next takes its place (``finalize``)."""
    return [combo_id(p, t) for p, t in _draw_combos(seed, n_combos)[1]]


def _spread(pairs: list[tuple[str, str]], n: int, rng: random.Random) -> list[tuple[str, str]]:
    """``n`` pairs covering as many palettes and textures as possible (greedy, seeded)."""
    order = list(pairs)
    rng.shuffle(order)
    picked: list[tuple[str, str]] = []
    while len(picked) < n:
        used_p = {p for p, _ in picked}
        used_t = {t for _, t in picked}
        best = max(
            (pt for pt in order if pt not in picked), key=lambda pt: (pt[0] not in used_p) + (pt[1] not in used_t)
        )
        picked.append(best)
    return picked


def tiny_adapters() -> list[AdapterSpec]:
    """A handful for smoke builds: one of each family, one held out."""
    return [
        AdapterSpec("grayscale", "palette", palette="grayscale"),
        AdapterSpec("hstripes", "texture", texture="hstripes"),
        AdapterSpec("heart", "shape", shape="heart"),
        AdapterSpec(combo_id("sepia", "dots"), "combo", palette="sepia", texture="dots", split="heldout"),
    ]


PREVIEW_SCENES = (("circle", "red", "navy"), ("square", "yellow", "black"), ("triangle", "green", "brown"),
                  ("diamond", "cyan", "teal"))  # fmt: skip


def preview_prompts(info: dict[str, Any], default: list[str] | None = None) -> list[str]:
    """Content prompts for an adapter's preview (``ui.previews``): the base shapes, or, for a
    new-shape adapter (its name is a new shape, e.g. ``star`` or ``star_s1``), that shape in each colour."""
    words = set(str(info.get("name", "")).lower().replace("-", "_").split("_"))
    shape = next((s for s in NEW_SHAPES if s in words), None)
    return [caption(Scene(shape or s, c, b)) for s, c, b in PREVIEW_SCENES]
