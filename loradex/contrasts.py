"""Alternatives a request turns down, left out of what is embedded.

"not the capitalising one - I want everything in small letters", "horizontal stripes, not vertical or
diagonal", "lowercase rather than uppercase": a sentence encoder reads the turned-down alternative as
much as the wanted one (both are words of the request), so search ranked the capitalising adapter first.
``without_contrasts`` drops such a span: one that starts a clause with "not" (at the start, after
punctuation or a dash, after "and" / "but" / "or"), or any "rather than / instead of / as opposed to",
up to the next clause boundary. A "not" inside a clause is part of what is asked ("keep the letters
that are not vowels", "do not change the order"), and absence asked for ("no colour", "without
stripes", "I don't want any colour") is no turned-down alternative: both stay. Importing this module
imports nothing heavy.
"""

from __future__ import annotations

import re

# where a turned-down alternative ends: punctuation, a dash, or a word that turns back to what is wanted
_END = r"(?=\s*(?:[,;:.!?()]|\s[-–—]\s|$)|\s+(?:but|instead|rather|I\s+want|I'd\s+like|I\s+need|just|only)\b)"
_CLAUSE_NOT = re.compile(r"(?:^|(?<=[,;:.!?(])|(?<=\s[-–—])|(?<=\band)|(?<=\bbut)|(?<=\bor))\s*\bnot\b.*?" + _END,
                         re.IGNORECASE)  # fmt: skip
_ANYWHERE = re.compile(r"\b(?:rather\s+than|instead\s+of|as\s+opposed\s+to)\b.*?" + _END, re.IGNORECASE)
_CONTENT = re.compile(r"[A-Za-z]{3,}")


def without_contrasts(text: str) -> str:
    """``text`` less the alternatives it turns down (see the module doc); ``text`` itself when it
    holds none, or when no word of three letters or more would be left."""
    kept = _ANYWHERE.sub(" ", _CLAUSE_NOT.sub(" ", text))
    if kept == text:
        return text
    kept = re.sub(r"\s+([,;:.!?])", r"\1", " ".join(kept.split()))  # spaces the cut left before punctuation
    kept = re.sub(r"(?:[,;:]\s*){2,}", ", ", kept).strip(" ,;:-–—")
    kept = re.sub(r"^(?:and|but|or)\s+|\s+(?:and|but|or)$", "", kept, flags=re.IGNORECASE).strip(" ,;:-–—")
    return kept if _CONTENT.search(kept) else text


_LEAD = re.compile(r"^\s*(?:not|rather\s+than|instead\s+of|as\s+opposed\s+to)\s+(?:just\s+|the\s+one\s+that\s+)?",
                   re.IGNORECASE)  # fmt: skip


def turned_down(text: str) -> list[str]:
    """The alternatives ``text`` turns down ("a full round moon, not a crescent": ["a crescent"]), each
    without its leading "not" / "rather than"; only those with a word of three letters or more, and
    none when ``without_contrasts`` keeps the text whole."""
    if without_contrasts(text) == text:
        return []
    spans = [m.group(0) for pattern in (_CLAUSE_NOT, _ANYWHERE) for m in pattern.finditer(text)]
    out = [" ".join(_LEAD.sub("", s).split()).strip(" ,;:.!?-–—") for s in spans]
    return [s for s in out if _CONTENT.search(s)]
