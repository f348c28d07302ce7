"""Search by example: candidates are run on the family's base model and ranked by how many of the
user's input → output examples they reproduce exactly.

Candidates: every adapter of the family when it has at most ``EXHAUSTIVE`` of them, else the top
``POOL`` of the ordinary search for the prompt (or, without one, for the examples written out),
taken in the order of that search. They are installed side by side (``fusion.runtime``), each
batch row routed to one adapter, and run ``CHUNK`` at a time: the shortest example screens a
chunk, only those that reproduce it are run on the rest. The search stops after the chunk in
which ``k`` candidates have reproduced every example: a later candidate could at best tie with
them, and ties go to the earlier one in search order, so the top ``k`` are those of running every
candidate. The ``why`` text says how many candidates were run.

"Reproduces" means greedy decoding writes exactly the expected output. With a tokenizer that
builds its own prompts (``prompt(text)``, ``encode``, ``eos_id``: one token per character, the
kind ``fusion.compose.greedy_generate`` knows) this is checked in one forward pass per example
(teacher forcing: the argmax at every output position must be the expected next token, the last
one the end token), the same as decoding and comparing. Other tokenizers are decoded greedily,
at most one token more than the expected output has characters.

The factors of a family's candidates stay stacked between searches when they take at most
``STACK_BYTES`` (else each chunk is installed on its own) and the base comes from
``loradex.bases`` (loaded once). Language families only (a base registered
with kind ``text``); image families would need a registered judge.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from loradex.errors import SearchError
from loradex.search import HIT_FIELDS
from loradex.types import Filters, SearchHit, SearchResults
from registry.formats.safe_io import one_torch_thread

if TYPE_CHECKING:  # pragma: no cover
    from fusion.runtime import FusionHandle
    from loradex.service import LocalService

EXHAUSTIVE = 512  # run every adapter of a family this small
POOL = 64  # else the top of the ordinary search
CHUNK = 64  # candidates screened per forward pass
MAX_EXAMPLES = 16
FITS_SHARE = 0.5  # nothing fits when no candidate reproduces at least this share of the examples
STACK_BYTES = 512 * 2**20  # stacked factors kept installed-ready between searches, per family
SMALL_BASE = 20_000_000  # parameters: a base this small runs on one torch thread (see _running)

_LOCK = threading.Lock()  # one search installs into the shared base model at a time
_STACKS: dict[str, tuple[tuple[Any, ...], FusionHandle]] = {}  # family → (key, removed handle)


def run_chunk(model: Any, tok: Any, adapters: list[Any], inputs: list[str]) -> list[list[str]]:
    """Outputs of each adapter on ``inputs``: per input, one batch whose row i runs adapter i."""
    import torch

    from fusion.compose import greedy_generate
    from fusion.runtime import install

    k = len(adapters)
    outs: list[list[str]] = [[] for _ in range(k)]
    with install(model, adapters, [f"c{i}" for i in range(k)]) as handle:
        handle.set_row_adapters(range(k))  # row i → adapter i
        for x in inputs:  # one input per batch: every row has the same length
            with torch.no_grad():
                got = greedy_generate(model, tok, [x] * k, max_new_tokens=len(x) * 3 + 8)
            for i in range(k):
                outs[i].append(got[i])
    return outs


def teacher_forced(model: Any, tok: Any, handle: FusionHandle, route: Sequence[int],
                   examples: Sequence[tuple[str, str]]) -> list[list[bool]]:  # fmt: skip
    """Per routed adapter, per example: would greedy decoding write exactly the output? One
    forward pass over every (adapter, example) row, right-padded (causal: padding comes after
    every position read). ``tok`` builds prompts (``prompt``, ``encode``, ``eos_id``)."""
    import torch

    seqs: list[list[int]] = []
    spans: list[tuple[int, int]] = []  # (prompt length, output tokens + end token)
    for x, y in examples:
        prompt = list(tok.prompt(x))
        try:
            out = [*tok.encode(y), tok.eos_id]
        except (ValueError, KeyError):  # a character the tokenizer lacks: no adapter can write it
            out = []
        seqs.append(prompt + out)
        spans.append((len(prompt), len(out)))
    e, n = len(examples), len(route)
    width = max(len(s) for s in seqs)
    ids = torch.full((n * e, width), int(getattr(tok, "pad_id", tok.eos_id)), dtype=torch.long)
    for j, s in enumerate(seqs):
        ids[j::e, : len(s)] = torch.tensor(s)  # rows (adapter i, example j) at i·e + j
    device = next(model.parameters()).device
    handle.set_row_adapters([a for a in route for _ in range(e)])
    with torch.no_grad():
        pred = model(input_ids=ids.to(device)).logits.argmax(-1).cpu()  # (n·e, width)
    ok = torch.zeros(n, e, dtype=torch.bool)
    for j, (p, m) in enumerate(spans):
        if m:  # the logits at position t predict token t + 1
            ok[:, j] = (pred[j::e, p - 1 : p - 1 + m] == ids[j::e, p : p + m]).all(dim=1)
    return ok.tolist()  # type: ignore[no-any-return]


def decoded(model: Any, tok: Any, handle: FusionHandle, route: Sequence[int],
            examples: Sequence[tuple[str, str]]) -> list[list[bool]]:  # fmt: skip
    """``teacher_forced`` for any tokenizer: greedy decoding, one example at a time, at most one
    token more than the output has characters (a token prints at least one)."""
    import torch

    from fusion.compose import greedy_generate

    ok = [[False] * len(examples) for _ in route]
    handle.set_row_adapters(list(route))
    for j, (x, y) in enumerate(examples):
        with torch.no_grad():
            got = greedy_generate(model, tok, [x] * len(route), max_new_tokens=len(y) + 1)
        for i, out in enumerate(got):
            ok[i][j] = out == y
    return ok


def _checker(tok: Any) -> Any:
    """How a candidate's outputs are checked: one teacher-forced pass with a tokenizer that builds its own
    prompts (``prompt``, ``encode``, ``eos_id``), else greedy decoding."""
    return teacher_forced if all(hasattr(tok, a) for a in ("prompt", "encode", "eos_id")) else decoded


@contextlib.contextmanager
def _running(model: Any) -> Iterator[None]:
    """Hold the base for one run: the install lock, and one torch thread for a small base (its products are too
    small to split across cores: on a busy 2-core machine two threads made a search of the text zoo 8 times
    slower than one, benchmarks/by_example.py)."""
    small = sum(p.numel() for p in model.parameters()) < SMALL_BASE
    with _LOCK, one_torch_thread() if small else contextlib.nullcontext():
        yield


def shares_among(svc: LocalService, rows: list[dict[str, Any]], examples: list[tuple[str, str]]) -> dict[int, float]:
    """Share of ``examples`` each of ``rows`` (adapters of one language-model family, e.g. the ones a
    composition loads) reproduces when run on the family's base: id → share. Installed side by side
    for this call only (the search's kept stacks are left alone); a one-letter example is checked on a
    run of its letter (``as_checked``). Raises a ``RegistryError`` when they cannot be run."""
    from fusion.runtime import install
    from loradex.bases import check_inputs, load_base
    from loradex.examples import as_checked

    family = str(rows[0]["family"])
    model, tok = load_base(family)
    check_inputs(family, tok, [x for x, _ in examples])
    check = _checker(tok)
    runs = as_checked(examples)
    with _running(model):
        with install(model, [svc.load(r["id"]) for r in rows], [f"c{i}" for i in range(len(rows))]) as handle:
            try:
                ok = check(model, tok, handle, list(range(len(rows))), runs)
            finally:
                handle.set_row_adapters(None)
    return {int(r["id"]): sum(hit) / len(runs) for r, hit in zip(rows, ok, strict=True)}


def _stack_bytes(rows: list[dict[str, Any]]) -> float:
    """About what the candidates' factors take stacked (ranks padded to the largest, float32)."""
    rank = max((max(r["ranks"] or [1]) for r in rows), default=1)
    return sum(int(r.get("param_count") or 0) * rank / max(min(r["ranks"] or [1]), 1) for r in rows) * 4


def _stack(svc: LocalService, model: Any, family: str,
           rows: list[dict[str, Any]]) -> tuple[FusionHandle, dict[int, int]]:  # fmt: skip
    """The candidates installed side by side, in id order, and adapter id → its index there.
    Kept for the next search when ``keep``, reused while the candidates and the base are the same."""
    from fusion.runtime import install

    rows = sorted(rows, key=lambda r: r["id"])
    key = (id(model), tuple((r["id"], r["sha256"]) for r in rows))
    at = {r["id"]: n for n, r in enumerate(rows)}
    cached = _STACKS.get(family)
    if cached is not None and cached[0] == key:
        cached[1].reinstall()
        return cached[1], at
    handle = install(model, [svc.load(r["id"]) for r in rows], [f"c{i}" for i in range(len(rows))])
    _STACKS[family] = (key, handle)
    return handle, at


def _order(svc: LocalService, query: str, scoped: Filters, asked_steps: int = 1) -> list[dict[str, Any]]:
    """The candidates, in the order of the ordinary search for ``query`` (then by id; the words only:
    examples written in ``query`` are not read again), those whose description names as many steps
    as were asked (``asked_steps``, ``generators.steps.split_steps``) first: where several reproduce
    the examples ("usa → u.s.a": joining with dots, and deduplicating then joining with dots), the one
    that does just what was asked is the likelier meaning, whatever the words ranked first."""
    from generators.steps import description_steps

    rows = svc.registry.list(scoped)
    if len(rows) > EXHAUSTIVE:
        hits = svc.searcher.search(query, POOL, "hybrid", scoped)
        by_id = {r["id"]: r for r in rows}
        rows = [by_id[h.adapter["id"]] for h in hits if h.adapter["id"] in by_id]
    else:
        found = svc.searcher.search(query, min(len(rows), 1000), "hybrid", scoped)
        ranked = {h.adapter["id"]: n for n, h in enumerate(found)}
        rows = sorted(rows, key=lambda r: (ranked.get(r["id"], len(ranked)), r["id"]))
    steps = {r["id"]: description_steps([r.get("description") or ""]) for r in rows}
    return sorted(rows, key=lambda r: abs(steps[r["id"]] - asked_steps))  # stable: search order within


def one_family(svc: LocalService, filters: Filters, runnable: list[str], what: str,
               base: tuple[str, str, str]) -> str:  # fmt: skip
    """The family a search by example runs in: ``filters.family``, else the one of ``runnable`` with
    adapters among ``filters``; a ``SearchError`` saying ``what`` the search does and which families
    have ``base`` = (its article, what it is, what it is for) otherwise."""
    article, kind, use = base
    family = filters.family
    if family is None:
        have = [f for f in runnable if svc.registry.list(Filters.of(filters, family=f), limit=1)]
        if len(have) != 1:
            raise SearchError(f"{what}: name the family (--family); families with {article}{kind}: "
                              f"{', '.join(runnable) or 'none'}")  # fmt: skip
        family = have[0]
    if family not in runnable:
        raise SearchError(f"family {family!r} has no registered {kind} to {use}; families with one: "
                          f"{', '.join(runnable) or 'none'}")  # fmt: skip
    return family


def search_by_example(svc: LocalService, prompt: str, examples: list[tuple[str, str]], k: int,
                      filters: Filters, *, exhaustive: bool = False, screen: bool = True) -> SearchResults:  # fmt: skip
    """Top ``k`` candidates by the share of ``examples`` they reproduce, ties in search order;
    ``exhaustive`` runs every candidate instead of stopping once ``k`` reproduce them all. ``screen``:
    the shortest example screens each chunk (a candidate that misses it scores 0); off, every
    example runs on every candidate (examples read from words, some of which may be no examples)."""
    from generators.steps import split_steps
    from loradex.bases import base_families, check_inputs, load_base, runs_text
    from loradex.examples import as_checked

    if not 1 <= len(examples) <= MAX_EXAMPLES:
        raise SearchError(f"give 1 … {MAX_EXAMPLES} examples (INPUT=>OUTPUT), got {len(examples)}")
    texts = [f for f in base_families() if runs_text(f)]
    family = one_family(svc, filters, texts, "search by example runs adapters on their base model",
                        ("a ", "language-model base", "run examples on"))  # fmt: skip
    scoped = Filters.of(filters, family=family)
    query = prompt.strip() or "; ".join(f"{i} → {o}" for i, o in examples)
    rows = _order(svc, query, scoped, len(split_steps(prompt)) if prompt.strip() else 1)
    t0 = time.perf_counter()
    model, tok = load_base(family)
    check_inputs(family, tok, [x for x, _ in examples])
    check = _checker(tok)
    runs = as_checked(examples)  # a one-letter example is checked on a run of its letter
    # the shortest example screens each chunk; the others run only on the candidates that pass it
    by_len = sorted(range(len(runs)), key=lambda j: (len(runs[j][0]) + len(runs[j][1]), j))
    first, rest = runs[by_len[0]], [runs[j] for j in by_len[1:]]
    score: dict[int, float] = {}
    perfect = 0
    # small enough: every candidate stacked once and kept; else each chunk installed on its own
    whole = _stack_bytes(rows) <= STACK_BYTES
    with _running(model):
        if not whole:
            _STACKS.pop(family, None)
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            handle, at = _stack(svc, model, family, rows if whole else chunk)
            try:
                if screen:
                    shown = check(model, tok, handle, [at[r["id"]] for r in chunk], [first])
                    passed = [r["id"] for r, ok in zip(chunk, shown, strict=True) if ok[0]]
                    outs = check(model, tok, handle, [at[i] for i in passed], rest) if rest and passed else []
                    got = {i: 1 + sum(ok) for i, ok in zip(passed, outs or [[] for _ in passed], strict=True)}
                else:  # every example on every candidate: one wrong example must not hide the others
                    shown = check(model, tok, handle, [at[r["id"]] for r in chunk], [first, *rest])
                    got = {r["id"]: sum(ok) for r, ok in zip(chunk, shown, strict=True) if any(ok)}
            finally:
                handle.set_row_adapters(None)
                handle.remove()  # the base is as it was; a kept stack is put back for the next chunk or search
            score.update({r["id"]: 0.0 for r in chunk})
            score.update({i: n / len(examples) for i, n in got.items()})
            passed = list(got)
            perfect += sum(1 for i in passed if score[i] == 1.0)
            if perfect >= k and not exhaustive:
                break
        if not whole:
            _STACKS.pop(family, None)
    seconds = time.perf_counter() - t0
    place = {r["id"]: n for n, r in enumerate(rows)}
    top = sorted(score, key=lambda i: (-score[i], place[i]))[:k]
    found = svc.registry.hits(top)
    ran = f"{len(score)} of {len(rows)} candidates run" if len(score) < len(rows) else f"all {len(rows)} candidates run"
    hits = []
    for i in top:
        info = found.get(i)
        if info is None:
            continue
        n = round(score[i] * len(examples))
        why = f"reproduces {n}/{len(examples)} examples when run on the {family} base ({ran}, {seconds:.2f} s)"
        summary = {key: info[key] for key in HIT_FIELDS}
        hits.append(SearchHit(summary, score[i], {"examples": score[i]}, why, relevance=score[i]))
    # the share of examples reproduced is the relevance: nothing fits when no candidate gets half of them
    # right (one of two may be words misread as a sample; one of three is no fit: "a↔z, b↔y, c↔x" is
    # Atbash, which the shift that takes a to z does only once)
    return SearchResults(hits, nothing_fits=max(score.values(), default=0.0) < FITS_SHARE, threshold=FITS_SHARE)
