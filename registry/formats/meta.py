"""Description, trigger words, tags and license of an adapter, from every source it has.

``extract_metadata(adapter, source)`` merges what the file's own metadata says (kohya
``ss_*``, ``modelspec.*``, the PEFT config) with sidecar files next to ``source`` (for a
PEFT folder: in the folder; see ``registry.formats.sidecars``). Precedence:

* description: ``description.txt`` > Civitai / A1111 JSON > ``modelspec.description`` (or
  what the reader already set) > model-card body > kohya ``ss_training_comment`` > none;
* trigger words, in order, de-duplicated: what the reader found (``modelspec.trigger_phrase``,
  textual-inversion tokens), Civitai ``trainedWords``, the card's ``instance_prompt``, a
  "trigger word is …" training comment, kohya dataset folders (``16_smf girl`` → ``smf
  girl``), then the caption tags of ``ss_tag_frequency`` present in (nearly) every image;
* tags: reader / ``modelspec.tags``, Civitai, the card's ``tags`` (minus hub auto-tags), the
  PEFT ``task_type``; license: reader / ``modelspec.license``, then the card.

Caps: description ≤ ``MAX_DESCRIPTION`` chars, ≤ ``MAX_ITEMS`` trigger words / tags of
≤ ``MAX_ITEM_CHARS`` chars each; capping adds a warning. A base model named only by a
sidecar is recorded and the family detection re-run. Never raises for bad sidecars.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.formats.sidecars import CardInfo, civitai, description_txt, model_card, split_words

if TYPE_CHECKING:  # pragma: no cover
    from registry.formats.canonical import LoraAdapter

MAX_DESCRIPTION = 4000
MAX_ITEMS = 32
MAX_ITEM_CHARS = 100
TAG_FREQ_SHARE = 0.9  # a caption tag in ≥ 90 % of the images is a trigger word
MAX_TAG_TRIGGERS = 3
# Hub auto-tags and format names that say nothing about the adapter's content.
GENERIC_TAGS = frozenset({"lora", "peft", "transformers", "diffusers", "safetensors", "diffusers-training"})
TASK_TAGS = {
    "CAUSAL_LM": "causal-lm",
    "SEQ_CLS": "sequence-classification",
    "SEQ_2_SEQ_LM": "seq2seq-lm",
    "TOKEN_CLS": "token-classification",
    "QUESTION_ANS": "question-answering",
    "FEATURE_EXTRACTION": "feature-extraction",
}
_TRIGGER_COMMENT = re.compile(
    r"(?i)\b(?:trigger|activation)(?:[ _-]?(?:words?|phrase|tokens?))?\s*(?:is|are|:|=)\s*(.+)"
)


def extract_metadata(adapter: LoraAdapter, source: str | Path) -> None:
    """Fill ``description``, ``trigger_words``, ``tags``, ``license`` (see module docstring)."""
    source = Path(source)
    folder, stem = (source, None) if source.is_dir() else (source.parent, source.stem)
    warn = adapter.warnings.append
    meta = adapter.metadata
    txt = description_txt(folder, stem, warn)
    civ = civitai(folder, stem, warn)
    card = model_card(folder, stem, warn)
    kohya = kohya_info(meta)

    descriptions = [txt, civ.description, adapter.description, _str(meta.get("modelspec.description"))]
    descriptions += [card.description, kohya.description]
    adapter.description = next((d.strip() for d in descriptions if d and d.strip()), None)
    adapter.trigger_words = list(adapter.trigger_words) + split_words(meta.get("modelspec.trigger_phrase", ""))
    adapter.trigger_words += civ.trigger_words + card.trigger_words + kohya.trigger_words
    adapter.tags = adapter.tags + split_words(meta.get("modelspec.tags", "")) + civ.tags
    adapter.tags += [t for t in card.tags if ":" not in t and t.lower() not in GENERIC_TAGS] + peft_tags(meta)
    licenses = (adapter.license, _str(meta.get("modelspec.license")), card.license)
    adapter.license = next((v.strip() for v in licenses if v and v.strip()), None)
    _apply_caps(adapter)

    titles = (_str(meta.get("modelspec.title")), civ.title, card.title, kohya.title)
    if "title" not in meta and any(titles):
        meta["title"] = next(t for t in titles if t)[:MAX_ITEM_CHARS]
    _record_base_model(adapter, [civ, card])


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _record_base_model(adapter: LoraAdapter, infos: list[CardInfo]) -> None:
    """Keep sidecar base-model hints; re-run family detection when any arrived."""
    hints = {k: v for info in infos for k, v in info.hints.items()}
    new = {k: v for k, v in hints.items() if adapter.metadata.get(k) != v}
    if not adapter.base_model:
        adapter.base_model = next((i.base_model for i in infos if i.base_model), None) or hints.get("civitai.baseModel")
    if new:
        adapter.metadata.update(new)
        from registry.formats.detect import detect_family

        detect_family(adapter)


# ---------------------------------------------------------------- kohya ss_* metadata
def kohya_info(meta: dict[str, Any]) -> CardInfo:
    """Trigger words, title and a fallback description from kohya ``ss_*`` keys."""
    comment = _str(meta.get("ss_training_comment"))
    if comment and comment.strip().lower() in {"none", "null"}:
        comment = None
    triggers: list[str] = []
    if comment and (m := _TRIGGER_COMMENT.search(comment)):
        triggers += split_words(_unescape(m.group(1).strip().rstrip(".")))
    dirs = _json_obj(meta.get("ss_dataset_dirs"))
    freq = _json_obj(meta.get("ss_tag_frequency"))
    triggers += dataset_concepts(list(dirs) + list(freq))
    triggers += frequent_tags(freq, dirs)
    title = _str(meta.get("ss_output_name"))
    return CardInfo(description=comment, trigger_words=triggers, title=title)


def _json_obj(value: Any) -> dict[str, Any]:
    if not isinstance(value, str):
        return value if isinstance(value, dict) else {}
    try:
        obj = json.loads(value)
    except json.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}


def _unescape(tag: str) -> str:
    """A1111 prompt escapes: ``smart falcon \\(umamusume\\)`` → ``smart falcon (umamusume)``."""
    return re.sub(r"\\([()\[\]])", r"\1", tag).strip()


def dataset_concepts(dir_names: list[str]) -> list[str]:
    """kohya DreamBooth folders ``<repeats>_<concept>`` → concepts, first-seen order."""
    out = [m.group(1).strip() for d in dir_names if (m := re.fullmatch(r"\d+_(.+)", Path(str(d)).name))]
    return [c for c in dict.fromkeys(out) if c]


def frequent_tags(freq: dict[str, Any], dirs: dict[str, Any]) -> list[str]:
    """Caption tags present in ≥ ``TAG_FREQ_SHARE`` of the images, most frequent first."""
    counts: Counter[str] = Counter()
    for tags in freq.values():
        if isinstance(tags, dict):
            counts.update({str(t): int(n) for t, n in tags.items() if isinstance(n, int | float)})
    if not counts:
        return []
    images = sum(int(d.get("img_count", 0)) for d in dirs.values() if isinstance(d, dict))
    reference = images or counts.most_common(1)[0][1]
    common = [t for t, n in counts.most_common() if n >= TAG_FREQ_SHARE * reference]
    return [_unescape(t) for t in common[:MAX_TAG_TRIGGERS]]


def peft_tags(meta: dict[str, Any]) -> list[str]:
    cfg = meta.get("peft_config")
    task = cfg.get("task_type") if isinstance(cfg, dict) else None
    return [TASK_TAGS.get(task, task.lower().replace("_", "-"))] if isinstance(task, str) and task else []


# ---------------------------------------------------------------- caps
def _apply_caps(adapter: LoraAdapter) -> None:
    capped: list[str] = []
    if adapter.description and len(adapter.description) > MAX_DESCRIPTION:
        capped.append(f"description {len(adapter.description)} → {MAX_DESCRIPTION} chars")
        adapter.description = adapter.description[:MAX_DESCRIPTION].rstrip()
    adapter.trigger_words = _cap_items(adapter.trigger_words, "trigger words", capped)
    adapter.tags = _cap_items(adapter.tags, "tags", capped)
    if adapter.license and len(adapter.license) > MAX_ITEM_CHARS:
        capped.append(f"license {len(adapter.license)} → {MAX_ITEM_CHARS} chars")
        adapter.license = adapter.license[:MAX_ITEM_CHARS]
    if capped:
        adapter.warnings.append(f"metadata capped: {'; '.join(capped)}")


def _cap_items(items: list[str], what: str, capped: list[str]) -> list[str]:
    """Strip, drop empties and case-insensitive repeats, cut each item and the list."""
    seen: dict[str, str] = {}
    long = 0
    for item in items:
        item = " ".join(str(item).split())
        if len(item) > MAX_ITEM_CHARS:
            item, long = item[:MAX_ITEM_CHARS].rstrip(), long + 1
        if item and item.lower() not in seen:
            seen[item.lower()] = item
    out = list(seen.values())
    if long:
        capped.append(f"{long} of the {what} cut to {MAX_ITEM_CHARS} chars")
    if len(out) > MAX_ITEMS:
        capped.append(f"{what} {len(out)} → {MAX_ITEMS}")
    return out[:MAX_ITEMS]


CARRIED_PREFIX = "loradex."  # metadata loradex itself wrote (origin, generator, merge): kept by every writer


def carried_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    """The ``loradex.*`` string entries of an adapter's metadata, for a writer's file header."""
    return {k: v for k, v in metadata.items() if k.startswith(CARRIED_PREFIX) and isinstance(v, str)}


HEADER_PREFIXES = ("ss_", "modelspec.", CARRIED_PREFIX)  # the header entries every writer carries on
SOURCE_ONLY = ("ss_network_", "sshs_")  # describe the source file (its network type, its hashes), not the adapter


def header_metadata(adapter: LoraAdapter, drop: tuple[str, ...] = SOURCE_ONLY) -> dict[str, str]:
    """What a writer puts in its safetensors header so that nothing the source said is lost: the
    source's ``ss_*`` / ``modelspec.*`` / ``loradex.*`` strings (less the ``drop`` prefixes), and the
    model card (description, license, trigger words, tags) as ``modelspec.*`` where the source had
    no such entry. A PEFT or diffusers reader reads them back like kohya's."""
    meta = {k: v for k, v in adapter.metadata.items()
            if isinstance(k, str) and isinstance(v, str) and k.startswith(HEADER_PREFIXES) and not k.startswith(drop)}  # fmt: skip
    card = {"modelspec.description": adapter.description, "modelspec.license": adapter.license,
            "modelspec.trigger_phrase": ", ".join(adapter.trigger_words), "modelspec.tags": ", ".join(adapter.tags)}  # fmt: skip
    for k, v in card.items():
        if v and k not in meta:
            meta[k] = v
    return meta
