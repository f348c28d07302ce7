"""Image judges: how search by example compares a user's example picture with what an image
family's adapters render (``loradex.verify_images``).

A judge maps pictures to feature vectors compared by cosine. A family may register its own
(``register_image_judge``, or an entry point in the group ``loradex.image_judges`` of an installed
distribution: name the family, value a callable returning an ``ImageJudge``, or None while its
files are not built), e.g. a classifier of the looks its adapters give; every other family gets
``STYLE``, a training-free descriptor of a picture's look: its colours (a joint RGB histogram,
saturation and brightness) and its texture (gradient orientations and the spectrum's energy by
frequency band and direction), each block compared as a Hellinger-style unit vector.

Importing this module imports neither torch nor numpy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loradex.plugins import read_entry_points

ENTRY_POINT_GROUP = "loradex.image_judges"
SIDE = 32  # pictures are judged at SIDE × SIDE pixels (after an area resize)


@dataclass(frozen=True)
class ImageJudge:
    """``features((n, SIDE, SIDE, 3) float32 in [0, 1]) → (n, d)``, rows compared by cosine.
    ``says_fits``: a render closer to an example than the bare base's means the adapter does the look
    (a judge of the looks themselves); off, search only says when nothing fits, never that something
    does (``STYLE``: some adapter's colours always come a little closer than the base's)."""

    name: str
    features: Callable[[Any], Any]
    says_fits: bool = True


_JUDGES: dict[str, ImageJudge | Callable[[], ImageJudge | None]] = {}
_LOCK = threading.Lock()


def register_image_judge(family: str, judge: ImageJudge | Callable[[], ImageJudge | None], *,
                         replace: bool = False) -> None:  # fmt: skip
    """Judge ``family``'s pictures with ``judge`` (or a callable making it on first use)."""
    with _LOCK:
        if family in _JUDGES and not replace:
            raise ValueError(f"an image judge for family {family!r} is already registered (pass replace=True)")
        _JUDGES[family] = judge


def unregister_image_judge(family: str) -> None:
    with _LOCK:
        _JUDGES.pop(family, None)


def image_judge(family: str) -> ImageJudge:
    """The judge registered for ``family`` (made on first use), else ``STYLE``."""
    read_entry_points(ENTRY_POINT_GROUP, lambda name, make: _JUDGES.setdefault(name, make))
    with _LOCK:
        found = _JUDGES.get(family)
        if found is not None and not isinstance(found, ImageJudge):
            made = found()
            if made is None:  # its files are not built yet: the default until they are
                return STYLE
            _JUDGES[family] = found = made
    return found if isinstance(found, ImageJudge) else STYLE


def _unit(x: Any) -> Any:
    import numpy as np

    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _hist(values: Any, bins: int, weights: Any | None = None, top: float = 1.0) -> Any:
    """Per row of ``values`` (n, m) in [0, top): a normalised histogram, square-rooted (n, bins)."""
    import numpy as np

    idx = np.clip((values / top * bins).astype(np.int64), 0, bins - 1)  # (n, m)
    w = np.ones_like(values) if weights is None else weights
    out = np.zeros((values.shape[0], bins), dtype=np.float64)
    np.add.at(out, (np.arange(values.shape[0])[:, None], idx), w)
    out /= np.maximum(out.sum(axis=1, keepdims=True), 1e-12)
    return np.sqrt(out)


def style_features(images: Any) -> Any:
    """The ``STYLE`` descriptor of ``images`` (n, H, W, 3) in [0, 1]: (n, 64 + 8 + 8 + 12), unit rows."""
    import numpy as np

    x = np.asarray(images, dtype=np.float64)  # (n, H, W, 3)
    n = x.shape[0]
    q = np.clip((x * 4).astype(np.int64), 0, 3)
    rgb = _hist((q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2]).reshape(n, -1).astype(np.float64), 64, top=64.0)
    hi, lo = x.max(axis=3), x.min(axis=3)  # (n, H, W): value and the least channel
    sat = np.where(hi > 1e-6, (hi - lo) / np.maximum(hi, 1e-6), 0.0)
    tones = np.concatenate([_hist(sat.reshape(n, -1), 4), _hist(hi.reshape(n, -1), 4)], axis=1)  # (n, 8)
    lum = x @ np.array([0.299, 0.587, 0.114])  # (n, H, W)
    gy, gx = np.gradient(lum, axis=(1, 2))
    mag = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # an edge's direction, either way along it
    edges = _hist(angle.reshape(n, -1), 8, weights=mag.reshape(n, -1), top=np.pi)  # (n, 8)
    power = np.abs(np.fft.fft2(lum - lum.mean(axis=(1, 2), keepdims=True))) ** 2  # (n, H, W)
    fy, fx = np.meshgrid(np.fft.fftfreq(lum.shape[1]), np.fft.fftfreq(lum.shape[2]), indexing="ij")
    radius, theta = np.hypot(fx, fy), np.mod(np.arctan2(fy, fx), np.pi)
    band = np.clip((radius / 0.5 * 3).astype(np.int64), 0, 2)  # low, middle, high frequencies
    way = np.clip((theta / np.pi * 4).astype(np.int64), 0, 3)  # four directions
    cell = (band * 4 + way).reshape(-1)
    keep = radius.reshape(-1) > 0  # the mean was taken out
    spectrum = np.zeros((n, 12))
    for c in range(12):  # each band × direction's energy
        spectrum[:, c] = power.reshape(n, -1)[:, keep & (cell == c)].sum(axis=1)
    spectrum = np.log1p(spectrum / max(lum.shape[1] * lum.shape[2], 1))
    blocks = [rgb, tones * 0.7, edges, _unit(spectrum)]
    return _unit(np.concatenate([_unit(b) for b in blocks], axis=1)).astype(np.float32)


STYLE = ImageJudge("style (colours and texture)", style_features, says_fits=False)


def pictures(images: list[Any]) -> Any:
    """PIL images → (n, SIDE, SIDE, 3) float32 in [0, 1] (RGB, area-resized)."""
    import numpy as np
    from PIL import Image

    out = [np.asarray(im.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float32) / 255.0
           for im in images]  # fmt: skip
    return np.stack(out) if out else np.zeros((0, SIDE, SIDE, 3), dtype=np.float32)


__all__ = ["ENTRY_POINT_GROUP", "STYLE", "ImageJudge", "image_judge", "pictures", "register_image_judge",
           "style_features", "unregister_image_judge"]  # fmt: skip
