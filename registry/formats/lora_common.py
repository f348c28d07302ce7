"""Pieces shared by the diffusers and PEFT readers / writers.

* ``split_lora_key``: the suffix spellings of one LoRA tensor (``lora_A`` / ``lora.down`` /
  ``lora_linear_layer.down`` / ``lora_magnitude_vector`` / ``alpha`` …) → (module, role).
* ``infer_component``: which diffusion component an unprefixed module path belongs to;
  ``canonical_path``: CLIP text-encoder paths always as ``text_model.…``.
* ``pattern_value``: PEFT's ``rank_pattern`` / ``alpha_pattern`` lookup, same semantics as
  ``peft.utils.other.get_pattern_key`` (first key ``k`` with ``re.match(rf"(.*\\.)?({k})$", name)``).
* ``build_module``: checked ``LoraModule`` from its tensors.
* ``lora_config_fields``: PEFT ``LoraConfig`` fields that reproduce every module's rank and
  scale exactly (writers).

No torch at import time.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import AdapterFormatError
from registry.formats.canonical import LoraModule, lora_scale

if TYPE_CHECKING:  # pragma: no cover
    import torch

# (suffix, role); the first match wins, so longer spellings come first.
_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".lora_linear_layer.down.weight", "down"),
    (".lora_linear_layer.up.weight", "up"),
    (".lora.down.weight", "down"),
    (".lora.up.weight", "up"),
    (".lora_down.weight", "down"),
    (".lora_up.weight", "up"),
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".lora_B.bias", "bias"),
    (".lora_magnitude_vector.weight", "magnitude"),
    (".lora_magnitude_vector", "magnitude"),
    (".alpha", "alpha"),
)
# PEFT state dicts taken with model.state_dict() keep the adapter name: lora_A.default.weight
_NAMED_ADAPTER = re.compile(r"^(?P<base>.+)\.lora_(?P<ab>[AB])\.(?P<adapter>[A-Za-z0-9_\-]+)\.weight$")
_NAMED_MAGNITUDE = re.compile(r"^(?P<base>.+)\.lora_magnitude_vector\.(?P<adapter>[A-Za-z0-9_\-]+)\.weight$")
# diffusers attention-processor files: <attn>.processor.to_q_lora.down.weight
_ATTN_PROC = re.compile(r"^(?P<base>.+?)(?:\.processor)?\.(?P<proj>[A-Za-z0-9_]+?)_lora\.(?P<role>down|up)\.weight$")
LORA_ROLES = ("down", "up")

# First path segment → diffusion component, for files whose keys carry no component prefix.
UNET_ROOTS = frozenset(
    {"down_blocks", "up_blocks", "mid_block", "conv_in", "conv_out", "conv_norm_out", "time_embedding",
     "add_embedding", "encoder_hid_proj", "class_embedding", "add_time_proj"}
)  # fmt: skip
TRANSFORMER_ROOTS = frozenset(
    {"transformer_blocks", "single_transformer_blocks", "x_embedder", "context_embedder", "time_text_embed",
     "norm_out", "proj_out", "pos_embed", "joint_blocks"}
)  # fmt: skip
TEXT_ROOTS = frozenset({"text_model"})


def split_lora_key(key: str) -> tuple[str, str, str | None] | None:
    """(module path as written, role, attn-procs projection or None); None if not a LoRA key.

    Roles: ``down`` (A), ``up`` (B), ``magnitude`` (DoRA), ``alpha``, ``bias`` (lora_B bias).
    For attention-processor keys the module path is the attention block and the projection
    (``to_q``, ``to_out`` …) is returned separately: mapping it needs the component.
    """
    for suffix, role in _SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)].replace(".processor.", "."), role, None
    m = _NAMED_ADAPTER.match(key)
    if m and m["adapter"] != "weight":
        return m["base"], "down" if m["ab"] == "A" else "up", None
    m = _NAMED_MAGNITUDE.match(key)
    if m:
        return m["base"], "magnitude", None
    m = _ATTN_PROC.match(key)
    if m:
        return m["base"], m["role"], m["proj"]
    return None


def attn_proc_target(proj: str, component: str) -> str:
    """Name of the projection an attn-procs ``<proj>_lora`` targets inside the attention block."""
    if component.startswith("text_encoder"):  # CLIP attention: q_proj / k_proj / v_proj / out_proj
        return {"to_q": "q_proj", "to_k": "k_proj", "to_v": "v_proj", "to_out": "out_proj"}.get(proj, proj)
    return "to_out.0" if proj == "to_out" else proj


def infer_component(path: str) -> str | None:
    """Diffusion component of an unprefixed module path, or None when it does not look diffusers."""
    root = path.split(".", 1)[0]
    if root in UNET_ROOTS:
        return "unet"
    if root in TRANSFORMER_ROOTS:
        return "transformer"
    if root in TEXT_ROOTS:
        return "text_encoder"
    return None


_CLIP_ROOTS = ("encoder.layers.", "embeddings.", "final_layer_norm")


def canonical_path(component: str, path: str) -> str:
    """CLIP text encoders as ``text_model.…`` whatever transformers version wrote the file.

    transformers 5 flattened ``CLIPTextModel`` (``encoder.layers.0…``); files in the wild and
    transformers 4 say ``text_model.encoder.layers.0…``. diffusers accepts both on load.
    """
    if component in ("text_encoder", "text_encoder_2") and path.startswith(_CLIP_ROOTS):
        return f"text_model.{path}"
    return path


def pattern_value(patterns: Mapping[str, Any] | None, name: str | Sequence[str], default: Any) -> Any:
    """PEFT ``rank_pattern`` / ``alpha_pattern`` semantics: first key matching the name's suffix.

    ``name`` may list spellings of one module (``text_model.encoder…`` and ``encoder…``).
    """
    names = (name,) if isinstance(name, str) else tuple(name)
    for key in patterns or {}:
        try:
            if any(re.match(rf"(.*\.)?({key})$", n) for n in names):
                return patterns[key]  # type: ignore[index]
        except re.error:
            continue
    return default


def path_spellings(component: str, path: str) -> tuple[str, ...]:
    """The names a config may use for a module: CLIP paths with and without ``text_model.``."""
    if component in ("text_encoder", "text_encoder_2") and path.startswith("text_model."):
        return (path, path[len("text_model.") :])
    return (path,)


def exact_pattern(path: str) -> str:
    """A pattern key that ``pattern_value`` (and PEFT) match against this module path only.

    Unanchored on the left (PEFT matches suffixes) so that ``encoder.layers.0…`` also matches a
    transformers-4 ``text_model.encoder.layers.0…``; no other module path ends that way.
    """
    return re.escape(path)


def config_path(module: LoraModule) -> str:
    """The module's path as a PEFT config names it (CLIP text encoders without ``text_model.``)."""
    path = module.path
    if module.component in ("text_encoder", "text_encoder_2") and path.startswith("text_model."):
        return path[len("text_model.") :]
    return path


