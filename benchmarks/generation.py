"""Benchmark suite ``generation``: adapters generated from descriptions (and examples), judged by the zoos' own evaluators.

Commands::

    python -m benchmarks.generation queries            # (re)write benchmarks/generation_queries.json
    python -m benchmarks.generation train text|image   # train the committed checkpoints
    python -m benchmarks.run generation                # the suite → benchmarks/results/generation.{json,md,png}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.generation_data import METHODS, QUERIES, queries, train


def suite_generation(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.generation_eval import run_suite

    return run_suite(args)


def fill(res: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """A per-zoo run made with ``--methods`` (a subset), completed by the methods of ``previous`` (an
    earlier merged generation.json) it did not run; they are listed under ``filled_from_previous``."""
    for z, zr in res["zoos"].items():
        old = previous["zoos"].get(z)
        if old is None:
            continue
        filled: set[str] = set()
        for sp, summ in zr["splits"].items():
            for lab, v in old["splits"].get(sp, {}).items():
                if lab not in summ:
                    summ[lab] = v
                    filled.add(lab)
        res["rows"] += [r for r in previous["rows"] if r["zoo"] == z and r["method"] in filled]
        zr["filled_from_previous"] = sorted(filled)
    return res


def merge(dirs: list[Path], notes: str, fill_from: Path | None = None) -> None:
    """One generation.json / .md (+ pictures) from suite runs made per zoo."""
    import copy
    import shutil

    from benchmarks.run import RESULTS, to_markdown

    previous = json.loads(fill_from.read_text()) if fill_from else None
    out: dict[str, Any] = {"suite": "generation", "notes": notes, "zoos": {}, "rows": []}
    for d in dirs:
        res = json.loads((d / "generation.json").read_text())
        if previous is not None:
            res = fill(res, previous)
        out["machine"] = res["machine"]
        out["zoos"].update(res["zoos"])
        out["rows"] += res["rows"]
        for png in d.glob("generation_*.png"):
            shutil.copy(png, RESULTS / png.name)
    (RESULTS / "generation.json").write_text(json.dumps(out, indent=2) + "\n")
    short = copy.deepcopy(out)
    for z in short["zoos"].values():
        for split in z["splits"].values():
            for v in split.values():
                v.pop("per_task", None)
    md = to_markdown("generation", short)
    if notes:
        md = md.replace("\n\n", "\n\n" + notes.strip() + "\n\n", 1)
    (RESULTS / "generation.md").write_text(md)
    print(md)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.generation", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("queries", help="write the evaluation queries file")
    mg = sub.add_parser("merge", help="merge per-zoo suite runs (run.py --zoo-dir text|image --out DIR) into results/")
    mg.add_argument("dirs", nargs="+", type=Path)
    mg.add_argument("--notes", default="", help="text put at the top of generation.md")
    mg.add_argument("--fill-from", type=Path, default=None,
                    help="a merged generation.json whose methods complete runs made with --methods")  # fmt: skip
    t = sub.add_parser("train", help="train every generator method of a zoo into generators/checkpoints/")
    t.add_argument("zoo", choices=["text", "image", "all"])
    t.add_argument("--methods", nargs="*", default=list(METHODS))
    args = p.parse_args(argv)
    if args.command == "merge":
        merge(args.dirs, args.notes, args.fill_from)
        return 0
    if args.command == "queries":
        QUERIES.write_text(json.dumps(queries(), indent=1) + "\n")
        print(f"wrote {QUERIES}")
        return 0
    for zoo in ["text", "image"] if args.zoo == "all" else [args.zoo]:
        res = train(zoo, tuple(args.methods))
        print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
