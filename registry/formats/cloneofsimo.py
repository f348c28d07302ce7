"""cloneofsimo ``lora_diffusion`` files: reader "cloneofsimo" (no writer).

Two layouts, neither with module names:

* safetensors (``save_safeloras``): ``unet:N:up`` / ``unet:N:down`` / ``text_encoder:N:…``,
  metadata ``unet:N:rank`` and ``unet`` = JSON list of the target classes; textual-inversion
  embeddings ``<s1>`` … (metadata value ``<embed>``) go to ``extra_tensors`` and
  ``trigger_words``.
* ``.pt`` (``save_lora_weight``): a flat list ``[up0, down0, up1, down1, …]`` (keys ``#0`` …).

The N-th pair belongs to the N-th ``nn.Linear`` that ``inject_trainable_lora`` replaced:
``_find_modules`` walks ``model.modules()`` for ancestors whose class is in the target set
(UNet: ``CrossAttention`` / ``Attention`` / ``GEGLU``; text encoder: ``CLIPAttention``) and
yields each ancestor's Linear layers in ``named_modules()`` order. Names are rebuilt by
walking an SD1.x / SD2.x ``UNet2DConditionModel`` layout (``UNET_LAYOUTS``) and matching the
shape sequence; ``UNet2DConditionModel`` registers ``down_blocks`` and ``up_blocks`` before
``mid_block``, so the mid block comes last. When nothing matches, modules are named
``<component>.lora_N`` and a warning says so. Scale is 1 (``LoraInjectedLinear.scale``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import AdapterFormatError
from registry.formats import register_reader
from registry.formats.canonical import LoraAdapter, LoraModule, ModuleKind

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from registry.formats.safe_io import TensorFile

EMBED_FLAG = "<embed>"  # metadata value cloneofsimo writes for a textual-inversion token
_KEY = re.compile(r"^(?P<comp>[A-Za-z_][A-Za-z0-9_]*):(?P<idx>\d+):(?P<dir>up|down)$")
_LIST_KEY = re.compile(r"^#(\d+)$")

Shape = tuple[int, int]  # (out_features, in_features)


@dataclass(frozen=True)
class UNetLayout:
    """What fixes the Linear shapes of an SD UNet's transformer blocks."""

    family: str  # family id given to a match
    channels: tuple[int, ...]  # block_out_channels
    down_attn: tuple[bool, ...]  # CrossAttnDownBlock2D (True) or DownBlock2D; up blocks mirror it
    layers_per_block: int
    cross_attention_dim: int
    ff_mult: int = 4  # GEGLU projects dim → 2 · ff_mult · dim


UNET_LAYOUTS = (
    UNetLayout("sd1", (320, 640, 1280, 1280), (True, True, True, False), 2, 768),
    UNetLayout("sd2", (320, 640, 1280, 1280), (True, True, True, False), 2, 1024),
)
# Linear layers of one BasicTransformerBlock in registration order: diffusers ≤ 0.12 (the
# cloneofsimo era) registered attn1, ff, attn2; later versions attn1, attn2, ff. "ff" (the
# GEGLU projection) is only there when GEGLU is a target class.
BLOCK_ORDERS = (("attn1", "ff", "attn2"), ("attn1", "attn2"), ("attn1", "attn2", "ff"))
CLIP_ATTENTION = ("k_proj", "v_proj", "q_proj", "out_proj")  # CLIPAttention.__init__ order


def transformer_blocks(layout: UNetLayout, *, mid_last: bool = True) -> list[tuple[str, int]]:
    """(path, channels) of every BasicTransformerBlock in ``UNet2DConditionModel.modules()`` order."""
    down: list[tuple[str, int]] = []
    up: list[tuple[str, int]] = []
    for i, (c, attn) in enumerate(zip(layout.channels, layout.down_attn, strict=True)):
        if attn:
            down += [
                (f"down_blocks.{i}.attentions.{j}.transformer_blocks.0", c) for j in range(layout.layers_per_block)
            ]
    rev = zip(reversed(layout.channels), reversed(layout.down_attn), strict=True)
    for i, (c, attn) in enumerate(rev):
        if attn:
            up += [
                (f"up_blocks.{i}.attentions.{j}.transformer_blocks.0", c) for j in range(layout.layers_per_block + 1)
            ]
    mid = [("mid_block.attentions.0.transformer_blocks.0", layout.channels[-1])]
    return down + up + mid if mid_last else down + mid + up


def unet_targets(layout: UNetLayout, order: tuple[str, ...], *, mid_last: bool = True) -> list[tuple[str, Shape]]:
    """(module path, (out, in)) of every Linear cloneofsimo injects into this UNet, in order."""
    out: list[tuple[str, Shape]] = []
    for path, c in transformer_blocks(layout, mid_last=mid_last):
        for part in order:
            if part == "ff":
                out.append((f"{path}.ff.net.0.proj", (2 * layout.ff_mult * c, c)))
                continue
            kv = layout.cross_attention_dim if part == "attn2" else c
            out += [(f"{path}.{part}.to_q", (c, c)), (f"{path}.{part}.to_k", (c, kv)),
                    (f"{path}.{part}.to_v", (c, kv)), (f"{path}.{part}.to_out.0", (c, c))]  # fmt: skip
    return out


