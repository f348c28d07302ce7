"""What the module paths and widths of an adapter say about its base model family.

``shape_verdict(modules)`` returns ``None`` when no rule recognises the layout, else a
``ShapeVerdict``: the families the weights can fit (``candidates``), the one the shapes pick
on their own (``best``, or None when they cannot), and a short reason.

Diffusion models: a DiT (``transformer.`` component) is Flux or SD3 by naming (BFL
``double_blocks`` / ``single_blocks``, sgm ``joint_blocks``) and hidden width (3072 Flux;
1536 / 2432 SD3). A UNet is narrowed by constraints, strongest first: the cross-attention
(``attn2.to_k`` / ``to_v``) input width (768 sd1, 1024 sd2, 2048 sdxl), transformer depth > 1
(SDXL), a second text encoder (SDXL / SD3), a 1×1-conv ``proj_in`` (SD1),
attention at 320 channels (not SDXL), the text-encoder width (768 / 1024 / 1280).
Language / encoder models: the first path rule that matches (``transformer.h.N.attn.c_attn``
→ gpt2, ``…self_attention.query_key_value`` → bloom / falcon, ``layers.N.self_attn.q_proj`` →
the Llama-style group, narrowed by hidden width …). No torch: only ``.shape`` is read.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from registry.formats.canonical import DIFFUSION_COMPONENTS, LoraModule
from registry.formats.families import FAMILIES


@dataclass(frozen=True)
class ShapeVerdict:
    candidates: tuple[str, ...]  # families the weights fit (empty: none we know)
    best: str | None  # the family the shapes pick alone, None when they cannot decide
    why: str  # short human-readable reason
    guess: bool = False  # best is the reference type of a layout several types share


def shape_verdict(modules: Iterable[LoraModule]) -> ShapeVerdict | None:
    mods = list(modules)
    diffusion = [m for m in mods if m.component in DIFFUSION_COMPONENTS]
    if diffusion:
        return _dit_verdict(diffusion) or _unet_verdict(diffusion)
    return _llm_verdict(mods)


def _verdict(
    cands: Iterable[str], why: str, best: str | None = None, guess: bool = False, *, sole_wins: bool = True
) -> ShapeVerdict:
    """``sole_wins``: a single candidate is also the best one."""
    c = tuple(dict.fromkeys(cands))
    if best is None and sole_wins and len(c) == 1:
        best = c[0]
    return ShapeVerdict(c, best, why, guess)


def _mode(values: Iterable[int]) -> int | None:
    counts = Counter(values)
    return counts.most_common(1)[0][0] if counts else None


# ---------------------------------------------------------------- diffusion: DiT (Flux / SD3)
BFL_ROOTS = ("double_blocks", "single_blocks")
SD3_ROOTS = ("joint_blocks",)
DIT_ROOTS = ("transformer_blocks", "single_transformer_blocks", *BFL_ROOTS, *SD3_ROOTS)
DIT_WIDTHS = {"flux": (3072,), "sd3": (1536, 2432)}


def _dit_verdict(mods: list[LoraModule]) -> ShapeVerdict | None:
    dit = [m for m in mods if m.component == "transformer" or m.path.split(".", 1)[0] in DIT_ROOTS]
    if not dit:
        return None
    roots = {m.path.split(".", 1)[0] for m in dit}
    if roots & set(BFL_ROOTS):
        return _verdict(["flux"], "BFL Flux double_blocks / single_blocks")
    if roots & set(SD3_ROOTS):
        return _verdict(["sd3"], "SD3 joint_blocks")
    allowed = ["flux"] if "single_transformer_blocks" in roots else ["flux", "sd3"]
    for fam in allowed:  # a family whose hidden width most modules touch
        hits = sum(1 for m in dit if {m.in_features, m.out_features} & set(DIT_WIDTHS[fam]))
        if hits * 2 >= len(dit):
            width = "/".join(map(str, DIT_WIDTHS[fam]))
            return _verdict([fam], f"DiT {'/'.join(sorted(roots))} with hidden width {width}")
    return _verdict(allowed, f"DiT {'/'.join(sorted(roots))} of no known width", sole_wins=False)


# ---------------------------------------------------------------- diffusion: UNet (SD1 / SD2 / SDXL)
SD_UNETS = ("sd1", "sd2", "sdxl")
SD_CHANNELS = {320, 640, 1280}
CROSS_ATTN_WIDTHS = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
TEXT_ENCODER_WIDTHS = {768: ("sd1", "sdxl", "sd3", "flux"), 1024: ("sd2",), 1280: ("sdxl", "sd3")}
_DEEP_BLOCK = re.compile(r"(^|\.)transformer_blocks\.([1-9]\d*)\.")
_CROSS = (".attn2.to_k", ".attn2.to_v")
Constraint = tuple[frozenset[str], str]


def _unet_verdict(mods: list[LoraModule]) -> ShapeVerdict | None:
    unet = [m for m in mods if m.component == "unet"]
    text = [m for m in mods if m.component == "text_encoder"]
    text2 = [m for m in mods if m.component == "text_encoder_2"]
    if unet and not any({m.in_features, m.out_features} & SD_CHANNELS for m in unet):
        width = _mode(m.out_features for m in unet)
        cross = _mode(m.in_features for m in unet if m.name.endswith(_CROSS))
        own = [f for f, info in FAMILIES.items() if info.layout in SD_UNETS and cross in info.widths]
        if own:  # a small base with SD's key layout (the image zoo): its cross-attention width decides
            return _verdict(own, f"UNet cross-attention width {cross} of {'/'.join(own)} (SD key layout)")
        return _verdict([], f"UNet channels ({width}) of no Stable Diffusion model")
    if not (unet or text or text2):
        return None
    cands = set(SD_UNETS) if unet else {"sd1", "sd2", "sdxl", "sd3", "flux"}
    reasons, conflicts = [], []
    for allowed, reason in _unet_constraints(unet, text, text2):
        if cands & allowed:
            if not cands <= allowed:
                reasons.append(reason)
            cands &= allowed
        else:
            conflicts.append(reason)
    why = "; ".join(reasons) or ("UNet with SD channel widths" if unet else "text encoder only")
    if conflicts:
        why += f" (ignored, contradicts: {'; '.join(conflicts)})"
    order = ("sd1", "sd2", "sdxl", "sd3", "flux")
    return _verdict(sorted(cands, key=order.index), why)


def _unet_constraints(unet: list[LoraModule], text: list[LoraModule], text2: list[LoraModule]) -> list[Constraint]:
    out: list[Constraint] = []
    cross = _mode(m.in_features for m in unet if m.name.endswith(_CROSS))
    if cross is not None:
        fam = CROSS_ATTN_WIDTHS.get(cross)
        out.append((frozenset([fam] if fam else []), f"UNet cross-attention width {cross}"))
    if any(_DEEP_BLOCK.search(m.path) for m in unet):
        out.append((frozenset({"sdxl"}), "UNet transformer depth > 1"))
    if text2:
        out.append((frozenset({"sdxl", "sd3"}), "second text encoder"))
    # SD1 has 1×1-conv proj_in / proj_out; linear ones prove nothing (LyCORIS stores SD1's flat).
    if any(m.kind == "conv" and m.name.endswith((".proj_in", ".proj_out")) for m in unet):
        out.append((frozenset({"sd1"}), "conv proj_in/proj_out"))
    attn = [m for m in unet if ".attn1." in m.name or ".attn2." in m.name]
    if any(m.out_features == 320 for m in attn):
        out.append((frozenset({"sd1", "sd2"}), "attention at 320 channels"))
    te = _mode(m.in_features for m in text)
    if te is not None:
        out.append((frozenset(TEXT_ENCODER_WIDTHS.get(te, ())), f"text encoder width {te}"))
    return out


# ---------------------------------------------------------------- language / encoder models
Chooser = Callable[[list[LoraModule]], tuple[str | None, bool, str]]  # → (best, guess, detail)


def _fixed(family: str | None, guess: bool = False) -> Chooser:
    return lambda mods: (family, guess, "")


def _fused_qkv(if_3x: str, otherwise: str, suffix: str) -> Chooser:
    """Fused qkv with out = 3·in (full multi-head) is ``if_3x``; MQA / GQA widths are ``otherwise``."""

    def choose(mods: list[LoraModule]) -> tuple[str | None, bool, str]:
        qkv = [m for m in mods if m.name.endswith(suffix)]
        if not qkv:
            return if_3x, True, ""
        m = qkv[0]
        full = m.out_features == 3 * m.in_features
        return (if_3x if full else otherwise), False, f"{suffix.lstrip('.')} {m.in_features}→{m.out_features}"

    return choose


LLAMA_WIDTHS = {896: "qwen2", 1536: "qwen2", 3584: "qwen2"}  # hidden widths only Qwen2 uses


def _llama_like(mods: list[LoraModule]) -> tuple[str | None, bool, str]:
    hidden = _mode(m.in_features for m in mods if m.name.endswith(("q_proj", "k_proj", "v_proj", "gate_proj")))
    hidden = hidden or _mode(m.in_features for m in mods)
    if hidden in LLAMA_WIDTHS:
        return LLAMA_WIDTHS[hidden], False, f"hidden {hidden}"
    return "llama", True, f"hidden {hidden}"


def _encoder_root(mods: list[LoraModule]) -> tuple[str | None, bool, str]:
    roots = {"bert": "bert", "roberta": "roberta", "electra": "electra", "camembert": "roberta"}
    for m in mods:
        head = m.path.split(".encoder.layer.", 1)[0].rsplit(".", 1)[-1]
        if head in roots and ".encoder.layer." in m.path:
            return roots[head], False, f"{head}.encoder"
    return "bert", True, ""


# (path pattern, description, candidates, chooser); the first rule matching any module applies.
LLM_RULES: tuple[tuple[str, str, tuple[str, ...], Chooser], ...] = (
    (r"(^|\.)(text|vision)_model\.encoder\.layers\.\d+\.", "CLIP encoder layers", ("clip",), _fixed("clip")),
    (r"(^|\.)encoder\.layer\.\d+\.attention\.attention\.", "ViT attention.attention", ("vit",), _fixed("vit")),
    (r"(^|\.)attention\.self\.(query|key|value)_proj$|(^|\.)attention\.self\.in_proj$", "DeBERTa query_proj",
     ("deberta-v2",), _fixed("deberta-v2")),
    (r"(^|\.)transformer\.layer\.\d+\.(attention\.[qkvo]\w*_lin|ffn\.lin[12])$", "DistilBERT q_lin/v_lin",
     ("distilbert",), _fixed("distilbert")),
    (r"(^|\.)encoder\.layer\.\d+\.(attention\.(self|output)\.|intermediate\.dense|output\.dense)",
     "BERT-style encoder.layer", ("bert", "roberta", "xlm-roberta", "electra"), _encoder_root),
    (r"(^|\.)(encoder|decoder)\.block\.\d+\.layer\.\d+\.", "T5 block.N.layer", ("t5",), _fixed("t5")),
    (r"(^|\.)encoder\.layers\.\d+\.|(^|\.)encoder_attn\.", "encoder-decoder layers",
     ("whisper", "bart", "mbart", "marian"), _fixed(None)),
    (r"(^|\.)decoder\.layers\.\d+\.", "decoder-only decoder.layers", ("opt", "whisper", "bart", "mbart", "marian"),
     _fixed("opt")),
    (r"(^|\.)layers\.\d+\.(self_attn\.qkv_proj|mlp\.gate_up_proj)$", "Phi-3 qkv_proj", ("phi3",), _fixed("phi3")),
    (r"(^|\.)layers\.\d+\.self_attn\.dense$", "Phi self_attn.dense", ("phi",), _fixed("phi")),
    (r"(^|\.)block_sparse_moe\.", "Mixtral experts", ("mixtral",), _fixed("mixtral")),
    (r"(^|\.)layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)$", "Llama-style layers.N.self_attn",
     ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "mixtral"), _llama_like),
    (r"(^|\.)gpt_neox\.layers\.\d+\.", "GPT-NeoX layers", ("gpt_neox",), _fixed("gpt_neox")),
    (r"(^|\.)h\.\d+\.(attn\.(c_attn|c_proj)|mlp\.(c_fc|c_proj))$", "GPT-2 h.N.attn.c_attn",
     ("gpt2", "gpt_bigcode"), _fused_qkv("gpt2", "gpt_bigcode", ".c_attn")),
    (r"(^|\.)h\.\d+\.(self_attention\.(query_key_value|dense)|mlp\.dense_(h_to_4h|4h_to_h))$",
     "BLOOM/Falcon h.N.self_attention", ("bloom", "falcon"), _fused_qkv("bloom", "falcon", ".query_key_value")),
    (r"(^|\.)h\.\d+\.attn\.attention\.", "GPT-Neo attn.attention", ("gpt_neo",), _fixed("gpt_neo")),
    (r"(^|\.)h\.\d+\.attn\.(q|k|v|out)_proj$", "GPT-J h.N.attn.q_proj", ("gptj",), _fixed("gptj")),
    (r"(^|\.)blocks\.\d+\.attn\.Wqkv$", "MPT blocks.N.attn.Wqkv", ("mpt",), _fixed("mpt")),
)  # fmt: skip
_LLM_COMPILED = tuple((re.compile(p), d, c, f) for p, d, c, f in LLM_RULES)


def _llm_verdict(mods: list[LoraModule]) -> ShapeVerdict | None:
    for pattern, desc, cands, choose in _LLM_COMPILED:
        hits = [m for m in mods if pattern.search(m.path)]
        if hits:
            best, guess, detail = choose(hits)
            why = f"{desc}{f', {detail}' if detail else ''}"
            return _verdict(cands, why, best=best, guess=guess)
    return None
