"""Defensive loading of tensor files: safetensors (header validated first) and torch pickles.

Every problem becomes an ``AdapterFormatError`` naming the file. Pickles are only ever
opened with ``torch.load(weights_only=True)``: a pickle that would run code is refused,
never executed.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import AdapterFormatError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def _env_bytes(name: str, default: int) -> int:
    v = os.environ.get(name)
    try:
        return int(v) if v else default
    except ValueError:
        return default


# Resource caps, checked before any work that their size would drive (each settable by env).
# safetensors itself allows a 100 MB header; no adapter needs more than a few MB (10k tensors'
# entries plus kohya's training metadata), and a 50 MB metadata string only costs time and memory.
MAX_HEADER_BYTES = _env_bytes("LORADEX_MAX_HEADER_BYTES", 16 * 1024 * 1024)
# Unpacked size of a torch zip (.bin / .pt): its entries may be deflated, and a 2 MB file can
# inflate to GBs in memory. The largest real adapters are a few GB.
MAX_UNPACKED_BYTES = _env_bytes("LORADEX_MAX_UNPACKED_BYTES", 4 * 1024**3)
MAX_COMPRESSION_RATIO = 50  # torch.save stores entries uncompressed; a deflated 50:1 entry is a bomb
MAX_TENSORS = _env_bytes("LORADEX_MAX_TENSORS", 100_000)
MAX_METADATA_VALUE_CHARS = 64 * 1024  # longer metadata strings are cut (tens of MB seen in the wild)
MAX_METADATA_TOTAL_CHARS = 8 * 1024 * 1024
# Keys whose values carry structure a reader needs (per-module alphas / ranks): a larger cap.
STRUCTURAL_METADATA_KEYS = frozenset({"lora_adapter_metadata", "ss_network_args"})
MAX_STRUCTURAL_VALUE_CHARS = 4 * 1024 * 1024
_DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8,
}  # fmt: skip


@dataclass
class TensorFile:
    """Tensors and string metadata read from one file."""

    path: Path
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, str]
    truncated_metadata: list[str]  # metadata keys whose values were cut to the cap


def read_safetensors_header(path: Path) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Parse and validate a safetensors header without trusting any of its numbers.

    Returns (tensor entries, metadata with long strings capped, names of capped keys).
    """
    try:
        size = path.stat().st_size
    except OSError as e:
        raise AdapterFormatError(path, f"cannot read file: {e.strerror}") from e
    if size == 0:
        raise AdapterFormatError(path, "empty file")
    if size < 8:
        raise AdapterFormatError(path, f"truncated safetensors file ({size} bytes, no header length)")
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        first = f.read(1)
        if first != b"{":  # every safetensors header is a JSON object right after its length
            kind = _sniff(struct.pack("<Q", n) + first)
            raise AdapterFormatError(
                path,
                f"not a safetensors file ({kind}; a safetensors file starts with a header length and a JSON header)",
            )
        f.seek(8)
        if n > MAX_HEADER_BYTES:
            raise AdapterFormatError(
                path,
                f"safetensors header of {n} bytes exceeds the cap of {MAX_HEADER_BYTES} bytes "
                "(LORADEX_MAX_HEADER_BYTES); no adapter needs a header this large",
            )
        if 8 + n > size:
            raise AdapterFormatError(
                path, f"safetensors header length {n} is larger than the file ({size} bytes): truncated or corrupt"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AdapterFormatError(path, f"safetensors header is not valid JSON ({e})") from e
    if not isinstance(header, dict):
        raise AdapterFormatError(path, "safetensors header is not a JSON object")
    if len(header) > MAX_TENSORS + 1:
        raise AdapterFormatError(
            path, f"{len(header) - 1} tensors exceed the cap of {MAX_TENSORS} (LORADEX_MAX_TENSORS)"
        )
    raw_meta = header.pop("__metadata__", None) or {}
    if not isinstance(raw_meta, dict):
        raise AdapterFormatError(path, "safetensors __metadata__ is not an object of strings")
    data_len = size - 8 - n
    for name, entry in header.items():
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
            raise AdapterFormatError(path, f"tensor {name!r}: malformed header entry")
        dtype, shape, offs = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _DTYPE_SIZES:
            raise AdapterFormatError(path, f"tensor {name!r}: unknown dtype {dtype!r}")
        if (
            not isinstance(shape, list)
            or not all(isinstance(d, int) and d >= 0 for d in shape)
            or not isinstance(offs, list)
            or len(offs) != 2
            or not all(isinstance(o, int) for o in offs)
        ):
            raise AdapterFormatError(path, f"tensor {name!r}: malformed shape or data_offsets")
        start, end = offs
        if not 0 <= start <= end <= data_len:
            raise AdapterFormatError(
                path, f"tensor {name!r}: data offsets [{start}, {end}] lie outside the file's {data_len} data bytes"
            )
        count = 1
        for d in shape:
            count *= d
        if count * _DTYPE_SIZES[dtype] != end - start:
            raise AdapterFormatError(
                path, f"tensor {name!r}: shape {shape} of {dtype} does not match its {end - start} data bytes"
            )
    meta, capped = _cap_metadata(path, raw_meta)
    return header, meta, capped


_MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"PK\x03\x04": "a zip archive",
          b"GIF8": "a GIF image", b"%PDF": "a PDF document", b"\x80\x02": "a pickle", b"\x1f\x8b": "a gzip file"}  # fmt: skip


