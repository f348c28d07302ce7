"""Procedural 32×32 images: shapes × colours × backgrounds, then an optional texture and palette.

Everything is numpy and vectorized over a batch. A ``Scene`` names what is drawn; ``render``
turns scenes into float images ``(B, 32, 32, 3)`` in ``[0, 1]`` (anti-aliased: masks are
evaluated on a 4× supersampled grid and averaged). Randomness (shape position and size,
texture phase, noise) comes from the caller's ``numpy.random.Generator``, so a seed fixes
every pixel.

Colour sets are chosen so that a styled image is never a plain one: every background is dark
(a pastel image has a light background), no foreground colour is grey or white (a grayscale
image has no hue), and each foreground/background pair differs in luminance, so shapes stay
visible under the luminance palettes (grayscale, sepia, thermal, cyanotype, matrix, duotone).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

SIZE = 32  # image side in pixels
SUPER = 4  # supersampling factor of the shape masks

# colours: name -> RGB in [0, 1]
FOREGROUNDS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.2, 0.2),
    "green": (0.2, 0.85, 0.25),
    "blue": (0.25, 0.45, 1.0),
    "yellow": (1.0, 0.9, 0.15),
    "orange": (1.0, 0.55, 0.05),
    "purple": (0.7, 0.3, 0.95),
    "pink": (1.0, 0.5, 0.75),
    "cyan": (0.15, 0.9, 0.95),
}
BACKGROUNDS: dict[str, tuple[float, float, float]] = {
    "black": (0.0, 0.0, 0.0),
    "navy": (0.05, 0.07, 0.35),
    "brown": (0.32, 0.17, 0.06),
    "teal": (0.0, 0.3, 0.3),
}
BASE_SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")  # drawn in pre-training
NEW_SHAPES = ("star", "heart", "crescent", "arrow", "hourglass", "house")  # only ever taught by adapters
SHAPES = BASE_SHAPES + NEW_SHAPES
TEXTURES = ("hstripes", "vstripes", "diagonal", "dots", "grid", "checker", "noise", "waves")
PALETTES = ("grayscale", "sepia", "redscale", "neon", "pastel", "night", "thermal", "cyanotype", "matrix", "duotone")
MASK_PALETTES = ("neon",)  # need the shape mask, so they do not combine with textures
TEXTURE_STRENGTH = 0.55  # how far a texture pulls a pixel towards black or white
# Where a texture goes when a palette is applied too: only on the background, so the shape stays a
# plain silhouette (a texture over everything under a luminance palette leaves too little contrast
# for the shape to survive generation). A texture alone covers the whole image.
COMBO_TEXTURE_REGION = "background"


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of ``(..., 3)`` → ``(...)``."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def valid_pair(fg: str, bg: str) -> bool:
    """Foreground and background differ enough in colour and in luminance."""
    a, b = np.array(FOREGROUNDS[fg]), np.array(BACKGROUNDS[bg])
    return float(np.linalg.norm(a - b)) >= 0.5 and abs(float(luminance(a) - luminance(b))) >= 0.2


COLOUR_PAIRS: tuple[tuple[str, str], ...] = tuple((f, b) for f in FOREGROUNDS for b in BACKGROUNDS if valid_pair(f, b))


@dataclass(frozen=True)
class Scene:
    """What one image shows. ``texture`` / ``palette`` None = plain."""

    shape: str
    colour: str
    background: str
    texture: str | None = None
    palette: str | None = None

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; known: {', '.join(SHAPES)}")
        if self.colour not in FOREGROUNDS or self.background not in BACKGROUNDS:
            raise ValueError(f"unknown colours {self.colour!r} / {self.background!r}")
        if self.texture is not None and self.texture not in TEXTURES:
            raise ValueError(f"unknown texture {self.texture!r}; known: {', '.join(TEXTURES)}")
        if self.palette is not None and self.palette not in PALETTES:
            raise ValueError(f"unknown palette {self.palette!r}; known: {', '.join(PALETTES)}")


def rng_for(*parts: object) -> np.random.Generator:
    """A generator seeded from a readable key (stable across machines and Python versions)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# ---------------------------------------------------------------- shape masks (u, v in shape units, y down)
