"""Composition wired into the service: weight-space merges registered as new adapters, and
runtime fusion of several adapters in their family's base pipeline.

``merge`` loads the adapters, merges them with a ``fusion.merge`` strategy, writes the result in
the family's native format and ingests it with ``origin=merged`` and lineage to every input (its
weight and ``merge:<strategy>``). ``compose`` installs the adapters side by side in the family's
registered base (``loradex.bases``) — never fusing into the base weights — and renders images
(diffusion families) or runs an input (language families), routed by the prompt; ``auto=K``
retrieves the adapters for the prompt first. The default strategy, ``auto``, runs a language
request of steps in sequence ("X, then Y") as a chain of the adapters its steps route to, in the
order they run, and everything else through the gate (``auto_strategy``). Trained gates are read from
``fusion/checkpoints/<family>/``; other families get the training-free gate. A language-model
composition in a registry with a text map routes by the registry's search instead
(``search_scores``), passed down to ``fusion.compose.compose_text`` as the gate's scores. The learned merge
``zip`` (and ``merge:zip`` in ``compose``) fits its coefficients on the family's diffusion base,
each adapter drawing its data alone from its description; language families are refused.
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loradex.composites import request_parts
from loradex.errors import SearchError
from loradex.types import ComposeResult, MergeOutcome

if TYPE_CHECKING:  # pragma: no cover
    from loradex.service import LocalService

GATES = Path(__file__).resolve().parents[1] / "fusion" / "checkpoints"
MAX_COMPOSE = 8  # adapters one composition installs at most
AUTO = "auto"  # compose's default strategy: a chain for a language request of steps, else the gate (auto_strategy)
# auto picks: a candidate's hybrid score (z units) minus this × its highest cosine with an adapter
# already picked (maximal marginal relevance); chosen on the image zoo's training combos
# (benchmarks/compose_picks.py, results/compose_picks.md)
PICK_REDUNDANCY = 4.0
PICK_POOL = 20  # candidates the auto picks choose from
# what a composition reports of each adapter (``picked_for``: the part of the prompt an auto pick was for)
SUMMARY_FIELDS = ("id", "name", "family", "format", "description", "picked_for")
FREE_GATE = {"threshold": 0.4, "g_max": 0.7}  # training-free image gate, chosen on the image zoo's training combos


def trained_gate(family: str) -> Path | None:
    """The family's committed gate folder when its training converged (its recorded loss fell);
    else None: the training-free gate (description similarity) routes instead."""
    folder = GATES / family
    if not (folder / "config.json").is_file():
        return None
    try:
        m = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    first = m.get("loss_first", m.get("distill_loss_first"))
    last = m.get("loss_last", m.get("distill_loss_last"))
    if isinstance(first, int | float) and isinstance(last, int | float) and last < first:
        return folder
    return None


def gate_folder(svc: LocalService, family: str, kind: str) -> Path:
    """The gate compose routes by: the family's converged trained gate, else a training-free gate
    (the committed config without trained layers, or the defaults) written under the cache."""
    trained = trained_gate(family)
    if trained is not None:
        return trained
    from dataclasses import replace

    from fusion.gate import GateConfig

    base = GATES / family
    cfg = GateConfig.load(base) if (base / "config.json").is_file() else GateConfig(kind=kind, family=family)
    folder = svc.home / "cache" / "gates" / family
    free = cfg.training_free()
    if kind == "image":  # chosen on training combos (benchmarks/results/fusion_notes.md)
        free = replace(free, threshold=FREE_GATE["threshold"], g_max=FREE_GATE["g_max"])
    free.save(folder)
    return folder


def strategies() -> dict[str, list[str]]:
    """What a surface offers: ``merge`` (the strategies ``fusion.merge`` registers) and ``compose``
    (``auto``, the runtime ones, then ``merge:S`` for each merge strategy); ``learned``: the merge strategies
    fitted on the family's diffusion base (``zip``), which take longer and need a diffusion family."""
    from fusion.merge import learned_strategies
    from fusion.merge import strategies as merges
    from fusion.strategies import compose_strategies

    return {"merge": merges(), "compose": [AUTO, *compose_strategies()], "learned": learned_strategies()}


