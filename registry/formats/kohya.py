"""kohya / A1111 / LyCORIS files: reader and writer "kohya".

Keys are ``<kohya module name>.<suffix>`` (``lora_unet_…``, ``lora_te_…``, ``lora_te1_…``,
``lycoris_…``; names → dotted in ``names.py``). Per module, one of:

* plain LoRA: ``lora_down.weight`` (r, in[, k, k]), ``lora_up.weight`` (out, r[, 1, 1]),
  ``alpha``; scale = alpha / r (alpha defaults to r). Read as written.
* LyCORIS LoCon with ``lora_mid`` (Tucker conv), LoHa (``hada_*``), LoKr (``lokr_*``), full
  ``diff``: ΔW is rebuilt (``lycoris_ops``) and stored as low-rank factors with scale 1,
  ``approx_error`` (relative Frobenius error; 0 when exact) and ``source_type``.

``adapter.format`` is ``lycoris`` when the file holds LyCORIS modules or says it was trained
with LyCORIS, else ``kohya``; ``adapter.metadata`` is the safetensors string metadata plus
``loradex.naming`` (``diffusers`` | ``sgm`` | ``bfl``: which module naming the UNet / DiT uses).

The writer emits ``adapter.safetensors`` with ``lora_down`` / ``lora_up`` / ``alpha`` (alpha =
scale · r) and ``ss_network_*`` / ``modelspec.architecture`` metadata. Language-model
(``model.``) adapters have no kohya convention and raise ``ExportError``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import AdapterFormatError, ExportError, UnsupportedAdapterError
from registry.formats import register_reader, register_writer
from registry.formats.canonical import DIFFUSION_COMPONENTS, LoraAdapter, LoraModule, lora_scale
from registry.formats.lora_common import alpha_for, build_module, canonical_path
from registry.formats.names import KOHYA_PREFIXES, dotted_to_kohya, kohya_to_dotted, unet_naming

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from registry.formats.safe_io import TensorFile

WEIGHT_NAME = "adapter.safetensors"
NAMING_KEY = "loradex.naming"
_LORA = {"lora_down.weight": "down", "lora_up.weight": "up", "lora_mid.weight": "mid",
         "lora_A.weight": "down", "lora_B.weight": "up"}  # fmt: skip
_TYPES = {
    "lora": frozenset(_LORA),
    "loha": frozenset({"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2"}),
    "lokr": frozenset({"lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t1", "lokr_t2"}),
    "full": frozenset({"diff", "diff_b"}),
}
_UNSUPPORTED = {"dora_scale": "LyCORIS DoRA", "a1.weight": "GLoRA", "a2.weight": "GLoRA", "b1.weight": "GLoRA",
                "b2.weight": "GLoRA", "weight": "(IA)³", "on_input": "(IA)³", "oft_blocks": "OFT", "oft_diag": "OFT",
                "rescale": "OFT", "oft_R": "BOFT"}  # fmt: skip
_KNOWN = frozenset().union(*_TYPES.values(), {"alpha"})
# family → (modelspec.architecture, ss_base_model_version)
ARCHITECTURES = {
    "sd1": ("stable-diffusion-v1/lora", "sd_v1"),
    "sd2": ("stable-diffusion-v2-512/lora", "sd_v2"),
    "sdxl": ("stable-diffusion-xl-v1-base/lora", "sdxl_base_v1-0"),
    "flux": ("flux-1-dev/lora", "flux1"),
}


def _is_module_key(key: str) -> bool:
    return key.startswith(KOHYA_PREFIXES) and "." in key


def claims(tf: TensorFile, config: dict[str, Any] | None) -> bool:
    return config is None and any(_is_module_key(k) for k in tf.tensors)


def read(tf: TensorFile, config: dict[str, Any] | None) -> LoraAdapter:
    groups: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)  # kohya name → suffix → tensor
    extras: dict[str, torch.Tensor] = {}
    for key, t in tf.tensors.items():
        if _is_module_key(key):
            flat, _, suffix = key.partition(".")
            groups[flat][suffix] = t
        else:
            extras[key] = t.float()
    warnings: list[str] = []
    others = sorted(k for k in extras if not k.startswith("bundle_emb."))  # bundle_emb: kohya TI embeddings
    if others:
        warnings.append(f"{len(others)} tensors that are not LoRA modules kept as extra tensors: {others[:3]}")
    modules: dict[str, LoraModule] = {}
    for flat, parts in groups.items():
        name = _dotted(tf.path, flat)
        if name in modules:
            raise AdapterFormatError(tf.path, f"two kohya modules map to the same module {name!r} (one is {flat!r})")
        modules[name] = read_module(tf.path, name, parts, warnings)
    _sd1_projections(modules)
    meta = dict(tf.metadata)
    lycoris = meta.get("ss_network_module", "").startswith("lycoris") or any(k.startswith("lycoris_") for k in groups)
    lycoris = lycoris or any(m.source_type != "lora" for m in modules.values())
    if naming := unet_naming(modules):
        meta[NAMING_KEY] = naming
    adapter = LoraAdapter(modules, format="lycoris" if lycoris else "kohya", metadata=meta, warnings=warnings)
    adapter.extra_tensors = extras
    _apply_card(adapter, tf.metadata)
    tokens = [k.split(".")[1] for k in extras if k.startswith("bundle_emb.") and k.count(".") >= 2]
    adapter.trigger_words += [t for t in dict.fromkeys(tokens) if t not in adapter.trigger_words]
    return adapter


def _sd1_projections(modules: dict[str, LoraModule]) -> None:
    """SD1.x UNets (cross-attention width 768) have 1×1-conv proj_in / proj_out; LyCORIS stores them flat."""
    if not any(n.endswith("attn2.to_k") and m.in_features == 768 for n, m in modules.items() if m.component == "unet"):
        return
    for m in modules.values():
        if m.component == "unet" and m.name.endswith((".proj_in", ".proj_out")) and m.kind == "linear":
            m.down, m.up, m.kind = (
                m.down[:, :, None, None],
                m.up[:, :, None, None],
                "conv",
            )  # (r, in, 1, 1), (out, r, 1, 1)


def _dotted(path: Path, flat: str) -> str:
    try:
        component, _, rest = kohya_to_dotted(flat).partition(".")
    except ValueError as e:
        raise AdapterFormatError(path, str(e)) from e
    return f"{component}.{canonical_path(component, rest)}"  # CLIP paths as text_model.…


def _apply_card(adapter: LoraAdapter, meta: dict[str, str]) -> None:
    """Model-card fields the kohya / modelspec metadata states."""
    adapter.base_model = meta.get("ss_sd_model_name") or meta.get("ss_base_model_version") or None
    adapter.description = meta.get("modelspec.description") or None
    adapter.license = meta.get("modelspec.license") or None
    adapter.trigger_words = [w.strip() for w in meta.get("modelspec.trigger_phrase", "").split(",") if w.strip()]
    adapter.tags = [w.strip() for w in meta.get("modelspec.tags", "").split(",") if w.strip()]


def read_module(path: Path, name: str, parts: dict[str, torch.Tensor], warnings: list[str]) -> LoraModule:
    """One module's tensors (suffix → tensor) → ``LoraModule``; unknown suffixes raise."""
    suffixes = set(parts) - {"alpha"}
    unknown = sorted(suffixes - _KNOWN)
    if unknown:
        kinds = sorted({_UNSUPPORTED[s] for s in unknown if s in _UNSUPPORTED})
        if kinds:
            raise UnsupportedAdapterError(
                path, f"module {name}: {', '.join(kinds)} modules are not supported ({unknown})"
            )
        raise AdapterFormatError(
            path, f"module {name}: unknown tensor suffix {unknown}; known: {', '.join(sorted(_KNOWN))}"
        )
    types = [t for t, keys in _TYPES.items() if suffixes & keys]
    if len(types) != 1:
        what = "only an alpha" if not types else f"tensors of several module types ({', '.join(types)})"
        raise AdapterFormatError(path, f"module {name}: has {what}")
    alpha = _alpha(parts)
    try:
        if types[0] == "lora":
            return _plain(path, name, {_LORA[s]: t for s, t in parts.items() if s in _LORA}, alpha)
        if types[0] == "loha":
            return _loha(path, name, parts, alpha)
        if types[0] == "lokr":
            return _lokr(path, name, parts, alpha)
        return _full(path, name, parts, warnings)
    except (RuntimeError, IndexError, ValueError) as e:  # factor shapes that do not multiply
        shapes = {s: tuple(t.shape) for s, t in parts.items()}
        raise AdapterFormatError(path, f"module {name}: {types[0]} factor shapes do not fit together {shapes}") from e


