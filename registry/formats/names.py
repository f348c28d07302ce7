"""kohya flat module names ↔ canonical dotted names.

kohya / A1111 / LyCORIS write a module as ``<prefix>_<module path with '.' → '_'>``, e.g.
``lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q``. Going back is
ambiguous because module names themselves contain underscores (``down_blocks``, ``to_q``,
``self_attn``). ``kohya_to_dotted`` splits on ``_`` and greedily re-joins the longest run of
tokens that forms a known identifier from ``COMPOUNDS``; every other token is its own path
segment. No per-file special cases: a new architecture only needs its underscored
identifiers added to the vocabulary.

Prefix → component: ``lora_unet_`` → ``unet`` (or ``transformer`` when the path starts with
a DiT root such as ``double_blocks``: kohya Flux), ``lora_te_`` / ``lora_te1_`` →
``text_encoder``, ``lora_te2_`` → ``text_encoder_2``, ``lora_te3_`` → ``text_encoder_3``,
``lora_transformer_`` → ``transformer``, ``lycoris_`` → by the path's root.
No torch here.
"""

from __future__ import annotations

from collections.abc import Iterable

# Identifiers that contain underscores, across diffusers UNets (SD1/2/XL), sgm / ldm UNets
# (SDXL kohya names), CLIP / T5 text encoders, BFL Flux, diffusers DiTs, and common LLM layers.
COMPOUNDS: frozenset[str] = frozenset(
    {
        # diffusers UNet
        "down_blocks", "up_blocks", "mid_block", "transformer_blocks", "proj_in", "proj_out",
        "to_q", "to_k", "to_v", "to_out", "time_emb_proj", "conv_shortcut", "conv_in", "conv_out",
        "conv_norm_out", "time_embedding", "linear_1", "linear_2", "add_embedding", "class_embedding",
        "encoder_hid_proj", "time_proj",
        # sgm / ldm UNet (SDXL kohya naming)
        "input_blocks", "output_blocks", "middle_block", "in_layers", "out_layers", "emb_layers",
        "skip_connection", "time_embed", "label_emb",
        # CLIP / OpenCLIP / T5 text encoders
        "text_model", "self_attn", "q_proj", "k_proj", "v_proj", "out_proj", "final_layer_norm",
        "layer_norm1", "layer_norm2", "token_embedding", "position_embedding", "text_projection",
        "wi_0", "wi_1", "relative_attention_bias", "embed_tokens",
        # BFL Flux (kohya Flux naming)
        "double_blocks", "single_blocks", "img_attn", "txt_attn", "img_mlp", "txt_mlp", "img_mod",
        "txt_mod", "img_in", "txt_in", "time_in", "vector_in", "guidance_in", "in_layer", "out_layer",
        "final_layer", "adaLN_modulation", "query_norm", "key_norm",
        # diffusers DiTs (Flux, SD3)
        "single_transformer_blocks", "joint_blocks", "x_embedder", "context_embedder", "time_text_embed",
        "timestep_embedder", "guidance_embedder", "text_embedder", "norm_out", "norm1_context", "ff_context",
        "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out", "norm_added_q", "norm_added_k", "norm_q",
        "norm_k", "proj_mlp", "pos_embed", "x_block", "context_block",
        # LLM-style layers (LyCORIS on arbitrary models)
        "gate_proj", "up_proj", "down_proj", "o_proj", "lm_head", "input_layernorm",
        "post_attention_layernorm", "c_attn", "c_proj", "c_fc",
    }
)  # fmt: skip
_MAX_COMPOUND = max(len(c.split("_")) for c in COMPOUNDS)

# First path segment → the model is a DiT ("transformer" component), not a UNet.
TRANSFORMER_ROOTS = frozenset(
    {"double_blocks", "single_blocks", "img_in", "txt_in", "time_in", "vector_in", "guidance_in", "final_layer",
     "transformer_blocks", "single_transformer_blocks", "joint_blocks", "x_embedder", "context_embedder",
     "time_text_embed", "pos_embed"}
)  # fmt: skip
BFL_ROOTS = frozenset({"double_blocks", "single_blocks", "img_in", "txt_in", "time_in", "vector_in", "guidance_in"})
SGM_ROOTS = frozenset({"input_blocks", "middle_block", "output_blocks"})
TEXT_ROOTS = frozenset({"text_model"})

