"""``loradex`` command line: init, ingest, list, show, export, remove.

Registry errors are translated here (the edge) into a one-line message and exit status 2.
Every reporting command takes ``--json``: one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from registry.errors import RegistryError

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


def _registry(args: argparse.Namespace, *, init: bool = True):  # type: ignore[no-untyped-def]
    from registry.store import Registry

    reg = Registry(home=args.home, db_url=args.db)
    if init:
        reg.init()
    return reg


def _console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console()


def _emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def cmd_init(args: argparse.Namespace) -> int:
    reg = _registry(args)
    print(f"registry ready at {reg.home} (database {reg.engine.url.render_as_string(hide_password=True)})")
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    reg = _registry(args)
    bar = tqdm(total=0, unit="adapter", desc="ingest", file=sys.stderr, disable=args.quiet)

    def on_total(n: int) -> None:
        bar.total = n
        bar.refresh()

    report = reg.ingest(args.paths, workers=args.workers, progress=lambda r: bar.update(1), on_total=on_total)
    bar.close()
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
    rows = _registry(args).list(family=args.family, format=args.format, origin=args.origin, tag=args.tag)
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
    info = _registry(args).get(args.id)
    if args.json:
        _emit_json(info)
        return EXIT_OK
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
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    files = _registry(args).export(args.id, args.format, args.out)
    for f in files:
        print(f)
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    info = _registry(args).remove(args.id)
    print(f"removed adapter {info['id']} ({info['name']})")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loradex", description="LoRA adapter registry, retrieval and generation.")
    p.add_argument("--home", default=None, help="data dir (default $LORADEX_HOME or ~/.loradex)")
    p.add_argument("--db", default=None, help="database URL (default $LORADEX_DB_URL or SQLite in the data dir)")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("init", help="create the data dir and migrate the database to head").set_defaults(fn=cmd_init)

    s = sub.add_parser("ingest", help="ingest adapter files and folders (recursive)")
    s.add_argument("paths", nargs="+", type=Path)
    s.add_argument("--workers", type=int, default=None, help="parallel parsers (default: CPU count)")
    s.add_argument("--json", action="store_true", help="one JSON document on stdout")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_ingest)

    s = sub.add_parser("list", help="list adapters")
    for f in ("family", "format", "origin", "tag"):
        s.add_argument(f"--{f}", default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_list)

    s = sub.add_parser("show", help="show one adapter (id or sha256 prefix)")
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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except RegistryError as e:
        print(f"loradex: error: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
