"""Files next to an adapter that describe it: ``description.txt``, a model card, Civitai JSON.

Each reader returns a ``CardInfo`` (what that one source says) and reports problems through
a ``warn`` callback; none raises for a missing, unreadable, oversized or malformed file.
Sidecars larger than ``MAX_SIDECAR_BYTES`` are read only up to that size.

* ``<stem>.description.txt`` or ``description.txt``: the description, verbatim.
* ``README.md`` (or ``<stem>.md``): a Hugging Face model card. YAML front matter gives
  ``license``, ``tags``, ``base_model``, ``instance_prompt`` (the trigger of diffusers
  DreamBooth cards); the body, minus the HF template's boilerplate (``[More Information
  Needed]``, HTML comments, code blocks, stock sentences), gives the description.
* ``<stem>.civitai.info`` (Civitai Helper) or ``<stem>.json`` (Civitai API or A1111 user
  metadata): ``description`` (HTML), ``trainedWords`` / ``activation text``, ``tags``,
  ``model.name``, ``baseModel`` / ``sd version``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_SIDECAR_BYTES = 1 << 20
Warn = Callable[[str], None]


@dataclass
class CardInfo:
    """What one metadata source says about an adapter (all optional)."""

    description: str | None = None
    trigger_words: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    license: str | None = None
    base_model: str | None = None
    title: str | None = None
    hints: dict[str, str] = field(default_factory=dict)  # metadata key → family hint value


def read_sidecar(path: Path, warn: Warn) -> str | None:
    """Text of a sidecar (first ``MAX_SIDECAR_BYTES``), or None if absent / unreadable."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SIDECAR_BYTES + 1)
    except OSError as e:
        warn(f"sidecar {path.name} could not be read ({e.strerror or e}); ignored")
        return None
    if len(data) > MAX_SIDECAR_BYTES:
        data = data[:MAX_SIDECAR_BYTES]
        warn(f"sidecar {path.name} is larger than {MAX_SIDECAR_BYTES} bytes; only its start was read")
    if b"\x00" in data:
        warn(f"sidecar {path.name} is binary, not text; ignored")
        return None
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    if "\ufffd" in text[:-3]:
        warn(f"sidecar {path.name} is not valid UTF-8; undecodable bytes replaced")
    return text


