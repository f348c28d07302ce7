"""Upload staging: bare file names, safe zips (no absolute paths, no '..', no symlinks, no
encrypted members; member-count and unpacked-size caps counted while writing)."""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ui.api.errors import ApiError


@dataclass
class UploadLimits:
    max_files: int = 256  # multipart file parts per request
    max_zip_members: int = 4096  # entries per zip
    max_unpacked_bytes: int = 8 << 30  # total unpacked size of the zips of one request

    def __post_init__(self) -> None:
        if min(self.max_files, self.max_zip_members, self.max_unpacked_bytes) < 1:
            raise ValueError(f"upload limits must be ≥ 1, got {self}")


_BAD_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')
_CHUNK = 1 << 20


def safe_filename(raw: str) -> str:
    """A bare file name from a client-supplied one: directories (``/`` or ``\\``), drive letters
    and control characters are dropped; empty, dot-only and hidden names are refused."""
    name = _BAD_NAME_CHARS.sub("_", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if not name or name.startswith(".") or len(name.encode()) > 255:
        raise ApiError(422, "refused", f"unusable file name {raw[:100]!r}")
    return name


def _zip_member_parts(info: zipfile.ZipInfo, archive: str) -> list[str]:
    """Path components of a zip member, or ApiError(refused) for anything that could escape."""
    name = info.filename
    where = f"{archive}: member {name[:200]!r}"
    if "\x00" in name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise ApiError(422, "refused", f"{where} has an absolute path")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ApiError(422, "refused", f"{where} climbs out of the archive ('..')")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ApiError(422, "refused", f"{where} is a symbolic link")
    if info.flag_bits & 0x1:
        raise ApiError(422, "refused", f"{where} is encrypted")
    return parts


def _extract_zip(fh: IO[bytes], archive: str, dest: Path, limits: UploadLimits, budget: list[int]) -> None:
    """Check every member first (nothing is written for a refused archive), then extract, counting
    the bytes actually written against ``budget`` (declared sizes can lie)."""
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ApiError(422, "refused", f"{archive}: not a readable zip archive ({e})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_zip_members:
            raise ApiError(
                413, "too_large", f"{archive}: {len(infos)} members, more than the cap of {limits.max_zip_members}"
            )
        declared = sum(i.file_size for i in infos)
        if declared > budget[0]:
            raise ApiError(
                413, "too_large", f"{archive}: unpacks to {declared} bytes, over the cap of {limits.max_unpacked_bytes}"
            )
        members = [(i, _zip_member_parts(i, archive)) for i in infos]
        root = dest.resolve()
        for info, parts in members:
            if info.is_dir() or not parts:
                continue
            target = dest.joinpath(*parts)
            if not target.resolve().is_relative_to(root):
                raise ApiError(422, "refused", f"{archive}: member {info.filename[:200]!r} leaves the upload folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, target.open("xb") as out:
                    while chunk := src.read(_CHUNK):
                        budget[0] -= len(chunk)
                        if budget[0] < 0:
                            raise ApiError(
                                413,
                                "too_large",
                                f"{archive}: unpacks to more than the cap of {limits.max_unpacked_bytes} bytes",
                            )
                        out.write(chunk)
            except FileExistsError:
                raise ApiError(422, "refused", f"{archive}: member {info.filename[:200]!r} is there twice") from None
            except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as e:
                raise ApiError(
                    422, "refused", f"{archive}: member {info.filename[:200]!r} cannot be read ({e})"
                ) from None


def stage_uploads(parts: Sequence[tuple[str, IO[bytes]]], root: Path, limits: UploadLimits, folder: str | None) -> None:
    """Write uploaded parts under ``root``: zips unpacked into it, other files by their bare
    name. Loose PEFT files (``adapter_config.json`` among them) go into ``folder`` (their
    folder names the adapter). On any refusal ``root`` is removed."""
    names = [safe_filename(n) for n, _ in parts]
    loose = [n for n in names if not n.lower().endswith(".zip")]
    if len(set(loose)) != len(loose):
        raise ApiError(422, "refused", "two uploaded files have the same name")
    sub = safe_filename(folder or "peft_adapter") if "adapter_config.json" in loose else None
    root.mkdir(parents=True, exist_ok=False)
    budget = [limits.max_unpacked_bytes]
    try:
        for name, (_, fh) in zip(names, parts, strict=True):
            fh.seek(0)
            if name.lower().endswith(".zip"):
                _extract_zip(fh, name, root, limits, budget)
                continue
            target = (root / sub / name) if sub else root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with target.open("xb") as out:
                    shutil.copyfileobj(fh, out, _CHUNK)
            except FileExistsError:
                raise ApiError(
                    422, "refused", f"{name}: a file of that name came in a zip of the same upload"
                ) from None
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
