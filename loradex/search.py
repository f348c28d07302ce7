"""Search: prompt → ranked adapters from the text and weights indexes, fused (``fuse``).

``Searcher`` holds nothing but the parts it reads (registry, text encoder, weight embedder); the
service builds one when it opens. Importing this module does not import torch.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np

from encoders.kind_prior import prior_kind
from generators.steps import description_steps, split_steps
from loradex.composites import (
    PART_MATCH,
    clear_match,
    description_parts,
    inferred_roles,
    is_combination,
    made_of,
    missing_combination,
    request_parts,
    roles,
    with_parts,
)
from loradex.contrasts import turned_down, without_contrasts
from loradex.conversions import conversion, reversed_by
from loradex.directions import agreed, directions, opposed, plain_orders
from loradex.errors import SearchError
from loradex.examples import examples_in
from loradex.modality import KINDS as MODALITY_KINDS
from loradex.modality import asked_kind
from loradex.number_words import digits_for_number_words
from loradex.params import families, mismatched, named, quote_affixes
from loradex.relevance import Calibration
from loradex.shift_words import forward_shifts
from loradex.spelling import Speller, words_of
from loradex.symbol_words import NAME_WORDS, symbols_for_names
from loradex.types import SEARCH_MODES, Filters, SearchHit, SearchResults

MIN_SPREAD = 0.1  # cosine spread below which a signal counts as uninformative for a query
# How much each signal counts in hybrid search. The weight encoder is trained for its family's
# adapters and separates sibling tasks the generic text encoder puts close together, so it leads;
# metadata text still breaks ties and finds adapters of tasks the encoder never saw. Chosen for plain
# text-encoder cosines; a registry text map carries its own (``encoders.registry_text_map``).
SIGNAL_WEIGHTS = {"weights": 0.7, "text": 0.3}
# Hybrid scores are standardised over each query's top REFERENCE_POOL candidates, whatever k is:
# the same adapter for the same prompt gets the same score at k = 1 and at k = 50.
REFERENCE_POOL = 64
VERDICT_POOL = 10  # "nothing fits" when none of the top VERDICT_POOL candidates is likely relevant
PART_RIVALS = 6  # matches read per description part: the best of another concept is among them past seed copies
RERANK_POOL = 10  # hybrid hits re-ranked by description precision (``rerank_by_precision``), whatever k is
# hybrid hits of that pool lose this much score per step their description names more or fewer than the
# request does (``rerank_by_steps``): 0.5 of a standardised unit, the best of 0.1 / 0.25 / 0.5 / 1.0 by MRR on
# training-task requests of keywords/everyday/jargon (benchmarks/results/retrieval_steps.md)
STEP_PENALTY = 0.5
# hybrid hits of that pool lose this much score per axis (rotation, sort order, case, lines) their description goes the
# other way on than the request (``loradex.directions``): a full standardised unit, as the opposite way is
# another task, not a lesser fit
DIRECTION_PENALTY = 1.0
# and gain this much per request where their description goes the way asked on an axis and the other way on
# none: half the penalty, as the same way can still be another count ("the last letter to the front" is not
# "Rotate the string right by 4"); 0.5 moved 20 requests up and 1 down of 987 (1.0: 31 up, 4 down)
DIRECTION_BONUS = 0.5
# standardised units off an adapter whose siblings differ from it only in a setting and which names another
# setting than the request does (``loradex.params``): the same unit as a direction the other way
SETTING_PENALTY = 1.0
# off an image adapter for a request only about text, or a text adapter for one only about pictures
# (``loradex.modality``): another kind of adapter altogether
MODALITY_PENALTY = 1.0
MIN_PRECISION_SPREAD = 0.05  # precision spread below which it cannot reorder the pool
HIT_FIELDS = ("id", "name", "family", "format", "origin", "ranks", "description", "trigger_words", "tags",
              "module_count", "sha256")  # fmt: skip

# characters the text encoder's tokenizer reads as unknown: pictographs and other symbols (emoji),
# their variation selectors and joiners, private-use and unassigned code points
DROPPED_CATEGORIES = frozenset({"So", "Co", "Cn", "Cs"})
DROPPED_CHARS = frozenset({"\u200d", *map(chr, range(0xFE00, 0xFE10)), *map(chr, range(0x1F3FB, 0x1F400))})

_T = TypeVar("_T")

# one query of a signal: (query vector, ids it may score (None: all allowed), ids it must not score)
Query = tuple[Any, set[int] | None, set[int] | None]
Ranked = tuple[float, int, dict[str, float | None]]  # (score, adapter id, cosines per signal)


def readable_prompt(prompt: str, knows: Callable[[str], bool] | None = None) -> str:
    """The prompt as the text encoder should read it: symbols (emoji, pictographs) its tokenizer does
    not know are dropped (``knows(char)``, the encoder's ``TextEncoder.knows``; None: drop them all),
    as are joiners, variation selectors and skin tones; spaces collapsed. An unknown symbol would be
    an unknown token, and one glued to a word (``glowing✨``) makes the whole word unknown, which
    pulls the query away from every description. A prompt of nothing but such characters is kept."""
    kept = []
    for c in prompt:
        if c in DROPPED_CHARS:
            continue
        unknown = unicodedata.category(c) in DROPPED_CATEGORIES and not (knows is not None and knows(c))
        kept.append(" " if unknown else c)
    text = " ".join("".join(kept).split())
    return text or prompt


def readable_for(encoder: Any, prompt: str, speller: Speller | None = None) -> str:
    """What search, the map's query point and generation embed: ``readable_prompt`` with ``encoder``'s
    own tokenizer deciding which symbols it knows (when it can tell: ``TextEncoder.knows``), spelling
    slips put right (``speller``, ``Searcher.speller``: the encoder's and the registry's words), number
    words as digits (``digits_for_number_words``: descriptions say "by 8", people "by eight", and the
    encoder embeds the two apart), symbol names with their symbol (``symbols_for_names``: descriptions
    say "'-'", people "a hyphen"), a letter shift asked backwards as the forward one (``forward_shifts``:
    "back by 2" is "forward by 24"), affixes named without quotes quoted (``quote_affixes``: "the
    prefix anti-" is "the prefix 'anti'"), "abc order" as "alphabetical order" (``plain_orders``), and
    without the alternatives it turns down (``without_contrasts``: "horizontal stripes, not vertical").
    Only for embedding: what is stored and shown keeps the words."""
    read = readable_prompt(without_contrasts(prompt), getattr(encoder, "knows", None))
    digits = digits_for_number_words(speller.correct(read) if speller is not None else read)
    return symbols_for_names(quote_affixes(plain_orders(forward_shifts(digits))))


def fuse(signals: dict[str, dict[int, float]], weights: dict[str, float] | None = None,
         reference: set[int] | None = None) -> dict[int, float]:  # fmt: skip
    """Hybrid score: per signal, cosines standardised over the reference pool (``reference``: the
    same candidates whatever k asks for, so an adapter's score does not depend on k; default: all
    scored), then a weighted mean (``weights``, default ``SIGNAL_WEIGHTS``; a registry with a text
    map uses its map's, ``Searcher.signal_weights``) over the signals an adapter has.
    Standardising puts the weight encoder's wide cosines and the text encoder's narrow ones on one
    scale, so a signal that singles out one adapter is not drowned by one that finds everything
    roughly alike; the spread is floored at ``MIN_SPREAD`` so a signal that is flat for this query
    cannot reorder the other."""
    weights = SIGNAL_WEIGHTS if weights is None else weights
    num: dict[int, float] = {}
    den: dict[int, float] = {}
    for kind, scores in signals.items():
        if not scores:
            continue
        w = weights.get(kind, 1.0)
        vals = [v for i, v in scores.items() if reference is None or i in reference] or list(scores.values())
        mean = sum(vals) / len(vals)
        std = max((sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5, MIN_SPREAD)
        for i, v in scores.items():
            num[i] = num.get(i, 0.0) + w * (v - mean) / std
            den[i] = den.get(i, 0.0) + w
    return {i: num[i] / den[i] for i in num}


def description_precision(prompt_tokens: Any, description_tokens: Any) -> float:
    """How much of a description the prompt asks for: the mean, over the description's word pieces,
    of each one's best cosine with a word piece of the prompt (BERTScore precision). An adapter that
    does more than was asked ("swap the case, then reverse" for "swap the case") scores lower than
    one that does just that, where the sentence cosines of both are close."""
    if len(prompt_tokens) == 0 or len(description_tokens) == 0:
        return 0.0
    return float((description_tokens @ prompt_tokens.T).max(axis=1).mean())  # (desc tokens, prompt tokens)


def rerank_by_precision(ranked: list[tuple[float, int, Any]], precision: dict[int, float],
                        weight: float) -> list[tuple[float, int, Any]]:  # fmt: skip
    """``ranked`` (best first) with the top ``RERANK_POOL``'s scores raised by ``weight`` × their
    description precision standardised over that pool (spread floored at ``MIN_PRECISION_SPREAD``);
    the rest keep their order below the pool's weakest adjustment. Re-sorted."""
    pool = [t for t in ranked[:RERANK_POOL] if t[1] in precision]
    if weight <= 0 or len(pool) < 2:
        return ranked
    vals = [precision[i] for _, i, _ in pool]
    mean = sum(vals) / len(vals)
    std = max((sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5, MIN_PRECISION_SPREAD)
    lift = {i: weight * (precision[i] - mean) / std for _, i, _ in pool}
    floor = min(lift.values())
    out = [(score + lift.get(i, floor), i, parts) for score, i, parts in ranked]
    out.sort(key=lambda t: (-t[0], t[1]))
    return out


def rerank_by_steps(ranked: list[tuple[float, int, Any]], steps: dict[int, int], asked: int,
                    penalty: float | None = None) -> list[tuple[float, int, Any]]:  # fmt: skip
    """``ranked`` (best first) with each of ``steps``' adapters (id → the steps its description names,
    ``generators.steps.split_steps``) lowered by ``penalty`` per step more or fewer than ``asked``:
    "shift letters +1" asks one step, and an adapter that shifts and also rotates does more than
    that. Re-sorted; adapters not in ``steps`` keep their scores. ``penalty``: ``STEP_PENALTY``."""
    penalty = STEP_PENALTY if penalty is None else penalty
    return lowered(ranked, {i: penalty * abs(n - asked) for i, n in steps.items()})


def lowered(ranked: list[tuple[float, int, Any]], drops: dict[int, float]) -> list[tuple[float, int, Any]]:
    """``ranked`` (best first) with each of ``drops``' adapters' score lowered by its drop, re-sorted."""
    if not any(drops.values()):
        return ranked
    out = [(score - drops.get(i, 0.0), i, parts) for score, i, parts in ranked]
    out.sort(key=lambda t: (-t[0], t[1]))
    return out


def _reads_indexes(method: Callable[..., _T]) -> Callable[..., _T]:
    """Run a ``Searcher`` method under the registry's ``swap`` lock (``registry.swap``): an encoder
    swapped in meanwhile (a new text map re-embedding the index) is waited out, not half seen."""

    @functools.wraps(method)
    def read(self: Searcher, *args: Any, **kwargs: Any) -> _T:
        with self.registry.swap.reading():
            return method(self, *args, **kwargs)

    return read


def after_originals(hits: list[SearchHit], copies: dict[int, int]) -> list[SearchHit]:
    """``hits`` with each copy (``copies``: id → its original; a generated adapter that is a
    registered one's weights as is) that ranks above its original moved to right after it, scored
    as it is. A copy's description is the request it was made for, so its text signal can outrank
    the original it copied for the next similar request; the original is what was checked."""
    at = {int(h.adapter["id"]): n for n, h in enumerate(hits)}
    moved = {c for c, o in copies.items() if c in at and o in at and at[c] < at[o]}
    if not moved:
        return hits
    out: list[SearchHit] = []
    for h in hits:
        i = int(h.adapter["id"])
        if i in moved:
            continue
        out.append(h)
        for c in sorted((c for c in moved if copies[c] == i), key=at.__getitem__):
            hit = hits[at[c]]
            rel = hit.relevance if hit.relevance is None or h.relevance is None else min(hit.relevance, h.relevance)
            out.append(replace(hit, score=min(hit.score, h.score), relevance=rel,
                               why=f"{hit.why}; a copy of #{i} ({h.adapter['name']}): listed after it"))  # fmt: skip
    return out


@dataclass(frozen=True)
class _Snapshot:
    """What search reads of the whole registry (``Searcher._snapshot``)."""

    speller: Speller | None  # None for an encoder that cannot list its words
    families: dict[str, list[str]]  # parametric families (``loradex.params.families``)
    kinds: dict[str, str]  # family → kind (``Registry.family_kinds``)
    composites: dict[int, list[str]]  # adapter id → the parts its description names (``loradex.composites``)
    descriptions: dict[int, str]  # adapter id → its description
    single: frozenset[int]  # adapters whose description names no parts
    combined: frozenset[int]  # composites naming their parts by a combining phrase (``is_combination``)
    # composite id → its parts' adapters (None: a part no adapter matches), filled as search meets them
    parts: dict[int, list[int] | None] = field(default_factory=dict)
    vectors: dict[int, Any] = field(default_factory=dict)  # id → its text index vector (dim,), as read


def verdict_among(calibration: Calibration, pool: list[tuple[int, float | None]], text: dict[int, float] | None,
                 fits: Callable[[int], bool]) -> bool | None:  # fmt: skip
    """``Calibration.nothing_fits`` over the adapters that can do the request (``fits``: of the kind it
    is about, not converting the other way round): the relevances of the verdict's ``pool`` ((id, relevance), best first) and the best
    text cosine (``text``: id → cosine, None without a text signal) among those. A picture request
    that only a text adapter's words resemble fits nothing; so does a pool with none of the kind."""
    mine = [r for i, r in pool if fits(i)]
    if pool and not mine:
        return True
    best = max((c for i, c in text.items() if fits(i)), default=None) if text is not None else None
    return calibration.nothing_fits(mine, best)


class Searcher:
    """Prompt → top-k adapters with a per-signal score breakdown.

    ``text``: cosine of the prompt with the adapter's metadata text; ``weights``: cosine with its
    weight embedding (trained into the same space); ``hybrid``: both signals computed exactly for
    every candidate either index proposed, fused by ``fuse`` (the score is then a standardised
    similarity, not a cosine; ``scores`` keeps the cosines)."""

    def __init__(self, registry: Any, text_encoder: Any, weight_embedder: Any) -> None:
        self.registry, self.text_encoder, self.weight_embedder = registry, text_encoder, weight_embedder
        self._calibration: tuple[str, Calibration] | None = None
        self._view: tuple[tuple[Any, ...], _Snapshot] | None = None  # (text index state, snapshot)

    def speller(self) -> Speller | None:
        """Spelling for prompts (``loradex.spelling``): the text encoder's words and the words of the
        registry's adapter names, descriptions and tags and of the symbol names search reads (rebuilt
        when the text index changes); None for an encoder that cannot list its words."""
        if not callable(getattr(self.text_encoder, "words", None)):
            return None  # and no snapshot: a registry without a text index has none to key it on
        return self._snapshot().speller

    def family_kinds(self) -> dict[str, str]:
        """family → kind (``Registry.family_kinds``), re-read when the text index changes."""
        return self._snapshot().kinds

    def setting_families(self) -> dict[str, list[str]]:
        """The registry's parametric families (``loradex.params.families``) of its descriptions, rebuilt
        when the text index changes."""
        return self._snapshot().families

    def _snapshot(self) -> _Snapshot:
        """What search reads of the whole registry, built from one listing of it whenever the text index
        has changed (an ingest or a removal changes it)."""
        index = self.registry.indexes["text"]
        key = (id(index), index.changes, len(index), index.version)  # O(1): no copy of the ids per search
        if self._view is None or self._view[0] != key:
            rows = self.registry.list()
            listed = getattr(self.text_encoder, "words", None)
            speller = None
            if callable(listed):
                texts = [" ".join([r["name"], r.get("description") or "", *(r.get("tags") or [])]) for r in rows]
                texts.append(NAME_WORDS)  # symbol names search reads ("a hyphen" → '-'), misspelt like any word
                speller = Speller(listed(), words_of(texts))
            setting_families = families((r.get("description") or "" for r in rows), split_steps)
            described = {int(r["id"]): str(r.get("description") or "") for r in rows}
            named = {i: description_parts(text) for i, text in described.items()}
            composites = {i: parts for i, parts in named.items() if len(parts) > 1}
            single = frozenset(i for i in named if i not in composites)
            combined = frozenset(i for i in composites if is_combination(described[i]))
            snapshot = _Snapshot(
                speller, setting_families, self.registry.family_kinds(), composites, described, single, combined
            )
            self._view = (key, snapshot)
        return self._view[1]

    def text_settings(self) -> dict[str, Any] | None:
        """The registry's text map's search settings (``encoders.registry_text_map.search_settings``),
        None when its text index holds plain cosines."""
        settings = getattr(self.registry.embedders.get("text"), "search_settings", None)
        return settings if isinstance(settings, dict) else None

    @property
    def signal_weights(self) -> dict[str, float]:
        """Hybrid fusion weights: ``SIGNAL_WEIGHTS``, or the text map's when the registry has one."""
        settings = self.text_settings()
        return dict(settings["signal_weights"]) if settings and "signal_weights" in settings else SIGNAL_WEIGHTS

    def fusion_weights(self, text: dict[int, float]) -> dict[str, float]:
        """Hybrid fusion weights for one query, given its text cosines: ``signal_weights``, or the
        text map's ``untrained_top_weights`` (text-led) when the text signal's best adapter is one
        its family's weight encoder was not trained on (the checkpoint's record,
        ``encoders.weight.trained``): the weights signal then points at what the encoder knows,
        often a sibling task, and text should lead (``benchmarks/results/retrieval_trust.md``).
        Otherwise the map's ``family_signal_weights`` for that adapter's family when it gives them
        (how far a family's weight encoder can be trusted on what it knows differs by family), else
        the fixed weights; registries without a map (or a map config without the keys) keep them."""
        fixed = self.signal_weights
        settings = self.text_settings() or {}
        led = settings.get("untrained_top_weights")
        by_family = settings.get("family_signal_weights") or {}
        if not (led or by_family) or not text:
            return fixed
        top = min(text, key=lambda i: (-text[i], i))  # the text signal's best adapter
        found = self.registry.identity_of(top)  # (family, sha256), None when removed meanwhile
        if found is None:
            return fixed
        learned = self.weight_embedder.trained_on(found[0])
        if led and learned is not None and found[1] not in learned:
            return dict(led)
        return dict(by_family.get(found[0]) or fixed)

    @property
    def calibration(self) -> Calibration:
        """The relevance fit for the weight encoders and text map in use (reloaded when they change)."""
        settings = self.text_settings()
        version = str(getattr(self.weight_embedder, "version", ""))
        version += "|" + json.dumps(settings and settings.get("calibration"), sort_keys=True)
        if self._calibration is None or self._calibration[0] != version:
            fits: dict[str, Any] = getattr(self.weight_embedder, "calibrations", dict)()  # may have none
            cal = Calibration.load(fits)
            if settings and "calibration" in settings:
                cal = cal.for_mapped_text(settings["calibration"])
            self._calibration = (version, cal)
        return self._calibration[1]

    @_reads_indexes
    def search(self, prompt: str, k: int, mode: str, filters: Filters) -> SearchResults:
        if mode not in SEARCH_MODES:
            raise SearchError(f"unknown search mode {mode!r}; known: {', '.join(SEARCH_MODES)}")
        if not prompt or not prompt.strip():
            raise SearchError("empty prompt")
        if k < 1:
            raise SearchError(f"k must be ≥ 1, got {k}")
        allowed = {r["id"] for r in self.registry.list(filters)} if filters else None
        kinds = [kd for kd in ("weights", "text") if mode in (kd, "hybrid")]
        if mode == "weights":
            weighed = self.registry.indexes["weights"].ids
            if not (weighed & allowed if allowed is not None else weighed):
                have = ", ".join(sorted(self.weight_embedder.families)) or "none yet"
                raise SearchError(
                    "no weight encoder covers these adapters (families with one: "
                    f"{have}); use --mode text or hybrid, or train one with loradex train-encoder"
                )
        speller = self.speller()
        read = readable_for(self.text_encoder, prompt, speller)
        q = self.text_encoder.encode([read])[0]  # (dim,)
        pool = max(k * 4, REFERENCE_POOL) if mode == "hybrid" else k
        queries = self._queries(read, q, kinds, allowed)
        candidates: set[int] = set()
        reference: set[int] = set()  # each query's top REFERENCE_POOL: the same set for every k
        for kind in kinds:
            for vec, ids, excluded in queries[kind]:
                found = self.registry.indexes[kind].search(vec, pool, ids, excluded)  # best first
                candidates.update(i for i, _ in found)
                reference.update(i for i, _ in found[:REFERENCE_POOL])
        signals = self._signals(queries, sorted(candidates))
        ranked, unmet, singled, turned = self._ranked(read, signals, reference, mode, q)
        shown = self._hits(ranked[: max(k, VERDICT_POOL)], kinds)
        calibration = self.calibration  # the verdict reads the same candidates whatever k is
        # of the kind the request is about, when it says: a text adapter cannot do a picture's request
        of_kind = self._of_kind(read, q, signals.get("text", {}))
        judged = [(int(h.adapter["id"]), h.relevance) for h in shown[:VERDICT_POOL]]
        unfit = turned | self._refused(prompt, [i for i, _ in judged])  # the other way round; turned down by name
        verdict = verdict_among(calibration, judged, signals.get("text"), lambda i: i not in unfit and of_kind(i))
        if unmet:  # the best is one of a family none of which has the setting asked
            verdict = True
        elif singled and verdict:  # the best names the setting asked, or goes the way asked
            verdict = False
        made = [int(h.adapter["id"]) for h in shown if h.adapter.get("origin", "ingested") != "ingested"]
        copies_of = getattr(self.registry, "copies_of", None)
        shown = after_originals(shown, copies_of(made) if made and copies_of else {})
        asked = without_contrasts(prompt)  # shown as read: the slips put right, turned-down alternatives left out
        fixed = speller.correct(asked) if speller is not None else asked
        return SearchResults(shown[:k], verdict, calibration.nothing_fits_below, fixed if fixed != prompt else None)

    @_reads_indexes
    def scores_among(self, prompt: str, ids: list[int]) -> dict[int, tuple[float, dict[str, float | None]]]:
        """Hybrid search for ``prompt`` restricted to ``ids`` (adapters loaded together, e.g. the ones
        a composition routes between): id → (score, cosines per signal), the score as ``search``
        makes it with those adapters as the whole pool (signals standardised over them, the text map's
        fusion weights and description-precision lift). Ids with no signal are left out."""
        if not prompt or not prompt.strip():
            raise SearchError("empty prompt")
        kinds = ["weights", "text"]
        read = readable_for(self.text_encoder, prompt, self.speller())
        q = self.text_encoder.encode([read])[0]  # (dim,)
        mine = set(ids)
        signals = self._signals(self._queries(read, q, kinds, mine), sorted(mine))
        return {i: (score, parts) for score, i, parts in self._ranked(read, signals, mine, "hybrid", q)[0]}

    def _queries(self, read: str, q: Any, kinds: list[str], allowed: set[int] | None) -> dict[str, list[Query]]:
        """Each signal's queries for the prompt as read (``readable_for``) and its vector ``q`` (dim,)."""
        queries: dict[str, list[Query]] = {kind: [(q, allowed, None)] for kind in kinds}
        if "text" in kinds:  # the text index's space: the registry's text map (and its tuned side), if any
            queries["text"] = [(self.text_query(read, q), allowed, None)]
        if "weights" in kinds:
            queries["weights"] = self._weight_queries(q, allowed)
        return queries

    def text_query(self, read: str, q: Any) -> Any:
        """The prompt in the text index's space: through the registry's text map (``query_text``: a
        tuned map encodes the text again with its fine-tuned encoder), else ``q`` as is. The weights
        signal keeps ``q``: its query heads were trained on the plain encoder."""
        embedder = self.registry.embedders.get("text")
        to_index = getattr(embedder, "query_text", None)
        if callable(to_index):
            return to_index(read, q)
        to_index = getattr(embedder, "query", None)
        return to_index(q) if callable(to_index) else q

    def _signals(self, queries: dict[str, list[Query]], pooled: list[int]) -> dict[str, dict[int, float]]:
        """Exact cosines of the ``pooled`` adapters per signal (each scored by the query that may score it)."""
        signals: dict[str, dict[int, float]] = {}
        for kind, found in queries.items():
            signals[kind] = {}
            for vec, ids, excluded in found:
                mine = [i for i in pooled if (ids is None or i in ids) and not (excluded and i in excluded)]
                signals[kind].update(self.registry.indexes[kind].score_ids(vec, mine))
        if signals.get("text"):  # a composite is read with its parts (``loradex.composites``)
            signals["text"] = self._with_parts(signals["text"], queries["text"][0][0])
        return signals

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

    def _by_concepts(self, read: str, ranked: list[Ranked]) -> tuple[list[Ranked], bool]:
        """(``ranked``, missing) with the composite made of exactly the parts the request names
        (``loradex.composites.request_parts``, each part's best-matching single adapter) moved first;
        ``missing``: no candidate composite is made of them and they are two the candidate composites
        give distinct roles (``missing_combination``), of one family."""
        view = self._snapshot()
        near = any(i in view.composites for _, i, _ in ranked[:RERANK_POOL])  # else nothing to move or judge by
        parts = request_parts(read) if near else []
        if len(parts) < 2:
            return ranked, False
        matched: dict[str, int] = {}  # concept (the single's description) → the single, in the request's order
        for found in self._best_singles(parts, view.single):
            if found is not None:
                matched.setdefault(view.descriptions[found], found)
        if len(matched) < 2:
            return ranked, False
        of = self.parts_of(i for _, i, _ in ranked)  # the candidates' composites: bounded whatever the registry's size
        made = made_of(list(matched), of, view.descriptions)
        at = {i: n for n, (_, i, _) in enumerate(ranked)}
        present = sorted((i for i in made if i in at), key=at.__getitem__)
        if present:
            best = ranked[at[present[0]]]
            return [(max(best[0], ranked[0][0]), best[1], best[2])] + [r for r in ranked if r[1] != best[1]], False
        families = {(self.registry.identity_of(i) or ("", ""))[0] for i in matched.values()}
        if len(families) != 1:
            return ranked, False
        family = next(iter(families))
        # roles come from combinations (palette + texture), not from chains' steps, of the parts' family
        mine = {
            i: js
            for i, js in of.items()
            if i in view.combined and (self.registry.identity_of(i) or ("", ""))[0] == family
        }
        taken = roles(mine, view.descriptions)
        unplaced = [c for c in matched if c not in taken]
        if unplaced:  # a palette the registry holds only alone: placed by where its text lies
            where = {view.descriptions[j]: j for js in mine.values() for j in js}  # concept → one adapter doing it
            where.update({c: matched[c] for c in unplaced})
            taken = {**taken, **inferred_roles(taken, unplaced, self._unit_vectors(where))}
        return ranked, missing_combination(list(matched), taken, made)

    def _unit_vectors(self, of: dict[str, int]) -> dict[str, Any]:
        """Key → the unit text index vector (dim,) of its adapter (``of``: key → id); None when it has none."""
        view = self._snapshot()
        out: dict[str, Any] = {}
        for key, j in of.items():
            if j not in view.vectors:
                vec = self.registry.embeddings_of(j).get("text")
                view.vectors[j] = None if vec is None else np.asarray(vec, dtype=np.float64)
            v = view.vectors[j]
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
        view = self._snapshot()
        needed = sorted({j for i, js in of.items() for j in (i, *js)} - set(view.vectors))
        for j in needed:
            vec = self.registry.embeddings_of(j).get("text")
            view.vectors[j] = None if vec is None else np.asarray(vec, dtype=np.float64)
        parts_cos = self.registry.indexes["text"].score_ids(query, sorted({j for js in of.values() for j in js}))
        out = dict(text)
        for i, js in of.items():
            vecs = [v for v in (view.vectors.get(j) for j in (i, *js)) if v is not None]
            if len(vecs) < len(js) + 1 or any(j not in parts_cos for j in js):
                continue  # removed meanwhile: read alone
            total = np.sum(vecs, axis=0)  # (dim,)
            out[i] = with_parts(text[i], [parts_cos[j] for j in js], float(np.linalg.norm(total)))
        return out

    def _of_kind(self, read: str, q: Any, text: dict[int, float]) -> Callable[[int], bool]:
        """Whether an adapter is of the kind the prompt as read is about (``wanted_kind``): True for
        all when it does not say, or for adapters of a family whose kind is not known."""
        wanted = self.wanted_kind(read, q)
        if wanted is None:
            return lambda i: True
        kinds = self.family_kinds()
        families = {i: (self.registry.identity_of(i) or ("", ""))[0] for i in text}

        def fits(i: int) -> bool:
            family = families.get(i)
            if family is None:
                found = self.registry.identity_of(i)
                family = found[0] if found else ""
            kind = kinds.get(family)
            return kind not in MODALITY_KINDS or kind == wanted

        return fits

    def wanted_kind(self, read: str, q: Any = None) -> str | None:
        """The kind of adapter (``loradex.modality.KINDS``) the prompt as read is about: from its words
        (``asked_kind``), else from the registry's kind prior on its plain vector ``q`` (d,) when the
        text map has one and is sure (``encoders.kind_prior``: "black and white" is about pictures)."""
        said = asked_kind(read)
        if said is not None or q is None:
            return said
        prior = (self.text_settings() or {}).get("kind_prior")
        return prior_kind(prior, q) if prior else None

    def _ranked(self, read: str, signals: dict[str, dict[int, float]], reference: set[int], mode: str,
                q: Any = None) -> tuple[list[Ranked], set[int], bool, set[int]]:  # fmt: skip
        """((score, id, cosines) best first, unmet, singled, turned): the signals fused (``fuse`` over
        ``reference``) when more than one has scores, then, in hybrid mode, re-ranked by description
        precision (with a text map), the steps asked, the way asked (``loradex.directions``) and the
        settings asked (``loradex.params``); ``unmet``: the best adapter before those priors, when its
        family has no member with the setting asked; ``singled``: the best after them names a setting
        the request names (``loradex.params.named``) or goes the way it asks (``agreed``); ``turned``:
        adapters converting the other way round from the request (``loradex.conversions``), lowered
        and unfit. ``q``: the prompt's plain vector (d,), for the kind prior (``wanted_kind``)."""
        kinds = list(signals)
        live = [kind for kind in kinds if signals[kind]]
        if len(live) > 1:
            fused = fuse(signals, self.fusion_weights(signals["text"]), reference)
        else:
            fused = signals[live[0]] if live else {}
        ranked = []
        for i in fused:
            parts: dict[str, float | None] = {kind: signals[kind].get(i) for kind in kinds}
            ranked.append((fused[i], i, parts))
        ranked.sort(key=lambda t: (-t[0], t[1]))
        if mode != "hybrid":
            return ranked, set(), False, set()
        found = self.registry.hits([i for _, i, _ in ranked[:RERANK_POOL]])  # the pool's descriptions
        weight = float((self.text_settings() or {}).get("precision_weight", 0.0))
        if weight > 0 and callable(getattr(self.text_encoder, "token_vectors", None)):
            ranked = rerank_by_precision(ranked, self._precision(read, ranked[:RERANK_POOL], found), weight)
        described = {i: str(info["description"]) for i, info in found.items() if info.get("description")}
        steps = {i: description_steps([text]) for i, text in described.items()}
        ranked = rerank_by_steps(ranked, steps, len(split_steps(read)))
        asked = directions(read)  # "the last two letters to the front": not the adapter that rotates left
        ways = {i: directions(text) for i, text in described.items()} if asked else {}
        drops = {i: DIRECTION_PENALTY * opposed(asked, way) - (DIRECTION_BONUS if agreed(asked, way) else 0.0)
                 for i, way in ways.items()}  # fmt: skip
        samples = {side for pair in examples_in(read) for side in pair}  # quoted samples name no setting
        # "repeat each char 3x": not the ones repeating 2 or 4 times; "… 5x": none does (``unmet``)
        off, unmet = mismatched(read, described, self.setting_families(), samples, split_steps)
        for i in off - unmet:
            drops[i] = drops.get(i, 0.0) + SETTING_PENALTY
        turned = self._turned(read, described)  # "Shakespeare into modern English": not the other way
        for i in turned:
            drops[i] = drops.get(i, 0.0) + DIRECTION_PENALTY
        wanted = self.wanted_kind(read, q)  # "dots between letters": not the polka-dot image style
        if wanted is not None:
            of_family = self.family_kinds()
            for i, info in found.items():
                kind = of_family.get(str(info.get("family")))
                if kind in MODALITY_KINDS and kind != wanted:
                    drops[i] = drops.get(i, 0.0) + MODALITY_PENALTY
        top = {ranked[0][1]} if ranked else set()
        ranked = lowered(ranked, drops)
        ranked, missing = self._by_concepts(read, ranked)
        if missing:  # two parts the registry combines, asked in a combination it does not hold
            return ranked, {ranked[0][1]}, False, turned
        if not (ranked and ranked[0][1] in described) or top & unmet:
            return ranked, top & unmet, False, turned
        # the best names the setting asked, or goes the way asked on an axis: the request singles it out
        first = ranked[0][1]
        singled = first in named(read, {first: described[first]}, self.setting_families(), samples, split_steps)
        return ranked, set(), singled or agreed(asked, ways.get(first, {})), turned

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

    def _turned(self, read: str, described: dict[int, str]) -> set[int]:
        """The ``described`` adapters (id → description) converting the other way round from the prompt
        as read (``loradex.conversions.reversed_by``, phrases compared by the plain text encoder)."""
        asked = conversion(read)
        if asked is None:
            return set()
        pairs = [(i, pair) for i, text in sorted(described.items()) if (pair := conversion(text)) is not None]
        return reversed_by(asked, pairs, lambda texts: self.text_encoder.encode(texts)) if pairs else set()

    def _precision(self, read: str, pool: list[tuple[float, int, Any]],
                   found: dict[int, dict[str, Any]]) -> dict[int, float]:  # fmt: skip
        """Each pooled adapter's ``description_precision`` for the prompt as read (``readable_for``;
        its description, else its name, from ``found``; adapters with neither are left out)."""
        mine = self.text_encoder.token_vectors(read)
        out = {}
        for _, i, _ in pool:
            info = found.get(i)
            text = info and (info.get("description") or info.get("name"))
            if text:
                out[i] = description_precision(mine, self.text_encoder.token_vectors(str(text)))
        return out

    def _hits(self, top: list[tuple[float, int, dict[str, float | None]]], kinds: list[str]) -> list[SearchHit]:
        encoded = self.weight_embedder.families
        found = self.registry.hits([i for _, i, _ in top])  # one query for all hits
        composed = self.parts_of(i for _, i, parts in top if parts.get("text") is not None) if "text" in kinds else {}
        hits = []
        for score, i, parts in top:
            info = found.get(i)
            if info is None:  # removed between the index search and the fetch
                continue
            summary = {key: info[key] for key in HIT_FIELDS}
            why = ", ".join(f"{kind} similarity {v:.2f}" for kind, v in parts.items() if v is not None)
            if info["family"] not in encoded:
                why += f"; no weight encoder for family {info['family']}: matched by metadata text only"
            elif parts.get("text") is None and "text" in kinds:
                why += "; no description: matched by its weights"
            if i in composed:
                why += f"; text similarity read with its parts ({', '.join(f'#{j}' for j in composed[i])})"
            rel = self.calibration.relevance(info["family"], parts)
            hits.append(SearchHit(summary, score, parts, why, None if rel is None else round(rel, 4)))
        return hits

    def _weight_queries(self, q: Any, allowed: set[int] | None) -> list[Query]:
        """The weights signal's queries: families whose encoder has a query head score the prompt
        through it (each against its own adapters only); every other adapter gets the prompt as is."""
        heads = self.weight_embedder.query_families()
        by_family = self.registry.ids_of_families(heads) if heads else {}
        headed: set[int] = set().union(*by_family.values())
        if not headed:
            return [(q, allowed, None)]
        out: list[Query] = []
        for family, ids in by_family.items():
            mine = ids if allowed is None else ids & allowed
            if mine:
                out.append((self.weight_embedder.query(family, q), mine, None))
        out.append((q, allowed, headed))
        return out

    @_reads_indexes
    def similar(self, info: dict[str, Any], k: int = 8) -> list[dict[str, Any]]:
        """Nearest adapters by ``info``'s own stored embeddings: ``{"adapter": summary, "score": mean
        cosine, "scores": {"weights": …, "text": …}}``, best first."""
        own = self.registry.embeddings_of(info["id"])
        candidates: set[int] = set()
        for kind, vec in own.items():
            candidates.update(i for i, _ in self.registry.indexes[kind].search(vec, k + 1) if i != info["id"])
        cos = {kind: self.registry.indexes[kind].score_ids(vec, sorted(candidates)) for kind, vec in own.items()}
        found = self.registry.hits(sorted(candidates))
        out = []
        for i in candidates:
            if i not in found:
                continue
            scores = {kind: cos[kind].get(i) for kind in ("weights", "text") if kind in cos}
            vals = [v for v in scores.values() if v is not None]
            out.append({"adapter": found[i], "score": sum(vals) / len(vals) if vals else -1.0, "scores": scores})
        out.sort(key=lambda d: -d["score"])
        return out[:k]