def _sniff(head: bytes) -> str:
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return f"it looks like {kind}"
    return "its first bytes are not a safetensors header"


def _cap_metadata(path: Path, raw: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    meta: dict[str, str] = {}
    capped: list[str] = []
    total = 0
    for k, v in raw.items():
        s = v if isinstance(v, str) else json.dumps(v)
        cap = MAX_STRUCTURAL_VALUE_CHARS if k in STRUCTURAL_METADATA_KEYS else MAX_METADATA_VALUE_CHARS
        if len(s) > cap:
            s = s[:cap]
            capped.append(str(k))
        if total + len(s) > MAX_METADATA_TOTAL_CHARS:
            capped.append(str(k))
            continue
        total += len(s)
        meta[str(k)[:256]] = s
    return meta, capped


def load_safetensors(path: Path) -> TensorFile:
    """Validate the header, then load every tensor as float32 on CPU."""
    header, meta, capped = read_safetensors_header(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise AdapterFormatError(path, f"safetensors cannot load the tensors ({e})") from e
    missing = set(header) - set(tensors)
    if missing:
        raise AdapterFormatError(path, f"tensors listed but not loaded: {sorted(missing)[:3]}")
    return TensorFile(path, tensors, meta, capped)


def load_torch_pickle(path: Path) -> Any:
    """``torch.load(weights_only=True)``: plain tensors, dicts and lists only; code never runs."""
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        raise AdapterFormatError(path, "empty file")
    import pickle
    import zipfile

    import torch

    check_zip_size(path)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unpickling refused"
        raise AdapterFormatError(
            path, f"refused to unpickle: the file holds objects other than tensors ({first[:200]})"
        ) from e
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
        AttributeError,
        KeyError,
        TypeError,
        IndexError,
        OverflowError,
        struct.error,
    ) as e:
        # A legacy (non-zip) load of arbitrary bytes fails in many ways: a text file named .bin
        # reads its first bytes as a pickle opcode / magic number and raises KeyError or TypeError.
        detail = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise AdapterFormatError(path, f"not a readable torch file ({type(e).__name__}: {detail})") from e


def check_zip_size(path: Path) -> None:
    """Refuse a torch zip whose entries would inflate past ``MAX_UNPACKED_BYTES`` or that holds a
    deflated entry with a bomb-like ratio, before anything is decompressed. Legacy (non-zip)
    pickles are stored raw: their size is the file's."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise AdapterFormatError(path, f"not a readable torch file (broken zip: {e})") from e
    if len(infos) > MAX_TENSORS * 2 + 16:
        raise AdapterFormatError(path, f"torch zip holds {len(infos)} entries, over the cap (LORADEX_MAX_TENSORS)")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNPACKED_BYTES:
        raise AdapterFormatError(
            path,
            f"torch zip would unpack to {total} bytes, over the cap of {MAX_UNPACKED_BYTES} "
            "(LORADEX_MAX_UNPACKED_BYTES)",
        )
    for i in infos:
        if i.compress_type != zipfile.ZIP_STORED and i.file_size > (1 << 20):
            ratio = i.file_size / max(i.compress_size, 1)
            if ratio > MAX_COMPRESSION_RATIO:
                raise AdapterFormatError(
                    path,
                    f"torch zip entry {i.filename!r} inflates {ratio:.0f}:1 ({i.compress_size} → {i.file_size} bytes); "
                    f"refused as a decompression bomb (cap {MAX_COMPRESSION_RATIO}:1)",
                )


def check_finite(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse NaN / Inf anywhere in the weights, naming the first tensor (in file order) that has one.

    One check per dtype over all of its tensors at once: a LoKr or full-UNet LoRA has thousands of
    small tensors, and a call per tensor cost more than reading the file. Only when that finds a
    non-finite value are the tensors checked one by one, to name the culprit."""
    import torch

    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors.values():
        if t.is_floating_point() and t.numel():
            by_dtype.setdefault(t.dtype, []).append(t.reshape(-1))
    if all(bool(torch.isfinite(torch.cat(flat)).all()) for flat in by_dtype.values()):
        return
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise AdapterFormatError(path, f"tensor {name!r} contains NaN or Inf values")


_DTYPE_NAMES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64",
                "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}  # fmt: skip


def save_safetensors(
    tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> None:
    """A safetensors file whose bytes depend only on the tensors and metadata: tensors in name
    order, header keys sorted. (``safetensors.torch.save_file`` writes the metadata map in hash
    order, which changes between processes, so the same adapter would get another sha256.)"""
    import torch

    entries: dict[str, Any] = {}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        dtype = _DTYPE_NAMES.get(str(t.dtype).removeprefix("torch."))
        if dtype is None:
            raise ValueError(f"tensor {name!r}: dtype {t.dtype} cannot be written to safetensors here")
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""  # native order: little-endian
        entries[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header: dict[str, Any] = {"__metadata__": dict(sorted((metadata or {}).items()))} if metadata else {}
    header.update(entries)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format aligns the data on 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


_THREADS_GUARD = threading.Lock()
_THREADS_USERS = 0
_THREADS_BEFORE = 0


def one_torch_thread_here() -> None:
    """Put the calling thread's torch on one intra-op thread: the initializer of a pool whose
    threads each read / embed adapters (``Registry.ingest``). Those runs are many tiny tensor ops;
    two pool threads each forking onto both cores multiplied the ingest time by up to 30 on a
    busy 2-core machine. The threads' parallelism comes from the pool instead."""
    import torch

    torch.set_num_threads(1)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread while any caller is inside (reentrant across threads).

    Reading an adapter is hundreds of tiny SVD / QR / matmul calls; on two busy cores handing each
    to a second thread costs far more than the work (a rank-4 SVD: ~1 ms on one thread, tens of ms
    on two), which made a 350-module LoKr take most of a minute to read."""
    global _THREADS_USERS, _THREADS_BEFORE
    import torch

    with _THREADS_GUARD:
        if _THREADS_USERS == 0:
            _THREADS_BEFORE = torch.get_num_threads()
            torch.set_num_threads(1)
        _THREADS_USERS += 1
    try:
        yield
    finally:
        with _THREADS_GUARD:
            _THREADS_USERS -= 1
            if _THREADS_USERS == 0:
                torch.set_num_threads(_THREADS_BEFORE)
