"""Pictures for the web UI, drawn as inline SVG (no plotting library, no image files).

* Weight fingerprint: ‖ΔW‖_F of every module of an adapter, in module order, grouped by block
  (``unet.down_blocks.1``, ``layers.7`` …). Computed without materializing ΔW:
  ‖s·B·A‖_F² = s²·Σ (BᵀB ⊙ AAᵀ), two (r, r) Gram matrices per module. Cached per sha256, in
  memory and as JSON under ``<data dir>/cache/fingerprints`` (same bytes → same picture).
* Registry map: the stored ``text`` and ``weights`` embeddings (one space: the weight encoder is
  trained into the text encoder's space) projected to 2-D by PCA (numpy SVD), with a query
  point and search hits highlighted.

numpy is imported inside functions; torch only when a fingerprint has to be computed.
"""

from __future__ import annotations

import html
import json
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from loradex.service import LocalService
    from registry.formats.canonical import LoraAdapter

# Categorical palette (Tableau 10): families in the map, blocks in fingerprints.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")  # fmt: skip
BLOCK_COLORS = ("#4e79a7", "#a0cbe8")  # blocks alternate between two blues
QUERY_COLOR = "#e15759"
HIT_COLOR = "#f28e2b"
_COMPONENT_SHORT = {"text_encoder": "te1", "text_encoder_2": "te2", "text_encoder_3": "te3", "transformer": "dit"}


# -- fingerprints ------------------------------------------------------------------------------
def block_of(name: str) -> str:
    """Block label of a canonical module name: the component and the first indexed segment.

    ``unet.down_blocks.1.attentions.0.…`` → ``unet down_blocks.1``; ``model.model.layers.7.…`` →
    ``layers.7``; ``text_encoder.text_model.encoder.layers.0.…`` → ``te1 layers.0``;
    ``unet.mid_block.attentions.0.…`` → ``unet mid_block``."""
    component, _, path = name.partition(".")
    parts = path.split(".")
    label = ""
    for i, part in enumerate(parts):
        if "block" in part and (i + 1 >= len(parts) or not parts[i + 1].isdigit()):
            label = part  # mid_block: a block without an index
            break
        if i + 1 < len(parts) and parts[i + 1].isdigit():
            label = f"{part}.{parts[i + 1]}"
            break
    prefix = "" if component == "model" else _COMPONENT_SHORT.get(component, component)
    return " ".join(p for p in (prefix, label) if p) or component


def natural_key(name: str) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def module_norm(module: Any) -> float:
    """‖ΔW‖_F of a ``LoraModule`` from its factors (never builds the (out, in) matrix)."""
    a = module.down.float()
    r = a.shape[0]
    a = a.reshape(r, -1)  # (r, in·kh·kw)
    b = module.up.float().reshape(-1, r)  # (out, r)
    sq = float(((b.T @ b) * (a @ a.T)).sum())  # ‖B·A‖_F²
    return abs(float(module.scale)) * math.sqrt(max(sq, 0.0))


def fingerprint_of(adapter: LoraAdapter) -> list[tuple[str, str, float]]:
    """[(module name, block label, ‖ΔW‖_F)] in natural module order."""
    names = sorted(adapter.modules, key=natural_key)
    return [(n, block_of(n), module_norm(adapter.modules[n])) for n in names]