def _alpha(parts: dict[str, torch.Tensor]) -> float | None:
    """kohya / LyCORIS: a missing or zero alpha means alpha = r."""
    t = parts.get("alpha")
    if t is None or t.numel() != 1:
        return None
    a = float(t.reshape(-1)[0])
    return None if a == 0.0 else a


def _require(path: Path, name: str, parts: dict[str, Any], *groups: tuple[str, ...]) -> None:
    """Each group needs one alternative present (``a+b``: both); factor pairs must share a rank."""
    from registry.formats.lycoris_ops import rank_mismatch

    for group in groups:
        if not any(all(k in parts for k in alt.split("+")) for alt in group):
            raise AdapterFormatError(path, f"module {name}: missing {' or '.join(group)}")
    for kind in ("hada_w1", "hada_w2", "lokr_w1", "lokr_w2"):
        t = f"{kind.split('_')[0]}_t{kind[-1]}"  # Tucker core: hada_t1, lokr_t2 …
        if why := rank_mismatch(parts, f"{kind}_a", f"{kind}_b", t):
            raise AdapterFormatError(path, f"module {name}: {why}")


def _plain(path: Path, name: str, p: dict[str, torch.Tensor], alpha: float | None) -> LoraModule:
    if "down" not in p or "up" not in p:
        have, miss = ("lora_up", "lora_down") if "down" not in p else ("lora_down", "lora_up")
        raise AdapterFormatError(path, f"module {name}: has {have} but no {miss}")
    down, up, mid = p["down"], p["up"], p.get("mid")
    inner = down if mid is None else mid  # what lora_up multiplies
    if (
        min(down.dim(), up.dim()) < 2
        or up.shape[1] != inner.shape[0]
        or (mid is not None and mid.shape[1] != down.shape[0])
    ):
        via = "" if mid is None else f" (through lora_mid {tuple(mid.shape)})"
        raise AdapterFormatError(
            path, f"module {name}: lora_down {tuple(down.shape)} has rank {down.shape[0]} (rows) but lora_up "
            f"{tuple(up.shape)} has {up.shape[1] if up.dim() > 1 else '?'} columns{via}"
        )  # fmt: skip
    if mid is not None:  # LoCon Tucker: exact rank-r factors with the mid kernel folded into down
        from registry.formats.lycoris_ops import locon_mid_factors

        up4, down4 = locon_mid_factors(up, mid, down)
        r = int(down.shape[0])
        return LoraModule(name, down4, up4, lora_scale(alpha, r), alpha, "conv", approx_error=0.0, source_type="locon")
    if up.dim() == 4 and down.dim() == 2:  # 1×1 conv written with a flat down
        down = down[:, :, None, None]
    if down.dim() == 4 and up.dim() == 2:
        up = up[:, :, None, None]
    return build_module(path, name, {"down": down, "up": up}, alpha=alpha)


