"""Search: prompt → ranked adapters from the text and weights indexes, fused (``fuse``).

``Searcher`` holds nothing but the parts it reads (registry, text encoder, weight embedder); the
service builds one when it opens. Importing this module does not import torch.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from encoders.kind_prior import prior_kind
from generators.steps import description_steps, split_steps
from loradex.composites import description_parts, is_combination
from loradex.contrasts import without_contrasts
from loradex.conversions import conversion, reversed_by
from loradex.directions import agreed, directions, opposed
from loradex.errors import SearchError
from loradex.examples import examples_in
from loradex.modality import KINDS as MODALITY_KINDS
from loradex.modality import asked_kind
from loradex.params import families, mismatched, named
from loradex.ranking import (
    RERANK_POOL,
    SIGNAL_WEIGHTS,
    STEP_PENALTY,
    after_originals,
    description_precision,
    fuse,
    lowered,
    rerank_by_precision,
    rerank_by_steps,
    verdict_among,
)
from loradex.reading import readable_for
from loradex.relevance import Calibration
from loradex.search_parts import PartsReading, Ranked, Snapshot
from loradex.spelling import Speller, words_of
from loradex.symbol_words import NAME_WORDS
from loradex.types import SEARCH_MODES, Filters, SearchHit, SearchResults

# Hybrid scores are standardised over each query's top REFERENCE_POOL candidates, whatever k is:
# the same adapter for the same prompt gets the same score at k = 1 and at k = 50.
REFERENCE_POOL = 64
VERDICT_POOL = 10  # "nothing fits" when none of the top VERDICT_POOL candidates is likely relevant
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
HIT_FIELDS = ("id", "name", "family", "format", "origin", "ranks", "description", "trigger_words", "tags",
              "module_count", "sha256")  # fmt: skip

_T = TypeVar("_T")


class Ranking(NamedTuple):
    """What ``Searcher._ranked`` makes of a search's candidates (see there)."""

    ranked: list[Ranked]
    unmet: set[int]
    singled: bool
    turned: set[int]
    apart: list[int]


# one query of a signal: (query vector, ids it may score (None: all allowed), ids it must not score)
Query = tuple[Any, set[int] | None, set[int] | None]


def _reads_indexes(method: Callable[..., _T]) -> Callable[..., _T]:
    """Run a ``Searcher`` method under the registry's ``swap`` lock (``registry.swap``): an encoder
    swapped in meanwhile (a new text map re-embedding the index) is waited out, not half seen."""

    @functools.wraps(method)
    def read(self: Searcher, *args: Any, **kwargs: Any) -> _T:
        with self.registry.swap.reading():
            return method(self, *args, **kwargs)

    return read