class FingerprintCache:
    """Fingerprints by sha256: an LRU in memory over JSON files in ``folder`` (None: memory only)."""

    def __init__(self, folder: Path | None = None, size: int = 2048) -> None:
        self.folder, self.size = folder, size
        self._mem: OrderedDict[str, list[tuple[str, str, float]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, service: LocalService, info: dict[str, Any]) -> list[tuple[str, str, float]]:
        sha = str(info["sha256"])
        with self._lock:
            if sha in self._mem:
                self._mem.move_to_end(sha)
                return self._mem[sha]
        fp = self._read(sha)
        if fp is None:
            fp = fingerprint_of(service.load(info["id"]))
            self._write(sha, fp)
        with self._lock:
            self._mem[sha] = fp
            while len(self._mem) > self.size:
                self._mem.popitem(last=False)
        return fp

    def _path(self, sha: str) -> Path | None:
        return self.folder / f"{sha}.json" if self.folder is not None and re.fullmatch(r"[0-9a-f]{64}", sha) else None

    def _read(self, sha: str) -> list[tuple[str, str, float]] | None:
        path = self._path(sha)
        try:
            return [(str(n), str(b), float(v)) for n, b, v in json.loads(path.read_text())] if path else None
        except (OSError, ValueError, TypeError):
            return None

    def _write(self, sha: str, fp: list[tuple[str, str, float]]) -> None:
        path = self._path(sha)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{threading.get_ident()}")
            tmp.write_text(json.dumps(fp))
            tmp.replace(path)
        except OSError:
            pass  # a read-only data dir: keep it in memory only


def fingerprint_svg(
    fp: list[tuple[str, str, float]], width: int = 220, height: int = 64, *, labels: bool = False
) -> str:
    """Bars of ‖ΔW‖_F per module (height relative to the adapter's largest), blocks in alternating
    colours with a gap between them; ``labels`` adds block names below (the big version)."""
    if not fp:
        return _svg(width, height, f'<text x="{width / 2}" y="{height / 2}" class="ldx-svg-note">no modules</text>')
    blocks: list[tuple[str, list[tuple[str, float]]]] = []
    for name, block, norm in fp:
        if not blocks or blocks[-1][0] != block:
            blocks.append((block, []))
        blocks[-1][1].append((name, norm))
    top = max(v for _, _, v in fp) or 1.0
    base = height - (30 if labels else 4)
    n, gaps = len(fp), len(blocks) - 1
    gap = min(4.0, width * 0.25 / max(gaps, 1)) if gaps else 0.0
    bar = max((width - 4 - gap * gaps) / n, 0.5)
    parts = [f'<line x1="0" y1="{base + 0.5}" x2="{width}" y2="{base + 0.5}" stroke="#cbd5e1" stroke-width="1"/>']
    x = 2.0
    for bi, (block, mods) in enumerate(blocks):
        color = BLOCK_COLORS[bi % 2]
        x0 = x
        for name, norm in mods:
            h = max((base - (16 if labels else 4)) * norm / top, 1.0)
            tip = html.escape(f"{name}: ‖ΔW‖ = {norm:.4g}")
            parts.append(f'<rect x="{x:.2f}" y="{base - h:.2f}" width="{max(bar - (0.6 if bar > 2 else 0), 0.4):.2f}" '
                         f'height="{h:.2f}" fill="{color}"><title>{tip}</title></rect>')  # fmt: skip
            x += bar
        label = _fit_label(block, x - x0) if labels else None
        if label:
            row = 12 + 11 * (bi % 2)  # alternate two rows so neighbours do not collide
            parts.append(f'<text x="{(x0 + x) / 2:.1f}" y="{base + row}" class="ldx-svg-label" '
                         f'text-anchor="middle">{html.escape(label)}</text>')  # fmt: skip
        x += gap
    if labels:
        parts.append(f'<text x="4" y="11" class="ldx-svg-label">max ‖ΔW‖_F {top:.3g} · {n} modules</text>')
    title = f"weight fingerprint: ‖ΔW‖_F of {n} modules in {len(blocks)} blocks (max {top:.3g})"
    return _svg(width, height, "".join(parts), title=title)


def _fit_label(block: str, room: float, char_px: float = 5.6) -> str | None:
    """The block label, or a shorter form of it, that fits ``room`` pixels (two label rows)."""
    for cand in (block, block.split(" ")[-1], block.rsplit(".", 1)[-1]):
        if len(cand) * char_px <= room * 1.9:
            return cand
    return None


def _svg(width: int, height: int, body: str, title: str = "", cls: str = "ldx-svg") -> str:
    t = f"<title>{html.escape(title)}</title>" if title else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img">{t}{body}</svg>')  # fmt: skip


# -- registry map ------------------------------------------------------------------------------
@dataclass
class MapData:
    ids: list[int]  # adapter id of each row
    kinds: list[str]  # text | weights, per row
    names: dict[int, str]
    families: dict[int, str]
    coords: np.ndarray  # (n, 2) projected rows
    mean: np.ndarray  # (dim,) PCA centre
    basis: np.ndarray  # (dim, 2) PCA directions
    explained: tuple[float, float]  # share of variance on each axis

    def project(self, vec: np.ndarray) -> np.ndarray:
        import numpy as np

        return (np.asarray(vec, dtype=np.float32).reshape(-1) - self.mean) @ self.basis  # (2,)


def pca_2d(x: np.ndarray, max_fit: int = 5000) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """(mean (dim,), basis (dim, 2), explained shares) of the rows of ``x`` (n, dim); fitted on at
    most ``max_fit`` evenly spaced rows."""
    import numpy as np

    fit = x[:: max(1, math.ceil(len(x) / max_fit))]
    mean = fit.mean(axis=0)
    basis = np.zeros((x.shape[1], 2), dtype=np.float32)
    shares = (0.0, 0.0)
    if len(fit) > 1:
        _, s, vt = np.linalg.svd(fit - mean, full_matrices=False)  # vt: (min(n, dim), dim)
        k = min(2, vt.shape[0])
        basis[:, :k] = vt[:k].T
        var = s**2
        total = float(var.sum()) or 1.0
        shares = (float(var[0]) / total, float(var[1]) / total if k > 1 else 0.0)
    return mean.astype(np.float32), basis, shares


class RegistryMap:
    """Projects the service's current embeddings; recomputed only when the indexes changed."""

    def __init__(self, service: LocalService) -> None:
        self.service = service
        self._key: str | None = None
        self._data: MapData | None = None
        self._lock = threading.Lock()

    def data(self) -> MapData | None:
        """None when nothing is embedded yet."""
        import numpy as np

        key = self.service.index_state()
        with self._lock:
            if key == self._key:
                return self._data
            rows = self.service.embeddings()
            ids, kinds, vecs = [i for i, _, _ in rows], [k for _, k, _ in rows], [v for _, _, v in rows]
            if len({v.shape[0] for v in vecs}) > 1:  # spaces that cannot share a plot: keep the text one
                keep = [j for j, kd in enumerate(kinds) if kd == "text"]
                ids, kinds, vecs = [ids[j] for j in keep], [kinds[j] for j in keep], [vecs[j] for j in keep]
            if not vecs:
                self._key, self._data = key, None
                return None
            x = np.stack(vecs).astype(np.float32)  # (n, dim)
            mean, basis, shares = pca_2d(x)
            adapters = self.service.list()
            names = {int(a["id"]): str(a["name"]) for a in adapters}
            fams = {int(a["id"]): str(a["family"]) for a in adapters}
            self._data = MapData(ids, kinds, names, fams, (x - mean) @ basis, mean, basis, shares)
            self._key = key
            return self._data


def map_svg(
    data: MapData | None,
    query: np.ndarray | None = None,
    hits: list[int] | None = None,
    *,
    width: int = 520,
    height: int = 400,
    max_points: int = 2500,
) -> str:
    """Scatter of the registry: circles = metadata-text embeddings, diamonds = weight embeddings,
    coloured by family; hits numbered (their two points joined), the query a red star."""
    import numpy as np

    if data is None:
        return _svg(width, 80, '<text x="10" y="40" class="ldx-svg-note">nothing embedded yet</text>', cls="ldx-map")
    hits = hits or []
    rank = {aid: i + 1 for i, aid in enumerate(hits)}
    q2 = data.project(query) if query is not None else None
    pts = data.coords
    allx = np.vstack([pts, q2[None, :]]) if q2 is not None else pts
    lo, hi = allx.min(axis=0), allx.max(axis=0)
    span = np.where(hi - lo > 1e-9, hi - lo, 1.0)
    pad, legend_h = 16, 22
    plot_w, plot_h = width - 2 * pad, height - 2 * pad - legend_h

    def xy(p: np.ndarray) -> tuple[float, float]:
        return pad + float((p[0] - lo[0]) / span[0]) * plot_w, pad + float((hi[1] - p[1]) / span[1]) * plot_h

    fams = sorted(set(data.families.values()))
    color = {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(fams)}
    stride = max(1, math.ceil(len(pts) / max_points))
    back: list[str] = []
    front: list[str] = []
    pairs: dict[int, list[tuple[float, float]]] = {}
    for j, (aid, kind) in enumerate(zip(data.ids, data.kinds, strict=True)):
        x, y = xy(pts[j])
        fam = data.families.get(aid, "unknown")
        tip = html.escape(f"{data.names.get(aid, aid)} ({fam}) · {kind} embedding")
        if aid in rank:
            pairs.setdefault(aid, []).append((x, y))
            front.append(_marker(kind, x, y, 6.5, color.get(fam, "#888"), HIT_COLOR, 2.0, tip))
        elif j % stride == 0:
            back.append(_marker(kind, x, y, 3.6, color.get(fam, "#888"), "white", 0.6, tip, opacity=0.75))
    lines, labels = [], []
    if q2 is not None:
        qx, qy = xy(q2)
    for aid, ps in sorted(pairs.items(), key=lambda kv: -rank[kv[0]]):  # the best hit drawn last, on top
        if len(ps) == 2:
            lines.append(f'<line x1="{ps[0][0]:.1f}" y1="{ps[0][1]:.1f}" x2="{ps[1][0]:.1f}" y2="{ps[1][1]:.1f}" '
                         f'stroke="{HIT_COLOR}" stroke-width="1.2" stroke-dasharray="3 2"/>')  # fmt: skip
        x, y = min(ps, key=lambda p: p[1])
        if q2 is not None:
            lines.append(f'<line x1="{qx:.1f}" y1="{qy:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="{QUERY_COLOR}" '
                         f'stroke-opacity="0.25" stroke-width="1"/>')  # fmt: skip
        name = html.escape(data.names.get(aid, str(aid))[:28])
        anchor = "end" if x > width * 0.7 else "start"
        dx = -8 if anchor == "end" else 8
        labels.append(f'<text x="{x + dx:.1f}" y="{y - 6:.1f}" text-anchor="{anchor}" class="ldx-svg-hit">'
                      f"{rank[aid]}. {name}</text>")  # fmt: skip
    query_mark = ""
    if q2 is not None:
        query_mark = (f'<path d="{_star(qx, qy, 9, 4)}" fill="{QUERY_COLOR}" stroke="white" stroke-width="1.2">'
                      "<title>your prompt</title></path>")  # fmt: skip
    legend: list[str] = []
    lx = float(pad)
    for f in fams[:8]:
        legend.append(f'<circle cx="{lx + 4}" cy="{height - 10}" r="4" fill="{color[f]}"/>'
                      f'<text x="{lx + 11}" y="{height - 6}" class="ldx-svg-label">{html.escape(f)}</text>')  # fmt: skip
        lx += 16 + 6.5 * len(f)
    legend.append(f'<text x="{width - pad}" y="{height - 6}" text-anchor="end" class="ldx-svg-label">'
                  "● text ◆ weights ★ prompt</text>")  # fmt: skip
    frame = (f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - legend_h - 1}" rx="8" fill="#f8fafc" '
             'stroke="#e2e8f0"/>')  # fmt: skip
    ex = data.explained
    title = (f"registry map: {len(set(data.ids))} adapters, PCA of text + weight embeddings "
             f"(axes explain {ex[0]:.0%} and {ex[1]:.0%} of the variance)")  # fmt: skip
    body = frame + "".join(back) + "".join(lines) + "".join(front) + query_mark + "".join(labels) + "".join(legend)
    return _svg(width, height, body, title=title, cls="ldx-map")


def _marker(kind: str, x: float, y: float, r: float, fill: str, stroke: str, sw: float, tip: str,
            opacity: float = 1.0) -> str:  # fmt: skip
    style = f'fill="{fill}" stroke="{stroke}" stroke-width="{sw}" fill-opacity="{opacity}"'
    if kind == "weights":
        d = f"M{x:.1f},{y - r:.1f} L{x + r:.1f},{y:.1f} L{x:.1f},{y + r:.1f} L{x - r:.1f},{y:.1f} Z"
        return f'<path d="{d}" {style}><title>{tip}</title></path>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r * 0.85:.1f}" {style}><title>{tip}</title></circle>'


def _star(cx: float, cy: float, outer: float, inner: float) -> str:
    pts = []
    for i in range(10):
        r = outer if i % 2 == 0 else inner
        a = math.pi / 2 + i * math.pi / 5
        pts.append(f"{cx + r * math.cos(a):.1f},{cy - r * math.sin(a):.1f}")
    return "M" + " L".join(pts) + " Z"
