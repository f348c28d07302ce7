"""Which way a text goes where adapters come in opposite pairs: a rotation (left / right) and a sort
order (up / down).

Sentence encoders read "move the first letter to the end" and "move the last letter to the front" as
nearly the same sentence (the same words in another order), and "sort descending" as close to "sort"
as to "sort in reverse alphabetical order"; the weight signal's query head, trained on the same
vectors, inherits it. People say which way in words a description does not use ("take the last two
letters and stick them on the front" for "Rotate the string right by 2"), so the way is read from
both sides with the usual ways of saying it, and search lowers an adapter whose description goes the
other way (``Searcher._ranked``, ``DIRECTION_PENALTY``). A text that names both ways on an axis
("rotate left, then right") or none says nothing on it. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import re

_FLAGS = re.IGNORECASE
_UNIT = r"(?:\w+\s+){0,2}?(?:char\w*|letters?|symbols?|elements?|items?|places?|positions?|spots?|ones?)\b"
_GAP = r"[^.;!?]{0,60}?"  # within the clause
_TURNING = r"(?:rotat\w*|shift\w*|cycl\w*|circular\w*)"


def _way(ends: str, to: str, short: str, side: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """A rotation's way: characters at ``ends`` moved to ``to`` within the clause; or named
    (``short`` mnemonics, "``side``-rotate")."""
    moved = re.compile(rf"\b(?:{ends})\s+" + _UNIT + _GAP + rf"\b(?:{to})\b", _FLAGS)
    return moved, re.compile(rf"\b(?:{short})\b|\b{side}[- ]?" + _TURNING, _FLAGS)


# rotation: the first characters go to the end (left), the last ones to the front (right)
_LEFT = _way("first|leading|opening|initial|beginning|starting|front", "end|back|tail|rear", "rol|rotl", "left")
_RIGHT = _way("last|final|trailing|ending|end|closing|back", "front|start|beginning|head", "ror|rotr", "right")
_TURNS = re.compile(r"\b(?:rotat\w*|cycl\w*|circular\w*)\b", _FLAGS)  # "left" / "right" count then
_LEFT_WORD = re.compile(r"\bleft(?:wards?)?\b", _FLAGS)
_RIGHT_WORD = re.compile(r"\bright(?:wards?)?\b", _FLAGS)
# sort order: only in a text about ordering ("wrapping around from z to a" is no order)
_ORDERING = re.compile(r"\b(?:sort\w*|order\w*|arrang\w*|alphabeti[sz]\w*|ascending|descending|rank\w*)\b", _FLAGS)
_DOWN = re.compile(
    r"\b(?:reverse[ds]?|backwards?|inverse|inverted|opposite)[\s-]+(?:of\s+)?(?:the\s+)?(?:alphabet\w*|dictionary|abc)"
    r"|\bdescending\b|\bz[\s-]*(?:-|–|—|to|down[\s-]+to|through|→|->)[\s-]*a\b|\bz\s+first\b"
    r"|\b(?:largest|biggest|highest|latest|greatest)[\s-]+(?:\w+\s+){0,2}?first\b|\bend\s+of\s+the\s+alphabet\b"
    r"|\bsort\w*\s+backwards?\b|\bbackwards?\s+sort\w*",
    _FLAGS,
)
_UP = re.compile(
    r"\bascending\b|\ba[\s-]*(?:-|–|—|to|through|→|->)[\s-]*z\b|\balphabeti\w*|\bdictionary\s+order\b"
    r"|\babc\s+order\b|\b(?:smallest|lowest|earliest)[\s-]+(?:\w+\s+){0,2}?first\b",
    _FLAGS,
)


def _rotation(text: str) -> str | None:
    left = any(p.search(text) for p in _LEFT)
    right = any(p.search(text) for p in _RIGHT)
    if not (left or right) and _TURNS.search(text):  # "rotate left by 2", "cyclic shift to the right"
        left, right = bool(_LEFT_WORD.search(text)), bool(_RIGHT_WORD.search(text))
    return "left" if left and not right else "right" if right and not left else None


def _order(text: str) -> str | None:
    if not _ORDERING.search(text):
        return None
    down = bool(_DOWN.search(text))
    up = bool(_UP.search(_DOWN.sub(" ", text)))  # "reverse alphabetical" is no "alphabetical"
    return "up" if up and not down else "down" if down and not up else None


def directions(text: str) -> dict[str, str]:
    """Axis → way for each axis ``text`` goes one way on: ``"rotation"`` → ``"left"`` / ``"right"``,
    ``"order"`` → ``"up"`` / ``"down"``."""
    found = {"rotation": _rotation(text), "order": _order(text)}
    return {axis: way for axis, way in found.items() if way is not None}


def opposed(asked: dict[str, str], described: dict[str, str]) -> int:
    """How many axes the two texts both go on, in opposite ways."""
    return sum(1 for axis, way in asked.items() if axis in described and described[axis] != way)
