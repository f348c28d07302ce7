"""``loradex`` command line: init, ingest, list, show, export, remove, search, train-encoder,
encoders, bench, serve. Every command goes through ``loradex.LocalService``; commands that need no
encoder open it with ``embed=False`` (no torch).

Registry errors are translated here (the edge) into a one-line message and exit status 2.
Every reporting command takes ``--json``: one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from encoders.weight.config import QUERY_HEAD_RECIPE, RAW_QUERY_WEIGHT
from loradex.errors import RegistryError
from loradex.service import LocalService
from loradex.settings import Settings
from loradex.types import INDEX_TYPES, Filters

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


def _service(args: argparse.Namespace, *, embed: bool = True) -> LocalService:
    """The service over ``--home`` / ``--db``; ``embed=False``: the bare registry, no encoders loaded.
    A one-shot command never follows the change log (it catches up when it opens)."""
    return LocalService.open(args.home, args.db, embed=embed, index_type=getattr(args, "index", "flat"),
                             blob_dir=_settings(args).blob_dir, blobs_url=_settings(args).blobs_url)  # fmt: skip


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(home=args.home, db_url=args.db, mode=args.deployment, blob_dir=args.blob_dir)


def _console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console()


def _emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def cmd_init(args: argparse.Namespace) -> int:
    svc = _service(args, embed=False)
    print(f"registry ready at {svc.home} (database {svc.database})")
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    svc = _service(args, embed=args.embed)
    with tqdm(total=0, unit="adapter", desc="ingest", file=sys.stderr, disable=args.quiet) as bar:

        def on_total(n: int) -> None:
            bar.total = n
            bar.refresh()

        report = svc.ingest(args.paths, workers=args.workers, progress=lambda r: bar.update(1), on_total=on_total)
    if not report.results:  # an empty folder or only other files: not a silent "ingested 0"
        from registry.ingest import nothing_found

        where = ", ".join(str(p) for p in args.paths)
        print(f"loradex: {where}: {nothing_found([Path(p) for p in args.paths])}", file=sys.stderr)
        if args.json:
            _emit_json(report.to_dict())
        return EXIT_REFUSED
    if args.json:
        _emit_json(report.to_dict())
    else:
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="ingestion")
        for col in ("status", "id", "name", "family", "format", "file"):
            table.add_column(col)
        style = {"ingested": "green", "duplicate": "yellow", "refused": "red"}
        for r in report.results:
            table.add_row(
                f"[{style[r.status]}]{r.status}[/]",
                str(r.adapter_id or ""),
                escape(r.name or ""),
                r.family or "",
                r.format or "",
                escape(Path(r.path).name),
            )
        console = _console()
        console.print(table)
        # Reasons name the full path and can be long: print them unwrapped under the table so
        # they stay greppable and copyable whatever the terminal width.
        for r in report.results:
            if r.status != "ingested" and r.reason:
                console.print(f"[{style[r.status]}]{r.status}[/] {escape(r.reason)}", soft_wrap=True)
        console.print(
            f"ingested {report.count('ingested')}, duplicate {report.count('duplicate')}, refused {report.count('refused')}"
        )
    return EXIT_REFUSED if report.refused else EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    filters = Filters(family=args.family, format=args.format, origin=args.origin, tags=tuple(args.tag or ()))
    rows = _service(args, embed=False).list(filters, sort=args.sort, limit=args.limit, offset=args.offset)
    if args.json:
        _emit_json(rows)
        return EXIT_OK
    from rich.table import Table

    table = Table(title=f"{len(rows)} adapters")
    for col in ("id", "name", "family", "format", "origin", "ranks", "modules", "params", "tags"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["id"]), r["name"], r["family"], r["format"], r["origin"], ",".join(map(str, r["ranks"])),
            str(r["module_count"]), f"{r['param_count']:,}", ", ".join(r["tags"]),
        )  # fmt: skip
    _console().print(table)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    info = _service(args, embed=False).get(args.id)
    lost = info.get("missing_files") or []
    if lost:  # the row is there but its files are not: a non-zero exit, so scripts notice
        print(f"loradex: adapter {info['id']} ({info['name']}): stored file(s) missing: {', '.join(lost)}; "
              "ingesting the original file again restores them (`loradex fsck` lists every such adapter)",
              file=sys.stderr)  # fmt: skip
    if args.json:
        _emit_json(info)
        return EXIT_ERROR if lost else EXIT_OK
    console = _console()
    skip = {"modules", "metadata", "parents", "children"}
    for k, v in info.items():
        if k not in skip:
            console.print(f"[bold]{k}[/]: {v}", highlight=False)
    console.print(f"[bold]lineage[/]: parents {info['parents']}, children {info['children']}")
    console.print(f"[bold]modules[/] ({len(info['modules'])}):")
    for m in info["modules"][: args.modules]:
        extra = f"  err={m['approx_error']}" if "approx_error" in m else ""
        console.print(
            f"  {m['name']}  r={m['rank']} {m['kind']} {m['out']}x{m['in']} scale={m['scale']}{extra}", highlight=False
        )
    if len(info["modules"]) > args.modules:
        console.print(f"  … {len(info['modules']) - args.modules} more (--modules N)")
    return EXIT_ERROR if lost else EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    files = _service(args, embed=False).export(args.id, args.format, args.out)
    for f in files:
        print(f)
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    info = _service(args, embed=False).remove(args.id)
    print(f"removed adapter {info['id']} ({info['name']})")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    svc = _service(args)
    filters = Filters(family=args.family, format=args.format, origin=args.origin, tags=tuple(args.tag or ()))
    from loradex.examples import parse_example

    examples = [parse_example(e) for e in args.example or []] or None
    pictures = list(args.example_image or []) or None
    if pictures:  # candidates are rendered once each (then their previews are cached): show it
        from ui.cli_make import _bar, _progress

        with _bar(args, "render candidates") as bar:
            hits = svc.search(args.prompt, args.k, mode=args.mode, filters=filters, images=pictures,
                              progress=_progress(bar))  # fmt: skip
    else:
        hits = svc.search(args.prompt, args.k, mode=args.mode, filters=filters, examples=examples)
    nothing_fits, threshold = getattr(hits, "nothing_fits", None), getattr(hits, "threshold", None)
    if args.json:
        _emit_json({"prompt": args.prompt, "mode": args.mode, "hits": [h.to_dict() for h in hits],
                    "nothing_fits": nothing_fits, "relevance_threshold": threshold,
                    "read": getattr(hits, "read", None), "reason": getattr(hits, "reason", None)})  # fmt: skip
        return EXIT_OK
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    read = getattr(hits, "read", None)
    if read:
        console.print(f"[dim]searched for: {escape(read)}[/dim]")
    if nothing_fits:
        console.print(f"[yellow]{escape(hits.verdict())}[/yellow]")
        if args.prompt.strip():
            console.print(f'  loradex generate "{escape(args.prompt)}"  makes an adapter from this description')
    by = "example pictures" if pictures else "examples" if examples else args.mode
    table = Table(title=f"{len(hits)} results for {args.prompt!r} ({by})")
    for col in ("#", "id", "name", "family", "relevance", "score", "weights", "text", "why"):
        table.add_column(col, no_wrap=col == "name")  # names stay whole; "why" wraps
    for n, h in enumerate(hits, 1):
        fmt = {k: "" if v is None else f"{v:.3f}" for k, v in h.scores.items()}
        rel = "" if h.relevance is None else f"{h.relevance:.0%}"
        table.add_row(str(n), str(h.adapter["id"]), escape(h.adapter["name"]), h.adapter["family"], rel,
                      f"{h.score:.3f}", fmt.get("weights", ""), fmt.get("text", ""), escape(h.why))  # fmt: skip
    console.print(table)
    return EXIT_OK


def cmd_train_encoder(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from encoders.weight.registry_training import load_texts_file
    from encoders.weight.train import TrainConfig

    texts = load_texts_file(args.texts) if args.texts else None
    if args.bundled and not args.text:
        print("error: --bundled goes with --text (the text map)", file=sys.stderr)
        return EXIT_ERROR
    if args.tune and not args.text:
        print("error: --tune goes with --text (the text map)", file=sys.stderr)
        return EXIT_ERROR
    if args.text:
        if args.bundled:
            from loradex.settings import Settings

            texts = {**Settings.from_env().bundled_texts(), **(texts or {})}  # the file's entries win
        return _train_text_map(args, texts)
    if not args.family:
        print("error: train-encoder needs --family FAMILY (a weight encoder) or --text (the text map)", file=sys.stderr)
        return EXIT_ERROR
    svc = _service(args)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, val_fraction=args.val_fraction,
                      seed=args.seed, raw_query_weight=args.raw_query_weight if args.query_hidden else 0.0)  # fmt: skip
    model_config = None
    if args.query_hidden:
        model_config = {"query_hidden": args.query_hidden, "query_dropout": args.query_dropout,
                        "query_raw_share": args.query_raw_share}  # fmt: skip
    with tqdm(total=cfg.epochs, unit="epoch", desc=f"train {args.family}", file=sys.stderr, disable=args.quiet) as bar:

        def progress(epoch: int, total: int, m: dict[str, float]) -> None:
            bar.n = epoch
            bar.set_postfix(
                loss=f"{m['loss']:.3f}", **{k: f"{v:.2f}" for k, v in m.items() if k.startswith("val_recall")}
            )

        result = svc.train_encoder(args.family, texts=texts, only_listed=args.only_listed, train_config=cfg,
                                   progress=progress, model_config=model_config)  # fmt: skip
    if args.json:
        _emit_json(result)
    else:
        best = result["metrics"]["best"]
        print(f"trained {result['version']} on {result['metrics']['adapters']} adapters → {result['path']}")
        print("best: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in best.items()))
    return EXIT_OK


def _train_text_map(args: argparse.Namespace, texts: dict[str, Any] | None) -> int:
    """``train-encoder --text [--tune]``: fit the registry's text map (and fine-tune the text encoder),
    record it, re-embed the text index."""
    if not args.tune:
        result = _service(args).train_text_map(texts)
    else:
        from tqdm import tqdm

        from encoders.registry_text_tune import TuneConfig
        from ui.cli_make import _progress

        try:
            tune = TuneConfig(epochs=args.tune_epochs, seed=args.seed)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_ERROR
        with tqdm(total=0, unit="step", desc="tune text encoder", file=sys.stderr, disable=args.quiet) as bar:
            result = _service(args).train_text_map(texts, tune=tune, progress=_progress(bar))
    if args.json:
        _emit_json(result)
    else:
        m = result["metrics"]
        print(f"fitted text map {result['version']} on {m['adapters']} adapters, {m['texts']} texts → {result['path']}")
        print(f"leave-one-out top-1: {m['loo_top1_before']} → {m['loo_top1_after']}")
        if "tune" in m:
            t = m["tune"]
            print(f"tuned text encoder: {t['steps']} steps, last loss {t['loss']}; its map's leave-one-out top-1: "
                  f"{t['map']['loo_top1_before']} → {t['map']['loo_top1_after']}")  # fmt: skip
    return EXIT_OK


def cmd_encoders(args: argparse.Namespace) -> int:
    rows = _service(args, embed=False).encoders()
    if args.json:
        _emit_json(rows)
        return EXIT_OK
    from encoders.weight import bundled_checkpoints

    for b in bundled_checkpoints():
        print(f"bundled  weights  {b.name:<12} {b}")
    for r in rows:
        best = ", ".join(f"{k}={v:.2f}" for k, v in r["metrics"].items()
                         if isinstance(v, float) and ("recall" in k or k == "loo_top1_after"))  # fmt: skip
        print(f"trained  {r['kind']:<8} {r['family']:<12} {r['version']}  {best}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """The benchmark harness of a source checkout, in its own process (the product does not import it)."""
    cmd = [sys.executable, "-m", "benchmarks.run", *args.suites, "--repeats", str(args.repeats)]
    try:
        return subprocess.run(cmd, check=False).returncode
    except OSError as e:
        print(f"loradex: error: cannot run the benchmarks ({e})", file=sys.stderr)
        return EXIT_ERROR


def cmd_serve(args: argparse.Namespace) -> int:
    from ui.server import serve

    settings = _settings(args)
    return serve(args.home, args.db, host=args.host, port=args.port, samples=args.samples,
                 cors_origins=args.cors_origin, max_upload_bytes=args.max_upload_mb << 20, ui=args.ui, mode=settings.mode,
                 blob_dir=settings.blob_dir, blobs_url=settings.blobs_url,
                 catch_up_interval=settings.catch_up_interval)  # fmt: skip


def cmd_worker(args: argparse.Namespace) -> int:
    """Run queued jobs (shared mode on PostgreSQL) until interrupted; ``--offers cuda`` takes GPU tasks."""
    import logging

    from loradex.queue import queues_for, run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    offers = args.offers
    if offers is None:
        import torch

        offers = ["cuda"] if torch.cuda.is_available() else []
    queues = queues_for(offers)
    settings = _settings(args)
    svc = LocalService.open(args.home, args.db, mode="shared", blob_dir=settings.blob_dir, blobs_url=settings.blobs_url,
                            catch_up_interval=settings.catch_up_interval)  # fmt: skip
    print(f"loradex worker {args.name or ''}: queues {', '.join(queues)}; database {svc.database}", flush=True)
    run_worker(svc, offers=offers, name=args.name, heartbeat=args.heartbeat, stalled_after=args.stalled_after,
               retention_hours=settings.queue_retention_hours)  # fmt: skip
    svc.close()
    return EXIT_OK


def cmd_deploy_local(args: argparse.Namespace) -> int:
    from ui.deploy import run

    return run(args.base, args.db, replicas=args.replicas, workers=args.workers, port=args.port,
               gpu_workers=args.gpu_workers, samples=args.samples, ui=args.ui)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loradex", description="LoRA adapter registry, retrieval and generation.")
    p.add_argument("--home", default=None, help="data dir (default $LORADEX_HOME or ~/.loradex)")
    p.add_argument("--db", default=None, help="database URL (default $LORADEX_DB_URL or SQLite in the data dir)")
    p.add_argument("--deployment", choices=["embedded", "shared"], default=None,
                   help="embedded (default, $LORADEX_MODE) or shared: replicas and workers on one database")  # fmt: skip
    p.add_argument("--blob-dir", default=None, type=Path,
                   help="adapter files (default $LORADEX_BLOB_DIR or <home>/blobs; shared mode: a shared folder); "
                        "with $LORADEX_BLOBS_URL, their local cache (default <home>/blob-cache)")  # fmt: skip
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("init", help="create the data dir and migrate the database to head").set_defaults(fn=cmd_init)

    s = sub.add_parser("ingest", help="ingest adapter files and folders (recursive)")
    s.add_argument("paths", nargs="+", type=Path)
    s.add_argument("--workers", type=int, default=None, help="parallel parsers (default: CPU count)")
    s.add_argument("--json", action="store_true", help="one JSON document on stdout")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.add_argument(
        "--no-embed",
        dest="embed",
        action="store_false",
        help="skip embedding (faster; adapters are embedded at the next search / index sync)",
    )
    s.set_defaults(fn=cmd_ingest)

    s = sub.add_parser("list", help="list adapters")
    for f in ("family", "format", "origin"):
        s.add_argument(f"--{f}", default=None)
    s.add_argument("--tag", action="append", help="required tag (repeatable)")
    s.add_argument("--sort", default="id",
                   help="id, name, family, format, origin, created, size or params; '-' first for descending")  # fmt: skip
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--offset", type=int, default=0)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_list)

    s = sub.add_parser("show", help="show one adapter (id, name or sha256 prefix)")
    s.add_argument("id")
    s.add_argument("--json", action="store_true")
    s.add_argument("--modules", type=int, default=20, help="how many modules to print")
    s.set_defaults(fn=cmd_show)

    s = sub.add_parser("export", help="write an adapter in another format")
    s.add_argument("id")
    s.add_argument("--format", required=True, choices=["diffusers", "peft", "kohya"])
    s.add_argument("--out", required=True, type=Path)
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("remove", help="remove an adapter: row, blob and lineage together")
    s.add_argument("id")
    s.set_defaults(fn=cmd_remove)

    s = sub.add_parser(
        "search",
        help="find adapters for a prompt (weights + metadata text) or by examples (INPUT=>OUTPUT, or example pictures)",
    )
    s.add_argument(
        "prompt", nargs="?", default="", help="what the adapter should do (optional with --example or --example-image)"
    )
    s.add_argument("--example", action="append", help="INPUT=>OUTPUT: rank by running candidates on it (repeatable)")
    s.add_argument("--example-image", action="append", metavar="PATH",
                   help="a picture in the look wanted: an image family's candidates are rendered on its base and "
                   "ranked by how much they look like it (repeatable)")  # fmt: skip
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--mode", choices=["hybrid", "weights", "text"], default="hybrid")
    for f in ("family", "format", "origin"):
        s.add_argument(f"--{f}", default=None)
    s.add_argument("--tag", action="append", help="required tag (repeatable)")
    s.add_argument("--index", choices=INDEX_TYPES, default="flat", help="FAISS index type (registry/index.py)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_search)

    s = sub.add_parser("train-encoder", help="train the weight encoder of a base family on described adapters, "
                       "or (--text) fit the registry's text map")  # fmt: skip
    s.add_argument("--family", default=None, help="the base family whose weight encoder to train")
    s.add_argument("--text", action="store_true",
                   help="fit the registry's text map on its descriptions and --texts paraphrases instead")  # fmt: skip
    s.add_argument("--texts", type=Path, default=None, help="JSON: adapter name/sha256 → extra descriptions")
    s.add_argument("--bundled", action="store_true",
                   help="with --text: also the paraphrases the bundled adapter sets declare (what a fresh serve fits)")  # fmt: skip
    s.add_argument("--only-listed", action="store_true", help="train only on adapters named in --texts")
    s.add_argument("--tune", action="store_true",
                   help="with --text: also fine-tune the text encoder (a LoRA) on the same texts and fit a second "
                        "map on it; search then averages both cosines (minutes on a CPU)")  # fmt: skip
    s.add_argument("--tune-epochs", type=int, default=1, help="with --tune: passes over the texts (default 1)")
    s.add_argument("--epochs", type=int, default=300)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--lr", type=float, default=2e-3)
    s.add_argument("--val-fraction", type=float, default=0.15)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--query-hidden", type=int, default=0,
                   help="train a query head of this width with the encoder (0: none); pays off with many paraphrases per task")  # fmt: skip
    s.add_argument("--query-dropout", type=float, default=QUERY_HEAD_RECIPE["query_dropout"],
                   help="dropout inside the query head")  # fmt: skip
    s.add_argument("--query-raw-share", type=float, default=QUERY_HEAD_RECIPE["query_raw_share"],
                   help="share of the prompt as encoded in the search query, beside the head's output")  # fmt: skip
    s.add_argument("--raw-query-weight", type=float, default=RAW_QUERY_WEIGHT,
                   help="weight of the loss on prompts as encoded, beside the head's (keeps both aligned)")  # fmt: skip
    s.add_argument("--json", action="store_true")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(fn=cmd_train_encoder)

    s = sub.add_parser("encoders", help="list bundled and trained encoders")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_encoders)

    s = sub.add_parser("bench", help="run benchmark suites (python -m benchmarks.run, in a source checkout)")
    s.add_argument("suites", nargs="*")
    s.add_argument("--repeats", type=int, default=5)
    s.set_defaults(fn=cmd_bench)

    s = sub.add_parser("serve", help="run the REST API on localhost (a fresh data dir gets the sample adapters)")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 exposes it)")
    s.add_argument("--port", type=int, default=7860)
    s.add_argument("--no-samples", dest="samples", action="store_false", help="do not ingest the bundled samples")
    s.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        help="allow this browser origin (repeatable; CORS is off by default)",
    )
    s.add_argument("--max-upload-mb", type=int, default=2048, help="largest ingest upload, in MiB")
    s.add_argument("--no-ui", dest="ui", action="store_false", help="the REST API only (no web UI at /ui)")
    s.set_defaults(fn=cmd_serve)

    s = sub.add_parser("deploy-local", help="shared mode on this machine: N replicas + M workers on PostgreSQL")
    s.add_argument("--replicas", type=int, default=2)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--port", type=int, default=7861, help="first replica's port (the others follow)")
    s.add_argument("--gpu-workers", type=int, default=None,
                   help="workers that take GPU tasks (default: all with CUDA, else 1 running them on the CPU)")  # fmt: skip
    s.add_argument("--base", type=Path, default=Path(".loradex-shared"), help="data dirs, blobs, logs, token")
    s.add_argument("--no-samples", dest="samples", action="store_false", help="do not ingest the bundled samples")
    s.add_argument("--no-ui", dest="ui", action="store_false", help="replicas serve the REST API only")
    s.set_defaults(fn=cmd_deploy_local)

    s = sub.add_parser(
        "worker", help="run queued jobs (shared mode, PostgreSQL): ingest, merge; GPU tasks with --offers cuda"
    )
    s.add_argument("--offers", nargs="*", default=None, metavar="CAPABILITY",
                   help="what this worker offers (cuda: train-encoder, generate, compose); default: cuda when a GPU is visible")  # fmt: skip
    s.add_argument("--name", default=None, help="worker name in logs")
    s.add_argument("--heartbeat", type=float, default=10.0, help="seconds between heartbeats")
    s.add_argument("--stalled-after", type=float, default=30.0,
                   help="a worker silent this long is dead: its job is retried")  # fmt: skip
    s.set_defaults(fn=cmd_worker)

    from ui.cli_make import add_commands

    add_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except RegistryError as e:
        print(f"loradex: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:
        from registry.errors import explain

        known = explain(e, args.home or args.db)  # read-only data dir, disk full, database down …
        if known is None:
            raise
        print(f"loradex: error: {known}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
