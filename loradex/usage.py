"""How to use an adapter once downloaded: the formats it can be exported in, and for each a short
Python (or prompt) snippet that loads it the way diffusers, PEFT and kohya tools expect.

The snippets name the base model the adapter states (``base_model``) or the usual checkpoint of
its family; trigger words go into the example prompt. Cheap to import (no torch).
"""

from __future__ import annotations

import re
from typing import Any

from registry.formats.canonical import DIFFUSION_COMPONENTS

EXPORT_FORMATS = ("diffusers", "peft", "kohya")

# The checkpoint each family is usually trained on (what a snippet loads when the adapter names none).
FAMILY_BASES = {
    "sd1": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sd2": "stabilityai/stable-diffusion-2-1",
    "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
    "flux": "black-forest-labs/FLUX.1-dev",
    "gpt2": "openai-community/gpt2",
}


def export_formats(modules: list[dict[str, Any]]) -> list[str]:
    """The writers that can hold an adapter with these modules (see ``registry.formats`` writers)."""
    components = {str(m["name"]).split(".", 1)[0] for m in modules}
    if not components:
        return []
    formats = []
    if components <= set(DIFFUSION_COMPONENTS):
        formats = ["diffusers"]
        if not any(m.get("dora") for m in modules):
            formats.append("kohya")
    if len(components) == 1:
        formats.append("peft")
    return [f for f in EXPORT_FORMATS if f in formats]


def _slug(name: str) -> str:
    return re.sub(r"[^\w]+", "_", name).strip("_").lower()[:40] or "adapter"


def _base(info: dict[str, Any]) -> str:
    family = str(info.get("family") or "")
    return repr(str(info.get("base_model") or FAMILY_BASES.get(family, f"<the {family or 'base'} model you use>")))


def _zoo(info: dict[str, Any]) -> bool:
    return str(info.get("family") or "").startswith("zoo-")


def _prompt(info: dict[str, Any]) -> str:
    words = ", ".join(str(w) for w in (info.get("trigger_words") or [])[:3])
    return f"{words}, a lake at dawn" if words else "a lake at dawn"


def _pipeline(info: dict[str, Any]) -> str:
    if _zoo(info):  # the zoo's own base, as its plug-in registers it (a StableDiffusionPipeline)
        return f"from loradex.bases import load_base\n\npipe = load_base({info['family']!r})\n"
    return f"from diffusers import AutoPipelineForText2Image\n\npipe = AutoPipelineForText2Image.from_pretrained({_base(info)})\n"


def usage_snippet(info: dict[str, Any], fmt: str) -> str:
    """The snippet for ``fmt`` (one of ``export_formats``), for the download unzipped into
    ``<name>-<fmt>/`` beside the script."""
    name, folder = _slug(str(info.get("name") or "adapter")), f"{info.get('name', 'adapter')}-{fmt}"
    head = f"# unzip {folder}.zip into {folder}/\n"
    diffusion = {str(m["name"]).split(".", 1)[0] for m in info.get("modules") or []} <= set(DIFFUSION_COMPONENTS)
    if fmt == "peft" and not diffusion:
        if _zoo(info):
            return (head + "from peft import PeftModel\n\nfrom loradex.bases import load_base\n\n"
                    f"base, tokenizer = load_base({info['family']!r})  # the zoo's model and tokenizer\n"
                    f"model = PeftModel.from_pretrained(base, {folder!r}, adapter_name={name!r})\n")  # fmt: skip
        return (head + "from peft import PeftModel\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                f"base = AutoModelForCausalLM.from_pretrained({_base(info)})\n"
                f"tok = AutoTokenizer.from_pretrained({_base(info)})\n"
                f"model = PeftModel.from_pretrained(base, {folder!r}, adapter_name={name!r})\n"
                'out = model.generate(**tok("your input", return_tensors="pt"), max_new_tokens=32)\n'
                "print(tok.decode(out[0], skip_special_tokens=True))\n"
                "# merged for deployment: model = model.merge_and_unload()\n")  # fmt: skip
    if fmt == "kohya":
        weight = str(info.get("name", "adapter"))
        return (head + f"# A1111 / Forge: copy adapter.safetensors to models/Lora/{weight}.safetensors, then prompt\n"
                f"#   {_prompt(info)} <lora:{weight}:0.8>\n"
                "# ComfyUI: put it in models/loras/ and use a LoraLoader node (strength 0.8)\n"
                "# diffusers reads kohya files too:\n" + _pipeline(info) +
                f'pipe.load_lora_weights({folder!r}, weight_name="adapter.safetensors", adapter_name={name!r})\n'
                f'image = pipe({_prompt(info)!r}, cross_attention_kwargs={{"scale": 0.8}}).images[0]\n')  # fmt: skip
    if fmt == "peft":  # a single diffusion component as a PEFT folder (e.g. a UNet-only adapter)
        comp = next(iter({str(m["name"]).split(".", 1)[0] for m in info.get("modules") or []}), "unet")
        return (head + "from peft import PeftModel\n" + _pipeline(info) +
                f"pipe.{comp} = PeftModel.from_pretrained(pipe.{comp}, {folder!r}, adapter_name={name!r})\n"
                f"image = pipe({_prompt(info)!r}).images[0]\n")  # fmt: skip
    return (head + _pipeline(info) + f"pipe.load_lora_weights({folder!r}, adapter_name={name!r})\n"
            f"pipe.set_adapters([{name!r}], adapter_weights=[0.8])  # several: set_adapters([...], [...])\n"
            f"image = pipe({_prompt(info)!r}).images[0]\n"
            "# fused for speed: pipe.fuse_lora(lora_scale=0.8)\n")  # fmt: skip


def usage_snippets(info: dict[str, Any]) -> dict[str, str]:
    """format → snippet, for every format the adapter can be exported in."""
    return {fmt: usage_snippet(info, fmt) for fmt in export_formats(info.get("modules") or [])}
