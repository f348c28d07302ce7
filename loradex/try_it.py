"""Try an adapter on your own input: the family's registered base with and without it, side by side.

Language families (a base registered with kind ``text``): each input is continued greedily by the
bare base and with the adapter installed (``fusion.runtime``). Image families with a preview
pipeline: each prompt is rendered by the base (top row) and with the adapter (bottom row), seeded,
as one PNG. Other families say how to register a base.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loradex.errors import SearchError, UnknownBaseError

if TYPE_CHECKING:  # pragma: no cover
    from loradex.service import LocalService

MAX_INPUTS = 8
MAX_CHARS = 400


def try_adapter(svc: LocalService, ref: str | int, inputs: Sequence[str]) -> dict[str, Any]:
    """``{"adapter", "family", "kind": "text", "rows": [{"input", "base", "adapter"}]}`` or
    ``{…, "kind": "image", "png": bytes}``; ``SearchError`` for bad inputs (characters the base's
    tokenizer does not know included), ``UnknownBaseError`` when the family has nothing to run on."""
    from loradex.bases import base_families, runs_text

    inputs = [str(x).strip() for x in inputs if str(x).strip()]
    if not 1 <= len(inputs) <= MAX_INPUTS or any(len(x) > MAX_CHARS for x in inputs):
        raise SearchError(f"give 1 … {MAX_INPUTS} non-empty inputs of at most {MAX_CHARS} characters")
    info = svc.registry.get(ref)
    family = str(info["family"])
    head = {"adapter": {"id": info["id"], "name": info["name"]}, "family": family}
    if svc.has_preview(family):
        return {**head, "kind": "image", "png": svc.previews.try_png(svc.registry, info, inputs)}
    if runs_text(family):
        return {**head, "kind": "text", "rows": _run_text(svc, info, inputs)}
    raise UnknownBaseError(family, base_families(), f"nothing to run {family!r} adapters on: register its base "
                           "(loradex.bases.register_base, or a 'loradex.bases' entry point; see the README's "
                           "Plug-ins) to try them")  # fmt: skip


def _run_text(svc: LocalService, info: dict[str, Any], inputs: list[str]) -> list[dict[str, str]]:
    import torch

    from fusion.compose import greedy_generate
    from loradex.bases import check_inputs, load_base
    from loradex.verify import run_chunk

    model, tok = load_base(str(info["family"]))
    check_inputs(str(info["family"]), tok, inputs)
    with torch.no_grad():
        base = [greedy_generate(model, tok, [x], max_new_tokens=len(x) * 3 + 8)[0] for x in inputs]
    (styled,) = run_chunk(model, tok, [svc.registry.load(info["id"])], inputs)
    return [{"input": x, "base": b, "adapter": a} for x, b, a in zip(inputs, base, styled, strict=True)]
