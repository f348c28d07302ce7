"""Adapter file formats: readers and writers around one canonical ``LoraAdapter``.

Readers and writers are plain functions kept in dicts behind ``register_reader`` /
``register_writer`` (duplicates rejected, unknown names list the known ones). Each format
module ends with its register calls; ``_load_builtin()`` imports them on first use so that
``import registry.formats`` stays free of torch.

Entry points: ``read_adapter(path)`` (file or PEFT folder) and
``write_adapter(adapter, fmt, out_dir)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import AdapterFormatError, ExportError, UnsupportedAdapterError

if TYPE_CHECKING:  # pragma: no cover
    from registry.formats.canonical import LoraAdapter
    from registry.formats.safe_io import TensorFile

ADAPTER_SUFFIXES = (".safetensors", ".pt", ".bin", ".ckpt", ".pth")
PEFT_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class Reader:
    name: str
    claims: Callable[[TensorFile, dict[str, Any] | None], bool]  # (tensors, peft config) → mine?
    read: Callable[[TensorFile, dict[str, Any] | None], LoraAdapter]


Writer = Callable[["LoraAdapter", Path], list[Path]]  # (adapter, out_dir) → files written

_READERS: dict[str, Reader] = {}
# Claim order of the built-in readers (claims are disjoint; the order makes ties impossible anyway).
READER_ORDER = ("cloneofsimo", "diffusers", "kohya", "peft")
_WRITERS: dict[str, Writer] = {}
_loaded = False
_load_lock = threading.RLock()


def register_reader(
    name: str,
    claims: Callable[[TensorFile, dict[str, Any] | None], bool],
    read: Callable[[TensorFile, dict[str, Any] | None], LoraAdapter],
) -> None:
    if name in _READERS:
        raise ValueError(f"reader {name!r} is already registered")
    _READERS[name] = Reader(name, claims, read)


def register_writer(name: str, write: Writer) -> None:
    if name in _WRITERS:
        raise ValueError(f"writer {name!r} is already registered")
    _WRITERS[name] = write


def _load_builtin() -> None:
    """Import the built-in readers/writers once. Ingestion reads from several threads: the flag
    is set only after every module registered itself, under a lock, so no thread sees half a set."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        from registry.formats import cloneofsimo, diffusers, kohya, peft  # noqa: F401

        _loaded = True


def readers() -> list[str]:
    _load_builtin()
    return list(_READERS)


def writers() -> list[str]:
    _load_builtin()
    return list(_WRITERS)


def get_writer(name: str) -> Writer:
    _load_builtin()
    try:
        return _WRITERS[name]
    except KeyError:
        raise ExportError(f"unknown export format {name!r}; known: {', '.join(sorted(_WRITERS))}") from None


@dataclass
class AdapterSource:
    """What an adapter was read from: the weights file and, for PEFT, its config file."""

    weights: Path
    config: Path | None = None

    @property
    def files(self) -> list[Path]:
        return [self.weights] + ([self.config] if self.config else [])

    @property
    def display(self) -> str:
        return str(self.weights.parent if self.config else self.weights)


def resolve_source(path: Path) -> AdapterSource:
    """A file, or a PEFT folder (``adapter_config.json`` + ``adapter_model.*``)."""
    path = Path(path)
    if path.is_dir():
        cfg = path / PEFT_CONFIG
        if not cfg.is_file():
            raise AdapterFormatError(path, f"folder has no {PEFT_CONFIG}")
        for name in ("adapter_model.safetensors", "adapter_model.bin"):
            if (path / name).is_file():
                return AdapterSource(path / name, cfg)
        raise AdapterFormatError(path, "PEFT folder has no adapter_model.safetensors or adapter_model.bin")
    if not path.is_file():
        raise AdapterFormatError(path, "no such file")
    cfg = path.parent / PEFT_CONFIG
    if path.name.startswith("adapter_model.") and cfg.is_file():
        return AdapterSource(path, cfg)
    return AdapterSource(path)


