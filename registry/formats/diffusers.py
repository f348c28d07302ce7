"""diffusers LoRA files: reader and writer.

Reads every spelling diffusers itself has written or still loads:

* PEFT-style keys with a component prefix: ``unet.<path>.lora_A.weight`` / ``.lora_B.weight``,
  ``text_encoder.`` / ``text_encoder_2.`` / ``text_encoder_3.`` / ``transformer.`` (Flux, SD3),
  DoRA ``.lora_magnitude_vector``;
* legacy ``.lora.down.weight`` / ``.lora.up.weight`` and ``.lora_linear_layer.down/up``;
* attention-processor files (``…attn1.processor.to_q_lora.down.weight`` → ``unet.…attn1.to_q``,
  ``to_out_lora`` → ``to_out.0``; in a text encoder ``q_proj`` … ``out_proj``);
* unprefixed keys (old attn-procs files hold only the UNet), ``.alpha`` tensors, and the PEFT
  config diffusers stores in the safetensors metadata key ``lora_adapter_metadata``
  (``{"unet.r": 4, "unet.lora_alpha": 8, …}``): alpha, alpha_pattern, rank_pattern, use_rslora,
  use_dora are taken from it.

Scale: ``alpha / r`` from an ``.alpha`` tensor, else from the metadata config, else 1.0 (the
diffusers convention when nothing says otherwise).

The writer emits ``pytorch_lora_weights.safetensors`` that ``pipe.load_lora_weights(dir)``
loads, with the per-component config in ``lora_adapter_metadata`` so ranks and scales survive.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import ExportError
from registry.formats import register_reader, register_writer
from registry.formats.canonical import DIFFUSION_COMPONENTS, LoraAdapter, LoraModule
from registry.formats.lora_common import (
    LORA_ROLES,
    attn_proc_target,
    build_module,
    canonical_path,
    infer_component,
    lora_config_fields,
    off_rank_warnings,
    path_spellings,
    pattern_value,
    split_lora_key,
)
from registry.formats.safe_io import MAX_METADATA_VALUE_CHARS

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from registry.formats.safe_io import TensorFile

WEIGHT_NAME = "pytorch_lora_weights.safetensors"
METADATA_KEY = "lora_adapter_metadata"
FOREIGN_PREFIXES = ("lora_unet_", "lora_te", "lycoris_", "base_model.model.", "#")  # kohya / cloneofsimo / PEFT


def _locate(key: str) -> tuple[str, str, str] | None:
    """(component, path inside the component, role) of one tensor key, or None if not diffusers LoRA."""
    parsed = split_lora_key(key)
    if parsed is None:
        return None
    base, role, proj = parsed
    head, _, rest = base.partition(".")
    if head in DIFFUSION_COMPONENTS and rest:
        component, path = head, rest
    else:
        component, path = infer_component(base) or "", base
        if not component:
            return None
    if proj is not None:
        path = f"{path}.{attn_proc_target(proj, component)}"
    return component, canonical_path(component, path), role


def claims(tf: TensorFile, config: dict[str, Any] | None) -> bool:
    if config is not None:
        return False
    keys = list(tf.tensors)
    if any(k.startswith(FOREIGN_PREFIXES) or ":" in k for k in keys):
        return False
    located = [_locate(k) for k in keys]
    return any(loc is not None and loc[2] in LORA_ROLES for loc in located)


def _component_configs(tf: TensorFile, warnings: list[str]) -> dict[str, dict[str, Any]]:
    """Per-component PEFT config from ``lora_adapter_metadata`` ("" = keys without a prefix)."""
    raw = tf.metadata.get(METADATA_KEY)
    if not raw:
        return {}
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        warnings.append(f"{METADATA_KEY} is not valid JSON ({e}); ignored")
        return {}
    if not isinstance(meta, dict):
        warnings.append(f"{METADATA_KEY} is not a JSON object; ignored")
        return {}
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for key, value in meta.items():
        head, _, field = str(key).partition(".")
        if head in DIFFUSION_COMPONENTS and field:
            out[head][field] = value
        else:
            out[""][str(key)] = value
    return dict(out)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read(tf: TensorFile, config: dict[str, Any] | None) -> LoraAdapter:
    warnings: list[str] = []
    groups: dict[tuple[str, str], dict[str, torch.Tensor]] = defaultdict(dict)
    extra: dict[str, torch.Tensor] = {}
    for key, tensor in tf.tensors.items():
        loc = _locate(key)
        if loc is None:
            extra[key] = tensor
            continue
        component, path, role = loc
        if role == "bias":
            extra[key] = tensor
            warnings.append(f"{key}: LoRA bias kept as an extra tensor, not part of ΔW")
            continue
        groups[(component, path)][role] = tensor
    if extra:
        warnings.append(f"{len(extra)} tensor(s) that are not LoRA factors kept as extra tensors")

    configs = _component_configs(tf, warnings)
    modules: dict[str, LoraModule] = {}
    rank_mismatch: list[str] = []
    for (component, path), parts in sorted(groups.items()):
        name = f"{component}.{path}"
        if not all(role in parts for role in LORA_ROLES):
            present = ", ".join(sorted(parts))
            warnings.append(f"{name}: incomplete LoRA pair (has {present}); skipped")
            continue
        cfg = {**configs.get("", {}), **configs.get(component, {})}
        rslora = bool(cfg.get("use_rslora", False))
        spellings = path_spellings(component, path)
        if "alpha" in parts:
            alpha: float | None = float(parts["alpha"].float().reshape(-1)[0])
        else:
            alpha = _number(pattern_value(cfg.get("alpha_pattern"), spellings, cfg.get("lora_alpha")))
        module = build_module(tf.path, name, parts, alpha=alpha, rslora=rslora)
        expected = _number(pattern_value(cfg.get("rank_pattern"), spellings, cfg.get("r")))
        if expected is not None and int(expected) != module.rank:
            rank_mismatch.append(name)
        if module.magnitude is not None and cfg and not cfg.get("use_dora", False):
            warnings.append(f"{name}: DoRA magnitude present although the config says use_dora=false")
        modules[name] = module
    warnings += off_rank_warnings(
        rank_mismatch,
        "{n} module(s) have a rank other than the metadata config says (e.g. {first}); ranks taken from the weights",
    )
    return LoraAdapter(
        modules=modules,
        format="diffusers",
        metadata=dict(tf.metadata),
        use_rslora=any(bool(c.get("use_rslora", False)) for c in configs.values()),
        extra_tensors=extra,
        warnings=warnings,
    )


def write(adapter: LoraAdapter, out_dir: Path) -> list[Path]:
    """``pytorch_lora_weights.safetensors`` in the layout ``load_lora_weights`` reads."""
    from registry.formats.safe_io import save_safetensors as save_file

    by_component: dict[str, list[LoraModule]] = defaultdict(list)
    for module in adapter.modules.values():
        if module.component not in DIFFUSION_COMPONENTS:
            raise ExportError(
                f"module {module.name!r} belongs to {module.component!r}, not a diffusion component "
                f"({', '.join(DIFFUSION_COMPONENTS)}); write this adapter with the 'peft' writer"
            )
        by_component[module.component].append(module)
    if not by_component:
        raise ExportError("adapter has no modules to write")
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    dtype = adapter.weight_dtype()  # the source's: an fp16 file stays fp16
    for component, mods in sorted(by_component.items()):
        for m in mods:
            tensors[f"{m.name}.lora_A.weight"] = m.down.detach().to(dtype).contiguous().clone()  # (r, in)
            tensors[f"{m.name}.lora_B.weight"] = m.up.detach().to(dtype).contiguous().clone()  # (out, r)
            if m.magnitude is not None:
                tensors[f"{m.name}.lora_magnitude_vector"] = m.magnitude.detach().to(dtype).contiguous().clone()
        fields = lora_config_fields(mods, rslora=adapter.use_rslora)
        meta.update({f"{component}.{k}": v for k, v in fields.items()})
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    if len(text) > MAX_METADATA_VALUE_CHARS:
        # Huge adapters: name targets by their last segment (diffusers injects from the state dict
        # anyway); rank / alpha patterns stay exact.
        for key in [k for k in meta if k.endswith(".target_modules")]:
            meta[key] = sorted({_leaf(p) for p in meta[key]})
        text = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    out = Path(out_dir) / WEIGHT_NAME
    from registry.formats.meta import header_metadata

    save_file(tensors, str(out), metadata={"format": "pt", METADATA_KEY: text, **header_metadata(adapter)})
    return [out]


def _leaf(path: str) -> str:
    """``…attn1.to_q`` → ``to_q``; ``…attn1.to_out.0`` → ``to_out.0``."""
    parts = path.split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1]


register_reader("diffusers", claims, read)
register_writer("diffusers", write)
