"""Search reads a prompt without the emoji and symbols its text encoder cannot (``readable_prompt``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loradex.reading import readable_prompt
from loradex.service import LocalService

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"


@pytest.mark.parametrize(("prompt", "read"), [
    ("🙂🙂 make it UPPER 🚀", "make it UPPER"),
    ("a ❤️ heart", "a heart"),  # the variation selector goes with the heart
    ("👍🏽 thumbs", "thumbs"),  # and the skin tone with the hand
    ("👨‍👩‍👧 family", "family"),  # a joined sequence
    ("★ star ★", "star"),
    ("hello → olleh", "hello → olleh"),  # arrows and maths are read
    ("naïve café, 8-bit!", "naïve café, 8-bit!"),
    ("🙂", "🙂"),  # nothing left: kept as typed
])  # fmt: skip
def test_readable_prompt(prompt: str, read: str) -> None:
    assert readable_prompt(prompt) == read


def test_symbols_the_tokenizer_knows_are_kept() -> None:
    from encoders.text import TextEncoder

    enc = TextEncoder()
    assert enc.knows("★") and not enc.knows("✨") and enc.knows("a")
    assert readable_prompt("a ★ shape, glowing✨", enc.knows) == "a ★ shape, glowing"


def test_emoji_do_not_move_the_results(tmp_path: Path) -> None:
    svc = LocalService.open(tmp_path / "home")
    try:
        svc.ingest([SAMPLES])
        plain = svc.search("glowing neon signs at night", k=6)
        decorated = svc.search("✨🌃 glowing neon signs at night 🌃✨", k=6)
        assert [h.adapter["id"] for h in decorated] == [h.adapter["id"] for h in plain]
        assert [h.scores for h in decorated] == [h.scores for h in plain]
        assert decorated[0].adapter["name"] == "neon_glow_flux"
    finally:
        svc.close()
