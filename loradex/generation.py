"""Generation wired into the service: which generators a family has, generating a registered
adapter from a description (and examples), and training a generator from the registry.

Generators come from the checkpoints committed under ``generators/checkpoints/<family>/<method>``
and from ``loradex train-generator`` runs, which are recorded in the registry (``encoder_checkpoints``
rows of kind ``generator``; the newest of a family and method wins over the bundled one).

A generated adapter is written in its family's native format (the generator's template: PEFT
for language models, diffusers for diffusion), ingested with ``origin=generated`` and lineage to
the library adapters it drew on (experts and their weights), and its generator, version, method
and seed are kept in the adapter's metadata. Same arguments ⇒ same bytes ⇒ same sha256: a second
identical request answers with the adapter already registered.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loradex.types import GenerateResult
from registry.filters import Filters

if TYPE_CHECKING:  # pragma: no cover
    from generators.base import Expert
    from loradex.service import LocalService

GENERATOR_KIND = "generator"  # encoder_checkpoints.kind of a trained generator
_CACHE: dict[str, Any] = {}  # checkpoint folder → loaded generator
_LOCK = threading.Lock()
PICK_POOL = 20  # search hits looked through for a library expert (``search_pick``)


def catalog(svc: LocalService) -> dict[str, dict[str, dict[str, Any]]]:
    """family → method → {"path", "version", "source": bundled | trained, "metrics"}."""
    from generators import BUNDLED, bundled_generators

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for family, methods in bundled_generators().items():
        for m in methods:
            folder = BUNDLED / family / m
            out.setdefault(family, {})[m] = {"path": str(folder), "version": _version(folder), "source": "bundled",
                                             "metrics": _metrics(folder)}  # fmt: skip
    for rec in svc.registry.encoders(GENERATOR_KIND):  # oldest first: a later one replaces
        method = str((rec.get("metrics") or {}).get("method") or "")
        if method and Path(rec["path"]).is_dir():
            out.setdefault(rec["family"], {})[method] = {"path": rec["path"], "version": rec["version"],
                                                         "source": "trained", "metrics": rec["metrics"]}  # fmt: skip
    return out


def _version(folder: Path) -> str:
    """The checkpoint's content hash, computed once per file state (the files are MBs: every
    ``generate`` reads the catalog)."""
    weights = folder / "model.safetensors"
    stamp = weights.stat().st_mtime_ns if weights.is_file() else 0
    return _hashed(str(folder), stamp)


@functools.lru_cache(maxsize=256)
def _hashed(folder: str, stamp: int) -> str:
    from generators.base import checkpoint_version

    return checkpoint_version(Path(folder))


def _metrics(folder: Path) -> dict[str, Any]:
    f = folder / "metrics.json"
    try:
        return dict(json.loads(f.read_text())) if f.is_file() else {}
    except (OSError, ValueError):
        return {}


def pick(svc: LocalService, family: str, method: str | None) -> tuple[str, dict[str, Any]]:
    """(method, catalog entry) for ``family``; ``UntrainedFamilyError`` names what exists."""
    from generators import DEFAULT_METHODS, UnknownGeneratorError, UntrainedFamilyError, generator_methods

    if method is not None and method not in generator_methods():
        raise UnknownGeneratorError(method, generator_methods())
    have = catalog(svc)
    methods = have.get(family, {})
    if not methods:
        raise UntrainedFamilyError(family, method, [f"{f}: {', '.join(sorted(m))}" for f, m in sorted(have.items())])
    if method is None:
        method = next((m for m in DEFAULT_METHODS if m in methods), sorted(methods)[0])
    if method not in methods:
        raise UntrainedFamilyError(family, method, sorted(methods))
    return method, methods[method]


def load(svc: LocalService, path: str) -> Any:
    from generators import load_generator

    with _LOCK:
        if path not in _CACHE:
            _CACHE[path] = load_generator(path, text_encoder=svc.text_encoder)
        return _CACHE[path]


def written_examples(family: str, description: str) -> list[tuple[str, str]]:
    """Examples written in ``description`` ("… like hello -> olleh", ``loradex.examples.examples_in``)
    that ``family``'s language-model base can run; [] for other families, and when the base cannot
    read an input (a request is not refused for words that only looked like examples)."""
    from loradex.bases import runs_text
    from loradex.examples import examples_in

    found = examples_in(description) if runs_text(family) else []
    if not found:
        return []
    from loradex.bases import check_inputs, load_base
    from registry.errors import RegistryError

    try:
        check_inputs(family, load_base(family)[1], [i for i, _ in found])
    except RegistryError:
        return []
    return found


def example_scorer(family: str, examples: list[tuple[str, str]]) -> Callable[[list[Any]], list[float]] | None:
    """For a family whose registered base is a language model: candidates are run on the examples'
    inputs and scored by the fraction of outputs that match exactly. None for other families."""
    from loradex.bases import check_inputs, load_base, runs_text

    if not examples or not runs_text(family):
        return None

    def score(adapters: list[Any]) -> list[float]:
        from fusion.compose import compose_text
        from loradex.examples import as_checked

        model, tok = load_base(family)
        runs = as_checked(examples)  # a one-letter example is checked on a run of its letter
        inputs = [i for i, _ in runs]
        check_inputs(family, tok, inputs)
        out = []
        for a in adapters:
            got = compose_text(model, tok, [a], "", inputs, strategy="linear").outputs
            out.append(sum(g == o for g, (_, o) in zip(got, runs, strict=True)) / len(runs))
        return out

    return score


def library_rows(svc: LocalService, family: str, names: list[str]) -> dict[str, int]:
    """Name → registry id of the ``family`` adapters named like a generator's library experts (a
    name the registry holds more than once is left out: which row is the expert would be a guess)."""
    want = set(names)
    by_name: dict[str, list[int]] = {}
    for row in svc.registry.list(family=family) if family else []:
        if row["name"] in want:
            by_name.setdefault(row["name"], []).append(int(row["id"]))
    return {name: ids[0] for name, ids in by_name.items() if len(ids) == 1}


def search_pick(svc: LocalService, family: str, gen: Any, asked: str,
                examples: list[tuple[str, str]] | None = None) -> Expert | None:  # fmt: skip
    """The adapter the registry's own search ranks first for ``asked`` among the family's ingested
    adapters (as a user's search ranks them, top ``PICK_POOL``; with ``examples``, the search by
    them, ``loradex.verify``, and only one that reproduces an example), or None: none that high, or
    (words only) no text map. A library expert is named; an adapter outside the generator's library
    (one registered after it was trained, or one it was never shown) comes with its weights. Where
    the generator answers with one expert as is, it answers with this one (``Generator.picked``);
    with examples it competes with the generator's own candidates. For a request that chains steps,
    it is marked ``covers_steps`` when its own description names the same steps in the same order
    (``generators.steps.same_steps``): it may then replace the generator's sum of one-step experts.
    Adapters this service made (generated, merged) are never picked: their descriptions are
    requests, not what they were checked to do. See ``benchmarks.generation_pick``."""
    if svc.text_encoder is None:
        return None
    names = gen.expert_names()
    by_id = {i: n for n, i in library_rows(svc, family, names).items()} if names else {}
    if examples:
        from loradex.verify import search_by_example
        from registry.errors import RegistryError

        try:
            hits = search_by_example(svc, asked, examples, PICK_POOL, Filters(family=family))
            found = _first_expert(svc, [h for h in hits if h.score > 0], by_id)
            return found[0] if found else None
        except RegistryError:
            pass  # the examples cannot be run here: the words pick
    if svc.searcher.text_settings() is None:
        return None  # plain MiniLM cosines: the generator's own description matching is as good
    found = _first_expert(svc, svc.search(asked, PICK_POOL, filters=Filters(family=family)), by_id)
    if found is None:
        return None
    from generators.steps import same_steps

    top, described = found
    if described and same_steps(asked, described, step_vectors(svc)):
        return replace(top, covers_steps=True)  # one adapter for the whole chain asked
    return top


def step_vectors(svc: LocalService) -> Callable[[list[str]], Any]:
    """Texts → vectors in the registry's text space (``Searcher.text_query``: its text map applied),
    for comparing a request's steps with an adapter description's (``generators.steps.same_steps``)."""
    import numpy as np

    def encode(texts: list[str]) -> Any:
        vecs = svc.text_encoder.encode(texts)  # (n, dim)
        return np.stack([svc.searcher.text_query(t, v) for t, v in zip(texts, vecs, strict=True)])

    return encode


def _first_expert(svc: LocalService, hits: list[Any], library: dict[int, str]) -> tuple[Expert, str] | None:
    """The first hit as an ``Expert`` (a library expert by name, else an ingested adapter with its
    weights) and its registered description."""
    from generators.base import Expert

    for h in hits:
        ref = int(h.adapter["id"])
        described = str(h.adapter.get("description") or "")
        if ref in library:
            return Expert(library[ref]), described
        if h.adapter.get("origin", "ingested") == "ingested":
            return Expert(str(h.adapter["name"]), ref=ref, load=functools.partial(svc.load, ref)), described
    return None


def _slug(text: str, n: int = 40) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:n].rstrip("-") or "adapter"


def make(svc: LocalService, description: str, *, family: str, method: str | None = None,
         examples: list[tuple[str, str]] | None = None, seed: int = 0,
         rank: int | None = None) -> tuple[Any, str, str]:  # fmt: skip
    """What ``generate`` registers, unregistered: (the generator's ``GeneratedAdapter``, method, the
    description as stored). The request is embedded as search reads a prompt (unknown symbols
    dropped, number words as digits), stored and shown as asked less the symbols; where the
    generator answers with one library expert, it is the one the registry's search ranks first
    (``search_pick``). Without ``examples``, examples written in the description ("… like hello ->
    olleh", ``loradex.examples.examples_in``) are used for a family whose base runs them."""
    from generators.errors import check_description
    from loradex.reading import readable_for, readable_prompt

    method, entry = pick(svc, family, method)
    check_description(description)  # before search reads it: its refusal speaks of a prompt, not a description
    gen = load(svc, entry["path"])
    if not examples:
        examples = written_examples(family, description)
    exs = [(str(i), str(o)) for i, o in (examples or [])]
    asked = readable_for(svc.text_encoder, description, svc.searcher.speller())
    shown = readable_prompt(description, getattr(svc.text_encoder, "knows", None))
    out = gen.generate(asked, examples=exs or None, seed=seed, rank=rank, expert=search_pick(svc, family, gen, asked, exs),
                       score_candidates=example_scorer(family, exs))  # fmt: skip
    return out, method, shown


def generate(
    svc: LocalService,
    description: str,
    *,
    family: str,
    method: str | None = None,
    examples: list[tuple[str, str]] | None = None,
    seed: int = 0,
    rank: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> GenerateResult:
    """Generate (``make``), write in the family's native format, register (``origin=generated``); see module doc."""
    t0 = time.perf_counter()
    out, method, shown = make(svc, description, family=family, method=method, examples=examples, seed=seed,
                              rank=rank)  # fmt: skip
    seconds = time.perf_counter() - t0
    lineage = {**out.lineage, "description": shown}
    adapter = out.adapter
    adapter.description = shown
    adapter.metadata = {**adapter.metadata, "loradex.origin": "generated",
                        "loradex.generator": json.dumps(_file_lineage(lineage), sort_keys=True)}  # fmt: skip
    if progress:
        progress(1, 2)
    name = f"gen-{_slug(adapter.description)}-{method}-s{seed}"
    res = svc.register_made(adapter, name, origin="generated", lineage=_expert_edges(svc, lineage, method))
    if progress:
        progress(2, 2)
    return GenerateResult(adapter=svc.get(int(res.adapter_id or 0)), lineage=lineage, seconds=seconds,
                          duplicate=res.status == "duplicate")  # fmt: skip


def _file_lineage(lineage: dict[str, Any]) -> dict[str, Any]:
    """What the file itself records (no timings: the bytes must not depend on when it ran)."""
    keep = ("generator", "version", "method", "family", "seed", "rank", "experts", "chosen")
    return {k: lineage[k] for k in keep if k in lineage}


def _expert_edges(svc: LocalService, lineage: dict[str, Any], method: str) -> list[dict[str, Any]]:
    """Lineage rows to the registered adapters the generator drew on (by name, when unambiguous)."""
    experts = lineage.get("experts") or []
    if not experts:
        return []
    ids = library_rows(svc, str(lineage.get("family") or ""), [str(e.get("name")) for e in experts])
    ids |= {str(e.get("name")): int(e["id"]) for e in experts if e.get("id") is not None}  # outside the library
    return [{"parent": ids[str(e.get("name"))], "weight": float(e.get("weight", 0.0)), "method": f"generate:{method}"}
            for e in experts if str(e.get("name")) in ids]  # fmt: skip


def task_model_for(family: str, config: dict[str, Any] | None) -> Any:
    """The family's text base ``(model, tokenizer)`` when the config asks for end-to-end training."""
    if (config or {}).get("objective") != "end_to_end":
        return None
    from generators import GeneratorTrainingError
    from loradex.bases import base_families, load_base, runs_text

    if not runs_text(family):
        have = [f for f in base_families() if runs_text(f)]
        raise GeneratorTrainingError(
            f"end-to-end training runs the family's language model, and {family!r} has none registered; "
            f"text bases: {', '.join(have) or 'none'}"
        )
    return load_base(family)


def train(svc: LocalService, family: str, method: str, *, texts: str | Path | None = None,
          config: dict[str, Any] | None = None, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Train ``method`` for ``family`` on the registry's described adapters and record it."""
    from generators.registry_training import load_texts_file, train_from_registry

    table = load_texts_file(texts) if texts else None
    res = train_from_registry(svc.registry, family, method, svc.text_encoder, texts=table, config=config,
                              progress=progress, task_model=task_model_for(family, config))  # fmt: skip
    metrics = {**(res.get("metrics") or {}), "method": method, "seconds": res.get("seconds")}
    svc.registry.record_encoder(GENERATOR_KIND, family, res["version"], Path(res["path"]), metrics)
    return {k: res[k] for k in ("family", "method", "version", "path", "seconds") if k in res} | {
        "metrics": metrics, "items": len(res.get("items") or [])}  # fmt: skip