# Longest prefixes first: "lora_te1_" must win over "lora_te_".
_PREFIXES: tuple[tuple[str, str | None], ...] = (
    ("lora_transformer_", "transformer"),
    ("lora_unet_", "unet"),
    ("lora_te1_", "text_encoder"),
    ("lora_te2_", "text_encoder_2"),
    ("lora_te3_", "text_encoder_3"),
    ("lora_te_", "text_encoder"),
    ("lycoris_", None),  # component decided by the path's root
)
KOHYA_PREFIXES = tuple(p for p, _ in _PREFIXES)


def split_identifiers(flat: str) -> list[str]:
    """``down_blocks_0_attentions_0_proj_in`` → ``[down_blocks, 0, attentions, 0, proj_in]``."""
    tokens = flat.split("_")
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for k in range(min(_MAX_COMPOUND, len(tokens) - i), 1, -1):
            cand = "_".join(tokens[i : i + k])
            if cand in COMPOUNDS:
                out.append(cand)
                i += k
                break
        else:
            out.append(tokens[i])
            i += 1
    return [t for t in out if t]


def _component_for(path_root: str, default: str) -> str:
    if path_root in TRANSFORMER_ROOTS:
        return "transformer"
    if path_root in TEXT_ROOTS:
        return "text_encoder"
    return default


def kohya_to_dotted(flat: str) -> str:
    """``lora_unet_down_blocks_0_…_attn1_to_q`` → ``unet.down_blocks.0.….attn1.to_q``.

    Raises ``ValueError`` for a name without a known kohya prefix.
    """
    for prefix, component in _PREFIXES:
        if flat.startswith(prefix) and len(flat) > len(prefix):
            parts = split_identifiers(flat[len(prefix) :])
            if component is None:  # lycoris_: decided by the path's root
                component = _component_for(parts[0], "unet")
            elif component == "unet" and parts[0] in TRANSFORMER_ROOTS:  # kohya Flux / SD3
                component = "transformer"
            return ".".join([component, *parts])
    raise ValueError(f"not a kohya module name: {flat!r} (known prefixes: {', '.join(KOHYA_PREFIXES)})")


def dotted_to_kohya(name: str, *, two_text_encoders: bool = False) -> str:
    """``unet.down_blocks.0.….to_q`` → ``lora_unet_down_blocks_0_…_to_q`` (inverse of ``kohya_to_dotted``).

    ``two_text_encoders``: SDXL-style files name the encoders ``lora_te1_`` / ``lora_te2_``
    instead of ``lora_te_``. ``transformer.`` paths use ``lora_unet_`` when they are BFL Flux
    names (what kohya writes) and ``lora_transformer_`` otherwise. Raises ``ValueError`` for
    components kohya has no convention for (``model.`` language models).
    """
    component, _, path = name.partition(".")
    if not path:
        raise ValueError(f"module name {name!r} has no component prefix")
    flat = path.replace(".", "_")
    if component == "unet":
        return f"lora_unet_{flat}"
    if component == "transformer":
        root = path.split(".", 1)[0]
        return f"lora_unet_{flat}" if root in BFL_ROOTS or root == "final_layer" else f"lora_transformer_{flat}"
    if component == "text_encoder":
        return f"lora_te1_{flat}" if two_text_encoders else f"lora_te_{flat}"
    if component in ("text_encoder_2", "text_encoder_3"):
        return f"lora_te{component[-1]}_{flat}"
    raise ValueError(
        f"kohya has no naming convention for component {component!r} of {name!r}; "
        "supported: unet, text_encoder, text_encoder_2, text_encoder_3, transformer"
    )


def unet_naming(names: Iterable[str]) -> str | None:
    """Naming scheme of dotted names: ``sgm`` (ldm/SDXL blocks), ``bfl`` (Flux), ``diffusers``, or None."""
    roots = {n.split(".")[1] for n in names if n.count(".") >= 1 and n.split(".", 1)[0] in ("unet", "transformer")}
    if roots & SGM_ROOTS:
        return "sgm"
    if roots & BFL_ROOTS:
        return "bfl"
    return "diffusers" if roots else None
