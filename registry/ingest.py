"""Ingestion steps that touch no database: find adapter candidates, parse and describe them.

``discover`` turns user paths into units (a file, or a PEFT folder); ``prepare`` reads one
unit into a ``Prepared`` (canonical adapter + sha256 + row fields) or raises
``AdapterFormatError``. ``Registry.ingest`` runs ``prepare`` in parallel and commits each
result in its own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import AdapterFormatError
from registry.formats import ADAPTER_SUFFIXES, PEFT_CONFIG, AdapterSource, resolve_source
from registry.storage import sha256_files

if TYPE_CHECKING:  # pragma: no cover
    from registry.formats.canonical import LoraAdapter

GENERIC_STEMS = {
    "adapter_model",
    "pytorch_lora_weights",
    "lora",
    "model",
    "adapter",
    "weights",
    "diffusion_pytorch_model",
}


@dataclass
class Unit:
    """One ingestion candidate, or a path refused before parsing (``problem`` set)."""

    path: Path
    problem: str | None = None


@dataclass
class IngestResult:
    path: str
    status: str  # ingested | duplicate | refused
    adapter_id: int | None = None
    name: str | None = None
    family: str | None = None
    format: str | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)  # ingested, but worth saying (e.g. an all-zero adapter)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "warnings": list(self.warnings)}


@dataclass
class IngestReport:
    results: list[IngestResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def refused(self) -> list[IngestResult]:
        return [r for r in self.results if r.status == "refused"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ingested": self.count("ingested"),
            "duplicate": self.count("duplicate"),
            "refused": self.count("refused"),
            "results": [r.to_dict() for r in self.results],
        }


@dataclass
class Prepared:
    source: AdapterSource
    adapter: LoraAdapter
    sha256: str
    name: str
    staged: Path | None = None  # the files already copied beside the blob store (``BlobStore.stage``)

    def discard_staged(self) -> None:
        """Remove the staged copy unless it was renamed into place as the blob."""
        if self.staged is not None and self.staged.exists():
            import shutil

            shutil.rmtree(self.staged, ignore_errors=True)
        self.staged = None

    @property
    def file_size(self) -> int:
        return sum(p.stat().st_size for p in self.source.files)

    def row_fields(self) -> dict[str, Any]:
        a = self.adapter
        modules = [
            {
                "name": m.name,
                "rank": m.rank,
                "kind": m.kind,
                "in": m.in_features,
                "out": m.out_features,
                "scale": round(float(m.scale), 6),
                **({"source_type": m.source_type} if m.source_type != "lora" else {}),
                **({"approx_error": round(m.approx_error, 6)} if m.approx_error is not None else {}),
                **({"dora": True} if m.magnitude is not None else {}),
            }
            for m in a.modules.values()
        ]
        return {
            "sha256": self.sha256,
            "name": self.name[:255],
            "family": a.family,
            "format": a.format,
            "ranks": a.ranks,
            "module_count": len(a.modules),
            "modules": modules,
            "param_count": a.param_count(),
            "file_size": self.file_size,
            "files": [p.name for p in self.source.files],
            "description": a.description,
            "trigger_words": list(a.trigger_words),
            "license": a.license,
            "source": self.source.display,
            "base_model": (a.base_model or None) and str(a.base_model)[:255],
            "meta": a.metadata,
            "warnings": list(a.warnings),
        }


def discover(paths: list[Path]) -> list[Unit]:
    """Files and folders (recursive) → units; PEFT folders are one unit each."""
    units: list[Unit] = []
    seen: set[Path] = set()

    def add(u: Unit) -> None:
        key = u.path.resolve()
        if key not in seen:
            seen.add(key)
            units.append(u)

    for raw in paths:
        p = Path(raw)
        if not p.exists():
            add(Unit(p, "no such file or folder"))
        elif p.is_file():
            if p.name.startswith("adapter_model.") and (p.parent / PEFT_CONFIG).is_file():
                add(Unit(p.parent))
            elif p.name == PEFT_CONFIG:
                add(Unit(p.parent))
            elif p.suffix.lower() in ADAPTER_SUFFIXES:
                add(Unit(p))
            else:
                add(
                    Unit(
                        p,
                        f"not an adapter file (extension {p.suffix or 'none'!r}; known: {', '.join(ADAPTER_SUFFIXES)})",
                    )
                )
        else:
            for d in _walk(p):
                add(d)
    return units


def nothing_found(paths: list[Path], limit: int = 8) -> str:
    """Why an ingest of ``paths`` found no adapter: the files that were there (names only), and what
    is looked for."""
    seen: list[str] = []
    for raw in paths:
        p = Path(raw)
        files = [p] if p.is_file() else sorted(c for c in p.rglob("*") if c.is_file()) if p.is_dir() else []
        seen += [f.name for f in files]
    there = (f"found only {', '.join(seen[:limit])}{' …' if len(seen) > limit else ''}" if seen
             else "found no files at all")  # fmt: skip
    return f"no adapter files: {there} (adapters end in {', '.join(ADAPTER_SUFFIXES)}; a PEFT folder has {PEFT_CONFIG})"


def _walk(root: Path) -> list[Unit]:
    if (root / PEFT_CONFIG).is_file():
        return [Unit(root)]
    out: list[Unit] = []
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or child.is_symlink():
            continue
        if child.is_dir():
            out.extend(_walk(child))
        elif child.suffix.lower() in ADAPTER_SUFFIXES:
            out.append(Unit(child))
    return out


# Header keys that name an adapter, first found wins; without one the file (or its folder) names it.
NAME_KEYS = ("modelspec.title", "title", "ss_output_name", "name")


def adapter_name(adapter: LoraAdapter, src: AdapterSource) -> str:
    meta = adapter.metadata
    for key in NAME_KEYS:
        v = meta.get(key)
        if isinstance(v, str) and v.strip() and v.strip().lower() not in {"none", "null"}:
            return v.strip()
    stem = src.weights.stem
    if src.config is not None or stem.lower() in GENERIC_STEMS:
        return src.weights.parent.name or stem
    return stem


ZERO_ADAPTER_WARNING = (
    "every module's weights are zero (ΔW = B·A = 0): this adapter changes nothing (an untrained PEFT adapter has B = 0)"
)


def _is_zero(t: Any) -> bool:
    return not bool(t.any())


def prepare(unit: Unit) -> Prepared:
    """Read, validate and describe one unit (no database, no blob writes)."""
    if unit.problem:
        raise AdapterFormatError(unit.path, unit.problem)
    from registry.formats import read_adapter
    from registry.formats.meta import extract_metadata

    src = resolve_source(unit.path)
    adapter = read_adapter(unit.path)
    extract_metadata(adapter, src.weights)
    if adapter.modules and all(_is_zero(m.up) or _is_zero(m.down) for m in adapter.modules.values()):
        adapter.warnings.append(ZERO_ADAPTER_WARNING)
    sha = sha256_files(src.files)
    return Prepared(src, adapter, sha, adapter_name(adapter, src))