def _tri(u: np.ndarray, v: np.ndarray, top: float, bottom: float, half: float) -> np.ndarray:
    """Upward triangle: apex at (0, top), base from (-half, bottom) to (half, bottom)."""
    return (v <= bottom) & (v >= top) & (np.abs(u) <= half * (v - top) / (bottom - top))


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    rho, theta = np.hypot(u, v), np.arctan2(u, -v)  # theta = 0 points up
    sector = np.mod(theta, 2 * np.pi / 5) / (2 * np.pi / 5)  # 0..1 between two tips
    limit = 1.05 - (1.05 - 0.45) * (1 - np.abs(2 * sector - 1))  # outer tips 1.05, inner corners 0.45
    return rho <= limit


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x, y = u * 1.25, -v * 1.25 + 0.25
    return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of ``shape`` at coordinates ``u, v`` (the shape spans about [-1, 1])."""
    au, av, rho = np.abs(u), np.abs(v), np.hypot(u, v)
    if shape == "circle":
        return rho <= 1.0
    if shape == "square":
        return np.maximum(au, av) <= 0.8
    if shape == "triangle":
        return _tri(u, v, -0.95, 0.75, 1.0)
    if shape == "diamond":
        return au + av <= 1.05
    if shape == "cross":
        return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))
    if shape == "ring":
        return (rho <= 1.0) & (rho >= 0.55)
    if shape == "star":
        return _star(u, v)
    if shape == "heart":
        return _heart(u, v)
    if shape == "crescent":
        return (rho <= 1.0) & (np.hypot(u - 0.45, v + 0.2) >= 0.8)
    if shape == "arrow":
        shaft = (av <= 0.25) & (u >= -0.95) & (u <= 0.2)
        head = (u >= 0.1) & (u <= 1.0) & (av <= 0.85 * (1.0 - u) / 0.9)
        return shaft | head
    if shape == "hourglass":
        return (av <= 0.9) & (au <= 0.9 * av + 0.08)
    if shape == "house":
        return ((au <= 0.72) & (v >= 0.0) & (v <= 0.9)) | _tri(u, v, -0.95, 0.0, 0.95)
    raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


def _grid() -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(SIZE * SUPER) + 0.5) / SUPER  # (S*SUPER,) sub-pixel centres in pixel units
    return np.meshgrid(c, c, indexing="xy")  # x, y: (S*SUPER, S*SUPER)


def masks(shapes: list[str], geometry: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage ``(B, 32, 32)`` in [0, 1]; ``geometry`` is ``(B, 3)``: centre x, y, radius (px)."""
    x, y = _grid()
    out = np.zeros((len(shapes), SIZE, SIZE), dtype=np.float32)
    for shape in set(shapes):
        idx = [i for i, s in enumerate(shapes) if s == shape]
        g = geometry[idx]  # (b, 3)
        u = (x[None] - g[:, 0, None, None]) / g[:, 2, None, None]  # (b, S*SUPER, S*SUPER)
        v = (y[None] - g[:, 1, None, None]) / g[:, 2, None, None]
        m = shape_mask(shape, u, v).astype(np.float32)
        out[idx] = m.reshape(len(idx), SIZE, SUPER, SIZE, SUPER).mean(axis=(2, 4))
    return out


def random_geometry(rng: np.random.Generator, n: int) -> np.ndarray:
    """Centre within 3 px of the middle, radius 9–12 px: ``(n, 3)``."""
    centre = SIZE / 2 + rng.uniform(-3, 3, size=(n, 2))
    radius = rng.uniform(9, 12, size=(n, 1))
    return np.concatenate([centre, radius], axis=1)


