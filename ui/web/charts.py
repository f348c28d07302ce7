"""Pictures for the web UI: fingerprints as inline SVG, the registry map as a plotly figure.

* Weight fingerprint: ‖ΔW‖_F of every module of an adapter, in module order, grouped by block
  (``unet.down_blocks.1``, ``layers.7`` …). Computed without materializing ΔW:
  ‖s·B·A‖_F² = s²·Σ (BᵀB ⊙ AAᵀ), two (r, r) Gram matrices per module. Cached per sha256, in
  memory and as JSON under ``<data dir>/cache/fingerprints`` (same bytes → same picture).
* Registry map: the stored ``text`` and ``weights`` embeddings (one space: the weight encoder is
  trained into the text encoder's space) projected to 2-D by PCA (numpy SVD), drawn as an
  interactive plotly figure (hover names, zoom, click to open) with the query point and the
  search hits labelled where their labels do not overlap (``place_labels``).

numpy and plotly are imported inside functions; torch only when a fingerprint has to be computed.
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


# Fixed figure geometry, so that label boxes can be placed in pixels before the browser draws them.
MAP_W, MAP_H = 460, 400
MAP_MARGIN = {"l": 8, "r": 8, "t": 8, "b": 56}  # the bottom holds the family legend
LABEL_FONT_PX, LABEL_CHAR_PX, LABEL_H = 11, 6.6, 16
MARKER_PX = 7  # half the size of a hit's marker: labels keep off every hit


@dataclass(frozen=True)
class LabelBox:
    """A placed label: ``dx``, ``dy`` from its point to the box centre (pixels, y down) and the box."""

    dx: float
    dy: float
    x0: float
    y0: float
    x1: float
    y1: float

    def hits(self, other: LabelBox | tuple[float, float, float, float]) -> bool:
        ox0, oy0, ox1, oy1 = (other.x0, other.y0, other.x1, other.y1) if isinstance(other, LabelBox) else other
        return self.x0 < ox1 and ox0 < self.x1 and self.y0 < oy1 and oy0 < self.y1


def place_labels(
    points: list[tuple[float, float]], texts: list[str], width: float, height: float
) -> list[LabelBox | None]:
    """Boxes for ``texts`` next to their ``points`` (pixels, y down) that overlap neither each other
    nor any point's marker, inside ``width`` × ``height``: the first free spot on rings of growing
    radius (8 directions each), else the free row nearest the point; None when nothing is free
    (that name is then on hover only). Earlier texts (better hits) choose first."""
    markers = [(x - MARKER_PX, y - MARKER_PX, x + MARKER_PX, y + MARKER_PX) for x, y in points]
    placed: list[LabelBox] = []
    out: list[LabelBox | None] = []
    dirs = [(1, 0), (-1, 0), (1, -1), (-1, -1), (1, 1), (-1, 1), (0, -1), (0, 1)]
    for (px, py), text in zip(points, texts, strict=True):
        w, h = len(text) * LABEL_CHAR_PX + 8, LABEL_H

        def box(cx: float, cy: float, w: float = w, h: float = h, px: float = px, py: float = py) -> LabelBox:
            return LabelBox(cx - px, cy - py, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

        def free(b: LabelBox) -> bool:
            inside = b.x0 >= 0 and b.y0 >= 0 and b.x1 <= width and b.y1 <= height
            return inside and not any(b.hits(o) for o in placed) and not any(b.hits(m) for m in markers)

        choice = None
        for r in (10, 22, 36, 54, 78, 110):
            for ux, uy in dirs:
                b = box(px + ux * (r + w / 2), py + uy * (r + h / 2))
                if free(b):
                    choice = b
                    break
            if choice:
                break
        if choice is None:  # every ring is taken: the nearest free row, at the point's x (clamped)
            cx = min(max(px, w / 2), width - w / 2)
            rows = sorted((abs(cy - py), cy) for cy in (h / 2 + i * h for i in range(int(height // h))))
            choice = next((b for _, cy in rows if free(b := box(cx, cy))), None)
        if choice is not None:
            placed.append(choice)
        out.append(choice)
    return out


def map_figure(data: MapData | None, query: np.ndarray | None = None, hits: list[int] | None = None,
               *, max_points: int = 2500) -> Any:  # fmt: skip
    """A plotly scatter of the registry for ``gr.Plot``: circles = metadata-text embeddings,
    diamonds = weight embeddings, coloured by family; names on hover, a point's ``customdata`` is
    its adapter id (the page's click handler opens it); hits outlined, labelled with their rank
    where a label fits (``place_labels``), their two points joined; the query a red star."""
    import numpy as np
    import plotly.graph_objects as go

    fig = go.Figure()
    layout: dict[str, Any] = {
        "width": MAP_W, "height": MAP_H, "margin": {**MAP_MARGIN, "autoexpand": False},
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "hovermode": "closest",
        "font": {"family": "sans-serif", "size": 11, "color": "#64748b"}, "dragmode": "zoom",
        "legend": {"orientation": "h", "x": 0, "y": 0, "yanchor": "top", "font": {"size": 10},
                   "bgcolor": "rgba(0,0,0,0)"},
        "meta": {"ldx": "registry-map", "explained": [round(v, 3) for v in data.explained] if data else None},
    }  # fmt: skip
    axis = {"showticklabels": False, "zeroline": False, "showgrid": True, "gridcolor": "rgba(148,163,184,0.2)",
            "linecolor": "rgba(148,163,184,0.5)", "mirror": True, "showline": True}  # fmt: skip
    if data is None:
        layout["annotations"] = [{"text": "nothing embedded yet", "showarrow": False, "xref": "paper",
                                  "yref": "paper", "x": 0.5, "y": 0.5}]  # fmt: skip
        fig.update_layout(**layout, xaxis={**axis, "showgrid": False}, yaxis={**axis, "showgrid": False})
        return fig
    hits = hits or []
    rank = {aid: i + 1 for i, aid in enumerate(hits)}
    if query is not None and np.asarray(query).reshape(-1).shape[0] != data.mean.shape[0]:
        query = None  # a prompt vector of another space (a tuned text map's index is 2 × its dim): no star
    q2 = data.project(query) if query is not None else None
    pts = data.coords  # (n, 2)
    allx = np.vstack([pts, q2[None, :]]) if q2 is not None else pts
    lo, hi = allx.min(axis=0), allx.max(axis=0)
    span = np.where(hi - lo > 1e-9, hi - lo, 1.0)
    x0, x1 = float(lo[0] - 0.04 * span[0]), float(hi[0] + 0.04 * span[0])
    y0, y1 = float(lo[1] - 0.04 * span[1]), float(hi[1] + 0.04 * span[1])
    pw, ph = MAP_W - MAP_MARGIN["l"] - MAP_MARGIN["r"], MAP_H - MAP_MARGIN["t"] - MAP_MARGIN["b"]

    def to_px(p: np.ndarray) -> tuple[float, float]:  # plot-area pixels, y down
        return float((p[0] - x0) / (x1 - x0)) * pw, float((y1 - p[1]) / (y1 - y0)) * ph

    fams = sorted(set(data.families.values()))
    color = {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(fams)}
    stride = max(1, math.ceil(len(pts) / max_points))
    by_fam: dict[str, list[int]] = {}
    hit_rows: dict[int, list[int]] = {}
    for j, aid in enumerate(data.ids):
        if aid in rank:
            hit_rows.setdefault(aid, []).append(j)
    hit_px = np.array([to_px(pts[j]) for rows in hit_rows.values() for j in rows]).reshape(-1, 2)
    for j, aid in enumerate(data.ids):
        if aid in rank or j % stride:
            continue
        if len(hit_px) and float(np.min(np.abs(hit_px - np.array(to_px(pts[j]))).max(axis=1))) < MARKER_PX:
            continue  # under a hit's marker: it could not be seen, and would take the hover and the click
        by_fam.setdefault(data.families.get(aid, "unknown"), []).append(j)

    def scatter(rows: list[int], name: str, **marker: Any) -> Any:
        return go.Scatter(
            x=[float(pts[j][0]) for j in rows], y=[float(pts[j][1]) for j in rows], mode="markers", name=name,
            customdata=[data.ids[j] for j in rows],
            hovertext=[f"{data.names.get(data.ids[j], data.ids[j])} ({data.families.get(data.ids[j], '?')}) · "
                       f"{data.kinds[j]} embedding" for j in rows],
            hoverinfo="text",
            marker={"symbol": ["diamond" if data.kinds[j] == "weights" else "circle" for j in rows], **marker},
        )  # fmt: skip

    for fam in fams:
        if by_fam.get(fam):
            fig.add_trace(scatter(by_fam[fam], fam, size=7, color=color[fam], opacity=0.75,
                                  line={"width": 0.5, "color": "white"}))  # fmt: skip
    order = sorted(hit_rows, key=lambda a: rank[a])
    if order:
        links_x: list[float | None] = []
        links_y: list[float | None] = []
        for aid in order:
            if len(hit_rows[aid]) == 2:
                a, b = (pts[j] for j in hit_rows[aid])
                links_x += [float(a[0]), float(b[0]), None]
                links_y += [float(a[1]), float(b[1]), None]
        if links_x:
            fig.add_trace(go.Scatter(x=links_x, y=links_y, mode="lines", hoverinfo="skip", showlegend=False,
                                     line={"color": HIT_COLOR, "width": 1.2, "dash": "dot"}))  # fmt: skip
        rows = [j for aid in order for j in hit_rows[aid]]
        fig.add_trace(scatter(rows, "search hits", size=12, line={"width": 2, "color": HIT_COLOR},
                              color=[color.get(data.families.get(data.ids[j], ""), "#888") for j in rows]))  # fmt: skip
    if q2 is not None:
        fig.add_trace(go.Scatter(x=[float(q2[0])], y=[float(q2[1])], mode="markers", name="your prompt",
                                 hovertext=["your prompt"], hoverinfo="text",
                                 marker={"symbol": "star", "size": 16, "color": QUERY_COLOR,
                                         "line": {"width": 1, "color": "white"}}))  # fmt: skip
    anchors = [min((pts[j] for j in hit_rows[aid]), key=lambda p: -p[1]) for aid in order]  # the upper point
    texts = [f"{rank[aid]}. {data.names.get(aid, str(aid))[:24]}" for aid in order]
    boxes = place_labels([to_px(p) for p in anchors], texts, pw, ph)
    layout["annotations"] = [
        {"x": float(p[0]), "y": float(p[1]), "ax": b.dx, "ay": b.dy, "axref": "pixel", "ayref": "pixel",
         "text": t, "showarrow": True, "arrowhead": 0, "arrowwidth": 1, "arrowcolor": "rgba(100,116,139,0.6)",
         "xanchor": "center", "yanchor": "middle", "bgcolor": "rgba(255,255,255,0.85)", "borderpad": 1,
         "font": {"size": LABEL_FONT_PX, "color": "#1e293b"}, "name": "ldx-hit"}
        for p, t, b in zip(anchors, texts, boxes, strict=True) if b is not None
    ]  # fmt: skip
    fig.update_layout(
        **layout,
        xaxis={**axis, "range": [x0, x1]},
        yaxis={**axis, "range": [y0, y1]},
    )  # fmt: skip
    return fig