def merge(svc: LocalService, refs: list[str | int], weights: list[float] | None = None, *, strategy: str = "cat",
          rank: int | None = None, seed: int = 0, name: str | None = None, options: dict[str, Any] | None = None,
          progress: Callable[[int, int], None] | None = None) -> MergeOutcome:  # fmt: skip
    """Merge registered adapters into a new registered one (see module doc). ``options`` go to
    the strategy (``density`` …); ``zip`` learns its coefficients on the family's base, see ``_zip``,
    reporting ``progress(done, total)`` as it fits (``ziplora.fit_merge``); the other strategies are
    seconds of linear algebra and report nothing."""
    from fusion.errors import FusionError, IncompatibleAdaptersError
    from fusion.merge import merge as merge_adapters

    if len(refs) < 2:
        raise FusionError(f"a merge needs at least two adapters, got {len(refs)}")
    rows = [svc.get(r) for r in refs]
    if len({r["family"] for r in rows}) > 1:  # named as the registry names them, before anything loads
        who = ", ".join(f"{r['name']} (id {r['id']}): {r['family']}" for r in rows)
        raise IncompatibleAdaptersError(f"adapters of different families cannot merge: {who}")
    default = 1.0 if strategy == "zip" else 1.0 / len(rows)  # zip starts from each adapter at full weight
    w = [default] * len(rows) if weights is None else [float(x) for x in weights]
    if len(w) != len(rows):
        raise FusionError(f"{len(w)} weights for {len(rows)} adapters; give one weight per adapter")
    adapters = [svc.load(r["id"]) for r in rows]
    opts = dict(options or {})
    t0 = time.perf_counter()
    if strategy == "zip":
        res = _zip(rows, adapters, w, seed, opts, progress)
    else:
        res = merge_adapters(adapters, w, strategy=strategy, rank=rank, seed=seed, **opts)
    seconds = time.perf_counter() - t0
    out = res.adapter
    label = " + ".join(f"{x:g}·{r['name']}" for x, r in zip(w, rows, strict=True))
    out.description = f"merge ({strategy}) of {label}"
    record: dict[str, Any] = {"strategy": strategy, "weights": w, "rank": rank, "seed": seed,
                              "parents": [r["sha256"] for r in rows]}  # fmt: skip
    if opts:
        record["options"] = opts
    coefs = res.info.pop("coefficients", None)
    if coefs is not None:  # zip: per module, each adapter's mean coefficient; the training record
        res.info["coefficients"] = {n: [round(float(x), 4) for x in c.mean(dim=1)] for n, c in coefs.items()}
        record["zip"] = res.info["zip"]
        record["coefficients"] = res.info["coefficients"]
    out.metadata = {**out.metadata, "loradex.origin": "merged",
                    "loradex.merge": json.dumps(record, sort_keys=True)}  # fmt: skip
    stem = name or f"merge-{strategy}-" + "-".join(str(r["id"]) for r in rows)
    edges = [{"parent": r["id"], "weight": x, "method": f"merge:{strategy}"} for r, x in zip(rows, w, strict=True)]
    made = svc.register_made(out, stem, origin="merged", lineage=edges)
    info = {k: v for k, v in res.info.items() if k != "per_module"}
    return MergeOutcome(adapter=svc.get(int(made.adapter_id or 0)), info=info, seconds=seconds,
                        duplicate=made.status == "duplicate")  # fmt: skip


def _zip(rows: list[dict[str, Any]], adapters: list[Any], w: list[float], seed: int, opts: dict[str, Any],
         progress: Callable[[int, int], None] | None = None) -> Any:  # fmt: skip
    """``zip`` on the family's registered diffusion base: each adapter's data are latents it draws
    alone (``samples`` of them, ``sample_steps`` DDIM steps, ``guidance``) from ``prompts`` (default:
    its own description, else its name); the other options are ``ZipConfig`` fields. Options and the
    base's kind are checked before the base is loaded."""
    from fusion.merge import check_compatible
    from fusion.merge.ziplora import fit_merge, fit_units, zip_options
    from loradex.bases import load_base

    check_compatible(adapters)
    cfg, data = zip_options(opts, seed)
    fam = adapters[0].family
    _refuse_zip_on_text(fam, "zip")
    if progress is not None:  # the total at once: loading the base takes a while before the first unit
        progress(0, fit_units(len(adapters), cfg, data))
    return fit_merge(load_base(fam), adapters, [[_own_prompt(r)] for r in rows], w, cfg, data, progress=progress)


def _own_prompt(row: dict[str, Any]) -> str:
    """What an adapter is about: its description, else its name (the gate's text, zip's prompt)."""
    return str(row.get("description") or row["name"])