def load_tensor_file(path: Path) -> TensorFile:
    """Safetensors or a torch pickle (``weights_only``), as a ``TensorFile``."""
    from registry.formats.safe_io import TensorFile, load_safetensors, load_torch_pickle

    if path.suffix == ".safetensors":
        return load_safetensors(path)
    if path.suffix not in ADAPTER_SUFFIXES:
        raise UnsupportedAdapterError(
            path, f"unknown adapter file extension {path.suffix!r}; known: {', '.join(ADAPTER_SUFFIXES)}"
        )
    obj = load_torch_pickle(path)
    import torch

    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if isinstance(obj, (list, tuple)):
        if not obj or not all(isinstance(t, torch.Tensor) for t in obj):
            raise AdapterFormatError(path, "list in torch file does not hold only tensors")
        # cloneofsimo .pt: a flat list [up0, down0, up1, down1, …]; keys carry the index.
        return TensorFile(path, {f"#{i}": t for i, t in enumerate(obj)}, {}, [])
    if not isinstance(obj, dict):
        raise AdapterFormatError(path, f"torch file holds a {type(obj).__name__}, not a dict of tensors")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise AdapterFormatError(path, "torch file holds no tensors")
    return TensorFile(path, tensors, {}, [])


def read_peft_config(path: Path) -> dict[str, Any]:
    import json

    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AdapterFormatError(path, f"PEFT config is not valid JSON ({e})") from e
    if not isinstance(cfg, dict):
        raise AdapterFormatError(path, "PEFT config is not a JSON object")
    return cfg


def read_adapter(path: str | Path) -> LoraAdapter:
    """Read any supported adapter file or PEFT folder into a ``LoraAdapter``.

    Raises ``AdapterFormatError`` (naming the file and the problem) for anything that is not
    a readable LoRA; never executes pickled code.
    """
    _load_builtin()
    from registry.formats.detect import detect_family
    from registry.formats.safe_io import check_finite, one_torch_thread

    src = resolve_source(Path(path))
    config = read_peft_config(src.config) if src.config else None
    tf = load_tensor_file(src.weights)
    if not tf.tensors:
        raise AdapterFormatError(src.weights, "file holds no tensors")
    check_finite(src.weights, tf.tensors)
    order = {name: i for i, name in enumerate(READER_ORDER)}
    for reader in sorted(_READERS.values(), key=lambda r: order.get(r.name, len(order))):
        if reader.claims(tf, config):
            with one_torch_thread():
                adapter = reader.read(tf, config)
            break
    else:
        sample = ", ".join(sorted(tf.tensors)[:3])
        raise UnsupportedAdapterError(
            src.weights,
            f"no LoRA keys recognised (unknown tensor naming, e.g. {sample}); readers: {', '.join(_READERS)}",
        )
    if not adapter.modules:
        raise AdapterFormatError(src.weights, "no LoRA modules found")
    if tf.truncated_metadata:
        adapter.warnings.append(f"metadata values capped: {', '.join(tf.truncated_metadata[:5])}")
    adapter.dtype = _weight_dtype(tf)
    detect_family(adapter)
    return adapter


def _weight_dtype(tf: TensorFile) -> str:
    """The dtype most of the file's matrices (≥ 2 dims) are stored in, by element count."""
    from collections import Counter

    count: Counter[str] = Counter()
    for t in tf.tensors.values():
        if t.dim() >= 2 and t.is_floating_point():
            count[str(t.dtype).removeprefix("torch.")] += t.numel()
    return count.most_common(1)[0][0] if count else "float32"


def write_adapter(adapter: LoraAdapter, fmt: str, out_dir: str | Path) -> list[Path]:
    """Write ``adapter`` as ``fmt`` (diffusers | peft | kohya) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return get_writer(fmt)(adapter, out)