def match_names(component: str, shapes: list[Shape]) -> tuple[list[str], str | None] | None:
    """Dotted module names (and family) whose injection order reproduces ``shapes``, or None."""
    if component == "unet":
        for layout in UNET_LAYOUTS:
            for order in BLOCK_ORDERS:
                for mid_last in (True, False):
                    targets = unet_targets(layout, order, mid_last=mid_last)
                    if [s for _, s in targets] == shapes:
                        return [f"unet.{p}" for p, _ in targets], layout.family
    if component == "text_encoder" and shapes and len(shapes) % len(CLIP_ATTENTION) == 0:
        d = shapes[0][0]
        if all(s == (d, d) for s in shapes):
            names = [
                f"text_encoder.text_model.encoder.layers.{i}.self_attn.{p}"
                for i in range(len(shapes) // len(CLIP_ATTENTION))
                for p in CLIP_ATTENTION
            ]
            return names, {768: "sd1", 1024: "sd2"}.get(d)
    return None


def claims(tf: TensorFile, config: dict[str, Any] | None) -> bool:
    if config is not None or not tf.tensors:
        return False
    if all(_LIST_KEY.match(k) for k in tf.tensors):
        return True
    return any(_KEY.match(k) for k in tf.tensors)


def read(tf: TensorFile, config: dict[str, Any] | None) -> LoraAdapter:
    adapter = LoraAdapter({}, format="cloneofsimo", metadata=dict(tf.metadata))
    if all(_LIST_KEY.match(k) for k in tf.tensors):
        pairs = _list_pairs(tf)
        shapes = [_pair_shape(tf.path, "list", i, up, down) for i, (up, down) in enumerate(pairs)]
        hint = "text_encoder" if "text_encoder" in tf.path.name else "unet"
        comp = next((c for c in (hint, "unet", "text_encoder") if match_names(c, shapes)), hint)
        groups = {comp: pairs}
    else:
        groups = _safetensors_pairs(tf, adapter)
    families = {comp: _add_modules(tf.path, adapter, comp, pairs) for comp, pairs in groups.items()}
    adapter.family = families.get("unet") or next((f for f in families.values() if f), None) or "unknown"
    return adapter


def _list_pairs(tf: TensorFile) -> list[tuple[torch.Tensor, torch.Tensor]]:
    items = sorted(tf.tensors.items(), key=lambda kv: int(kv[0][1:]))
    if [int(k[1:]) for k, _ in items] != list(range(len(items))) or len(items) % 2:
        raise AdapterFormatError(tf.path, f"cloneofsimo list holds {len(items)} tensors; expected (up, down) pairs")
    return [(items[i][1], items[i + 1][1]) for i in range(0, len(items), 2)]


def _safetensors_pairs(tf: TensorFile, adapter: LoraAdapter) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    found: dict[str, dict[int, dict[str, torch.Tensor]]] = defaultdict(lambda: defaultdict(dict))
    for key, t in tf.tensors.items():
        m = _KEY.match(key)
        if m:
            found[m["comp"]][int(m["idx"])][m["dir"]] = t
            continue
        adapter.extra_tensors[key] = t.float()
        if tf.metadata.get(key) == EMBED_FLAG or (key.startswith("<") and key.endswith(">")):
            adapter.trigger_words.append(key)
        else:
            adapter.warnings.append(f"tensor {key!r} is not a cloneofsimo LoRA pair; kept as an extra tensor")
    groups = {}
    for comp, by_idx in found.items():
        if sorted(by_idx) != list(range(len(by_idx))):
            raise AdapterFormatError(tf.path, f"cloneofsimo {comp}: pair indices are not 0..{len(by_idx) - 1}")
        for i, d in by_idx.items():
            if set(d) != {"up", "down"}:
                raise AdapterFormatError(tf.path, f"cloneofsimo {comp}:{i}: has {'/'.join(d)} but not both up and down")
            _check_rank_metadata(tf, adapter, comp, i, d["down"])
        groups[comp] = [(by_idx[i]["up"], by_idx[i]["down"]) for i in range(len(by_idx))]
    return groups


def _check_rank_metadata(tf: TensorFile, adapter: LoraAdapter, comp: str, i: int, down: torch.Tensor) -> None:
    stated = tf.metadata.get(f"{comp}:{i}:rank")
    try:
        ok = stated is None or int(json.loads(stated)) == int(down.shape[0])
    except (ValueError, TypeError):
        ok = False
    if not ok:
        adapter.warnings.append(f"cloneofsimo {comp}:{i}: metadata rank {stated!r} but down has {down.shape[0]} rows")


def _pair_shape(path: Path, comp: str, i: int, up: torch.Tensor, down: torch.Tensor) -> Shape:
    if up.dim() not in (2, 4) or down.dim() != up.dim() or up.shape[1] != down.shape[0]:
        raise AdapterFormatError(
            path, f"cloneofsimo {comp} pair {i}: up {tuple(up.shape)} and down {tuple(down.shape)} do not form "
            "a LoRA (up (out, r), down (r, in): up columns must equal down rows)"
        )  # fmt: skip
    return int(up.shape[0]), int(down.shape[1])


def _add_modules(
    path: Path, adapter: LoraAdapter, comp: str, pairs: list[tuple[torch.Tensor, torch.Tensor]]
) -> str | None:
    """Name the pairs of one component and add them; returns the family the match implies."""
    shapes = [_pair_shape(path, comp, i, up, down) for i, (up, down) in enumerate(pairs)]
    match = match_names(comp, shapes)
    if match is None:
        names, family = [f"{comp}.lora_{i}" for i in range(len(pairs))], None
        adapter.warnings.append(
            f"cloneofsimo {comp}: {len(pairs)} LoRA pairs do not follow the SD1/SD2 injection order; "
            f"modules are named {comp}.lora_N"
        )
    else:
        names, family = match
    for name, (up, down) in zip(names, pairs, strict=True):
        kind: ModuleKind = "conv" if down.dim() == 4 else "linear"
        adapter.modules[name] = LoraModule(name, down.float().contiguous(), up.float().contiguous(), 1.0, None, kind)
    return family


register_reader("cloneofsimo", claims, read)
