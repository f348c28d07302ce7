"""Preview images: an adapter rendered through its family's base pipeline, next to the bare base.

A family has previews when a diffusers pipeline is registered for it: ``register_preview_pipeline``,
or an entry point in the group ``loradex.previews`` of an installed distribution (name: the
family; value: a callable returning a ``PreviewPipeline``, or None while its files are not built),
read lazily. Other families keep the weight fingerprint.

A preview is a PNG grid: the top row is the base pipeline on a few content prompts, the bottom
row the same prompts and seeds with the adapter loaded. Rendering never fuses: the adapter is
exported in diffusers format, loaded into the shared pipeline as a named PEFT adapter, used, and
deleted again, so the base weights stay pristine in a long-running server (diffusers #5604).
Previews are cached on disk by adapter sha256 and pipeline key.

Importing this module does not import torch or diffusers.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loradex.errors import PreviewUnavailableError

ENTRY_POINT_GROUP = "loradex.previews"
BATCH = 8  # adapters rendered per pipeline call by ``Previewer.render_many``
GAP = 2  # pixels between a preview grid's cells


@dataclass(frozen=True)
class PreviewPipeline:
    """How to render one family's previews."""

    family: str  # registry base family the pipeline serves (e.g. "zoo-image")
    folder: Path  # a diffusers pipeline folder (model_index.json)
    loader: str = "loradex.previews:load_diffusers"  # "module:function", (folder, device) -> pipeline
    prompts: tuple[str, ...] = ("a photo of a cat", "a landscape", "a portrait", "a city street")  # one column each
    prompt_fn: str | None = None  # "module:function", (adapter info, prompts) -> prompts for that adapter
    steps: int = 20  # inference steps
    guidance: float = 4.0  # classifier-free guidance scale
    seed: int = 0  # column i uses torch.Generator().manual_seed(seed + i)
    cell: int = 96  # each image is resized (nearest) to cell x cell pixels
    extra: dict[str, Any] = field(default_factory=dict)  # further keyword arguments of the pipeline call

    def __post_init__(self) -> None:
        if not self.prompts:
            raise ValueError(f"preview pipeline for {self.family!r} needs at least one prompt")
        if self.steps < 1 or self.cell < 8:
            raise ValueError(f"steps must be ≥ 1 and cell ≥ 8, got {self.steps}, {self.cell}")
        for ref in (self.loader, self.prompt_fn):
            if ref is not None and ":" not in ref:
                raise ValueError(f"{ref!r} is not a 'module:function' reference")

    def key(self) -> str:
        """Changes whenever the pipeline's files or the rendering settings change (cache key)."""
        d = asdict(self)
        d["folder"] = str(self.folder)
        marks = [
            (p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(self.folder.rglob("*")) if p.is_file()
        ]
        blob = json.dumps([d, marks], sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


_PIPELINES: dict[str, PreviewPipeline] = {}
_LOCK = threading.Lock()


def register_preview_pipeline(spec: PreviewPipeline, *, replace: bool = False) -> None:
    """Make ``spec.family`` previewable; a second registration for a family is refused unless ``replace``."""
    with _LOCK:
        if spec.family in _PIPELINES and not replace:
            raise ValueError(f"a preview pipeline for {spec.family!r} is already registered")
        _PIPELINES[spec.family] = spec


def unregister_preview_pipeline(family: str) -> None:
    with _LOCK:
        _PIPELINES.pop(family, None)


def _builtin() -> None:
    """Register the preview pipelines installed distributions declare (once; an explicit
    registration of a family wins). Each entry point returns a spec, or None while unbuilt."""
    from loradex.plugins import read_entry_points

    def add(family: str, make: Callable[[], PreviewPipeline | None]) -> None:
        if family not in _PIPELINES and (spec := make()) is not None:
            _PIPELINES[family] = spec

    read_entry_points(ENTRY_POINT_GROUP, add)


def preview_pipeline(family: str) -> PreviewPipeline:
    """The registered pipeline of ``family``; ``PreviewUnavailableError`` names the families that have one."""
    _builtin()
    spec = _PIPELINES.get(family)
    if spec is None:
        raise PreviewUnavailableError(family, sorted(_PIPELINES))
    if not (spec.folder / "model_index.json").is_file():
        raise PreviewUnavailableError(family, sorted(_PIPELINES), f"preview pipeline folder {spec.folder} is missing")
    return spec


def preview_families() -> list[str]:
    _builtin()
    return sorted(f for f, s in _PIPELINES.items() if (s.folder / "model_index.json").is_file())


def _resolve(ref: str) -> Callable[..., Any]:
    module, _, name = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def load_diffusers(folder: Path, device: str) -> Any:
    """Default loader: ``DiffusionPipeline.from_pretrained`` of a local folder, progress bar off."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class Previewer:
    """Renders and caches previews; one instance per service (it holds the loaded pipelines)."""

    def __init__(self, cache_dir: Path | None = None, device: str | None = None) -> None:
        self.cache_dir = cache_dir
        self.device = device
        self._pipes: dict[str, tuple[str, Any]] = {}  # family -> (spec key, pipeline)
        self._base_rows: dict[tuple[str, tuple[str, ...]], Any] = {}  # (spec key, prompts) -> base images
        self._keys: dict[str, tuple[PreviewPipeline, str]] = {}  # family -> (spec, its key): walked once per spec
        self._lock = threading.Lock()  # one render at a time: the pipeline is shared

    def available(self, family: str) -> bool:
        return family in preview_families()

    def _key(self, spec: PreviewPipeline) -> str:
        """``spec.key()`` without walking the pipeline folder on every request (a new registration re-keys)."""
        have = self._keys.get(spec.family)
        if have is None or have[0] is not spec:
            have = self._keys[spec.family] = (spec, spec.key())
        return have[1]

    def _path(self, info: dict[str, Any], key: str) -> Path | None:
        return self.cache_dir / f"{info['sha256']}-{key}.png" if self.cache_dir else None

    def cached(self, info: dict[str, Any]) -> bool:
        """Whether adapter ``info``'s preview is in the cache."""
        path = self._path(info, self._key(preview_pipeline(info["family"])))
        return path is not None and path.is_file()

    def png(self, registry: Any, info: dict[str, Any]) -> bytes:
        """The preview PNG of registered adapter ``info`` (rendered once, then from the cache)."""
        spec = preview_pipeline(info["family"])
        key = self._key(spec)
        path = self._path(info, key)
        if path is not None and path.is_file():
            return path.read_bytes()
        with self._lock:
            if path is not None and path.is_file():
                return path.read_bytes()
            data = self._render(registry, info, spec, key)
        self._keep(path, data)
        return data

    @staticmethod
    def _keep(path: Path | None, data: bytes) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def render_many(self, registry: Any, infos: list[dict[str, Any]], batch: int = BATCH,
                    progress: Callable[[int, int], None] | None = None) -> None:  # fmt: skip
        """Render the previews of ``infos`` (one family) that are not cached yet, ``batch`` adapters
        per pipeline call: the adapters installed side by side (``fusion.runtime``), each batch row
        routed to its own, every row with its column's seed, so a picture is the one ``png`` renders
        alone (to float rounding) at a fraction of the time of one call per adapter."""
        if not infos:
            return
        spec = preview_pipeline(infos[0]["family"])
        key = self._key(spec)
        todo = [i for i in infos if (p := self._path(i, key)) is None or not p.is_file()]
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # the adapters rendered with the same prompts
        for info in todo:
            groups.setdefault(tuple(_prompts(spec, info)), []).append(info)
        done = len(infos) - len(todo)
        if progress:
            progress(done, len(infos))
        for asked, mine in groups.items():
            for start in range(0, len(mine), batch):
                chunk = mine[start : start + batch]
                with self._lock:
                    pngs = self._render_chunk(registry, chunk, spec, key, list(asked))
                for info, data in zip(chunk, pngs, strict=True):
                    self._keep(self._path(info, key), data)
                done += len(chunk)
                if progress:
                    progress(done, len(infos))

    def _render_chunk(self, registry: Any, infos: list[dict[str, Any]], spec: PreviewPipeline, key: str,
                      prompts: list[str]) -> list[bytes]:  # fmt: skip
        from fusion.runtime import install

        pipe = self._pipe(spec, key)
        base = self._base_row(pipe, spec, key, prompts)
        n, k = len(prompts), len(infos)
        adapters = [registry.load(info["id"]) for info in infos]
        with install(pipe, adapters, [f"p{i}" for i in range(k)]) as handle:
            route = [a for a in range(k) for _ in range(n)]  # image a·n + i: adapter a, prompt i
            handle.set_row_adapters(route * 2 if spec.guidance > 1 else route)  # guidance: [unconditional; text]
            styled = self._run(pipe, spec, prompts, times=k)  # (k·n, 3, H, W)
            handle.set_row_adapters(None)
        return [grid_png(base, styled[a * n : (a + 1) * n], spec.cell) for a in range(k)]

    def _pipe(self, spec: PreviewPipeline, key: str) -> Any:
        have = self._pipes.get(spec.family)
        if have is None or have[0] != key:
            import torch

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            self._pipes[spec.family] = (key, _resolve(spec.loader)(spec.folder, device))
        return self._pipes[spec.family][1]

    def _run(self, pipe: Any, spec: PreviewPipeline, prompts: list[str], times: int = 1) -> Any:
        """``prompts`` run ``times`` over in one call, prompt i with seed ``spec.seed + i`` each time:
        (times·n, 3, H, W) in [0, 1]."""
        import torch

        gens = [torch.Generator().manual_seed(spec.seed + i) for _ in range(times) for i in range(len(prompts))]
        with torch.no_grad():
            out = pipe(prompts * times, num_inference_steps=spec.steps, guidance_scale=spec.guidance, generator=gens,
                       output_type="pt", **spec.extra)  # fmt: skip
        return out.images.float().clamp(0, 1).cpu()

    def _base_row(self, pipe: Any, spec: PreviewPipeline, key: str, prompts: list[str]) -> Any:
        """The bare base's row of a preview's ``prompts``, rendered once per pipeline key and prompts."""
        row_key = (key, tuple(prompts))
        if row_key not in self._base_rows:
            self._base_rows[row_key] = self._run(pipe, spec, prompts)
        return self._base_rows[row_key]

    def images(self, registry: Any, info: dict[str, Any], prompts: list[str] | None = None) -> tuple[Any, Any]:
        """``(base, with_adapter)``, each ``(n, 3, H, W)`` in [0, 1]: the preview's two rows (or the
        rows of ``prompts``, a user's own), uncached."""
        spec = preview_pipeline(info["family"])
        with self._lock:
            return self._images(registry, info, spec, self._key(spec), prompts)

    def try_png(self, registry: Any, info: dict[str, Any], prompts: list[str]) -> bytes:
        """A user's prompts through the base (top row) and with the adapter (bottom row), as one PNG."""
        spec = preview_pipeline(info["family"])
        return grid_png(*self.images(registry, info, prompts), spec.cell)

    def _render(self, registry: Any, info: dict[str, Any], spec: PreviewPipeline, key: str) -> bytes:
        return grid_png(*self._images(registry, info, spec, key), spec.cell)

    def _images(self, registry: Any, info: dict[str, Any], spec: PreviewPipeline, key: str,
                own: list[str] | None = None) -> tuple[Any, Any]:  # fmt: skip
        pipe = self._pipe(spec, key)
        prompts = list(own) if own else _prompts(spec, info)
        # a user's prompts: not kept (the cache holds the fixed preview rows only)
        base = self._run(pipe, spec, prompts) if own else self._base_row(pipe, spec, key, prompts)
        name = f"preview_{info['id']}"
        with tempfile.TemporaryDirectory(prefix="loradex-preview-") as d:
            files = registry.export(info["id"], "diffusers", d)
            weights = next(Path(f) for f in files if str(f).endswith(".safetensors"))
            from diffusers.utils import logging as diffusers_logging

            level = diffusers_logging.get_verbosity()
            diffusers_logging.set_verbosity_error()  # "no LoRA keys for the text encoder" is expected for UNet-only adapters
            try:
                pipe.load_lora_weights(str(weights.parent), weight_name=weights.name, adapter_name=name)
            finally:
                diffusers_logging.set_verbosity(level)
            try:
                pipe.set_adapters([name], adapter_weights=[1.0])
                styled = self._run(pipe, spec, prompts)
            finally:
                pipe.delete_adapters(name)
                pipe.unload_lora_weights()  # PEFT's wrappers out too: the plain modules fusion.runtime installs into
        return base, styled


def _prompts(spec: PreviewPipeline, info: dict[str, Any]) -> list[str]:
    """The content prompts of adapter ``info``'s preview: the spec's, or its ``prompt_fn``'s for it."""
    prompts = list(spec.prompts)
    if spec.prompt_fn:
        prompts = list(_resolve(spec.prompt_fn)(info, prompts)) or prompts
    return prompts


def grid_png(top: Any, bottom: Any, cell: int) -> bytes:
    """Two rows of images ``(n, 3, H, W)`` in [0, 1] as one PNG, each resized to ``cell`` px, ``GAP`` px apart."""
    import numpy as np
    from PIL import Image

    n, gap = top.shape[0], GAP
    canvas = Image.new("RGB", (n * cell + (n - 1) * gap, 2 * cell + gap), (255, 255, 255))
    for r, row in enumerate((top, bottom)):
        for i in range(n):
            arr = (row[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (H, W, 3)
            img = Image.fromarray(arr).resize((cell, cell), Image.Resampling.NEAREST)
            canvas.paste(img, (i * (cell + gap), r * (cell + gap)))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def grid_cells(png: bytes, cell: int) -> tuple[list[Any], list[Any]]:
    """The two rows of a ``grid_png`` picture as PIL images (base row, adapter row), ``cell`` px each."""
    from PIL import Image

    gap = GAP
    grid = Image.open(io.BytesIO(png)).convert("RGB")
    n = (grid.size[0] + gap) // (cell + gap)
    rows: tuple[list[Any], list[Any]] = ([], [])
    for r in range(2):
        for i in range(n):
            x, y = i * (cell + gap), r * (cell + gap)
            rows[r].append(grid.crop((x, y, x + cell, y + cell)))
    return rows


__all__ = [
    "PreviewPipeline",
    "PreviewUnavailableError",
    "Previewer",
    "grid_cells",
    "grid_png",
    "preview_families",
    "preview_pipeline",
    "register_preview_pipeline",
    "unregister_preview_pipeline",
]