class Searcher(PartsReading):
    """Prompt → top-k adapters with a per-signal score breakdown.

    ``text``: cosine of the prompt with the adapter's metadata text; ``weights``: cosine with its
    weight embedding (trained into the same space); ``hybrid``: both signals computed exactly for
    every candidate either index proposed, fused by ``fuse`` (the score is then a standardised
    similarity, not a cosine; ``scores`` keeps the cosines)."""

    def __init__(self, registry: Any, text_encoder: Any, weight_embedder: Any) -> None:
        self.registry, self.text_encoder, self.weight_embedder = registry, text_encoder, weight_embedder
        self._calibration: tuple[str, Calibration] | None = None
        self._view: tuple[tuple[Any, ...], Snapshot] | None = None  # (text index state, snapshot)

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

    def _snapshot(self) -> Snapshot:
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
            family_of = {int(r["id"]): str(r.get("family") or "") for r in rows}
            snapshot = Snapshot(
                speller, setting_families, self.registry.family_kinds(), composites, described, single, combined,
                family_of,
            )  # fmt: skip
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
        wanted = self.wanted_kind(read, q)  # the kind of adapter asked for, if the request says
        ranked, unmet, singled, turned, apart = self._ranked(read, signals, reference, mode, wanted)
        shown = self._hits(ranked[: max(k, VERDICT_POOL)], kinds)
        calibration = self.calibration  # the verdict reads the same candidates whatever k is
        # of the kind the request is about, when it says: a text adapter cannot do a picture's request
        of_kind = self._of_kind(wanted)
        judged = [(int(h.adapter["id"]), h.relevance) for h in shown[:VERDICT_POOL]]
        refused = self._refused(prompt, [i for i, _ in judged])  # turned down by name
        unfit = turned | refused
        verdict = verdict_among(calibration, judged, signals.get("text"), lambda i: i not in unfit and of_kind(i))
        if unmet:  # the best is one of a family none of which has the setting asked
            verdict = True
        elif singled and verdict:  # the best names the setting asked, or goes the way asked
            verdict = False
        reason = self._why_nothing(wanted, shown, unmet, turned, refused, apart) if verdict else None
        made = [int(h.adapter["id"]) for h in shown if h.adapter.get("origin", "ingested") != "ingested"]
        copies_of = getattr(self.registry, "copies_of", None)
        shown = after_originals(shown, copies_of(made) if made and copies_of else {})
        asked = without_contrasts(prompt)  # shown as read: the slips put right, turned-down alternatives left out
        fixed = speller.correct(asked) if speller is not None else asked
        return SearchResults(shown[:k], verdict, calibration.nothing_fits_below, fixed if fixed != prompt else None,
                             reason)  # fmt: skip

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
        ranking = self._ranked(read, signals, mine, "hybrid", self.wanted_kind(read, q))
        return {i: (score, parts) for score, i, parts in ranking.ranked}

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

    def _of_kind(self, wanted: str | None) -> Callable[[int], bool]:
        """Whether an adapter is of the kind ``wanted`` (``wanted_kind``: what the prompt is about): True
        for all when the prompt does not say, or for adapters of a family whose kind is not known."""
        if wanted is None:
            return lambda i: True
        view = self._snapshot()  # families from the listing search already holds: no query per candidate

        def fits(i: int) -> bool:
            family = view.family_of.get(i)
            if family is None:  # added since the snapshot was taken
                found = self.registry.identity_of(i)
                family = found[0] if found else ""
            kind = view.kinds.get(family)
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
                wanted: str | None = None) -> Ranking:  # fmt: skip
        """``Ranking``: (score, id, cosines) best first, unmet, singled, turned, apart: the signals fused (``fuse`` over
        ``reference``) when more than one has scores, then, in hybrid mode, re-ranked by description
        precision (with a text map), the steps asked, the way asked (``loradex.directions``) and the
        settings asked (``loradex.params``); ``unmet``: the best adapter before those priors, when its
        family has no member with the setting asked; ``singled``: the best after them names a setting
        the request names (``loradex.params.named``) or goes the way it asks (``agreed``); ``turned``:
        adapters converting the other way round from the request (``loradex.conversions``), lowered
        and unfit; ``apart``: two single adapters the request names together that no adapter combines
        (``PartsReading._by_concepts``). ``wanted``: the kind of adapter the prompt is about
        (``wanted_kind``), None when it does not say."""
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
            return Ranking(ranked, set(), False, set(), [])
        found = self.registry.hits([i for _, i, _ in ranked[:RERANK_POOL]])  # the pool's descriptions
        weight = float((self.text_settings() or {}).get("precision_weight", 0.0))
        if weight > 0 and callable(getattr(self.text_encoder, "token_vectors", None)):
            ranked = rerank_by_precision(ranked, self._precision(read, ranked[:RERANK_POOL], found), weight)
        described = {i: str(info["description"]) for i, info in found.items() if info.get("description")}
        steps = {i: description_steps([text]) for i, text in described.items()}
        ranked = rerank_by_steps(ranked, steps, len(split_steps(read)), STEP_PENALTY)  # read here: tests turn it off
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
        if wanted is not None:  # "dots between letters": not the polka-dot image style
            of_kind = self._of_kind(wanted)
            for i in found:
                if not of_kind(i):
                    drops[i] = drops.get(i, 0.0) + MODALITY_PENALTY
        top = {ranked[0][1]} if ranked else set()
        ranked = lowered(ranked, drops)
        ranked, missing = self._by_concepts(read, ranked)
        if missing:  # two parts the registry combines, asked in a combination it does not hold
            return Ranking(ranked, {ranked[0][1]}, False, turned, missing)
        if not (ranked and ranked[0][1] in described) or top & unmet:
            return Ranking(ranked, top & unmet, False, turned, [])
        # the best names the setting asked, or goes the way asked on an axis: the request singles it out
        first = ranked[0][1]
        singled = first in named(read, {first: described[first]}, self.setting_families(), samples, split_steps)
        return Ranking(ranked, set(), singled or agreed(asked, ways.get(first, {})), turned, [])

    def _why_nothing(self, wanted: str | None, shown: list[SearchHit], unmet: set[int], turned: set[int],
                     refused: set[int], apart: list[int]) -> str | None:  # fmt: skip
        """Why nothing fits, in words, when search knows more than "every relevance is low": two parts the
        registry holds apart (and how to compose them), the best hit's family lacking the setting asked,
        an adapter converting the other way round or being the alternative turned down, no adapter of
        the kind asked among the candidates; None otherwise."""
        if len(apart) == 2:
            a, b = (self.registry.get(i) for i in apart)
            return (f"the registry holds {a['name']} (#{a['id']}) and {b['name']} (#{b['id']}) but no adapter "
                    f"combining them; compose them (loradex compose --adapters {a['id']} {b['id']} --prompt TEXT)")  # fmt: skip
        if unmet:
            top = self.registry.get(next(iter(unmet)))
            return f"adapters like {top['name']} differ only in a setting, and none has the one asked"
        for unfit, why in (
            (turned, "converts the other way round"),
            (refused, "is the alternative the request turns down"),
        ):
            if unfit:  # the one search ranked best of them (lowered or not)
                best = next((h.adapter["name"] for h in shown if int(h.adapter["id"]) in unfit), None)
                return f"{best or self.registry.get(min(unfit))['name']} {why}"
        if shown and wanted is not None:
            fits = self._of_kind(wanted)
            kind, a = ("image", "an") if wanted == "diffusion" else ("text", "a")
            pool = shown[:VERDICT_POOL]
            if not any(fits(int(h.adapter["id"])) for h in pool):
                return f"no {kind} adapter is close"
            below = self.calibration.nothing_fits_below
            other = [h for h in pool if not fits(int(h.adapter["id"])) and (h.relevance or 0.0) >= below]
            if other:  # what seemed to fit is of the other kind
                return f"the closest {kind} adapters are unlikely to do it ({other[0].adapter['name']} is not {a} {kind} adapter)"
        return None

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