def _loha(path: Path, name: str, p: dict[str, torch.Tensor], alpha: float | None) -> LoraModule:
    from registry.formats.lycoris_ops import as_lora_module, loha_factors

    _require(path, name, p, ("hada_w1_a",), ("hada_w1_b",), ("hada_w2_a",), ("hada_w2_b",))
    if ("hada_t1" in p) != ("hada_t2" in p):
        raise AdapterFormatError(path, f"module {name}: LoHa Tucker needs both hada_t1 and hada_t2")
    factors, r = loha_factors(p)
    return as_lora_module(name, factors, lora_scale(alpha, r), p, "loha")


def _lokr(path: Path, name: str, p: dict[str, torch.Tensor], alpha: float | None) -> LoraModule:
    from registry.formats.lycoris_ops import lokr_lowrank, lokr_rank, lowrank_module

    _require(path, name, p, ("lokr_w1", "lokr_w1_a+lokr_w1_b"), ("lokr_w2", "lokr_w2_a+lokr_w2_b"))
    r = lokr_rank(p)
    scale = 1.0 if r is None else lora_scale(alpha, r)  # both halves full: LyCORIS uses scale 1
    return lowrank_module(name, lokr_lowrank(p, scale), p, "lokr")


def _full(path: Path, name: str, p: dict[str, torch.Tensor], warnings: list[str]) -> LoraModule:
    from registry.formats.lycoris_ops import as_lora_module, svd_dense

    _require(path, name, p, ("diff",))
    if "diff_b" in p:
        warnings.append(f"module {name}: bias difference (diff_b) dropped; LoRA modules carry no bias")
    return as_lora_module(name, svd_dense(p["diff"].double()), 1.0, p, "full")


