"""Base model families: the ``FAMILIES`` table and family hints from model names.

A family id says which base model an adapter's weights fit: ``sd1`` / ``sd2`` / ``sdxl`` /
``flux`` / ``sd3`` for diffusion models, the Hugging Face ``model_type`` (``gpt2``,
``llama``, ``qwen2``, ``bert`` …) for language and encoder models, ``unknown`` otherwise.
``FAMILIES`` seeds the ``base_families`` table; ``family_from_name`` reads a family out of
whatever a source calls its base model (a hub id, a checkpoint file name, a kohya
``ss_base_model_version``, a ``modelspec.architecture``, a Civitai ``baseModel``, a class
name). No torch here.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

FamilyKind = Literal["diffusion", "llm", "encoder"]
UNKNOWN = "unknown"


class FamilyInfo(NamedTuple):
    kind: FamilyKind
    label: str  # human-readable name
    widths: tuple[int, ...]  # typical hidden (LLM) or cross-attention / hidden (diffusion) widths
    layout: str | None = None  # a family whose key layout this one shares (its own widths may be any)


FAMILIES: dict[str, FamilyInfo] = {
    # diffusion: cross-attention width (UNets) or transformer hidden width (DiTs)
    "sd1": FamilyInfo("diffusion", "Stable Diffusion 1.x", (768,)),
    "sd2": FamilyInfo("diffusion", "Stable Diffusion 2.x", (1024,)),
    "sdxl": FamilyInfo("diffusion", "Stable Diffusion XL", (2048, 1280)),
    "flux": FamilyInfo("diffusion", "FLUX.1", (3072,)),
    "sd3": FamilyInfo("diffusion", "Stable Diffusion 3.x", (1536, 2432)),
    # decoder-only and encoder-decoder language / speech models: hidden width
    "gpt2": FamilyInfo("llm", "GPT-2", (768, 1024, 1280, 1600)),
    "gpt_bigcode": FamilyInfo("llm", "GPTBigCode (StarCoder)", (2048, 6144)),
    "gpt_neo": FamilyInfo("llm", "GPT-Neo", (768, 2048, 2560)),
    "gpt_neox": FamilyInfo("llm", "GPT-NeoX / Pythia", (512, 1024, 2048, 2560, 4096, 5120, 6144)),
    "gptj": FamilyInfo("llm", "GPT-J", (4096,)),
    "bloom": FamilyInfo("llm", "BLOOM", (1024, 1536, 2048, 2560, 4096, 14336)),
    "falcon": FamilyInfo("llm", "Falcon", (4544, 8192)),
    "mpt": FamilyInfo("llm", "MPT", (4096, 7168)),
    "opt": FamilyInfo("llm", "OPT", (768, 1024, 2048, 2560, 4096, 5120, 7168)),
    "llama": FamilyInfo("llm", "Llama", (2048, 3072, 4096, 5120, 8192)),
    "mistral": FamilyInfo("llm", "Mistral", (4096, 5120)),
    "mixtral": FamilyInfo("llm", "Mixtral", (4096, 6144)),
    "qwen2": FamilyInfo("llm", "Qwen2 / Qwen2.5", (896, 1536, 2048, 3584, 5120, 8192)),
    "qwen3": FamilyInfo("llm", "Qwen3", (1024, 2048, 2560, 4096, 5120)),
    "gemma": FamilyInfo("llm", "Gemma", (2048, 3072)),
    "gemma2": FamilyInfo("llm", "Gemma 2", (2304, 3584, 4608)),
    "phi": FamilyInfo("llm", "Phi-1/2", (2048, 2560)),
    "phi3": FamilyInfo("llm", "Phi-3 / Phi-4", (3072, 5120)),
    "t5": FamilyInfo("llm", "T5", (512, 768, 1024, 2048, 4096)),
    "bart": FamilyInfo("llm", "BART", (768, 1024)),
    "mbart": FamilyInfo("llm", "mBART", (1024,)),
    "marian": FamilyInfo("llm", "MarianMT", (512,)),
    "whisper": FamilyInfo("llm", "Whisper", (384, 512, 768, 1024, 1280)),
    # encoders: hidden width
    "bert": FamilyInfo("encoder", "BERT", (768, 1024)),
    "distilbert": FamilyInfo("encoder", "DistilBERT", (768,)),
    "roberta": FamilyInfo("encoder", "RoBERTa", (768, 1024)),
    "xlm-roberta": FamilyInfo("encoder", "XLM-RoBERTa", (768, 1024)),
    "electra": FamilyInfo("encoder", "ELECTRA", (256, 768, 1024)),
    "deberta-v2": FamilyInfo("encoder", "DeBERTa v2/v3", (768, 1024, 1536)),
    "clip": FamilyInfo("encoder", "CLIP", (512, 768, 1024, 1280)),
    "vit": FamilyInfo("encoder", "ViT", (768, 1024)),
    # the benchmark zoos' own small bases (benchmarks/zoo/): real families for the weight encoders
    "zoo-text": FamilyInfo("llm", "loradex text zoo (char-level Llama)", (128,), layout="llama"),
    "zoo-image": FamilyInfo("diffusion", "loradex image zoo (tiny UNet)", (64,), layout="sd1"),
}

# (pattern, family), first match wins, searched in a lower-cased name whose spaces, dots and
# underscores became "-" ("SD 1.5" → "sd-1-5", "Qwen2.5" → "qwen2-5"). "(^|[-/])" marks a
# word start so that e.g. "opt" inside "adapter-options" does not count.
_B = r"(?:^|[-/])"  # word start
_E = r"(?:[-/]|$)"  # word end
_NAME_HINTS: tuple[tuple[str, str], ...] = (
    (r"benchmarks/zoo/text|loradex-zoo-text", "zoo-text"),
    (r"benchmarks/zoo/image|loradex-zoo-image", "zoo-image"),
    (r"flux", "flux"),
    (rf"{_B}(?:sd-?3|stable-diffusion-3){_E}|^sd3transformer", "sd3"),
    (rf"{_B}(?:sd-?xl|stable-diffusion-xl|pony|illustrious|noobai)", "sdxl"),
    (rf"{_B}(?:sd-?v?2|stable-diffusion-v?2|v2-[01]){_E}", "sd2"),
    (rf"{_B}(?:sd-?v?1|sd15|stable-diffusion-v?1|v1-[45]){_E}", "sd1"),
    (r"distilbert", "distilbert"),
    (r"xlm-?roberta", "xlm-roberta"),
    (r"roberta", "roberta"),
    (r"deberta", "deberta-v2"),
    (r"electra", "electra"),
    (r"bert|minilm", "bert"),
    (r"gpt-?neox|pythia", "gpt_neox"),
    (r"gpt-?neo", "gpt_neo"),
    (r"gpt-?j", "gptj"),
    (r"starcoder|santacoder|gpt-?bigcode", "gpt_bigcode"),
    (r"gpt-?2|dialogpt|rugpt3", "gpt2"),
    (r"qwen-?3", "qwen3"),
    (r"qwen-?(?:2|1-5)|qwq", "qwen2"),
    (r"mixtral", "mixtral"),
    (r"mistral", "mistral"),
    (r"gemma-?2", "gemma2"),
    (r"gemma", "gemma"),
    (r"llama|vicuna", "llama"),
    (rf"{_B}phi-?[34]", "phi3"),
    (rf"{_B}phi(?:-?[12])?{_E}|^phi(?:for|model)", "phi"),
    (r"bloom", "bloom"),
    (r"falcon", "falcon"),
    (rf"{_B}mpt-|^mpt(?:for|model)", "mpt"),
    (rf"{_B}opt-|^opt(?:for|model)", "opt"),
    (r"whisper", "whisper"),
    (r"mbart", "mbart"),
    (rf"{_B}bart|bartfor|bartmodel", "bart"),
    (r"opus-mt|marian", "marian"),
    (rf"{_B}(?:flan-)?(?:m|u|by)?t5{_E}|^(?:m|u)?t5(?:for|model|encoder)", "t5"),
    (rf"{_B}clip", "clip"),
    (rf"{_B}vit{_E}|^vit(?:for|model)", "vit"),
)  # fmt: skip
_COMPILED = tuple((re.compile(p), fam) for p, fam in _NAME_HINTS)


def normalize_name(name: str) -> str:
    return re.sub(r"[\s._]+", "-", name.strip().lower())


def family_from_name(name: object) -> str | None:
    """The family a base-model name, architecture string or class name points to, or None."""
    if not isinstance(name, str) or not name.strip():
        return None
    norm = normalize_name(name)
    for pattern, family in _COMPILED:
        if pattern.search(norm):
            return family
    return None
