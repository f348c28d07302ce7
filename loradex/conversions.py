"""Conversions asked the other way round: "Shakespeare into modern English" of an adapter that
"rewrites modern English in the style of Shakespeare", "SQL explained in English" of one that
"turns questions into SQL".

Many adapters convert one thing into another (translation pairs, text to SQL, prose to verse), and a
registry often holds one direction only. Sentence encoders read "X into Y" and "Y into X" as the same
sentence (the same words), so the adapter going the other way ranks first and looks like a match.
``conversion`` reads a text's (source, target) from the usual ways of saying it ("from X to Y",
"translate / turn / rewrite X into Y", "X in the style of Y", "X -> Y"); ``reversed_by`` says whether
a request's pair is the adapter's pair swapped, from the cosines of the four phrases: the request's
source reads like the adapter's target and its target like the adapter's source, by
``REVERSED_MARGIN`` more than the straight pairing. Search lowers such an adapter and says nothing
fits when it would come first (``Searcher._ranked``). Importing this module imports nothing heavy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

REVERSED_MARGIN = 0.5  # swapped cosines over straight ones (two pairs summed): clearly the other way round
_SPAN = r"[^,.;:!?()\[\]]{2,60}?"
_END = r"(?=\s*(?:[,.;:!?()]|$|\s+(?:so|for|because|please|pls|that|which|when|while|with)\b))"
_VERB = (r"\b(?:translat|conver|turn|chang|rewrit|transform|render|transcrib|transliterat|explain|paraphras|"
         r"reword|rephras|adapt|port)\w*\s+")  # fmt: skip
_PATTERNS = (
    re.compile(r"\bfrom\s+(?P<s>" + _SPAN + r")\s+(?:in)?to\s+(?P<t>" + _SPAN + r")" + _END, re.IGNORECASE),
    re.compile(
        _VERB + r"(?P<s>" + _SPAN + r")\s+(?:into|to|in\s+the\s+style\s+of|in\s+the\s+voice\s+of|as)\s+"
        r"(?P<t>" + _SPAN + r")" + _END,
        re.IGNORECASE,
    ),  # fmt: skip
    re.compile(
        r"(?P<s>\b" + _SPAN + r")\s+(?:into|in\s+the\s+style\s+of)\s+(?P<t>" + _SPAN + r")" + _END, re.IGNORECASE
    ),  # fmt: skip
    re.compile(r"(?P<s>\b[^,.;:!?>]{2,40}?)\s*(?:->|→|=>)\s*(?P<t>[^,.;:!?]{2,40}?)" + _END, re.IGNORECASE),
)
_WORDY = re.compile(r"[^\W\d_]{3,}")  # a phrase worth comparing has a word of three letters or more


def conversion(text: str) -> tuple[str, str] | None:
    """The (source, target) a text converts between, the first way of saying it found; None when it
    names none (or a side without a word of three or more letters: "from z to a" is no conversion)."""
    for pattern in _PATTERNS:
        for m in pattern.finditer(text):
            source, target = (" ".join(m.group(g).split()) for g in ("s", "t"))
            if _WORDY.search(source) and _WORDY.search(target):
                return source, target
    return None


def reversed_by(asked: tuple[str, str], described: Sequence[tuple[int, tuple[str, str]]],
                embed: Callable[[list[str]], Any]) -> set[int]:  # fmt: skip
    """The adapters (``described``: (id, its description's conversion)) that convert the other way
    round from ``asked`` (the request's (source, target)); ``embed``: texts → unit vectors (n, dim),
    all phrases in one batch."""
    if not described:
        return set()
    phrases = [asked[0], asked[1]] + [p for _, pair in described for p in pair]
    vecs = embed(phrases)  # (2 + 2n, dim)
    s, t = vecs[0], vecs[1]
    out = set()
    for n, (i, _) in enumerate(described):
        a_s, a_t = vecs[2 + 2 * n], vecs[3 + 2 * n]
        straight = float(s @ a_s) + float(t @ a_t)
        swapped = float(s @ a_t) + float(t @ a_s)
        if swapped - straight >= REVERSED_MARGIN:
            out.add(i)
    return out
