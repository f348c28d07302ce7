"""Spelling slips in a request, put right before it is embedded.

People type "revrese the strnig" and "vowels to asteirsks". The text encoder splits a misspelt
word into word pieces that mean something else, so one slip costs a lot: one typo in one word of
each `retrieval_voices.json` query takes hybrid search MRR on the default registry from 0.77 to
0.63 (``benchmarks/spelling.py``). ``Speller`` corrects a word only when no vocabulary knows it:
not the encoder's (whole words of its tokenizer), not the registry's (the words of its adapters'
names, descriptions and tags), not an English dictionary (``pyspellchecker``'s word-frequency
list, MIT). The word meant is then, first, a registry word one edit away (a letter dropped, added,
changed, or two neighbours swapped), the one the registry uses most, a tie it cannot break leaving
the word alone; else the dictionary's most frequent word one edit away (a tie, again, leaves it);
else, for words of ``LONG`` letters or more, a registry word two edits away (one with the same first
letter: the scan stays small in a large registry). The registry's words come first because requests use its
terms ("swpcase" → swapcase, not a dictionary word). Words with digits, inner
capitals (``toUpperCase``), all capitals (``ROT``) and words shorter than ``SHORT`` letters are
never touched. Only what is embedded changes: what is stored and shown keeps the user's words.
Importing this module does not import torch.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

SHORT = 4  # words shorter than this are left alone (too many neighbours)
LONG = 8  # words this long may be two edits from the word meant (registry words only)
FIXED_CACHE = 10_000  # words whose fix a speller remembers
_WORD = re.compile(r"(?<![\w])[A-Za-z]+(?![\w])")  # a word not glued to digits or underscores
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


# prefixes that make new words of known ones ("decapitalize", "unshift", "nonalphabetic")
PREFIXES = ("de", "un", "re", "dis", "non", "pre", "anti", "mis", "over", "under", "sub", "semi", "multi",
            "inter", "trans", "co", "counter", "auto", "hyper", "super", "post", "mono", "bi", "tri")  # fmt: skip
# suffixes that make new words of known ones ("tileable", "glitchness", "sketchlike")
SUFFIXES = ("able", "ness", "ish", "less", "like")
# British and American spellings of one word: (ending, the other ending)
_VARIANTS = (("isation", "ization"), ("isations", "izations"), ("ise", "ize"), ("ised", "ized"), ("ises", "izes"),
             ("ising", "izing"), ("iser", "izer"), ("yse", "yze"), ("ysed", "yzed"), ("ysing", "yzing"))  # fmt: skip


def spelling_variants(word: str) -> list[str]:
    """Other spellings of ``word`` (British ↔ American: -ise/-ize, -our/-or, -yse/-yze, grey/gray,
    -tre/-ter; "colourise" → "colorise", "colourize", "colorize")."""
    stems = [word]
    if "our" in word:
        stems.append(word.replace("our", "or"))
    for a, b in (("grey", "gray"), ("gray", "grey")):
        if a in word:
            stems.append(word.replace(a, b))
    if word.endswith("tre"):
        stems.append(word[:-3] + "ter")
    out = list(stems)
    for w in stems:
        out += [w[: -len(a)] + b for a, b in _VARIANTS if w.endswith(a)]
        out += [w[: -len(b)] + a for a, b in _VARIANTS if w.endswith(b)]
    return [w for w in dict.fromkeys(out) if w != word]


def words_of(texts: Iterable[str]) -> Counter[str]:
    """Lower-case words (letters only) of ``texts``, with how often each occurs."""
    out: Counter[str] = Counter()
    for t in texts:
        out.update(w.lower() for w in re.findall(r"[A-Za-z]+", t or ""))
    return out


def edits1(word: str) -> set[str]:
    """Every string one edit from ``word``: a letter deleted, swapped with the next, changed or inserted."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    changes = {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    inserts = {a + c + b for a, b in splits for c in _LETTERS}
    return (deletes | swaps | changes | inserts) - {word}


def distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal-string-alignment distance of ``a`` and ``b`` (edits as in ``edits1``); ``limit`` + 1 once over it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@functools.cache
def _dictionary() -> Any:
    """pyspellchecker's English word frequencies, corrections one edit away (loaded once, ~0.1 s)."""
    from spellchecker import SpellChecker

    return SpellChecker(distance=1)


def _dictionary_fix(word: str) -> str | None:
    """The dictionary's most frequent word one edit from ``word``; None when there is none or two
    share the top count (pyspellchecker's own ``correction`` breaks such a tie by set order, which
    changes with the hash seed: "tileable" was read "tillable" in one process, "fileable" in the next)."""
    d = _dictionary()
    found = [w for w in d.candidates(word) or () if w != word]
    if not found:
        return None
    counts = {w: d.word_frequency[w] for w in found}
    best = max(counts.values())
    top = [w for w, c in counts.items() if c == best]
    return str(top[0]) if len(top) == 1 else None


class Speller:
    """Corrects words of a request against the encoder's words and the registry's (module docstring)."""

    def __init__(self, encoder_words: Iterable[str], registry_words: Counter[str]) -> None:
        self.encoder_words = frozenset(w.lower() for w in encoder_words)
        self.registry_words = registry_words
        self._by_length: dict[tuple[int, str], list[str]] = {}  # (length, first letter) → registry words
        self._fixed: dict[str, str | None] = {}  # word → ``fix`` (search reads a prompt twice: embedded, shown)
        for w in registry_words:
            self._by_length.setdefault((len(w), w[:1]), []).append(w)

    def known(self, word: str) -> bool:
        return word in self.encoder_words or word in self.registry_words or word in _dictionary()

    def derived(self, word: str) -> bool:
        """Whether ``word`` is a known word (``known``, or another spelling of one) behind a prefix
        (``PREFIXES``) or before a suffix (``SUFFIXES``): words people build on the fly, which no
        vocabulary lists ("decapitalize", "tileable")."""
        rests = [word[len(p) :] for p in PREFIXES if word.startswith(p)]
        rests += [word[: -len(s)] for s in SUFFIXES if word.endswith(s)]
        for rest in rests:
            if len(rest) >= SHORT and (self.known(rest) or any(self.known(v) for v in spelling_variants(rest))):
                return True
        return False

    def fix(self, word: str) -> str | None:
        """The word meant by lower-case ``word`` (None: leave it): a registry word one edit away, else
        the dictionary's, else (long words) a registry word two edits away. Worked out once a word."""
        if word not in self._fixed:
            if len(self._fixed) >= FIXED_CACHE:
                self._fixed.clear()  # a long-running server sees endless new words: bounded
            self._fixed[word] = self._fix(word)
        return self._fixed[word]

    def _fix(self, word: str) -> str | None:
        if len(word) < SHORT or self.known(word):
            return None
        for other in spelling_variants(word):  # "capitalise", "colourise": another spelling of a known word
            if self.known(other):
                return other
        if self.derived(word):  # "decapitalize", "unreverse": a known word with a prefix, no slip
            return None
        mine = [w for w in edits1(word) if w in self.registry_words]
        if not mine:
            found = _dictionary_fix(word)
            if found is not None:
                return found
        if not mine and len(word) >= LONG:
            mine = [w for n in range(len(word) - 2, len(word) + 3) for w in self._by_length.get((n, word[0]), [])
                    if distance(word, w) <= 2]  # fmt: skip
        if not mine:
            return None
        best = max(self.registry_words[w] for w in mine)
        top = [w for w in mine if self.registry_words[w] == best]
        return top[0] if len(top) == 1 else None

    def correct(self, text: str) -> str:
        """``text`` with each misspelt word put right (see the module docstring for which are touched)."""

        def one(m: re.Match[str]) -> str:
            w = m.group(0)
            if not (w.islower() or (w[0].isupper() and w[1:].islower())):
                return w  # ROT, toUpperCase: names and code, not slips
            fixed = self.fix(w.lower())
            if fixed is None:
                return w
            return fixed.capitalize() if w[0].isupper() else fixed

        return _WORD.sub(one, text)
