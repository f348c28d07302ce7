"""Requests that chain steps: "reverse it and then uppercase", "dedupe; after that swap the case".

A library keeps one expert per task it was trained on, so a chain of two steps it holds only as
separate experts has no expert of its own: matched whole, such a request lands on one of its
steps (or on another chain that shares a step) and the other step is lost. ``split_steps`` cuts a
request at sequence words ("then", "after that", "finally", "once that is done"); each part is
matched to a one-step expert and the chain is generated as the exact ΔW sum of those experts.
On the text zoo the sum of the two step experts reproduces held-out two-step tasks at 0.52 exact
match (mean over the 13 held-out chains whose steps the library holds as one-step experts; a single step scores 0),
while the library's own chain experts stay better for the chains it holds (sums: 0.41 there), so
the sum is taken only when it fits the request better than the nearest expert does (the
generators' ``chain`` rule, ``benchmarks/results/generation_words.md``).

Only the request's parts are compared, never their order: the sum does not depend on it. A chain
run at compose time does (``steps_in_run_order``: "Before you Y, X" runs X first).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# Sequence words between two steps. Plain "and", "before", "after", "followed by" and a bare "; "
# are left out: "upper and lower case", "put dis before it", "the input followed by 'er'", "move
# every letter one place on; after z, start again at a" are one step.
_SEQUENCE = re.compile(
    r"""\s*(?:
        (?:,\s*|;\s*|\s+)(?:and\s+)?(?:then|afterwards?|after\s+(?:that|this)|after\s+which|and\s+finally|
                                        finally|once\s+(?:that|this)\s+is\s+done)\b[,:]?\s*
      | [.;]\s+(?:next|then|now|lastly|afterwards?|after\s+(?:that|this)|finally|
                  once\s+(?:that|this)\s+is\s+done)\b[,:]?\s*
      | ,?\s+but\s+only\s+after\s+(?:you\s+)?                  # "Y, but only after you X"
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_BEFORE = re.compile(r"^(before|after)\s+you\s+([^,]+),\s*(.+)$", re.IGNORECASE)  # "Before you Y, X"
_ONLY_AFTER = re.compile(r",?\s+but\s+only\s+after\s+", re.IGNORECASE)  # "Y, but only after you X"
_LEAD = re.compile(r"^(?:first(?:ly)?|start\s+by|begin\s+by|to\s+start)\b[,:]?\s*", re.IGNORECASE)
_FILLER = frozenset(
    "it this that them the result output string text and please do so you are done finished thanks thank thx "
    "pls ok okay be will".split()
)


def split_steps(text: str) -> list[str]:
    """The steps a request chains, in the order it names them (not always the order they run:
    "Before you Y, X" gives [Y, X]; the sum does not care); ``[text]`` when it names one step.

    A part needs a word that is not filler ("then do it" has one step); at most 4 parts.
    """
    return _split(text)[0]


def steps_in_run_order(text: str) -> list[str]:
    """``split_steps`` in the order the steps run: "Before you Y, X" and "Y, but only after you X"
    run X first; every other sequence word ("X, then Y", "After you X, Y") keeps the order named."""
    parts, reverse = _split(text)
    return parts[::-1] if reverse and len(parts) == 2 else parts


def _split(text: str) -> tuple[list[str], bool]:
    """(``split_steps``, whether the request names its two steps in the reverse of their run order)."""
    text = text.strip()
    lead = _BEFORE.match(text)
    pieces = [lead.group(2), lead.group(3)] if lead else _SEQUENCE.split(text)
    reverse = bool(lead and lead.group(1).lower() == "before") or (not lead and bool(_ONLY_AFTER.search(text)))
    parts = [_LEAD.sub("", p.strip(" ,.;:")).strip() for p in pieces]
    parts = [p for p in parts if any(w not in _FILLER for w in re.findall(r"[a-z0-9']+", p.lower()))]
    return (parts, reverse) if 2 <= len(parts) <= 4 else ([text], False)


def description_steps(descriptions: list[str]) -> int:
    """How many steps a library item does, from its descriptions: the parts most of them split into."""
    counts = [len(split_steps(d)) for d in descriptions if d.strip()]
    if not counts:
        return 1
    return max(sorted(set(counts)), key=counts.count)


def same_steps(asked: str, described: str, encode: Callable[[list[str]], Any]) -> bool:
    """Whether an adapter described as ``described`` does the steps ``asked`` chains, in the same
    run order: both name the same number (≥ 2) of steps and each asked step's closest described
    step (cosine of ``encode``'s vectors) is the one in its place, and the other way round. "sort
    it, then swap the case" is not "Swap the case, then sort the characters": same steps, other order."""
    import numpy as np

    want, have = steps_in_run_order(asked), steps_in_run_order(described)
    if len(want) < 2 or len(want) != len(have):
        return False
    v = np.asarray(encode(want + have), dtype=np.float64)  # (2n, d)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    sim = v[: len(want)] @ v[len(want) :].T  # (n, n): asked step × described step
    n = len(want)
    return all(int(sim[i].argmax()) == i for i in range(n)) and all(int(sim[:, j].argmax()) == j for j in range(n))