def split_words(value: Any) -> list[str]:
    """A string (comma-separated) or a list of strings / ``{"name": …}`` → stripped words."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("name")
        if isinstance(item, str):
            out += [w.strip() for w in item.split(",") if w.strip()]
    return out


def _first_str(value: Any) -> str | None:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), None)
    return value.strip() if isinstance(value, str) and value.strip() else None


# ---------------------------------------------------------------- description.txt
def description_txt(folder: Path, stem: str | None, warn: Warn) -> str | None:
    names = ([f"{stem}.description.txt"] if stem else []) + ["description.txt"]
    for name in names:
        text = read_sidecar(folder / name, warn)
        if text is not None and text.strip():
            return text.strip()
    return None


# ---------------------------------------------------------------- Civitai / A1111 JSON
def civitai(folder: Path, stem: str | None, warn: Warn) -> CardInfo:
    if not stem:
        return CardInfo()
    for name in (f"{stem}.civitai.info", f"{stem}.json"):
        text = read_sidecar(folder / name, warn)
        if text is None:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            warn(f"sidecar {name} is not valid JSON ({e.msg} at line {e.lineno}); ignored")
            continue
        if not isinstance(obj, dict):
            warn(f"sidecar {name} holds a JSON {type(obj).__name__}, not an object; ignored")
            continue
        return _civitai_fields(obj)
    return CardInfo()


def _civitai_fields(obj: dict[str, Any]) -> CardInfo:
    model = obj.get("model")
    if not isinstance(model, dict):
        model = {}
    desc = obj.get("description") or model.get("description")
    info = CardInfo(
        description=html_to_text(desc) if isinstance(desc, str) else None,
        trigger_words=split_words(obj.get("trainedWords") or []) + split_words(obj.get("activation text") or []),
        tags=split_words(obj.get("tags") or model.get("tags") or []),
        title=_first_str(model.get("name")),
    )
    for key in ("baseModel", "sd version"):
        value = _first_str(obj.get(key))
        if value:
            info.hints["civitai.baseModel" if key == "baseModel" else key] = value
    return info


def html_to_text(text: str) -> str:
    text = re.sub(r"(?i)<br\s*/?>|</p>|</li>|</h\d>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in text.splitlines())).strip()


# ---------------------------------------------------------------- model card (README.md)
_TEMPLATE_LINES = (
    "[more information needed]",
    "[todo",
    "more information needed for further recommendations",
    "use the code below to get started with the model",
    "carbon emissions can be estimated using",
    "this modelcard aims to be a base template",
    "this is the model card of a",
    "<!-- ",
)
_PLACEHOLDER_TITLES = ("model card for model id", "model card for")
_HEADING = "\x01"  # marks heading lines while the body is cleaned
_SKIP_SECTIONS = ("framework versions", "citation", "bibtex", "apa", "model card contact", "glossary")


def model_card(folder: Path, stem: str | None, warn: Warn) -> CardInfo:
    names = ["README.md"] + ([f"{stem}.md"] if stem else [])
    for name in names:
        text = read_sidecar(folder / name, warn)
        if text is not None:
            front, body = split_front_matter(text, name, warn)
            info = _front_fields(front)
            info.title, info.description = card_body(body)
            return info
    return CardInfo()


def split_front_matter(text: str, name: str, warn: Warn) -> tuple[dict[str, Any], str]:
    m = re.match(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", text, re.S)
    if not m:
        return {}, text
    try:
        import yaml

        data = yaml.safe_load(m.group(1))
    except Exception as e:  # yaml.YAMLError, or PyYAML missing
        warn(f"sidecar {name}: front matter is not valid YAML ({type(e).__name__}); ignored")
        data = None
    return (data if isinstance(data, dict) else {}), text[m.end() :]


def _front_fields(front: dict[str, Any]) -> CardInfo:
    info = CardInfo(
        license=_first_str(front.get("license")),
        base_model=_first_str(front.get("base_model")),
        tags=split_words(front.get("tags") or []),
        trigger_words=split_words(front.get("instance_prompt") or []),
    )
    if info.base_model:
        info.hints["card_base_model"] = info.base_model
    return info


def card_body(body: str) -> tuple[str | None, str | None]:
    """(title, description) of a markdown body without template boilerplate."""
    body = re.sub(r"<!--.*?-->", "", body, flags=re.S)
    body = re.sub(r"^\s*(```|~~~).*?(^\s*\1\s*$|\Z)", "", body, flags=re.S | re.M)
    title = None
    lines: list[str] = []
    skipping = False
    for raw in body.splitlines():
        line = raw.strip()
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if heading:
            text = _plain(heading.group(2))
            skipping = text.lower().startswith(_SKIP_SECTIONS)
            if heading.group(1) == "#" and title is None and not text.lower().startswith(_PLACEHOLDER_TITLES):
                title = text
            lines.append(_HEADING + text)
            continue
        low = line.lower()
        if (
            skipping
            or any(t in low for t in _TEMPLATE_LINES)
            or re.fullmatch(r"(<[^>]*>|!\[.*\]\(.*\)|-{3,}|\*{3,})", line)
        ):
            continue
        lines.append(_plain(line))
    return title, _join_kept(lines)


def _plain(line: str) -> str:
    line = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)  # [text](url) → text
    line = re.sub(r"(\*\*|__|`)", "", line)
    return line.strip()


def _join_kept(lines: list[str]) -> str | None:
    """Drop headings with nothing under them; None when no real text is left."""
    kept: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith(_HEADING):
            nxt = next((ln for ln in lines[i + 1 :] if ln), _HEADING)
            if not nxt.startswith(_HEADING):
                kept += ["", line[1:]]
            continue
        kept.append(line)
    if not any(ln and not ln.startswith(_HEADING) for ln in lines):
        return None
    text = "\n".join(kept).strip()
    return re.sub(r"\n{3,}", "\n\n", text) or None
