"""PEFT ``adapter_config.json`` handling: validation, component choice, old fused-qkv LoRA.

Kept apart from ``peft.py`` (the reader / writer) so both stay short. No torch at import.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import AdapterFormatError, UnsupportedAdapterError
from registry.formats.canonical import LoraModule, lora_scale
from registry.formats.lora_common import infer_component

if TYPE_CHECKING:  # pragma: no cover
    import torch

CONFIG_NAME = "adapter_config.json"
SUPPORTED_PEFT_TYPES = ("LORA",)
# auto_mapping.base_model_class → component, and back (for the writer).
CLASS_COMPONENTS = {
    "UNet2DConditionModel": "unet",
    "CLIPTextModel": "text_encoder",
    "CLIPTextModelWithProjection": "text_encoder_2",
}
COMPONENT_CLASSES = {
    "unet": ("UNet2DConditionModel", "diffusers.models.unets.unet_2d_condition"),
    "text_encoder": ("CLIPTextModel", "transformers.models.clip.modeling_clip"),
    "text_encoder_2": ("CLIPTextModelWithProjection", "transformers.models.clip.modeling_clip"),
}
TRANSFORMER_CLASSES = {  # family substring → diffusers transformer class
    "flux": ("FluxTransformer2DModel", "diffusers.models.transformers.transformer_flux"),
    "sd3": ("SD3Transformer2DModel", "diffusers.models.transformers.transformer_sd3"),
}
_DIFFUSION_ANCHORS = {  # a path heuristic needs one of these roots to call a model diffusers
    "unet": ("down_blocks", "up_blocks", "mid_block"),
    "transformer": ("transformer_blocks", "single_transformer_blocks", "joint_blocks"),
    "text_encoder": ("text_model",),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_config(config: dict[str, Any], path: Path) -> None:
    """Refuse configs that are not LoRA or whose numbers are not numbers; name the field."""
    peft_type = config.get("peft_type", "LORA")
    if not isinstance(peft_type, str) or peft_type.upper() not in SUPPORTED_PEFT_TYPES:
        raise UnsupportedAdapterError(
            path, f"peft_type {peft_type!r} is not supported; supported: {', '.join(SUPPORTED_PEFT_TYPES)}"
        )
    for field in ("r", "lora_alpha"):
        value = config.get(field)
        if value is not None and not _is_number(value):
            raise AdapterFormatError(path, f"config field {field!r} must be a number, got {value!r}")
    if _is_number(config.get("r")) and config["r"] <= 0:
        raise AdapterFormatError(path, f"config field 'r' must be positive, got {config['r']!r}")
    for field in ("rank_pattern", "alpha_pattern"):
        value = config.get(field)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(_is_number(v) for v in value.values()):
            raise AdapterFormatError(path, f"config field {field!r} must map module patterns to numbers, got {value!r}")
    enable = config.get("enable_lora")
    if enable is not None and (not isinstance(enable, list) or not all(isinstance(e, bool) for e in enable)):
        raise AdapterFormatError(path, f"config field 'enable_lora' must be a list of booleans, got {enable!r}")


def choose_component(config: dict[str, Any] | None, paths: Iterable[str]) -> str:
    """``unet`` / ``text_encoder`` / ``transformer`` for diffusion models, else ``model``."""
    mapping = (config or {}).get("auto_mapping") or {}
    if isinstance(mapping, dict):
        cls = str(mapping.get("base_model_class") or "")
        lib = str(mapping.get("parent_library") or "")
        if cls in CLASS_COMPONENTS:
            return CLASS_COMPONENTS[cls]
        if lib.startswith("diffusers.models.unets"):
            return "unet"
        if lib.startswith("diffusers.models.transformers"):
            return "transformer"
        if cls:
            return "model"
    paths = list(paths)
    guesses = {infer_component(p) for p in paths}
    if len(guesses) == 1 and None not in guesses:
        component = guesses.pop()
        assert component is not None
        if any(p.split(".", 1)[0] in _DIFFUSION_ANCHORS[component] for p in paths):
            return component
    return "model"


def auto_mapping_for(component: str, family: str) -> dict[str, str] | None:
    """The ``auto_mapping`` the writer stores so the component survives a round trip."""
    if component in COMPONENT_CLASSES:
        cls, lib = COMPONENT_CLASSES[component]
        return {"base_model_class": cls, "parent_library": lib}
    if component == "transformer":
        for key, (cls, lib) in TRANSFORMER_CLASSES.items():
            if key in family.lower():
                return {"base_model_class": cls, "parent_library": lib}
    return None


def fused_module(
    source: Path | str,
    name: str,
    a: torch.Tensor,
    b: torch.Tensor,
    enable_lora: Sequence[bool],
    *,
    alpha: float | None,
    rslora: bool,
) -> LoraModule:
    """Old PEFT / loralib ``MergedLinear`` (fused qkv, ``enable_lora``) as exact block factors.

    The file holds A (k·r, in) and B as a grouped Conv1d weight (out_k, k·r / groups, 1) (or
    loralib's (out_k, r)), with k = sum(enable_lora) and out_k = k · out / len(enable_lora).
    The layer adds ``zero_pad(conv1d(A x, B, groups)) · alpha / r``: only the enabled slices of
    the fused output. Stored here as down = A (k·r, in), up = (out, k·r): the grouped B laid out
    block-diagonally and its rows scattered into the enabled slices, zeros elsewhere.
    """
    import torch

    a = a.detach().float().cpu()  # (k*r, in)
    b = b.detach().float().cpu()
    b3 = b.unsqueeze(-1) if b.dim() == 2 else b  # (out_k, k*r / groups, 1)
    n, k = len(enable_lora), sum(bool(e) for e in enable_lora)
    if a.dim() != 2 or b3.dim() != 3 or b3.shape[2] != 1 or k == 0:
        raise AdapterFormatError(
            source,
            f"module {name}: fused LoRA with A {tuple(a.shape)}, B {tuple(b.shape)}, enable_lora {list(enable_lora)}",
        )
    kr, rg, out_k = a.shape[0], b3.shape[1], b3.shape[0]
    if kr % k or kr % rg or out_k % (kr // rg) or out_k % k:
        raise AdapterFormatError(
            source, f"module {name}: fused LoRA shapes A {tuple(a.shape)} / B {tuple(b.shape)} do not fit "
            f"enable_lora {list(enable_lora)}"
        )  # fmt: skip
    groups = kr // rg
    og = out_k // groups
    dense = torch.zeros(out_k, kr)  # conv1d(groups) as one matrix: (out_k, k*r)
    for g in range(groups):
        dense[g * og : (g + 1) * og, g * rg : (g + 1) * rg] = b3[g * og : (g + 1) * og, :, 0]
    s = out_k // k  # rows per slice of the fused output
    up = torch.zeros(n, s, kr)
    enabled = [i for i, e in enumerate(enable_lora) if e]
    up[enabled] = dense.view(k, s, kr)
    r = kr // k  # the config's per-slice rank: scale = alpha / r
    return LoraModule(
        name=name,
        down=a.contiguous(),
        up=up.reshape(n * s, kr).contiguous(),  # (out, k*r)
        scale=lora_scale(alpha, r, rslora=rslora),
        alpha=None if alpha is None else float(alpha),
        source_type="fused_qkv",
    )
