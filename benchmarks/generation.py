"""Benchmark suite ``generation``: adapters generated from descriptions (and examples), judged by the zoos' own evaluators.

Commands::

    python -m benchmarks.generation queries            # (re)write benchmarks/generation_queries.json
    python -m benchmarks.generation train text|image   # train the committed checkpoints
    python -m benchmarks.run generation                # the suite → benchmarks/results/generation.{json,md,png}
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from benchmarks.generation_data import METHODS, QUERIES, queries, train


def suite_generation(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.generation_eval import run_suite

    return run_suite(args)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.generation", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("queries", help="write the evaluation queries file")
    t = sub.add_parser("train", help="train every generator method of a zoo into generators/checkpoints/")
    t.add_argument("zoo", choices=["text", "image", "all"])
    t.add_argument("--methods", nargs="*", default=list(METHODS))
    args = p.parse_args(argv)
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
