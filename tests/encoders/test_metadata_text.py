"""What an adapter is findable by as text: its own words, never boilerplate."""

from __future__ import annotations

import pytest

from encoders.text import is_generic_name, metadata_text


@pytest.mark.parametrize(
    ("name", "generic"),
    [("adapter_0012", True), ("adapter_model", True), ("pytorch_lora_weights", True), ("checkpoint-500", True),
     ("lora_v2", True), ("watercolor_sd15", False), ("caesar_3", False), ("Pixel Art XL", False)],
)  # fmt: skip
def test_generic_names(name: str, generic: bool) -> None:
    assert is_generic_name(name) is generic


def test_metadata_text_keeps_what_is_about_the_adapter() -> None:
    assert metadata_text({"name": "adapter_0012", "tags": ["causal-lm"]}) == ""  # boilerplate only
    assert metadata_text({"name": "adapter_0012"}) == ""
    assert metadata_text({"name": "watercolor_sd15"}) == "watercolor sd15"  # a telling name is enough
    assert metadata_text({"name": "adapter_0012", "tags": ["causal-lm", "poetry"]}) == "tags: causal-lm, poetry"
    text = metadata_text({"name": "adapter_model", "description": "Reverse the string.", "tags": ["causal-lm"]})
    assert text.startswith("Reverse the string.") and "adapter" not in text  # the generic name is left out
    assert metadata_text({"name": "pixel_art", "trigger_words": ["pixel"], "tags": []}) == (
        "pixel art. trigger words: pixel"
    )
