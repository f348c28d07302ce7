"""CLI commands that make adapters or run them together, and check the registry:
``generate``, ``generators``, ``train-generator``, ``merge``, ``compose``, ``fsck``.

Each goes through ``loradex.LocalService``; ``--json`` prints one JSON document like the other
commands (images and the gate plot are written to ``--out`` and named in it, never inlined).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from loradex.errors import SearchError
from loradex.examples import parse_example

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


def _service(args: argparse.Namespace, *, embed: bool = True) -> Any:
    from loradex.service import LocalService

    return LocalService.open(args.home, args.db, embed=embed)


def _emit(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def _bar(args: argparse.Namespace, desc: str, *, show: bool = True) -> Any:
    """A progress bar on stderr; off with ``-q``, with ``--json`` (stdout stays one document) and
    with ``show=False`` (an operation that takes seconds)."""
    from tqdm import tqdm

    off = not show or bool(getattr(args, "quiet", False) or args.json)
    return tqdm(total=0, desc=desc, file=sys.stderr, disable=off)


def _progress(bar: Any) -> Any:
    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update


def _summary(a: dict[str, Any]) -> str:
    return (
        f"adapter {a['id']} {a['name']} ({a['family']}, {a['format']}, origin {a['origin']}, sha256 {a['sha256'][:12]})"
    )


def cmd_generate(args: argparse.Namespace) -> int:
    svc = _service(args)
    examples = [parse_example(e) for e in args.example or []]
    with _bar(args, "generate") as bar:  # closed before an error is printed, not under it
        out = svc.generate(args.description, family=args.family, method=args.method, examples=examples or None,
                           seed=args.seed, rank=args.rank, progress=_progress(bar))  # fmt: skip
    if args.out:
        out_files = svc.export(out.adapter["id"], args.format or out.adapter["format"], args.out)
    if args.json:
        doc = {"id": out.adapter["id"], **out.to_dict()}
        if args.out:
            doc["files"] = [str(f) for f in out_files]
        _emit(doc)
        return EXIT_OK
    print(("already registered: " if out.duplicate else "generated ") + _summary(out.adapter))
    experts = out.lineage.get("experts") or []
    if experts:
        print("from: " + ", ".join(f"{e['name']} ({e['weight']:.2f})" for e in experts))
    outside = [e for e in experts if e.get("outside_library")]
    if outside:  # the registry's search ranked an adapter the generator was not trained on first
        print("note: " + ", ".join(f"{e['name']} (#{e.get('id')})" for e in outside) + " is already registered "
              "and ranks first for this request; the new adapter is a copy of its weights")  # fmt: skip
    if out.lineage.get("chain"):  # a chain of steps the library lacks: the sum of its steps' experts
        print("steps: " + "; ".join(f"{c['step']!r} → {c['expert']}" for c in out.lineage["chain"]) + " (summed)")
    elif out.lineage.get("chain_held"):
        print("steps: the library's own chain of " + " and ".join(out.lineage["chain_held"]))
    print(f"generator {out.lineage.get('generator')} v{out.lineage.get('version')}, seed {args.seed}, "
          f"{out.seconds * 1000:.0f} ms")  # fmt: skip
    if args.out:
        print("written: " + ", ".join(str(f) for f in out_files))
    return EXIT_OK


def cmd_generators(args: argparse.Namespace) -> int:
    cat = _service(args, embed=False).generators()
    rows = [f"{fam:<12} {m:<10} {e['source']:<8} {e['version']}"
            for fam, methods in sorted(cat.items()) for m, e in sorted(methods.items())]  # fmt: skip
    _emit(cat) if args.json else print("\n".join(rows) or "no generators: train one with loradex train-generator")
    return EXIT_OK


def cmd_train_generator(args: argparse.Namespace) -> int:
    svc = _service(args)
    config = json.loads(args.config) if args.config else None
    with _bar(args, f"train {args.method}") as bar:
        res = svc.train_generator(args.family, args.method, texts=args.texts, config=config, progress=_progress(bar))
    if args.json:
        _emit(res)
    else:
        print(f"trained {args.method} for {args.family} on {res['items']} adapters: version {res['version']} "
              f"({res.get('seconds') or 0:.0f} s), recorded in the registry")  # fmt: skip
    return EXIT_OK


def parse_options(text: str | None, what: str = "--options") -> dict[str, Any] | None:
    """A merge's options as JSON text (empty: none) → a dict; ``SearchError`` naming ``what`` otherwise."""
    if not text or not text.strip():
        return None
    try:
        options = json.loads(text)
    except ValueError as e:
        raise SearchError(f"{what} is not JSON ({e}): give an object, e.g. '{{\"steps\": 15}}'") from None
    if not isinstance(options, dict):
        raise SearchError(f"{what} must be a JSON object of option names to values, got {text!r}")
    return options


