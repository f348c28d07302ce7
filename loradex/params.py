"""The settings a request names (a count, a shift, a letter, an affix) against those of adapters that
differ only in them.

Adapters often come in families that do one thing with different settings: "Repeat each character 4
times" and "… 2 times", "Replace every vowel with 'z'" and "… with '#'", "Prepend 'non' to the start".
Sentence encoders place a request for a setting no sibling has ("repeat each char 5x", "swap each
vowel for the letter q", "prefix 'anti'") next to the siblings, and the best of them looks like a match.
``numbers`` and ``literals`` read what a text names: numbers (digits, after ``loradex.number_words`` made
words digits; "rot13", "5x", "3rd"; ordinals, "the first" and "the last letter" but not a "first" that
orders steps; "twice"; a run like "1st, 3rd, 5th" also names its step) and literals (short quoted spans,
"the letter q").
``families`` finds the registry's parametric families (descriptions that are the same once settings are
blanked out, with different settings); ``mismatched`` says which adapters of a search's pool belong to
one and name settings of a kind the request names, none of them the request's. Search lowers those when
a sibling has what is asked (``Searcher._ranked``, ``SETTING_PENALTY``), and says nothing fits when its
best hit is one and no sibling has it. An adapter of no family is never judged ("16-bit pixel art" asked
as 8-bit still finds it). Importing this module imports nothing heavy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from loradex.number_words import digits_for_number_words

_FLAGS = re.IGNORECASE
ORDINALS = {w: i for i, w in enumerate(
    "second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth fifteenth "
    "sixteenth seventeenth eighteenth nineteenth twentieth".split(), start=2)}  # fmt: skip  # "first" orders steps
TIMES = {"twice": 2, "thrice": 3, "double": 2, "doubled": 2, "triple": 3, "tripled": 3, "quadruple": 4, "dozen": 12}
_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3})(?:st|nd|rd|th|x|-?fold)?(?!\w|\.\d)|\brot-?(\d{1,2})\b|\b(" + "|".join(ORDINALS)
    + r"|" + "|".join(TIMES) + r")\b",
    _FLAGS,
)  # fmt: skip
_QUOTED = re.compile(r"""(?<!\w)(?:'([^'\s]{1,6})'|"([^"\s]{1,6})"|`([^`\s]{1,6})`|‘([^’\s]{1,6})’|“([^”\s]{1,6})”)""")
_NAMED_LETTER = re.compile(r"\bthe\s+(?:letter|character|char|symbol)\s+([a-z])\b(?!')", _FLAGS)
_THE_FIRST = re.compile(r"\bthe\s+first\b", _FLAGS)  # "starting with the first", "the first letter": 1
_ONE_END = re.compile(r"\b(?:first|last|final)\s+(?:letter|character|char)\b(?!s)", _FLAGS)  # "the last letter": 1


def numbers(text: str) -> set[int]:
    """The numbers ``text`` names (see the module doc); a run of three or more in even steps ("1st, 3rd,
    5th") also names its step."""
    found = []
    for m in _NUMBER.finditer(digits_for_number_words(text)):
        digits = m.group(1) or m.group(2)
        found.append(int(digits) if digits else ORDINALS.get(m.group(3).lower()) or TIMES[m.group(3).lower()])
    if _THE_FIRST.search(text) or _ONE_END.search(text):  # "first" alone orders steps ("first reverse it, then …")
        found.append(1)
    out = set(found)
    for a, b, c in zip(found, found[1:], found[2:], strict=False):
        if b - a == c - b > 0:
            out.add(b - a)
    return out


def literals(text: str, skip: set[str] | None = None) -> set[str]:
    """Short quoted spans and named letters ("the letter q"), lower-cased, less ``skip`` (samples)."""
    out = {next(g for g in m.groups() if g is not None).lower() for m in _QUOTED.finditer(text)}
    out |= {m.group(1).lower() for m in _NAMED_LETTER.finditer(text) if m.group(1) != "I"}  # "… letter I want"
    return out - {s.lower() for s in (skip or set())}


def template(text: str) -> str:
    """``text`` with its settings blanked out: what siblings share."""
    text = _QUOTED.sub("'_'", digits_for_number_words(text))
    return " ".join(_NUMBER.sub("#", text).lower().split())


def families(descriptions: Iterable[str]) -> dict[str, list[str]]:
    """Template → the distinct descriptions of that shape, for the shapes two or more descriptions
    share with different settings (a registry's parametric families)."""
    shapes: dict[str, set[str]] = {}
    for text in descriptions:
        shapes.setdefault(template(text), set()).add(text)
    return {shape: sorted(texts) for shape, texts in shapes.items() if len(texts) > 1}


def _misses(want_n: set[int], want_l: set[str], text: str) -> bool:
    have_n, have_l = numbers(text), literals(text)
    return bool((want_n and have_n and not want_n & have_n) or (want_l and have_l and not want_l & have_l))


def mismatched(asked: str, described: Mapping[int, str], known: Mapping[str, list[str]],
               samples: set[str] | None = None) -> tuple[set[int], set[int]]:  # fmt: skip
    """(off, unmet) among ``described`` (id → description): ``off``, the adapters of a parametric family
    (``known``, from ``families``) that name numbers (or literals) while ``asked`` names others of that
    kind and none of theirs; ``unmet``, those of ``off`` whose family has no member with what is asked."""
    want_n, want_l = numbers(asked), literals(asked, samples)
    if not (want_n or want_l):
        return set(), set()
    off: set[int] = set()
    unmet: set[int] = set()
    for i, text in described.items():
        members = known.get(template(text))
        if members is None or not _misses(want_n, want_l, text):
            continue
        off.add(i)
        if all(_misses(want_n, want_l, other) for other in members):
            unmet.add(i)
    return off, unmet
