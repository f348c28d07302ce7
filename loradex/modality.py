"""Whether a request is about pictures or about text, from the words it uses.

A registry holds image adapters (diffusion families) and text adapters (language-model families) side
by side, and a sentence encoder matches words, not what they act on: "dots between letters" lands on
the polka-dot image style, "b&w images, no colour at all" on the adapter that deletes every b, "invert
colours, photo negative" on the one that reverses a string. ``asked_kind`` says ``"diffusion"`` when a
request speaks only of pictures (image, photo, colour, palette, texture, pixel, draw, poster, Stable
Diffusion …), ``"llm"`` when it speaks only of text (letters, words, strings, characters, vowels, cipher,
prefix, GPT …; "text encoder" and "text-to-image" name image models' parts, not text),
and None when it names both or neither; search lowers adapters of the other kind
(``Searcher._ranked``, ``MODALITY_PENALTY``). Where the words say nothing, a registry's text map may
(``encoders.kind_prior``, learned from the registry's own texts; ``Searcher.wanted_kind``).
Importing this module imports nothing heavy.
"""

from __future__ import annotations

import re

_FLAGS = re.IGNORECASE
_PICTURES = re.compile(
    r"\b(?:images?|pictures?|pics?|photo\w*|colou?r\w*|palettes?|patterns?|textures?|tint\w*|hues?|pixel\w*|"
    r"render\w*|draw\w*|paint\w*|illustrat\w*|visuals?|overlay\w*|wallpapers?|posters?|canvas\w*|sprites?|"
    r"artwork|graphics?|shading|scenes?|portraits?|landscapes?|gr[ae]yscale|monochrome|sepia|b&w|backgrounds?|"
    r"frames?|prints?|film|camera|lens|exposure|shots?|stills?|thumbnails?|icons?|logos?|"
    r"stable\s+diffusion|diffusion|sdxl|sd\s?[12](?:\.\d)?|dreambooth|unet|flux|txt2img|img2img|text[\s-]to[\s-]image|"
    r"comfyui|midjourney)\b",
    _FLAGS,
)  # fmt: skip
# phrases of image models that name text ("text encoder", "textual inversion"): not a request about text
_IMAGE_MODEL_TEXT = re.compile(
    r"\btext[\s-]+(?:to[\s-]+image|encoders?|conditioning)\b|\btextual\s+inversion\b", _FLAGS
)
_TEXT = re.compile(
    r"\b(?:letters?|words?|strings?|texts?|characters?|chars?|sentences?|cipher\w*|vowels?|consonants?|"
    r"alphabet\w*|spell\w*|prefix\w*|suffix\w*|caps|capitals?|upper-?case|lower-?case|typed|typing|sql|"
    r"quer(?:y|ies)|prose|poems?|dialogues?|english|syllables?|punctuation|anagrams?|palindromes?|"
    r"gpt-?\w*|llama|llms?|language\s+models?|chatbots?|nlp|tokeni[sz]\w*)\b",
    _FLAGS,
)  # fmt: skip
KINDS = ("diffusion", "llm")  # the family kinds (``base_families.kind``) the prior tells apart


def asked_kind(text: str) -> str | None:
    """``"diffusion"`` for a request only about pictures, ``"llm"`` for one only about text, else None."""
    pictures = bool(_PICTURES.search(text))
    words = bool(_TEXT.search(_IMAGE_MODEL_TEXT.sub(" ", text)))
    return "diffusion" if pictures and not words else "llm" if words and not pictures else None