def cmd_merge(args: argparse.Namespace) -> int:
    from loradex.composition import strategies

    options = parse_options(args.options)
    svc = _service(args)
    with _bar(args, f"{args.strategy} fit", show=args.strategy in strategies()["learned"]) as bar:  # others: seconds
        out = svc.merge(args.ids, args.weights, strategy=args.strategy, rank=args.rank, seed=args.seed,
                        name=args.name, options=options, progress=_progress(bar))  # fmt: skip
    if args.json:
        _emit({"id": out.adapter["id"], **out.to_dict()})
        return EXIT_OK
    print(("already registered: " if out.duplicate else "merged ") + _summary(out.adapter))
    err = out.info.get("relative_error")
    print(f"strategy {args.strategy}, weights {out.info.get('weights')}, rank {out.info.get('rank')}"
          + (f", relative error {err:.4f}" if isinstance(err, float) else ", exact"))  # fmt: skip
    return EXIT_OK


def cmd_compose(args: argparse.Namespace) -> int:
    from loradex.composition import compose_notes

    svc = _service(args)
    with _bar(args, "compose") as bar:
        res = svc.compose(args.prompt, adapters=args.adapters, auto=args.auto, strategy=args.strategy,
                          weights=args.weights, inputs=args.input, family=args.family, seed=args.seed,
                          n_images=args.n, steps=args.steps, options=parse_options(args.options),
                          progress=_progress(bar))  # fmt: skip
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for i, png in enumerate(res.images):
        f = out_dir / f"compose_{i}.png"
        f.write_bytes(png)
        files.append(str(f))
    gate = None
    if res.gate_png is not None:
        gate = out_dir / "gates.png"
        gate.write_bytes(res.gate_png)
    if args.json:
        doc = {k: v for k, v in res.to_dict().items() if k not in ("images", "gate_png")}
        _emit({**doc, "images": files, "gate_plot": str(gate) if gate else None})
        return EXIT_OK
    for a, w in zip(res.adapters, res.weights or [None] * len(res.adapters), strict=False):
        line = f"  {a['id']:>5} {a['name']:<32}" + (f" weight {w:.3f}" if w is not None else "")
        print(line + (f"  (for {a['picked_for']!r})" if a.get("picked_for") else ""))
    for i, o in zip(args.input or [], res.outputs, strict=False):
        print(f"{i} → {o}")
    for image in files:
        print(f"image: {image}")
    if gate:
        print(f"gate values per layer over timesteps: {gate}")
    print(f"{res.strategy} over {len(res.adapters)} adapters of {res.family}, {res.seconds:.1f} s")
    for note in compose_notes(res.info):
        print(note)
    auto = res.info.get("auto")
    if isinstance(auto, dict):  # auto ran the request's steps as a chain
        print("chained in the order the steps run: " + " → ".join(f"{s['step']!r} ({s['adapter']})" for s in auto["steps"])
              + (f"; left out: {', '.join(auto['left_out'])}" if auto["left_out"] else "")
              + (f" (one adapter per step: --auto {auto['asked']} picked {len(auto['steps'])})" if auto.get("asked") else ""))  # fmt: skip
    elif auto:
        print(f"auto: {auto}")
    return EXIT_OK


def cmd_fsck(args: argparse.Namespace) -> int:
    rep = _service(args).fsck(repair=args.repair)
    if args.json:
        _emit(rep.to_dict())
    else:
        print(f"{rep.adapters} adapters, {rep.blobs} blobs: {rep.problems} problems")
        for m in rep.missing_blobs:
            print(f"  missing blob: adapter {m['id']} {m['name']} (ingest the original file again to restore it)")
        for m in rep.broken_blobs:
            print(f"  blob lacks files {m['missing_files']}: adapter {m['id']} {m['name']}")
        for m in rep.missing_checkpoints:
            print(f"  missing blob of checkpoint {m['version']} (record its folder again to restore it)")
        for sha in rep.orphan_blobs:
            print(f"  orphan blob {sha[:12]} (no row)")
        for t in rep.stale_temps:
            print(f"  stale temporary folder {t}")
        for kind, n in rep.stale_embeddings.items():
            print(f"  {n} {kind} embeddings of an old encoder version")
        for kind, d in rep.index_drift.items():
            print(f"  {kind} index: {len(d['extra'])} entries without a row, {len(d['missing'])} rows missing")
        for line in rep.repaired:
            print(f"repaired: {line}")
    left = rep.unrepairable if args.repair else rep.problems
    return EXIT_REFUSED if left else EXIT_OK


