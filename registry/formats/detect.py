"""Which base model family an adapter was trained for, from its metadata and its shapes.

``detect_family(adapter)`` weighs two kinds of evidence:

* **metadata**: ``modelspec.architecture``, kohya ``ss_base_model_version`` / ``ss_v2``, the
  stated base model (PEFT ``base_model_name_or_path``, kohya ``ss_sd_model_name``, a model
  card's or Civitai sidecar's base model), PEFT ``auto_mapping`` class names;
* **shapes** (``registry.formats.shapes``): module paths and widths, which narrow the
  families the weights can fit at all, and often pin one down.

Metadata picks among the families the shapes allow; when it names a family the shapes rule
out, the shapes win and a warning quotes both. Shapes that cannot decide and no metadata give
``unknown`` (or, for layouts many model types share, the reference type plus a warning).
``adapter.metadata["family_evidence"]`` says what decided. Calling it again (after sidecar
metadata arrived) replaces its own earlier warnings. No torch import: only ``.shape`` is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registry.formats.families import FAMILIES, UNKNOWN, FamilyInfo, family_from_name
from registry.formats.shapes import ShapeVerdict, shape_verdict

if TYPE_CHECKING:  # pragma: no cover
    from registry.formats.canonical import LoraAdapter

__all__ = ["FAMILIES", "FamilyInfo", "detect_family", "metadata_hint", "shape_verdict"]

WARN_PREFIX = "family: "
EVIDENCE_KEY = "family_evidence"


def detect_family(adapter: LoraAdapter) -> None:
    """Set ``adapter.family`` and ``metadata["family_evidence"]``; warn on conflicts or guesses."""
    previous = str(adapter.metadata.get(EVIDENCE_KEY, "reader"))
    reader_family = adapter.family if adapter.family != UNKNOWN and previous.startswith("reader") else None
    adapter.warnings[:] = [w for w in adapter.warnings if not w.startswith(WARN_PREFIX)]
    hint = metadata_hint(adapter)
    verdict = shape_verdict(adapter.modules.values())
    family, evidence, warning = decide(hint, verdict, reader_family)
    adapter.family = family
    adapter.metadata[EVIDENCE_KEY] = evidence
    if warning:
        adapter.warnings.append(WARN_PREFIX + warning)


def metadata_hint(adapter: LoraAdapter) -> tuple[str, str, str] | None:
    """(family, source key, value) from the first metadata field that names a family.

    Order: what the file says about its architecture, then the base model it names, then
    what sidecar files say (``card_base_model``, ``civitai.baseModel``, A1111 ``sd version``),
    then the PEFT ``auto_mapping`` class name.
    """
    meta = adapter.metadata
    peft = meta.get("peft_config")
    if not isinstance(peft, dict):
        peft = {}
    mapping = peft.get("auto_mapping")
    sources: list[tuple[str, Any]] = [
        ("modelspec.architecture", meta.get("modelspec.architecture")),
        ("ss_base_model_version", meta.get("ss_base_model_version")),
        ("ss_v2", "sd_v2" if str(meta.get("ss_v2", "")).lower() == "true" else None),
        ("base_model", adapter.base_model),
        ("base_model_name_or_path", peft.get("base_model_name_or_path")),
        ("ss_sd_model_name", meta.get("ss_sd_model_name")),
        ("card_base_model", meta.get("card_base_model")),
        ("civitai.baseModel", meta.get("civitai.baseModel")),
        ("sd version", meta.get("sd version")),
        ("auto_mapping.base_model_class", mapping.get("base_model_class") if isinstance(mapping, dict) else None),
    ]
    for key, value in sources:
        family = family_from_name(value)
        if family:
            return family, key, str(value)
    return None


def decide(
    hint: tuple[str, str, str] | None, verdict: ShapeVerdict | None, reader_family: str | None = None
) -> tuple[str, str, str | None]:
    """(family, evidence, warning or None) from the metadata hint and the shape verdict."""
    said = f"{hint[1]}={hint[2]!r}" if hint else ""
    if verdict is None:  # the shapes say nothing (unfamiliar module names)
        if hint:
            return hint[0], f"metadata: {said}", None
        if reader_family:
            return reader_family, "reader: layout match", None
        return UNKNOWN, "none: no family in metadata, no familiar module layout", None
    options = ", ".join(verdict.candidates) or "none known"
    if hint and hint[0] in verdict.candidates:
        return hint[0], f"metadata: {said}; shapes agree ({verdict.why})", None
    shared = FAMILIES[hint[0]].layout if hint and hint[0] in FAMILIES else None
    if hint and shared is not None and (shared == verdict.best or shared in verdict.candidates):
        return hint[0], f"metadata: {said}; shapes have its {shared} layout ({verdict.why})", None
    if hint and verdict.best:
        warning = (
            f"metadata says {hint[0]} ({said}) but the weights are {verdict.best}-shaped ({verdict.why}); "
            f"using {verdict.best}"
        )
        return verdict.best, f"shapes: {verdict.why}; overrides {said}", warning
    if hint:
        warning = f"metadata says {hint[0]} ({said}) but the shapes rule it out ({verdict.why}; fits: {options})"
        return UNKNOWN, f"shapes: {verdict.why}; contradict {said}", warning
    if verdict.best:
        others = ", ".join(c for c in verdict.candidates if c != verdict.best)
        guessed = f"{verdict.best} guessed from the layout ({verdict.why}); no base model named, {others} share it"
        return verdict.best, f"shapes: {verdict.why}", guessed if verdict.guess else None
    if reader_family and reader_family in verdict.candidates:
        return reader_family, f"reader: layout match; shapes: {verdict.why}", None
    return UNKNOWN, f"shapes undecided: {verdict.why} (fits: {options})", None