def _refuse_zip_on_text(family: str, strategy: str) -> None:
    from fusion.errors import FusionError
    from loradex.bases import get_base

    base = get_base(family)
    if base.kind != "image":
        raise FusionError(f"strategy {strategy!r} learns on a diffusion base; family {family!r} has a {base.kind} base: "
                          "use an exact strategy (cat, ties …) for it")  # fmt: skip


def _png(img: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


SAME_PART = 0.8  # text cosine above which two parts' adapters count as one thing asked twice


def sequence_parts(prompt: str) -> list[str]:
    """The steps of a request that names steps in sequence ("sort them in descending order, then
    add ing": ``generators.steps.split_steps``), in the order it names them; [] for any other
    request. A step is one part even where ``request_parts`` would cut it at a joining word
    ("in descending order")."""
    from generators.steps import split_steps

    steps = split_steps(prompt)
    return steps if len(steps) > 1 else []


class _Similarity:
    """Cosines between adapters' stored vectors (text, else weights), read once per adapter."""

    def __init__(self, svc: LocalService) -> None:
        self.svc, self.vecs = svc, {}  # type: ignore[var-annotated]

    def __call__(self, a: int, b: int) -> float:
        import numpy as np

        for i in (a, b):
            if i not in self.vecs:
                self.vecs[i] = self.svc.registry.embeddings_of(i)
        for kind in ("text", "weights"):
            x, y = self.vecs[a].get(kind), self.vecs[b].get(kind)
            if x is not None and y is not None:
                return float(np.dot(x, y))
        return 0.0


def diverse_picks(svc: LocalService, hits: list[Any], k: int, redundancy: float = PICK_REDUNDANCY,
                  picked: list[Any] | None = None, sim: _Similarity | None = None) -> list[Any]:  # fmt: skip
    """``k`` of ``hits`` (best first) that together cover the request: greedily the hit with the best
    score minus ``redundancy`` × its highest cosine with one already picked (maximal marginal
    relevance over the adapters' stored text vectors, or weight vectors for adapters without text),
    after the ``picked`` ones given. The nearest k are often seeds of one adapter, or one attribute
    twice ("a crescent in thermal colours" → crescent, crescent_s1); a request for several things
    wants one adapter for each."""
    sim = sim or _Similarity(svc)
    picked = list(picked or [])
    taken = {p.adapter["id"] for p in picked}
    left = [h for h in hits if h.adapter["id"] not in taken]
    while left and len(picked) < k:
        best = max(left, key=lambda h: h.score - redundancy * max((sim(h.adapter["id"], p.adapter["id"])
                                                                   for p in picked), default=0.0))  # fmt: skip
        picked.append(best)
        left.remove(best)
    return picked


def part_picks(svc: LocalService, prompt: str, hits: list[Any], k: int, family: str,
               exclude: frozenset[int] = frozenset(), why: dict[int, str] | None = None) -> list[Any]:  # fmt: skip
    """``k`` adapters for a request of several things: each part of the request (its steps,
    ``sequence_parts``, for a request of steps in sequence; else ``request_parts``) searched alone,
    the parts taken in order of their best hit's calibrated relevance, each adding its best hit
    unless a part before already brought it (or an adapter within ``SAME_PART`` of it) or nothing
    fits that part; the rest filled from the whole request's ``hits`` (``diverse_picks``). The parts' picks come in the order the prompt names them (a chain
    runs "X, then Y" as X first). A whole request ranks adapters that do several of the things
    first ("grayscale with stripes" → grayscale_waves, which brings waves), a part ranks those that
    do just it. ``exclude``: adapter ids no part may bring; ``why`` (filled when given): adapter id →
    the part it was picked for. Measured in ``benchmarks/compose_picks.py``."""
    parts = (sequence_parts(prompt) or request_parts(prompt)) if k > 1 else []
    sim = _Similarity(svc)
    best: list[tuple[float, int, Any]] = []  # (relevance, part's place in the prompt, its best hit)
    for place, part in enumerate(parts if len(parts) > 1 else []):
        found = svc.search(part, k=1 + len(exclude), family=family)
        top = next((h for h in found if h.adapter["id"] not in exclude), None)
        if top is not None and not found.nothing_fits:
            best.append((top.relevance if top.relevance is not None else top.score, place, top))
    chosen: list[tuple[int, Any]] = []
    for _, place, hit in sorted(best, key=lambda t: (-t[0], t[1])):
        if len(chosen) == k:
            break
        if not any(hit.adapter["id"] == p.adapter["id"] or sim(hit.adapter["id"], p.adapter["id"]) > SAME_PART
                   for _, p in chosen):  # fmt: skip
            chosen.append((place, hit))
            if why is not None:
                why[hit.adapter["id"]] = parts[place]
    picked = [hit for _, hit in sorted(chosen, key=lambda t: t[0])]  # in the prompt's order ("X, then Y")
    return diverse_picks(svc, hits, k, picked=picked, sim=sim)


def pick_adapters(svc: LocalService, prompt: str, refs: list[str | int] | None, auto: int | None,
                  family: str | None, per_step: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """The adapters to compose: the given ones, or ``auto`` search hits of one family that together
    cover the prompt (``diverse_picks``). ``per_step``: a language family's request of more steps
    than ``auto`` gets one pick per step (a chain needs an adapter for each; ``auto_strategy``)."""
    if refs:
        rows = [svc.get(r) for r in refs]
    elif auto:
        hits = svc.search(prompt, k=max(auto * 5, PICK_POOL), family=family)
        if not hits:
            raise SearchError(f"no adapter found for {prompt!r}" + (f" in family {family!r}" if family else ""))
        fam = family or hits[0].adapter["family"]
        mine = [h for h in hits if h.adapter["family"] == fam]
        why: dict[int, str] = {}
        k = auto
        if per_step:
            from generators.steps import steps_in_run_order
            from loradex.bases import runs_text

            if runs_text(fam):
                k = max(auto, min(len(steps_in_run_order(prompt)), MAX_COMPOSE))
        rows = [svc.get(h.adapter["id"]) for h in part_picks(svc, prompt, mine, k, fam, why=why)]
        for r in rows:
            r["picked_for"] = why.get(r["id"])  # the part of the prompt it was searched for (None: the whole)
    else:
        raise SearchError("name the adapters to compose, or ask for the top K with auto")
    if not 1 <= len(rows) <= MAX_COMPOSE:
        raise SearchError(f"compose takes 1 … {MAX_COMPOSE} adapters, got {len(rows)}")
    families = sorted({r["family"] for r in rows})
    if len(families) > 1:
        raise SearchError(f"adapters of different families cannot be composed: {', '.join(families)}")
    return rows


def auto_strategy(svc: LocalService, prompt: str, rows: list[dict[str, Any]],
                  kind: str) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """What ``auto`` runs: (strategy, the adapters in the order it runs them, what it decided).

    A language family's request of steps in sequence ("reverse it, then uppercase", "Before you Y,
    X": ``generators.steps.steps_in_run_order``) whose steps each route to a different adapter (the
    hybrid search for the step alone among the adapters, ``Searcher.scores_among``) runs as a
    ``chain`` of those adapters in the order the steps run: a gate mixes the adapters at every
    token and does neither step (text zoo two-step tasks: chain 0.90 exact match, linear mix 0.275;
    ``benchmarks/results/fusion_notes.md``). Anything else (one step, two steps on one adapter, an
    image family) runs the ``gate``. Adapters no step routes to are left out of the chain."""
    from generators.steps import steps_in_run_order

    steps = steps_in_run_order(prompt) if kind == "text" and len(rows) > 1 else []
    if len(steps) < 2:
        return "gate", rows, {}
    by_id = {int(r["id"]): r for r in rows}
    routed = []
    for step in steps:
        found = svc.searcher.scores_among(step, list(by_id))
        if not found:
            return "gate", rows, {"auto": f"no adapter scores for the step {step!r}: gate"}
        routed.append(max(found, key=lambda i: found[i][0]))
    if len(set(routed)) < len(routed):
        return "gate", rows, {"auto": "two steps route to one adapter: gate"}
    decided = {"steps": [{"step": st, "adapter": by_id[i]["name"]} for st, i in zip(steps, routed, strict=True)],
               "left_out": [r["name"] for r in rows if int(r["id"]) not in routed]}  # fmt: skip
    return "chain", [by_id[i] for i in routed], {"auto": decided}


def search_scores(svc: LocalService, prompt: str, rows: list[dict[str, Any]]) -> list[float] | None:
    """What a language-model composition routes by when the registry has a text map: each loaded
    adapter's hybrid search score for the prompt, the search restricted to the loaded adapters
    (``Searcher.scores_among``: the map's cosines and the weights signal, standardised over them).
    The map is fitted to this registry's adapters and their paraphrases, and this score routed
    held-out paraphrases of the text zoo's tasks better than the family's trained router
    (benchmarks/results/fusion_notes.md, 2026-12-03 routing). None, and the family's gate scores
    the descriptions itself, when the registry has no map or an adapter has no signal."""
    if svc.text_encoder is None or svc.searcher.text_settings() is None:
        return None
    found = svc.searcher.scores_among(prompt, [int(r["id"]) for r in rows])
    if any(int(r["id"]) not in found for r in rows):
        return None
    return [float(found[int(r["id"])][0]) for r in rows]


EXAMPLE_LIFT = 10.0  # added to search scores (z units) × the share of the prompt's examples an adapter reproduces


def example_shares(svc: LocalService, prompt: str, rows: list[dict[str, Any]]) -> tuple[list[float], list[Any]] | None:
    """What a language-model composition routes by first when its prompt shows what it wants ("so monkey
    becomes tvurlf", ``loradex.examples.examples_in``): the share of those examples each loaded adapter
    reproduces on the family's base (``loradex.verify.shares_among``), and the examples. None when the
    prompt holds none, they cannot be run, or no adapter reproduces at least ``FITS_SHARE`` of them (they
    may be words misread as examples): the search scores route alone. Blind requests for text-zoo tasks
    with 7 other adapters loaded: examples written in the request fixed most of what search misrouted
    (benchmarks/results/fusion_notes.md, 2026-12-05)."""
    from loradex.bases import runs_text
    from loradex.examples import examples_in
    from loradex.verify import FITS_SHARE, MAX_EXAMPLES, shares_among
    from registry.errors import RegistryError

    found = examples_in(prompt)[:MAX_EXAMPLES]
    if not found or not runs_text(str(rows[0]["family"])):
        return None
    try:
        shares = shares_among(svc, rows, found)
    except RegistryError:
        return None
    if max(shares.values()) < FITS_SHARE:
        return None
    return [shares[int(r["id"])] for r in rows], found


def compose(svc: LocalService, prompt: str, *, refs: list[str | int] | None = None, auto: int | None = None,
            strategy: str = AUTO, weights: list[float] | None = None, inputs: list[str] | None = None,
            family: str | None = None, seed: int = 0, n_images: int = 1, steps: int | None = None,
            options: dict[str, Any] | None = None, progress: Any = None) -> ComposeResult:  # fmt: skip
    """Run ``prompt`` through the family's base with the adapters composed by ``strategy``
    (``auto``: ``auto_strategy`` chooses a chain or the gate; the result says which).
    ``options``: the merge's, with a ``merge:S`` strategy (``merge:zip`` fits its coefficients on the
    family's diffusion base first: ``steps``, ``samples`` … as ``merge``); checked before the base loads.
    ``progress(done, total)``: images: the denoising steps, after a ``merge:zip`` fit's units."""
    from fusion.errors import FusionError
    from loradex.bases import check_inputs, get_base, load_base

    if not prompt or not prompt.strip():
        raise SearchError("empty prompt: say what to render, or for a language model what task to do")
    for what, value in (("n_images", n_images), ("steps", steps)):
        if value is not None and value < 1:  # the REST API's bounds, for every surface
            raise FusionError(f"{what} must be ≥ 1, got {value}")
    if options and not strategy.startswith("merge:"):
        raise FusionError(f"options are a merge's: give them with a merge:<strategy> strategy, not {strategy!r}")
    rows = pick_adapters(svc, prompt, refs, auto, family, per_step=strategy in (AUTO, "chain") and weights is None)
    fam = rows[0]["family"]
    base = get_base(fam)
    decided: dict[str, Any] = {}
    if strategy == AUTO and weights is not None:
        strategy = "gate"  # weights scale the gate (what compose ran before auto existed)
    elif strategy == AUTO:
        strategy, rows, decided = auto_strategy(svc, prompt, rows, base.kind)
        if auto and not refs and isinstance(decided.get("auto"), dict) and len(decided["auto"]["steps"]) > auto:
            decided["auto"]["asked"] = auto  # more picks than asked: one adapter per step
    if strategy == "merge:zip":
        from fusion.merge.ziplora import zip_options

        _refuse_zip_on_text(fam, strategy)
        zip_options(options, seed)
    adapters = [svc.load(r["id"]) for r in rows]
    names = [r["name"] for r in rows]
    descriptions = [_own_prompt(r) for r in rows]  # what merge:zip draws from, as ``merge`` does
    gate_dir = gate_folder(svc, fam, base.kind)
    t0 = time.perf_counter()
    images: list[bytes] = []
    outputs: list[str] = []
    if base.kind == "text":
        import torch

        from fusion.compose import compose_text

        if not inputs:
            raise SearchError(f"family {fam!r} is a language model: give an input to run (--input TEXT)")
        model, tok = load_base(fam)
        check_inputs(fam, tok, inputs)
        scores = search_scores(svc, prompt, rows) if strategy == "gate" else None
        shown = example_shares(svc, prompt, rows) if strategy == "gate" and len(rows) > 1 else None
        if shown is not None:  # the adapters that reproduce the prompt's examples lead, search orders the rest
            scores = [s + EXAMPLE_LIFT * share for s, share in zip(scores or [0.0] * len(rows), shown[0], strict=True)]
        res = compose_text(model, tok, adapters, prompt, list(inputs), strategy=strategy, weights=weights,
                           gate_dir=gate_dir, text_encoder=svc.text_encoder, names=names,
                           descriptions=descriptions, merge_options=options,
                           scores=None if scores is None else torch.tensor(scores))  # fmt: skip
        if shown is not None:
            res.info["gate"] = "examples"
            res.info["examples"] = {"read": [f"{i} → {o}" for i, o in shown[1]],
                                    "reproduced": dict(zip(names, shown[0], strict=True))}  # fmt: skip
        elif scores is not None:
            res.info["gate"] = "search"
        outputs = list(res.outputs)
    else:
        from fusion.compose import compose_images

        pipe = load_base(fam)
        res = compose_images(pipe, adapters, prompt, strategy=strategy, weights=weights, gate_dir=gate_dir, seed=seed,
                             n_images=n_images, steps=steps, text_encoder=svc.text_encoder, progress=progress,
                             names=names, descriptions=descriptions, merge_options=options,
                             weight_embedder=svc.weight_embedder)  # fmt: skip
        images = [_png(im) for im in res.images]
    seconds = time.perf_counter() - t0
    gate_png = None
    if res.gate_trace and res.gate_trace.get("values"):
        from fusion.plot import plot_gates

        with tempfile.TemporaryDirectory() as d:
            gate_png = plot_gates(res.gate_trace, Path(d) / "gates.png").read_bytes()
    summaries: list[dict[str, Any]] = [{k: r[k] for k in SUMMARY_FIELDS if k in r} for r in rows]
    info = json.loads(json.dumps({**res.info, **decided}, default=str))
    return ComposeResult(adapters=summaries, family=fam, strategy=strategy, weights=[float(x) for x in res.weights],
                         images=images, outputs=outputs, gate_png=gate_png, info=info, seconds=seconds)  # fmt: skip


def turned_down_note(info: dict[str, Any]) -> str | None:
    """What a summary says of the adapters the gate turned down (weight < 0.5: the prompt does not ask for
    them), and, with a calibrated gate, how to keep one on (a request that names an adapter asks for it)."""
    down = info.get("turned_down")
    if not down:
        return None
    hint = "; name one in the prompt to keep it on" if info.get("gate") == "calibrated" else ""
    return f"turned down, the prompt does not ask for them: {', '.join(down)}{hint}"


def examples_note(info: dict[str, Any]) -> str | None:
    """What a summary says when a language composition was routed by the examples its prompt shows."""
    shown = info.get("examples")
    if info.get("gate") != "examples" or not isinstance(shown, dict):
        return None
    made = ", ".join(f"{name} {share:.0%}" for name, share in shown["reproduced"].items() if share > 0)
    return f"routed by the prompt's examples ({'; '.join(shown['read'])}): reproduced by {made}"


def compose_notes(info: dict[str, Any]) -> list[str]:
    """The lines a composition's summary adds after its adapters (CLI and web UI alike): which adapters
    the calibrated gate rescaled, which the gate turned down, and whether the prompt's examples routed it."""
    notes = []
    if info.get("calibrated"):  # the family's calibrated gate rescaled these adapters
        notes.append("calibrated for composing (per layer and channel): " + ", ".join(info["calibrated"]))
    return notes + [n for n in (turned_down_note(info), examples_note(info)) if n]


def b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data is not None else None