def _output_flags(s: argparse.ArgumentParser) -> None:
    """``--json`` (one JSON document on stdout) and ``-q`` (no progress bar)."""
    s.add_argument("--json", action="store_true", help="one JSON document on stdout")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_commands(sub: Any) -> None:
    from loradex.composition import strategies

    ways = strategies()
    s = sub.add_parser("generate", help="generate an adapter from a description (and examples) and register it")
    s.add_argument("description")
    s.add_argument("--family", required=True, help="base family (loradex generators lists those with one)")
    s.add_argument("--method", default=None, help="generator method (default: the family's best available)")
    s.add_argument("--example", action="append", help="INPUT=>OUTPUT (repeatable)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--rank", type=int, default=None)
    s.add_argument("--out", type=Path, default=None, help="also write the adapter files here")
    s.add_argument(
        "--format", default=None, choices=["diffusers", "peft", "kohya"], help="with --out (default: native)"
    )
    _output_flags(s)
    s.set_defaults(fn=cmd_generate)

    s = sub.add_parser("generators", help="list the generators per family (bundled and trained)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_generators)

    s = sub.add_parser("train-generator", help="train a generator for a family on its described adapters")
    s.add_argument("--family", required=True)
    s.add_argument("--method", required=True)
    s.add_argument("--texts", type=Path, default=None, help="JSON: adapter name/sha256 → extra descriptions")
    s.add_argument("--config", default=None, help="JSON object of the method's config fields")
    _output_flags(s)
    s.set_defaults(fn=cmd_train_generator)

    s = sub.add_parser("merge", help="merge adapters in weight space into a new registered adapter")
    s.add_argument("ids", nargs="+")
    s.add_argument("--weights", type=float, nargs="+", default=None, help="one per adapter (default: equal)")
    s.add_argument(
        "--strategy",
        default="cat",
        help=" | ".join(ways["merge"]) + f" ({', '.join(ways['learned'])}: learned on the family's diffusion base)",
    )
    s.add_argument(
        "--options", default=None, help="strategy options as JSON, e.g. '{\"density\": 0.3}' or '{\"steps\": 60}'"
    )
    s.add_argument("--rank", type=int, default=None)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--name", default=None)
    _output_flags(s)
    s.set_defaults(fn=cmd_merge)

    s = sub.add_parser("compose", help="run several adapters together in their base pipeline")
    s.add_argument("--prompt", required=True, help="what to render; for a language model, the task")
    s.add_argument("--adapters", nargs="+", default=None, help="ids (or use --auto K)")
    s.add_argument("--auto", type=int, default=None, help="retrieve the top K adapters for the prompt")
    s.add_argument("--strategy", default="auto",
                   help=" | ".join(ways["compose"]) + " (auto: a chain for a language request of steps, 'X, then Y', "
                   "else gate)")  # fmt: skip
    s.add_argument("--options", default=None, help="with merge:<strategy>: the merge's options as JSON, e.g. "
                   "'{\"steps\": 5}' for merge:zip (fitted on the family's diffusion base before rendering)")  # fmt: skip
    s.add_argument("--weights", type=float, nargs="+", default=None)
    s.add_argument("--input", action="append", help="language families: an input to run (repeatable)")
    s.add_argument("--family", default=None, help="with --auto: the family to retrieve from")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-n", type=int, default=1, help="images per prompt")
    s.add_argument("--steps", type=int, default=None)
    s.add_argument("--out", default="compose_out", help="folder for the images and the gate plot")
    _output_flags(s)
    s.set_defaults(fn=cmd_compose)

    s = sub.add_parser("fsck", help="check rows, blobs, embeddings and index entries agree")
    s.add_argument("--repair", action="store_true", help="fix what can be fixed (orphans, stale vectors, indexes)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_fsck)
