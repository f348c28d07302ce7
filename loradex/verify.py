"""Search by example: candidates are run on the family's base model and ranked by how many of the
user's input → output examples they reproduce exactly.

Candidates: every adapter of the family when it has at most ``EXHAUSTIVE`` of them, else the top
``POOL`` of the ordinary search for the prompt (or, without one, for the examples written out).
They run ``CHUNK`` at a time, installed side by side (``fusion.runtime``) with each batch row
routed to one adapter, so one greedy decode covers a whole chunk. The first example screens
every candidate; only those that reproduce it are run on the rest. Language families only (a base
registered with kind ``text``); image families would need a registered judge.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from loradex.errors import SearchError
from loradex.search import HIT_FIELDS
from loradex.types import Filters, SearchHit, SearchResults

if TYPE_CHECKING:  # pragma: no cover
    from loradex.service import LocalService

EXHAUSTIVE = 512  # run every adapter of a family this small
POOL = 64  # else the top of the ordinary search
CHUNK = 24  # adapters installed at once
MAX_EXAMPLES = 16


def run_chunk(model: Any, tok: Any, adapters: list[Any], inputs: list[str]) -> list[list[str]]:
    """Outputs of each adapter on ``inputs``: per input, one batch whose row i runs adapter i."""
    import torch

    from fusion.compose import greedy_generate
    from fusion.runtime import install

    k = len(adapters)
    outs: list[list[str]] = [[] for _ in range(k)]
    with install(model, adapters, [f"c{i}" for i in range(k)]) as handle:
        handle.set_row_weights(torch.eye(k))  # (k, k): row i → adapter i
        for x in inputs:  # one input per batch: every row has the same length
            with torch.no_grad():
                got = greedy_generate(model, tok, [x] * k, max_new_tokens=len(x) * 3 + 8)
            for i in range(k):
                outs[i].append(got[i])
    return outs


def search_by_example(svc: LocalService, prompt: str, examples: list[tuple[str, str]], k: int,
                      filters: Filters) -> SearchResults:  # fmt: skip
    from loradex.bases import base_families, check_inputs, get_base, load_base

    if not 1 <= len(examples) <= MAX_EXAMPLES:
        raise SearchError(f"give 1 … {MAX_EXAMPLES} examples (INPUT=>OUTPUT), got {len(examples)}")
    texts = [f for f in base_families() if get_base(f).kind == "text"]
    family = filters.family
    if family is None:
        counts = {f: len(svc.registry.list(Filters.of(filters, family=f))) for f in texts}
        have = [f for f, n in counts.items() if n]
        if len(have) != 1:
            raise SearchError("search by example runs adapters on their base model: name the family (--family); "
                              f"families with a language-model base: {', '.join(texts) or 'none'}")  # fmt: skip
        family = have[0]
    if family not in texts:
        raise SearchError(f"family {family!r} has no registered language-model base to run examples on; "
                          f"families with one: {', '.join(texts) or 'none'}")  # fmt: skip
    scoped = Filters.of(filters, family=family)
    rows = svc.registry.list(scoped)
    query = prompt.strip() or "; ".join(f"{i} → {o}" for i, o in examples)
    if len(rows) > EXHAUSTIVE:
        order = [h.adapter["id"] for h in svc.search(query, POOL, filters=scoped)]
    else:
        ranked = {h.adapter["id"]: n for n, h in enumerate(svc.search(query, min(len(rows), 1000), filters=scoped))}
        order = sorted((r["id"] for r in rows), key=lambda i: (ranked.get(i, len(ranked)), i))
    t0 = time.perf_counter()
    model, tok = load_base(family)
    check_inputs(family, tok, [x for x, _ in examples])
    first_in, first_out = examples[0]
    survivors: list[int] = []
    for start in range(0, len(order), CHUNK):
        ids = order[start : start + CHUNK]
        outs = run_chunk(model, tok, [svc.load(i) for i in ids], [first_in])
        survivors += [i for i, o in zip(ids, outs, strict=True) if o[0] == first_out]
    score = {i: 0.0 for i in order}
    rest = examples[1:]
    for start in range(0, len(survivors), CHUNK):
        ids = survivors[start : start + CHUNK]
        outs = run_chunk(model, tok, [svc.load(i) for i in ids], [x for x, _ in rest]) if rest else [[]] * len(ids)
        for i, o in zip(ids, outs, strict=True):
            score[i] = (1 + sum(a == b for a, (_, b) in zip(o, rest, strict=True))) / len(examples)
    seconds = time.perf_counter() - t0
    top = sorted(order, key=lambda i: (-score[i], order.index(i)))[:k]
    found = svc.registry.hits(top)
    hits = []
    for i in top:
        info = found.get(i)
        if info is None:
            continue
        n = round(score[i] * len(examples))
        why = f"reproduces {n}/{len(examples)} examples when run on the {family} base ({len(order)} candidates run, {seconds:.1f} s)"
        summary = {key: info[key] for key in HIT_FIELDS}
        hits.append(SearchHit(summary, score[i], {"examples": score[i]}, why, relevance=score[i]))
    # the share of examples reproduced is the relevance: nothing fits when no candidate gets one right
    return SearchResults(hits, nothing_fits=not any(score.values()), threshold=1 / len(examples))