# ---------------------------------------------------------------- textures
def texture_pattern(texture: str, rng: np.random.Generator) -> np.ndarray:
    """Pattern strength ``(32, 32)`` in [0, 1] at a random phase."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    px, py = rng.integers(0, 12, size=2)
    x, y = xx + px, yy + py
    if texture == "hstripes":
        return (np.mod(y, 4) < 2).astype(np.float32)
    if texture == "vstripes":
        return (np.mod(x, 4) < 2).astype(np.float32)
    if texture == "diagonal":
        return (np.mod(x + y, 6) < 3).astype(np.float32)
    if texture == "dots":
        return ((np.mod(x, 6) - 2.5) ** 2 + (np.mod(y, 6) - 2.5) ** 2 <= 2.6).astype(np.float32)
    if texture == "grid":
        return ((np.mod(x, 6) == 0) | (np.mod(y, 6) == 0)).astype(np.float32)
    if texture == "checker":
        return np.mod(np.floor(x / 4) + np.floor(y / 4), 2).astype(np.float32)
    if texture == "noise":
        return rng.uniform(0, 1, size=(SIZE, SIZE)).astype(np.float32) ** 0.7
    if texture == "waves":
        return (np.mod(y + 2.2 * np.sin(2 * np.pi * x / 10), 6) < 3).astype(np.float32)
    raise ValueError(f"unknown texture {texture!r}; known: {', '.join(TEXTURES)}")


def apply_texture(img: np.ndarray, pattern: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
    """Pull patterned pixels towards white (dark pixels) or black (light pixels): ``(32, 32, 3)``.

    ``region (32, 32)`` in [0, 1] limits the texture (None: the whole image)."""
    target = (luminance(img) < 0.5).astype(np.float32)[..., None]  # (32, 32, 1)
    w = TEXTURE_STRENGTH * (pattern if region is None else pattern * region)[..., None]
    return img * (1 - w) + target * w


# ---------------------------------------------------------------- palettes
def _ramp(lum: np.ndarray, stops: list[tuple[float, float, float]]) -> np.ndarray:
    """Map luminance ``(32, 32)`` through evenly spaced colour stops → ``(32, 32, 3)``."""
    stops_a = np.asarray(stops, dtype=np.float32)  # (k, 3)
    pos = np.clip(lum, 0, 1) * (len(stops) - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, len(stops) - 2)
    t = (pos - lo)[..., None]
    return stops_a[lo] * (1 - t) + stops_a[lo + 1] * t


def _blur3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, 1, mode="edge")
    return sum(p[i : i + SIZE, j : j + SIZE] for i in range(3) for j in range(3)) / 9.0


def apply_palette(img: np.ndarray, palette: str, alpha: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """Recolour ``img (32, 32, 3)``; ``alpha (32, 32)`` is the shape coverage, ``fg (3,)`` its colour."""
    lum = luminance(img)
    if palette == "grayscale":
        return np.repeat(lum[..., None], 3, axis=-1)
    if palette == "sepia":
        m = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float32)
        return np.clip(0.12 + 0.85 * img @ m.T, 0, 1)
    if palette == "redscale":  # red monochrome, as under a darkroom safelight
        return _ramp(lum, [(0.02, 0.0, 0.0), (0.85, 0.05, 0.03), (1.0, 0.55, 0.45)])
    if palette == "neon":
        edge = alpha * (1 - np.minimum.reduce([np.roll(alpha, s, axis=a) for s in (-1, 1) for a in (0, 1)]))
        glow = np.clip(edge + 0.8 * _blur3(edge), 0, 1)[..., None]
        bright = fg / max(float(fg.max()), 1e-6)
        return np.clip(glow * bright + 0.12 * alpha[..., None] * bright + 0.02, 0, 1)
    if palette == "pastel":
        return 0.45 * img + 0.5
    if palette == "night":
        return img * np.array([0.22, 0.26, 0.42], dtype=np.float32) + np.array([0.0, 0.01, 0.05], dtype=np.float32)
    if palette == "thermal":
        return _ramp(lum, [(0.0, 0.0, 0.0), (0.45, 0.0, 0.6), (0.95, 0.1, 0.1), (1.0, 0.85, 0.0), (1.0, 1.0, 1.0)])
    if palette == "cyanotype":
        return _ramp(lum, [(0.02, 0.12, 0.35), (0.85, 0.93, 1.0)])
    if palette == "matrix":
        return _ramp(lum, [(0.0, 0.02, 0.0), (0.1, 1.0, 0.3)])
    if palette == "duotone":
        return _ramp(lum, [(0.0, 0.25, 0.3), (1.0, 0.55, 0.7)])
    raise ValueError(f"unknown palette {palette!r}; known: {', '.join(PALETTES)}")


# ---------------------------------------------------------------- rendering
def render(scenes: list[Scene], rng: np.random.Generator, geometry: np.ndarray | None = None) -> np.ndarray:
    """Float32 images ``(B, 32, 32, 3)`` in [0, 1]. ``geometry (B, 3)`` defaults to ``random_geometry``."""
    n = len(scenes)
    geometry = random_geometry(rng, n) if geometry is None else geometry
    alpha = masks([s.shape for s in scenes], geometry)  # (B, 32, 32)
    fg = np.array([FOREGROUNDS[s.colour] for s in scenes], dtype=np.float32)  # (B, 3)
    bg = np.array([BACKGROUNDS[s.background] for s in scenes], dtype=np.float32)  # (B, 3)
    img = bg[:, None, None] * (1 - alpha[..., None]) + fg[:, None, None] * alpha[..., None]  # (B, 32, 32, 3)
    for i, s in enumerate(scenes):
        if s.texture is not None:
            region = 1.0 - alpha[i] if s.palette is not None else None  # combos: background only
            img[i] = apply_texture(img[i], texture_pattern(s.texture, rng), region)
        if s.palette is not None:
            img[i] = apply_palette(img[i], s.palette, alpha[i], fg[i])
    return np.clip(img, 0, 1).astype(np.float32)


def random_scenes(
    rng: np.random.Generator,
    n: int,
    *,
    shapes: tuple[str, ...] = BASE_SHAPES,
    texture: str | None = None,
    palette: str | None = None,
) -> list[Scene]:
    """``n`` scenes with uniform shapes and colour pairs, all with the given texture and palette."""
    pairs = [COLOUR_PAIRS[i] for i in rng.integers(0, len(COLOUR_PAIRS), size=n)]
    picks = rng.integers(0, len(shapes), size=n)
    return [Scene(shapes[k], f, b, texture, palette) for k, (f, b) in zip(picks, pairs, strict=True)]


def to_tensor_range(images: np.ndarray) -> np.ndarray:
    """``(B, 32, 32, 3)`` in [0, 1] → ``(B, 3, 32, 32)`` in [-1, 1] (the diffusion model's pixel range)."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2) * 2.0 - 1.0)
