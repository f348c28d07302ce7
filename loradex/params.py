"""The settings a request names (a count, a shift, a letter, an affix) against those of adapters that
differ only in them.

Adapters often come in families that do one thing with different settings: "Repeat each character 4
times" and "… 2 times", "Replace every vowel with 'z'" and "… with '#'", "Prepend 'non' to the start".
Sentence encoders place a request for a setting no sibling has ("repeat each char 5x", "swap each
vowel for the letter q", "prefix 'anti'") next to the siblings, and the best of them looks like a match.
``numbers`` and ``literals`` read what a text names: numbers (digits, after ``loradex.number_words`` made
words digits; "rot13", "5x", "3rd"; ordinals, "the first" and "the last letter" but not a "first" that
orders steps; "twice"; a run like "1st, 3rd, 5th" also names its step) and literals (short quoted spans,
"the letter q", affixes named without quotes: "the prefix anti-", "put dis in front", "slap ed on"; a
quoted symbol after "no" is an absence, not a setting). ``quote_affixes`` quotes those affixes in what
search embeds, as descriptions write them.
``families`` finds the registry's parametric families (descriptions that are the same once settings are
blanked out, with different settings; with the registry's step splitter, also a chain one of whose steps
the registry does with other settings, alone or not); ``mismatched`` says which adapters of a search's
pool belong to one and name settings of a kind the request names, none of them the request's (literals
step by step: "dashes between letters, then add ed": the adapter inserting '-' adds no 'ed').
Search lowers those when a sibling has what is asked (``Searcher._ranked``, ``SETTING_PENALTY``), and
says nothing fits when its best hit is one and no sibling has it. An adapter of no family is never
judged ("16-bit pixel art" asked as 8-bit still finds it). Importing this module imports nothing heavy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

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
# an affix named without quotes: "the prefix anti-", "-ed suffix", "put dis in front", "slap ed on",
# "add ing at the end", "non glued onto the front"
_PLACE = r"(?:on(?:to)?|to|at|in)\s+(?:the\s+)?(?:very\s+)?(?:end|front|start|beginning|back)\b"
_AFFIXES = (
    # spelled out: "add the letters e n d to the end", "tacks the three letters c a t onto the end"
    re.compile(r"\bletters\s+((?:[a-z]\s+){1,5}[a-z])(?=\s+(?:" + _PLACE + r"|in\s+front\b))", _FLAGS),
    re.compile(
        r"\b(?:prefix|suffix|ending)\s+(?:-([a-z]{2,6})\b|([a-z]{2,6})-(?!\w)|([a-z]{2,6})"
        r"(?=\s*(?:[,.;:!?)]|$)|\s+(?:to|at|onto|on|in|then|and)\b))",
        _FLAGS,
    ),  # fmt: skip
    re.compile(
        r"(?<![\w-])([a-z]{2,6})-\s+(?:prefix|in\s+front)\b|(?<![\w-])-([a-z]{2,6})\s+(?:suffix|ending)\b", _FLAGS
    ),
    re.compile(
        r"\b(?:add|append|attach|stick|put|tack|glue|slap|tag|prepend|pop|throw)(?:s|ed|ing)?\s+"
        r"(?:the\s+(?:word|letters|syllable|ending)\s+)?([a-z]{2,6})\s+"
        r"(?:" + _PLACE + r"|in\s+front\b|on\b(?=\s*(?:[,.;:!?)]|$)))",
        _FLAGS,
    ),  # fmt: skip
    re.compile(r"\b(?:prepend|append)(?:s|ed|ing)?\s+([a-z]{2,6})\s+(?:to|onto|on|before|after)\b", _FLAGS),
    re.compile(
        r"\b(?:add|tack|slap|stick|throw|pop)(?:s|ed|ing)?\s+on\s+([a-z]{2,6})(?=\s*(?:[,.;:!?)]|$)|\s+(?:to|at|onto)\b)",
        _FLAGS,
    ),
    re.compile(r"\b([a-z]{2,6})\s+(?:glued|stuck|added|attached|tacked|put|appended|prepended)\s+" + _PLACE, _FLAGS),
)
_NOT_AFFIX = frozenset(
    "a an the it its this that them they these those one ones each every some something word words letter letters "
    "char chars string text input output to of on in at for with and or is be more all any same dot dots dash "
    "dashes star stars space spaces after before behind ahead top there here again too also then now please pls thanks".split()
)
_REFUSED = re.compile(r"\b(?:no|not|without|never)\s+(?:[a-z]+\s+)?$", _FLAGS)
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
    """Short quoted spans, named letters ("the letter q") and affixes named without quotes ("the prefix
    anti-", "put dis in front"), lower-cased, less ``skip`` (samples)."""
    out = {next(g for g in m.groups() if g is not None).lower() for m in _QUOTED.finditer(text)
           if not _REFUSED.search(text, 0, m.start())}  # "no hyphen '-'": absence, not a setting  # fmt: skip
    out |= {m.group(1).lower() for m in _NAMED_LETTER.finditer(text) if m.group(1) != "I"}  # "… letter I want"
    out |= {_joined(text[a:b]).lower() for a, b in _affix_spans(text)}
    return out - {s.lower() for s in (skip or set())}


def _joined(letters: str) -> str:
    return "".join(letters.split())  # "c a t" → "cat"


def _affix_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each affix ``text`` names without quotes (``_AFFIXES``), in order, no overlaps."""
    spans = set()
    for pattern in _AFFIXES:
        for m in pattern.finditer(text):
            at = next(i for i in range(1, (m.lastindex or 1) + 1) if m.group(i) is not None)
            if _joined(m.group(at)).lower() not in _NOT_AFFIX:
                spans.add((m.start(at), m.end(at)))
    return sorted(spans)


def quote_affixes(text: str) -> str:
    """``text`` with the affixes it names without quotes quoted, as descriptions write them, hyphens
    dropped: "the prefix anti-" → "the prefix 'anti'", "put dis in front" → "put 'dis' in front" (the
    encoder reads "anti-" as a word and a hyphen, and finds the adapters that insert hyphens)."""
    out, last = [], 0
    for a, b in _affix_spans(text):
        start = a - 1 if a and text[a - 1] == "-" else a
        end = b + 1 if b < len(text) and text[b] == "-" else b
        if start < last:
            continue
        out += [text[last:start], f"'{_joined(text[a:b])}'"]
        last = end
    return "".join(out + [text[last:]])


def template(text: str) -> str:
    """``text`` with its settings blanked out: what siblings share."""
    text = _QUOTED.sub("'_'", digits_for_number_words(text))
    return " ".join(_NUMBER.sub("#", text).lower().split())


def families(descriptions: Iterable[str], split: Callable[[str], list[str]] | None = None) -> dict[str, list[str]]:
    """Template → the distinct descriptions of that shape, for the shapes two or more descriptions
    share with different settings (a registry's parametric families). With ``split`` (a description →
    its steps), a description of two or more steps one of which has the shape of a step other
    descriptions do with other settings ("Shift each letter forward by 13, then reverse the string"
    beside "Shift each letter forward by 2") is a family too, alone if no other description shares its
    whole shape: it names a setting the registry varies."""
    texts = set(descriptions)
    shapes: dict[str, set[str]] = {}
    for text in texts:
        shapes.setdefault(template(text), set()).add(text)
    out = {shape: sorted(found) for shape, found in shapes.items() if len(found) > 1}
    if split is None:
        return out
    steps = {text: split(text) for text in texts}
    named: dict[str, set[tuple[frozenset[int], frozenset[str]]]] = {}  # step shape → the settings it comes with
    for parts in steps.values():
        for part in parts:
            setting = (frozenset(numbers(part)), frozenset(literals(part)))
            if setting[0] or setting[1]:
                named.setdefault(_step_shape(part), set()).add(setting)
    for text, parts in steps.items():
        if len(parts) > 1 and any(len(named.get(_step_shape(part), ())) > 1 for part in parts):
            out.setdefault(template(text), sorted(shapes[template(text)]))
    return out


def _step_shape(step: str) -> str:
    return template(step).strip(" .;,")


def _wanted(asked: str, samples: set[str] | None,
            split: Callable[[str], list[str]] | None) -> tuple[set[int], list[set[str]]]:  # fmt: skip
    """The numbers ``asked`` names (read whole) and the literals each of its steps names (``split``;
    one step without it), steps naming none left out."""
    steps = split(asked) if split else [asked]
    return numbers(asked), [found for step in steps if (found := literals(step, samples))]


def _misses(want_n: set[int], want_ls: list[set[str]], text: str) -> bool:
    """Whether ``text`` names numbers while the request names others and none of its own, or literals
    while a step asked names others and none of its own."""
    have_n, have_l = numbers(text), literals(text)
    if want_n and have_n and not want_n & have_n:
        return True
    return any(want_l and have_l and not want_l & have_l for want_l in want_ls)


def mismatched(asked: str, described: Mapping[int, str], known: Mapping[str, list[str]],
               samples: set[str] | None = None,
               split: Callable[[str], list[str]] | None = None) -> tuple[set[int], set[int]]:  # fmt: skip
    """(off, unmet) among ``described`` (id → description): ``off``, the adapters of a parametric family
    (``known``, from ``families``) that name numbers (or literals) while ``asked`` names others of that
    kind and none of theirs (literals: each step it chains on its own, with ``split``; numbers are read
    whole, "[::-1]" or "the first letter" in one step would otherwise judge another step's number);
    ``unmet``, those of ``off`` whose family has no member with what is asked."""
    want_n, want_ls = _wanted(asked, samples, split)
    if not (want_n or want_ls):
        return set(), set()
    off: set[int] = set()
    unmet: set[int] = set()
    for i, text in described.items():
        members = known.get(template(text))
        if members is None or not _misses(want_n, want_ls, text):
            continue
        off.add(i)
        if all(_misses(want_n, want_ls, other) for other in members):
            unmet.add(i)
    return off, unmet


def named(asked: str, described: Mapping[int, str], known: Mapping[str, list[str]], samples: set[str] | None = None,
          split: Callable[[str], list[str]] | None = None) -> set[int]:  # fmt: skip
    """The adapters among ``described`` of a parametric family (``known``) that name a setting ``asked``
    names, and no other of a kind it names ("pushed 20 places" and "Shift each letter forward by 20"):
    the request singles out that member of its family. Of several numbers asked, at least half must be
    the adapter's ("cab -> 3 1 2, bed -> 2 5 4" names samples, not a rotation by 5)."""
    want_n, want_ls = _wanted(asked, samples, split)
    out = set()
    for i, text in described.items():
        if template(text) not in known or _misses(want_n, want_ls, text):
            continue
        have_n, have_l = numbers(text), literals(text)
        if 2 * len(want_n & have_n) >= len(want_n) > 0 or any(want_l & have_l for want_l in want_ls):
            out.add(i)
    return out
