"""Symbols named in words, shown beside the word: what a prompt is embedded from, never what is stored.

Adapters are described with the symbol itself ("Insert '-' between every pair of adjacent
characters", "Replace every vowel with '#'") while people name it ("put a hyphen between the
letters", "a pound sign in place of every vowel"). The text encoder does not know that a hyphen is
'-': "hyphen" lands on "Delete every 'h'", "full stop" on "Append 'end'". ``symbols_for_names``
writes the symbol after its name ("a hyphen '-' between"), keeping the word for descriptions that
use it. Only names that mean the symbol whatever the context: "dots", "stars" and "plus" are also
patterns, shapes and a conjunction in image requests ("polka dots", "draw a star", "sepia plus
grid"), and are left as typed. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import re

# name (a regular expression, whole words, any case) → the symbol as descriptions quote it
NAMES: tuple[tuple[str, str], ...] = (
    (r"full[ -]?stops?", "."),
    (r"periods?", "."),
    (r"hyphens?", "-"),
    (r"dash(?:es)?", "-"),
    (r"asterisks?", "*"),
    (r"(?:pound|hash|number)[ -]signs?", "#"),
    (r"hash(?:es|tags?)?", "#"),
    (r"underscores?", "_"),
    (r"tildes?", "~"),
    (r"plus[ -]signs?", "+"),
    (r"at[ -]signs?", "@"),
    (r"dollar[ -]signs?", "$"),
    (r"ampersands?", "&"),
    (r"exclamation[ -]marks?", "!"),
    (r"question[ -]marks?", "?"),
    (r"commas?", ","),
    (r"colons?", ":"),
    (r"semicolons?", ";"),
    (r"slash(?:es)?", "/"),
    (r"backslash(?:es)?", "\\"),
)
# the words of the names, for spelling ("a hypen between letters" is a slip for a name, not for "hype")
NAME_WORDS = ("full stop period hyphen dash asterisk pound hash hashtag number sign underscore tilde plus at dollar "
              "ampersand exclamation question mark comma colon semicolon slash backslash")  # fmt: skip
# one capturing group per name, in ``NAMES``' order: the group that matched says which symbol
_NAME = re.compile(r"\b(?:" + "|".join(f"({n})" for n, _ in NAMES) + r")\b(?!\s*['\"])", re.IGNORECASE)


_REFUSED = re.compile(r"\b(?:no|not|without|never)\s+(?:an?\s+|the\s+|any\s+)?$", re.IGNORECASE)


def symbols_for_names(text: str) -> str:
    """``text`` with each symbol name followed by the symbol, quoted ("a hyphen" → "a hyphen '-'");
    a name already followed by a quote ("a dash '-'") or refused ("no hyphen", "without any commas")
    is left as it is."""

    def add(m: re.Match[str]) -> str:
        at = m.lastindex or 1  # the one group that matched
        if _REFUSED.search(text, 0, m.start()):
            return m.group(0)  # "no hyphen", "without commas": an absence, not the symbol asked for
        return f"{m.group(at)} '{NAMES[at - 1][1]}'"

    return _NAME.sub(add, text)