def write(adapter: LoraAdapter, out_dir: Path) -> list[Path]:
    """``<out_dir>/adapter.safetensors`` in kohya naming, loadable by A1111 / ComfyUI / diffusers."""
    import torch

    from registry.formats.safe_io import save_safetensors as save_file

    foreign = sorted({m.component for m in adapter.modules.values()} - set(DIFFUSION_COMPONENTS))
    if foreign:
        raise ExportError(
            f"kohya has no naming convention for {', '.join(foreign)} modules (language / encoder models); "
            "export as peft instead"
        )
    dora = sorted(m.name for m in adapter.modules.values() if m.magnitude is not None)
    if dora:
        raise ExportError(f"kohya LoRA files cannot hold DoRA magnitudes ({dora[0]} …); export as diffusers or peft")
    two_te = "text_encoder_2" in adapter.components
    dtype = adapter.weight_dtype()  # the source's: an fp16 file stays fp16
    tensors: dict[str, torch.Tensor] = {}
    ranks: list[int] = []
    alphas: list[float] = []
    for m in sorted(adapter.modules.values(), key=lambda m: m.name):
        key = dotted_to_kohya(m.name, two_text_encoders=two_te)
        if f"{key}.alpha" in tensors:
            raise ExportError(f"two modules map to the kohya name {key!r}")
        up = m.up.to(dtype)
        if m.kind == "conv" and up.dim() == 2:
            up = up[:, :, None, None]  # (out, r, 1, 1)
        alpha = float(alpha_for(m, rslora=False))  # kohya scale is alpha / r
        tensors[f"{key}.lora_down.weight"] = m.down.to(dtype).contiguous()
        tensors[f"{key}.lora_up.weight"] = up.contiguous()
        tensors[f"{key}.alpha"] = torch.tensor(alpha, dtype=torch.float32)
        ranks.append(m.rank)
        alphas.append(alpha)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(out_dir) / WEIGHT_NAME
    save_file(tensors, str(path), metadata=_metadata(adapter, ranks, alphas))
    return [path]


def _metadata(adapter: LoraAdapter, ranks: list[int], alphas: list[float]) -> dict[str, str]:
    """The source's header and card (``header_metadata``), with the network fields rewritten for plain LoRA."""
    from registry.formats.meta import header_metadata

    meta = header_metadata(adapter, drop=("ss_network_", "ss_base_model_version", "modelspec.architecture", "sshs_"))
    meta["ss_network_module"] = "networks.lora"
    if ranks:
        meta["ss_network_dim"] = str(Counter(ranks).most_common(1)[0][0])
        alpha = Counter(alphas).most_common(1)[0][0]
        meta["ss_network_alpha"] = str(int(alpha)) if alpha.is_integer() else repr(alpha)
    if adapter.family in ARCHITECTURES:
        meta["modelspec.architecture"], meta["ss_base_model_version"] = ARCHITECTURES[adapter.family]
    return meta


register_reader("kohya", claims, read)
register_writer("kohya", write)
