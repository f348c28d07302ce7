"""Adapters made of parts that other adapters do (issue 15).

"A sepia tint combined with vertical stripes", "Replace every vowel with 'x', then shift each letter
forward by 2": a registry often holds the parts alone too (sepia, vertical stripes; the vowel swap,
the shift). People ask for the composite in the words they would use for each part ("old brown photo
with up-and-down lines"), and those words match the part adapters' descriptions (and the paraphrases
the text map learned for them) far better than the composite's own short one, so the single part
used to rank above the composite that does everything asked.

Search therefore reads a composite's text similarity together with its parts': with ``v`` the text
index's unit vectors and ``q`` the prompt's, the composite scores ``q·(v_C + Σ v_Pi) / |v_C + Σ v_Pi|``
(``with_parts``), the cosine of the prompt with the sum. The parts ``P`` are, for each part its
description names (``description_parts``: "combined with", "together with", "plus", "as well as", or
steps in sequence, ``generators.steps.split_steps``), the registry's best-matching adapter whose own
description names no parts, when that match is close (cosine ≥ ``PART_MATCH``); a composite with a
part no single adapter matches is read alone. A request for one part keeps its single adapter first:
the sum leans only partly towards that part.

Measured on the default registry's 1097 requests with a task (``benchmarks/results/registry_requests.md``,
"Composites read with their parts"): R@1 0.881 → 0.896; nothing was tuned (``PART_MATCH`` is a plain
"clearly the same thing" bar). Importing this module imports numpy, not torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from generators.steps import split_steps

PART_MATCH = 0.5  # text cosine at which a single adapter counts as a part a description names
# or, for a description's part, a match this many times closer than any other concept's (and over
# PART_FLOOR): "Terminal greens" is clearly the green-terminal palette (0.42, the next 0.19)
PART_CLEAR, PART_FLOOR = 2.0, 0.3
ROLE_SHARE = 0.5  # how clearly a single must lean to one role's parts to take that role (``inferred_roles``)
_COMBINED = re.compile(r"\b(?:combined with|together with|along with|plus|as well as)\b", re.IGNORECASE)
# Where a request for several things divides into its parts ("a star, in sepia, with polka dots"):
# punctuation and joining words, not inside a hyphenated word ("black-and-white")
_PART_BREAK = re.compile(r"[,;:.!?]+|(?<=\s)[+&](?=\s)|(?<![-\w])(?:combined with|together with|along with|and|with|plus|then|while|but|also|over|on top of|as well as|in)"
                         r"(?![-\w])", re.IGNORECASE)  # fmt: skip


def request_parts(prompt: str) -> list[str]:
    """The parts of a request for several things (``_PART_BREAK``), each with a word of three or
    more letters; one part when it does not divide."""
    parts = [" ".join(p.split()) for p in _PART_BREAK.split(prompt)]
    return [p for p in parts if re.search(r"[^\W\d_]{3,}", p)]


def description_parts(description: str) -> list[str]:
    """The parts a description names (two or more), else ``[description]``: joined by a combining
    phrase ("A sepia tint combined with vertical stripes") or steps in sequence ("X, then Y")."""
    text = description.strip()
    if _COMBINED.search(text):
        parts = [p.strip(" .,;:") for p in _COMBINED.split(text)]
        parts = [p for p in parts if re.search(r"[^\W\d_]{3,}", p)]
        if len(parts) > 1:
            return parts
    steps = split_steps(text) if text else []
    return steps if len(steps) > 1 else [text]


def is_combination(description: str) -> bool:
    """True when a description names its parts by a combining phrase ("A sepia tint combined with
    vertical stripes"): the order it names them in is a convention (palette first, texture second)
    that gives each part a role, unlike steps in sequence, whose order is the order they run in."""
    return bool(_COMBINED.search(description)) and len(description_parts(description)) > 1


def with_parts(own: float, part_cosines: Sequence[float], norm: float) -> float:
    """The cosine of a prompt with the sum of a composite's vector and its parts': ``own`` and
    ``part_cosines`` are the prompt's cosines with each (unit vectors), ``norm`` the sum's length."""
    if not part_cosines or not norm > 0 or not math.isfinite(norm):
        return own
    return (own + sum(part_cosines)) / norm


def clear_match(found: Sequence[tuple[int, float]], concept: Mapping[int, str]) -> int | None:
    """The adapter a description's part names, from its best text matches ``found`` ((id, cosine),
    best first): the best at ``PART_MATCH`` or more, or over ``PART_FLOOR`` and ``PART_CLEAR`` times
    closer than the best adapter of another concept (``concept``: id → what it does); else None."""
    if not found:
        return None
    first, cos = found[0]
    if cos >= PART_MATCH:
        return first
    other = next((c for j, c in found[1:] if concept.get(j) != concept.get(first)), 0.0)
    return first if cos >= PART_FLOOR and cos >= PART_CLEAR * max(other, 0.0) else None


def roles(parts_of: Mapping[int, Sequence[int]], concept: Mapping[int, str]) -> dict[str, set[int]]:
    """Each part's concept (``concept``: adapter id → what it does, e.g. its description) → the
    positions it takes in the registry's composites (``parts_of``: composite → its parts' adapters)."""
    out: dict[str, set[int]] = {}
    for parts in parts_of.values():
        for k, j in enumerate(parts):
            out.setdefault(concept[j], set()).add(k)
    return out


def inferred_roles(
    taken: Mapping[str, set[int]], unplaced: Collection[str], vectors: Mapping[str, Any]
) -> dict[str, set[int]]:
    """Roles for concepts no composite uses yet (``unplaced``: a palette the registry holds only alone),
    from where their text vectors lie (``vectors``: concept → unit vector (dim,)). With the concepts
    ``taken`` only ever in one position as two groups (two or more each), a concept's lean is its
    mean cosine with one group minus its mean cosine with the other; it takes the group's role when
    its lean is at least ``ROLE_SHARE`` of the groups' own members' typical lean (each member's
    without itself), so the rule reads the same in any text space. Nothing is inferred where most of
    the composites' parts take either role (steps of chains), where they give no two fixed roles, or
    for a concept without a vector."""
    fixed = [c for c, where in taken.items() if len(where) == 1 and vectors.get(c) is not None]
    if 2 * len(fixed) < len(taken):  # most parts take either role: no roles to infer
        return {}
    groups: dict[int, list[str]] = {}
    for c in fixed:
        groups.setdefault(next(iter(taken[c])), []).append(c)
    if len(groups) != 2 or any(len(g) < 2 for g in groups.values()):
        return {}
    first, second = sorted(groups)

    def lean(c: str) -> float:  # > 0: nearer the first group
        near = {r: float(np.mean([vectors[c] @ vectors[m] for m in g if m != c])) for r, g in groups.items()}
        return near[first] - near[second]

    typical = float(np.mean([lean(c) if r == first else -lean(c) for r, g in groups.items() for c in g]))
    if not typical > 0:  # the groups do not stand apart in this space
        return {}
    out: dict[str, set[int]] = {}
    for c in unplaced:
        if vectors.get(c) is None:
            continue
        x = lean(c)
        if abs(x) >= ROLE_SHARE * typical:
            out[c] = {first if x > 0 else second}
    return out


def made_of(asked: Collection[str], parts_of: Mapping[int, Sequence[int]], concept: Mapping[int, str]) -> list[int]:
    """The composites whose parts are exactly the concepts ``asked`` (in any order)."""
    want = set(asked)
    return [i for i, parts in parts_of.items() if {concept[j] for j in parts} == want]


def missing_combination(asked: Sequence[str], taken: Mapping[str, set[int]], made: Collection[int]) -> bool:
    """True when a request asks for two concepts that the registry's composites give distinct roles (one
    only ever a first part, the other only ever a second: a palette and a texture) and no composite
    (``made``) is made of both: the combination is one the registry could hold and does not. Concepts
    that take either role (steps of a chain) never count: a request's filler matches them too often."""
    if len(set(asked)) != 2 or made:
        return False
    a, b = (taken.get(c, set()) for c in set(asked))
    return {frozenset(a), frozenset(b)} == {frozenset({0}), frozenset({1})}
