"""Numbers written as words, read as digits: what a prompt is embedded from, never what is stored or shown.

Adapters are described with digits ("Shift each letter forward by 1 in the alphabet") while people
write numbers out ("shift every letter by eight places"). The text encoder embeds "eight" and "8"
apart, so a request in words lands on a sibling with another number. ``digits_for_number_words``
rewrites cardinals from zero to nine hundred and ninety-nine as digits ("twenty-one" and "twenty one"
→ 21, "Eight," → "8,"), leaving the rest of the text as typed. "one" is also a pronoun ("the one
that …", "one of them", "no one", "every other one"), so a lone "one" becomes 1 only where it
counts something: before a unit ("one place", "one-letter") or after one ("position one"), after
"by" or "of" ("shift by one", "a key of one"), before a direction ("one back", "one to the left"),
after one at the end of a clause ("back one", "left one, then …") or in a ratio ("one in four",
"one out of every two"). Ordinals ("first", "third") are kept: descriptions spell them out ("Keep
every third character"), and "first" orders the steps of a request.
Importing this module imports nothing heavy.
"""

from __future__ import annotations

import re

UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
TEENS = {w: 10 + i for i, w in enumerate("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}  # fmt: skip
TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}
VALUES = {**UNITS, **TEENS, **TENS}

_U = "one|two|three|four|five|six|seven|eight|nine"
_SEP = r"(?:-|[ \t]+)"  # "twenty-one", "twenty one" (not across a line break)
_BELOW_100 = rf"(?:(?:{'|'.join(TENS)})(?:{_SEP}(?:{_U}))?|{'|'.join(TEENS)}|{_U})"
NUMBER = re.compile(
    rf"\b(?:(?:{_U}){_SEP}hundred(?:{_SEP}(?:and{_SEP})?{_BELOW_100})?|{_BELOW_100}|zero)\b", re.IGNORECASE
)

# units a lone "one" counts when it stands next to one ("one place", "one-letter", "position one")
COUNTED = frozenset(
    "place position step letter character char time spot space slot digit word symbol item line row column "
    "pixel unit notch element byte bit cell point degree copy".split()
)
# before "one", these make it a pronoun whatever follows ("the one letter that …", "every other one")
DETERMINERS = frozenset("the a an no any every each other another this that which some same single".split())
# "by one", "of one": a count ("shift by one", "a shift of one")
COUNT_PREPOSITIONS = frozenset({"by", "of"})
# "back one", "left one": a count when the clause ends there (not "the left one", "I left one apple")
DIRECTIONS = frozenset(
    "back backward backwards forward forwards ahead along up down left right later earlier further farther".split()
)
CLAUSE_GOES_ON = frozenset({"and", "then", "or", "but", "so", "again"})

_PREV = re.compile(r"(?:([A-Za-z]+)[ \t]+)?([A-Za-z]+)[ \t]+$")
_NEXT = re.compile(r"^(?:-|[ \t]+)([A-Za-z]+)")
_THEN_DIRECTION = re.compile(rf"^[ \t]+(?:to[ \t]+the[ \t]+)?(?:{'|'.join(sorted(DIRECTIONS))})\b", re.IGNORECASE)
_RATIO = re.compile(rf"^[ \t]+(?:in|out[ \t]+of)[ \t]+(?:every[ \t]+)?(?:\d+|{_BELOW_100})\b", re.IGNORECASE)


def value(phrase: str) -> int:
    """The number a cardinal phrase names: "twenty-one" → 21, "two hundred and five" → 205."""
    total = 0
    for word in re.split(r"[-\s]+", phrase.lower()):
        if word == "hundred":
            total *= 100
        elif word != "and":
            total += VALUES[word]
    return total


def one_counts(text: str, start: int, end: int) -> bool:
    """Whether the lone "one" at ``text[start:end]`` counts something (see the module doc)."""
    before = _PREV.search(text[max(0, start - 80) : start])  # the two words before it
    prev2, prev = (before.group(1) or "").lower() if before else "", before.group(2).lower() if before else ""
    after = _NEXT.match(text[end:])
    nxt = after.group(1).lower() if after else ""
    unit = nxt in COUNTED or nxt.removesuffix("s") in COUNTED or nxt.removesuffix("es") in COUNTED
    if unit and text[end : end + 1] == "-":  # "a one-letter shift"
        return True
    if prev in DETERMINERS or nxt in ("of", "another") or text[end : end + 1] in ("'", "’"):
        return False  # "the one that …", "every other one", "one of them", "one's"
    if prev2 == "one" and prev == "by":  # "one by one": one at a time
        return False
    if unit or prev in COUNTED or prev in COUNT_PREPOSITIONS:  # "one place", "position one", "by one"
        return True
    if _THEN_DIRECTION.match(text[end:]) or _RATIO.match(text[end:]):  # "one back", "one to the left", "one in four"
        return True
    return prev in DIRECTIONS and prev2 not in DETERMINERS and (not after or nxt in CLAUSE_GOES_ON)  # "back one"


def digits_for_number_words(text: str) -> str:
    """``text`` with its cardinal number words written as digits (see the module doc)."""

    def swap(m: re.Match[str]) -> str:
        if m.group(0).lower() == "one" and not one_counts(text, m.start(), m.end()):
            return m.group(0)
        return str(value(m.group(0)))

    return NUMBER.sub(swap, text)
