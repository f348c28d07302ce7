"""Letter shifts asked backwards, read as the forward shift that does the same (what is embedded only).

A shift through the alphabet is described forwards ("Shift each letter forward by 24 in the
alphabet"), while people ask for the other way round: "shift every letter back by 2", "the letter
two places before it", "move each letter back one". Those are the same shifts as forward by 26 − n,
and the encoder embeds "back by 2" next to "forward by 2", the opposite task. ``forward_shifts``
rewrites a backward shift of n letters as "forward by 26 − n" in a text about letters or the alphabet
(a cipher, a Caesar shift, a key), after number words became digits (``loradex.number_words``):
"back by 2", "3 places earlier", "the letter before it", "minus 10", "left in the alphabet by 6", and
undoing a shift ("decode a Caesar cipher with a shift of 3"). Not in a text about a rotation ("the last
2 letters back to the front", ``loradex.directions``), nor where "forward" is said too. Importing this
module imports nothing heavy.
"""

from __future__ import annotations

import re

from loradex.directions import directions

ALPHABET = 26
_FLAGS = re.IGNORECASE
_ABOUT_LETTERS = re.compile(r"\b(?:alphabet\w*|caesar\w*|cipher\w*|letters?|rot\d*|encrypt\w*|decrypt\w*)\b", _FLAGS)
_NOT_A_SHIFT = re.compile(r"\b(?:forwards?|rotat\w*|cycl\w*)\b", _FLAGS)
_UNIT = r"(?:places?|positions?|steps?|spots?|letters?|notches?)"
_BACK = r"(?:back(?:wards?)?|earlier|before|towards?\s+a\b)"
_BACKWARD = (
    re.compile(r"\b(?:back(?:wards?)?|earlier)\s+(?:by\s+)?(\d+)(?:\s+" + _UNIT + r")?(?!\w)", _FLAGS),  # back by 2
    re.compile(r"\b(\d+)\s+(?:" + _UNIT + r"\s+)?" + _BACK + r"(?:\s+it)?", _FLAGS),  # 2 places back, 3 earlier
    re.compile(
        r"\b(?:back(?:wards?)?\s+(?:a|one)(?:\s+(?:place|position|step|spot|notch))?|(?:a|one)\s+(?:place|position"
        r"|step|spot|notch)\s+back(?:wards?)?|(?:the\s+)?(?:one|letter)\s+(?:just\s+|right\s+|immediately\s+)?"
        r"before(?:\s+it)?|previous\s+letter)\b()",
        _FLAGS,
    ),  # one back: no count, an empty group
    re.compile(r"\b(?:minus|negative)\s+(\d+)\b|\b(?:shift|key|offset|rot|by|of)\s*-\s*(\d+)\b", _FLAGS),  # -8
    re.compile(
        r"\bleft\s+(?:in|through|along)\s+the\s+alphabet\s+(?:by\s+)?(\d+)\b"
        r"|\b(\d+)\s+(?:" + _UNIT + r"\s+)?(?:to\s+the\s+)?left\s+(?:in|through|along)\s+the\s+alphabet",
        _FLAGS,
    ),  # left in the alphabet by 6
)
# undoing a shift of n is a shift back by n: "decode a Caesar cipher with a shift of 3", "decrypt key 11"
_UNDO = re.compile(r"\b(?:decod\w*|decrypt\w*|decipher\w*|undo\w*|invert\w*)\b", _FLAGS)
_SHIFT_OF = re.compile(r"\b(?:shift|key|offset|rot|caesar)\w*\s*(?:of\s+|by\s+|=\s*)?(\d+)\b", _FLAGS)


def forward_shifts(text: str) -> str:
    """``text`` with each backward shift of n letters written "forward by 26 − n" (module doc)."""
    if not _ABOUT_LETTERS.search(text) or _NOT_A_SHIFT.search(text) or "rotation" in directions(text):
        return text

    def forward(m: re.Match[str]) -> str:
        n = next((int(g) for g in m.groups() if g), 1)  # no count written: one place
        return f"forward by {ALPHABET - n % ALPHABET}" if n % ALPHABET else m.group(0)

    for pattern in (*_BACKWARD, *((_SHIFT_OF,) if _UNDO.search(text) else ())):
        text = pattern.sub(forward, text)
    return text