def build_module(
    source: Path | str,
    name: str,
    parts: Mapping[str, torch.Tensor],
    *,
    alpha: float | None,
    rslora: bool = False,
) -> LoraModule:
    """A ``LoraModule`` from its ``down`` / ``up`` (/ ``magnitude``) tensors; shapes checked."""
    down = parts["down"].detach().float().cpu()
    up = parts["up"].detach().float().cpu()
    if down.dim() not in (2, 4) or up.dim() != down.dim():
        raise AdapterFormatError(
            source, f"module {name}: LoRA factors have shapes {tuple(down.shape)} and {tuple(up.shape)}; "
            "expected A (r, in) + B (out, r) or conv A (r, in, kh, kw) + B (out, r, 1, 1)"
        )  # fmt: skip
    if down.shape[0] != up.shape[1] or (up.dim() == 4 and tuple(up.shape[2:]) != (1, 1)):
        raise AdapterFormatError(
            source, f"module {name}: A has rank {down.shape[0]} but B {tuple(up.shape)} has rank {up.shape[1]}"
        )
    rank = int(down.shape[0])
    if rank == 0:
        raise AdapterFormatError(source, f"module {name}: rank 0")
    mag = parts.get("magnitude")
    return LoraModule(
        name=name,
        down=down.contiguous(),
        up=up.contiguous(),
        scale=lora_scale(alpha, rank, rslora=rslora),
        alpha=None if alpha is None else float(alpha),
        kind="conv" if down.dim() == 4 else "linear",
        magnitude=None if mag is None else mag.detach().float().cpu().contiguous(),
    )


def off_rank_warnings(off: Sequence[str], template: str, **fields: Any) -> list[str]:
    """The one warning about modules whose rank is not the one the config says: ``template`` with the
    fields ``n`` (how many), ``first`` (the first of ``off``) and ``fields``; none when ``off`` is empty."""
    return [template.format(n=len(off), first=off[0], **fields)] if off else []


def alpha_for(module: LoraModule, rslora: bool) -> float | int:
    """The alpha that gives ``module.scale`` at the module's rank (the source's alpha when it does)."""
    r = module.rank
    if module.alpha is not None and math.isclose(
        lora_scale(module.alpha, r, rslora=rslora), module.scale, rel_tol=1e-6
    ):
        a = module.alpha
    else:
        a = module.scale * (math.sqrt(r) if rslora else r)
    return int(round(a)) if math.isclose(a, round(a), rel_tol=0, abs_tol=1e-9) else a


def lora_config_fields(modules: Sequence[LoraModule], *, rslora: bool) -> dict[str, Any]:
    """``LoraConfig`` fields for these modules; paths are taken without their component prefix.

    The most common rank / alpha become ``r`` / ``lora_alpha``; every other module gets an exact
    ``rank_pattern`` / ``alpha_pattern`` entry, and ``target_modules`` lists full paths, so PEFT
    rebuilds precisely these layers with precisely these scales.
    """
    mods = sorted(modules, key=lambda m: m.name)
    ranks = {config_path(m): m.rank for m in mods}
    alphas = {config_path(m): alpha_for(m, rslora) for m in mods}
    r = Counter(ranks.values()).most_common(1)[0][0]
    lora_alpha = Counter(alphas.values()).most_common(1)[0][0]
    return {
        "peft_type": "LORA",
        "r": r,
        "lora_alpha": lora_alpha,
        "rank_pattern": {exact_pattern(p): v for p, v in ranks.items() if v != r},
        "alpha_pattern": {exact_pattern(p): v for p, v in alphas.items() if v != lora_alpha},
        "target_modules": sorted(ranks),
        "use_rslora": bool(rslora),
        "use_dora": any(m.magnitude is not None for m in mods),
        "lora_dropout": 0.0,
        "bias": "none",
        "init_lora_weights": True,
    }
