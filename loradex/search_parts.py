"""How search reads adapters made of parts (``loradex.composites``): the ``PartsReading`` half of
``loradex.search.Searcher``, and the snapshot of the registry it reads them from.

Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loradex.composites import (
    PART_MATCH,
    clear_match,
    inferred_roles,
    made_of,
    missing_combination,
    request_parts,
    roles,
    with_parts,
)
from loradex.contrasts import turned_down
from loradex.ranking import RERANK_POOL
from loradex.reading import readable_for
from loradex.spelling import Speller

PART_RIVALS = 6  # matches read per description part: the best of another concept is among them past seed copies
Ranked = tuple[float, int, dict[str, float | None]]  # (score, adapter id, cosines per signal)


@dataclass(frozen=True)
class Snapshot:
    """What search reads of the whole registry (``Searcher._snapshot``)."""

    speller: Speller | None  # None for an encoder that cannot list its words
    families: dict[str, list[str]]  # parametric families (``loradex.params.families``)
    kinds: dict[str, str]  # family → kind (``Registry.family_kinds``)
    composites: dict[int, list[str]]  # adapter id → the parts its description names (``loradex.composites``)
    descriptions: dict[int, str]  # adapter id → its description
    single: frozenset[int]  # adapters whose description names no parts
    combined: frozenset[int]  # composites naming their parts by a combining phrase (``is_combination``)
    family_of: dict[int, str]  # adapter id → its family
    # composite id → its parts' adapters (None: a part no adapter matches), filled as search meets them
    parts: dict[int, list[int] | None] = field(default_factory=dict)
    vectors: dict[int, Any] = field(default_factory=dict)  # id → its text index vector (dim,), as read


class PartsReading:
    """Composites read with their parts, the parts a request names and the alternatives it turns down;
    mixed into ``Searcher``, which gives ``registry``, ``text_encoder``, ``_snapshot`` and ``text_query``."""

    registry: Any
    text_encoder: Any

    def _snapshot(self) -> Snapshot:
        raise NotImplementedError

    def text_query(self, read: str, q: Any) -> Any:
        raise NotImplementedError

    def parts_of(self, ids: Iterable[int]) -> dict[int, list[int]]:
        """Each composite among ``ids`` → its parts' adapters (``loradex.composites``), matched on first
        need and kept until the text index changes; composites with a part no adapter matches are left out."""
        view = self._snapshot()
        out = {}
        for i in ids:
            if i not in view.composites:
                continue
            if i not in view.parts:  # a composite is never a single: no need to exclude itself
                view.parts[i] = self._match_parts(view.composites[i], view.single)
            found = view.parts[i]
            if found:
                out[i] = found
        return out

    def _by_concepts(self, read: str, ranked: list[Ranked]) -> tuple[list[Ranked], list[int]]:
        """(``ranked``, missing) with the composite made of exactly the parts the request names
        (``loradex.composites.request_parts``, each part's best-matching single adapter) moved first;
        ``missing``: the two single adapters the request names when no candidate composite is made of
        them and the candidate composites give them distinct roles (``missing_combination``), of one
        family; else []."""
        view = self._snapshot()
        near = any(i in view.composites for _, i, _ in ranked[:RERANK_POOL])  # else nothing to move or judge by
        parts = request_parts(read) if near else []
        if len(parts) < 2:
            return ranked, []
        matched: dict[str, int] = {}  # concept (the single's description) → the single, in the request's order
        for found in self._best_singles(parts, view.single):
            if found is not None:
                matched.setdefault(view.descriptions[found], found)
        if len(matched) < 2:
            return ranked, []
        of = self.parts_of(i for _, i, _ in ranked)  # the candidates' composites: bounded whatever the registry's size
        made = made_of(list(matched), of, view.descriptions)
        at = {i: n for n, (_, i, _) in enumerate(ranked)}
        present = sorted((i for i in made if i in at), key=at.__getitem__)
        if present:
            best = ranked[at[present[0]]]
            return [(max(best[0], ranked[0][0]), best[1], best[2])] + [r for r in ranked if r[1] != best[1]], []
        families = {view.family_of.get(i) for i in matched.values()}  # the singles are in the snapshot
        if len(families) != 1 or None in families:
            return ranked, []
        family = next(iter(families))
        # roles come from combinations (palette + texture), not from chains' steps, of the parts' family
        mine = {i: js for i, js in of.items() if i in view.combined and view.family_of.get(i) == family}
        taken = roles(mine, view.descriptions)
        unplaced = [c for c in matched if c not in taken]
        if unplaced:  # a palette the registry holds only alone: placed by where its text lies
            where = {view.descriptions[j]: j for js in mine.values() for j in js}  # concept → one adapter doing it
            where.update({c: matched[c] for c in unplaced})
            taken = {**taken, **inferred_roles(taken, unplaced, self._unit_vectors(where))}
        return ranked, list(matched.values()) if missing_combination(list(matched), taken, made) else []

    def _vectors(self, ids: Iterable[int]) -> dict[int, Any]:
        """The snapshot's text index vectors (dim,), as read (None for an adapter without one), with
        those of ``ids`` not read yet read now."""
        view = self._snapshot()
        for j in sorted(set(ids) - set(view.vectors)):
            vec = self.registry.embeddings_of(j).get("text")
            view.vectors[j] = None if vec is None else np.asarray(vec, dtype=np.float64)
        return view.vectors

    def _unit_vectors(self, of: dict[str, int]) -> dict[str, Any]:
        """Key → the unit text index vector (dim,) of its adapter (``of``: key → id); None when it has none."""
        vectors = self._vectors(of.values())
        out: dict[str, Any] = {}
        for key, j in of.items():
            v = vectors[j]
            norm = float(np.linalg.norm(v)) if v is not None else 0.0
            out[key] = v / norm if norm > 0 else None
        return out

    def _match_parts(self, parts: list[str], single: frozenset[int]) -> list[int] | None:
        """Each part's single adapter (``_best_singles``), None when one matches none."""
        found = self._best_singles(parts, single)
        return None if any(i is None for i in found) else [i for i in found if i is not None]

    def _best_singles(self, parts: list[str], single: frozenset[int]) -> list[int | None]:
        """Per part, the single adapter (among ``single``; the index keeps those it holds) its text
        names (``loradex.composites.clear_match``), else None."""
        concept = self._snapshot().descriptions
        return [clear_match(f, concept) for f in self._texts_found(parts, single, PART_RIVALS)]

    def _texts_found(self, parts: list[str], single: frozenset[int], n: int) -> list[list[tuple[int, float]]]:
        """Per text of ``parts``, its ``n`` best-matching adapters among ``single`` (id, text cosine),
        best first; the texts are encoded in one batch."""
        if not parts or not single:
            return [[] for _ in parts]
        reads = [readable_for(self.text_encoder, part) for part in parts]
        plain = self.text_encoder.encode(reads)  # (n, dim)
        embedder = self.registry.embedders.get("text")
        batch = getattr(embedder, "query_texts", None)
        vecs = (
            batch(reads, plain)
            if callable(batch)
            else [self.text_query(r, v) for r, v in zip(reads, plain, strict=True)]
        )
        allowed = set(single)
        # (index dim,) each
        return [
            [(int(i), float(c)) for i, c in self.registry.indexes["text"].search(vec, n, allowed, None)] for vec in vecs
        ]

    def _with_parts(self, text: dict[int, float], query: Any) -> dict[int, float]:
        """Text cosines with each composite's read as the cosine with the sum of its and its parts'
        vectors (``loradex.composites.with_parts``); ``query``: the prompt in the text index's space."""
        of = self.parts_of(text)
        if not of:
            return text
        vectors = self._vectors(j for i, js in of.items() for j in (i, *js))
        parts_cos = self.registry.indexes["text"].score_ids(query, sorted({j for js in of.values() for j in js}))
        out = dict(text)
        for i, js in of.items():
            vecs = [v for v in (vectors.get(j) for j in (i, *js)) if v is not None]
            if len(vecs) < len(js) + 1 or any(j not in parts_cos for j in js):
                continue  # removed meanwhile: read alone
            total = np.sum(vecs, axis=0)  # (dim,)
            out[i] = with_parts(text[i], [parts_cos[j] for j in js], float(np.linalg.norm(total)))
        return out

    def _refused(self, prompt: str, pool: list[int]) -> set[int]:
        """The ``pool``'s adapters the prompt turns down by name ("a full round moon, not a crescent":
        the crescent adapter, ``loradex.contrasts.turned_down``): each alternative's best text match
        among them at ``PART_MATCH`` or more, with every adapter of the same description."""
        spans = turned_down(prompt)
        if not spans or not pool:
            return set()
        view = self._snapshot()
        found = self._texts_found(spans, frozenset(pool), 1)
        named = {view.descriptions.get(f[0][0]) for f in found if f and f[0][1] >= PART_MATCH}
        return {i for i in pool if view.descriptions.get(i) in named}
