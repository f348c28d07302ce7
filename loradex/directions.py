"""Which way a text goes where adapters come in opposite pairs: a rotation (left / right), a sort
order (up / down), the letter case the letters end up in (lower / upper) and the way lines run
(horizontal / vertical / diagonal).

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


# letter case: what the letters end up as ("make the big letters into little ones", "convert to uppercase");
# the target named after into / to / as / become is read first, then weaker ways of saying it
_SMALL = r"(?:small|little|tiny|lower[\s-]?case|lower|minuscules?|non[\s-]?capitals?)"
_BIG = r"(?:big|capitals?|capital|upper[\s-]?case|upper|caps|block|majuscules?|large)"
_CASED = r"(?:\s+(?:letters?|case|characters?|chars?|ones|form|type))?\b"
_DET = r"(?:all\s+)?(?:the\s+|its\s+|their\s+|every\s+|each\s+|an?\s+)?"
_TARGET = r"\b(?:into|to|in|as|becomes?|become|turns?\s+into)\s+" + _DET
_TO_SMALL, _TO_BIG = (re.compile(_TARGET + word + _CASED, _FLAGS) for word in (_SMALL, _BIG))
_MADE_SMALL = re.compile(
    r"\bdowncas\w*|\b(?:lower[\s-]?case|de-?capitali[sz]e)[sd]?\s+(?:it|them|this|everything|all|every|each|the|a|any|string|word|text|input)\b"
    r"|\ball\s+(?:lower[\s-]?case|small\s+letters|lower\s+case)\b"
    r"|\b(?:remov\w*|get\s+rid\s+of|drop\w*|strip\w*|no|without)\s+" + _DET + r"(?:capitals|capital\s+letters|caps|upper[\s-]?case)\b",
    _FLAGS)  # fmt: skip
_MADE_BIG = re.compile(
    r"\bupcas\w*|\b(?:upper[\s-]?case|capitali[sz]e)[sd]?\s+(?:it|them|this|everything|all|every|each|the|a|any|string|word|text|input)\b"
    r"|\ball[\s-]+(?:caps|capitals|upper[\s-]?case|capital\s+letters|big\s+letters)\b|\bshout\w*|\byell(?:s|ed|ing)?\b",
    _FLAGS)  # fmt: skip
_BOTH_WAYS = re.compile(
    r"\bswap\w*\s+(?:the\s+)?case|\binvert\w*\s+(?:the\s+)?case|\bflip\w*\s+(?:the\s+)?case", _FLAGS
)


_LETTERING = re.compile(r"\b(?:letters?|case|caps|capitals?|characters?|chars?|shout\w*|upper\w*|lower\w*|downcas\w*|"
                        r"upcas\w*|words?|strings?|text)\b", _FLAGS)  # fmt: skip


def _case(text: str) -> str | None:
    if not _LETTERING.search(text) or _BOTH_WAYS.search(text):  # only in a text about letters
        return None
    small, big = bool(_TO_SMALL.search(text)), bool(_TO_BIG.search(text))
    if not (small or big):
        small, big = bool(_MADE_SMALL.search(text)), bool(_MADE_BIG.search(text))
    return "lower" if small and not big else "upper" if big and not small else None


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


# the way lines run: only in a text about lines ("left to right" alone is no stripe)
_LINED = re.compile(r"\b(?:stripe\w*|pinstripe\w*|lines?|lined|bands?|banded|banding|bars?|streak\w*|scan[\s-]?lines?|"
                    r"rul(?:ed|ing)|hatch\w*|blinds?)\b", _FLAGS)  # fmt: skip
_STACKED = r"\bstacked\s+(?:up\s+)?(?:from\s+)?(?:top|bottom)[\s-]+to[\s-]+(?:top|bottom)\b"  # rows one above another
_HORIZONTAL = re.compile(
    r"\bhorizontal\w*|\bside[\s-]+to[\s-]+side\b|\b(?:left|right)[\s-]+to[\s-]+(?:left|right)\b|\bscan[\s-]?lines?\b"
    r"|\bvenetian\s+blinds?\b|\blying\s+flat\b|" + _STACKED,
    _FLAGS,
)
_VERTICAL = re.compile(
    r"\bvertical\w*|\bup[\s-]+(?:and|&|n)[\s-]+down\b|\b(?:top|bottom)[\s-]+to[\s-]+(?:top|bottom)\b|\bupright\b"
    r"|\bbar[\s-]?codes?\b|\brunning\s+down\b|\bstanding\s+up\b",
    _FLAGS,
)
_DIAGONAL = re.compile(
    r"\bdiagonal\w*|\bslant\w*|\boblique\w*|\b45\s*(?:°|-?\s*degrees?\b|deg\b)|\bangled\b|\btilted\b"
    r"|\bat\s+an\s+angle\b|\bcandy[\s-]?canes?\b|\bbarber(?:'s)?[\s-]+(?:shop\s+)?poles?\b",
    _FLAGS,
)


def _orientation(text: str) -> str | None:
    if not _LINED.search(text):
        return None
    unstacked = re.sub(_STACKED, " ", text, flags=_FLAGS)  # "stacked from top to bottom" is no vertical
    found = [way for way, p in (("horizontal", _HORIZONTAL), ("vertical", _VERTICAL), ("diagonal", _DIAGONAL))
             if p.search(text if way == "horizontal" else unstacked)]  # fmt: skip
    return found[0] if len(found) == 1 else None


def directions(text: str) -> dict[str, str]:
    """Axis → way for each axis ``text`` goes one way on: ``"rotation"`` → ``"left"`` / ``"right"``,
    ``"order"`` → ``"up"`` / ``"down"``, ``"case"`` → ``"lower"`` / ``"upper"``, ``"lines"`` →
    ``"horizontal"`` / ``"vertical"`` / ``"diagonal"``."""
    found = {"rotation": _rotation(text), "order": _order(text), "case": _case(text), "lines": _orientation(text)}
    return {axis: way for axis, way in found.items() if way is not None}


def opposed(asked: dict[str, str], described: dict[str, str]) -> int:
    """How many axes the two texts both go on, in opposite ways."""
    return sum(1 for axis, way in asked.items() if axis in described and described[axis] != way)


def agreed(asked: dict[str, str], described: dict[str, str]) -> bool:
    """Whether the two texts go the same way on an axis both name, and opposite ways on none."""
    return not opposed(asked, described) and any(described.get(axis) == way for axis, way in asked.items())


_ABC_ORDER = re.compile(r"\b(?:abc|a-?b-?c|abcs|abc's)(?:\s+|-)order\b", _FLAGS)


def plain_orders(text: str) -> str:
    """``text`` with "abc order" written as descriptions write it, "alphabetical order": read as it is,
    the letters "abc" pull the query to the adapters that add 'abc'."""
    return _ABC_ORDER.sub("alphabetical order", text)
