"""PEFT LoRA adapters (``adapter_config.json`` + ``adapter_model.safetensors`` / ``.bin``).

Reader: claims a file that comes with a PEFT config, or whose keys start with
``base_model.model.``. Every nested ``base_model.model.`` prefix is stripped. Ranks come from
the tensor shapes (a config ``r`` that disagrees only adds a warning); alphas follow PEFT's
``alpha_pattern`` / ``lora_alpha`` and ``use_rslora`` (scale alpha/√r). DoRA magnitudes are
kept on the module, ``modules_to_save`` tensors in ``adapter.extra_tensors``, old fused-qkv
``enable_lora`` layers become exact block factors. Diffusion models (UNet, CLIP text encoder,
Flux / SD3 transformer) get their component prefix, everything else ``model.``.

Writer: a folder ``PeftModel.from_pretrained`` (or diffusers / ``inject_adapter_in_model`` for
``unet.`` adapters) loads, with exact target modules and rank / alpha patterns.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import registry.formats.lora_common as lora_common
from registry.errors import ExportError
from registry.formats import register_reader, register_writer
from registry.formats.canonical import LoraAdapter, LoraModule
from registry.formats.lora_common import (
    LORA_ROLES,
    build_module,
    canonical_path,
    lora_config_fields,
    path_spellings,
    pattern_value,
    split_lora_key,
)
from registry.formats.peft_config import CONFIG_NAME, auto_mapping_for, choose_component, fused_module, validate_config

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from registry.formats.safe_io import TensorFile

PEFT_PREFIX = "base_model.model."
WEIGHTS_NAME = "adapter_model.safetensors"
_SAVED_MODULE = re.compile(r"\.modules_to_save\.[^.]+\.")  # classifier.modules_to_save.default.weight


def claims(tf: TensorFile, config: dict[str, Any] | None) -> bool:
    return config is not None or any(k.startswith(PEFT_PREFIX) for k in tf.tensors)


def strip_prefix(key: str) -> str:
    while key.startswith(PEFT_PREFIX):
        key = key[len(PEFT_PREFIX) :]
    return key


def read(tf: TensorFile, config: dict[str, Any] | None) -> LoraAdapter:
    cfg_path = tf.path.parent / CONFIG_NAME
    warnings: list[str] = []
    if config is not None:
        validate_config(config, cfg_path)
    else:
        warnings.append(f"no {CONFIG_NAME}: lora_alpha unknown, scale 1.0 assumed")
    cfg = config or {}
    nested = [k for k in tf.tensors if k.startswith(PEFT_PREFIX + PEFT_PREFIX)]
    if nested:
        warnings.append(f"{len(nested)} key(s) carry nested '{PEFT_PREFIX}' prefixes; all stripped")

    groups: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    originals: dict[str, list[tuple[str, torch.Tensor]]] = defaultdict(list)
    loose: dict[str, torch.Tensor] = {}
    for key, tensor in tf.tensors.items():
        path = strip_prefix(key)
        parsed = split_lora_key(path)
        if parsed is None or parsed[2] is not None or parsed[1] == "bias":
            loose[_SAVED_MODULE.sub(".", path)] = tensor
            continue
        base, role, _ = parsed
        groups[base][role] = tensor
        originals[base].append((path, tensor))
    for base in [b for b, parts in groups.items() if not all(r in parts for r in LORA_ROLES)]:
        warnings.append(f"{base}: incomplete LoRA pair (has {', '.join(sorted(groups[base]))}); kept as extra tensors")
        loose.update(dict(originals[base]))
        del groups[base]

    component = choose_component(config, groups)
    rslora = bool(cfg.get("use_rslora", False))
    default_alpha = cfg.get("lora_alpha")
    if default_alpha is None and config is not None:
        default_alpha = 8  # PEFT's default
    enable_lora = cfg.get("enable_lora")
    modules: dict[str, LoraModule] = {}
    off_rank: list[str] = []
    for path, parts in sorted(groups.items()):
        cpath = canonical_path(component, path)
        name = f"{component}.{cpath}"
        spellings = path_spellings(component, cpath)
        alpha = pattern_value(cfg.get("alpha_pattern"), spellings, default_alpha)
        expected = pattern_value(cfg.get("rank_pattern"), spellings, cfg.get("r"))
        if (
            enable_lora
            and any(enable_lora)
            and (parts["up"].dim() == 3 or parts["down"].shape[0] != parts["up"].shape[1])
        ):
            module = fused_module(tf.path, name, parts["down"], parts["up"], enable_lora, alpha=alpha, rslora=rslora)
            rank = module.rank // sum(enable_lora)
        else:
            module = build_module(tf.path, name, parts, alpha=alpha, rslora=rslora)
            rank = module.rank
        if expected is not None and int(expected) != rank:
            off_rank.append(f"{path} ({rank})")
        modules[name] = module
    warnings += lora_common.off_rank_warnings(
        off_rank,
        "config says r={r} but {n} module(s) have other ranks in the weights, e.g. {first}; "
        "ranks (and alpha / r scales) taken from the weights",
        r=cfg.get("r"),
    )
    has_magnitude = any(m.magnitude is not None for m in modules.values())
    if has_magnitude != bool(cfg.get("use_dora", False)) and config is not None:
        warnings.append(f"use_dora={cfg.get('use_dora', False)} but DoRA magnitudes present: {has_magnitude}")
    if any("lora_" in k for k in loose):
        warnings.append("LoRA tensors of an unsupported kind (embedding LoRA, lora bias…) kept as extra tensors")
    metadata: dict[str, Any] = dict(tf.metadata)
    if config is not None:
        metadata.update({"peft_config": config, "task_type": config.get("task_type")})
    return LoraAdapter(
        modules=modules,
        format="peft",
        metadata=metadata,
        base_model=cfg.get("base_model_name_or_path") or None,
        fan_in_fan_out=bool(cfg.get("fan_in_fan_out", False)),
        use_rslora=rslora,
        extra_tensors={f"{component}.{k}": v for k, v in loose.items()},
        warnings=warnings,
    )


def _saved_modules(extra: list[str]) -> list[str]:
    """Module paths of ``modules_to_save`` tensors (``classifier.weight`` → ``classifier``)."""
    return sorted({k.rsplit(".", 1)[0] for k in extra if "." in k})


def write(adapter: LoraAdapter, out_dir: Path) -> list[Path]:
    """``adapter_config.json`` + ``adapter_model.safetensors`` with ``base_model.model.<path>`` keys."""
    from registry.formats.safe_io import save_safetensors as save_file

    components = adapter.components
    if len(components) != 1:
        raise ExportError(
            f"a PEFT folder holds one model, but this adapter touches {components or 'nothing'}; "
            "write diffusion adapters with the 'diffusers' writer"
        )
    component = components[0]
    mods = list(adapter.modules.values())
    dtype = adapter.weight_dtype()  # the source's: an fp16 file stays fp16
    tensors: dict[str, torch.Tensor] = {}
    for m in mods:
        tensors[f"{PEFT_PREFIX}{m.path}.lora_A.weight"] = m.down.detach().to(dtype).contiguous().clone()  # (r, in)
        tensors[f"{PEFT_PREFIX}{m.path}.lora_B.weight"] = m.up.detach().to(dtype).contiguous().clone()  # (out, r)
        if m.magnitude is not None:
            tensors[f"{PEFT_PREFIX}{m.path}.lora_magnitude_vector"] = (
                m.magnitude.detach().to(dtype).contiguous().clone()
            )
    extra = [k.split(".", 1)[1] for k in adapter.extra_tensors if k.startswith(component + ".") and "lora_" not in k]
    for path in extra:
        tensors[PEFT_PREFIX + path] = adapter.extra_tensors[f"{component}.{path}"].detach().contiguous().clone()
    config: dict[str, Any] = {
        **lora_config_fields(mods, rslora=adapter.use_rslora),
        "base_model_name_or_path": adapter.base_model,
        "task_type": adapter.metadata.get("task_type"),
        "fan_in_fan_out": bool(adapter.fan_in_fan_out),
        "modules_to_save": _saved_modules(extra) or None,
        "auto_mapping": auto_mapping_for(component, adapter.family),
        "inference_mode": True,
    }
    out = Path(out_dir)
    weights = out / WEIGHTS_NAME
    from registry.formats.meta import header_metadata

    save_file(tensors, str(weights), metadata={"format": "pt", **header_metadata(adapter)})
    cfg_file = out / CONFIG_NAME
    cfg_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return [weights, cfg_file]


register_reader("peft", claims, read)
register_writer("peft", write)
