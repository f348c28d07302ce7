"""Benchmark harness: ``python -m benchmarks.run [suite …]`` → ``benchmarks/results/<suite>.json`` + ``.md``.

Timings are medians of repeated runs, reported with ratios against a baseline measured in
the same run, and the machine is described in every result. Suites register themselves in
``SUITES``; later issues add ``zoo``, ``retrieval``, ``generation``, ``fusion``, ``scale``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FIXTURES = Path(os.environ.get("LORADEX_FIXTURES", REPO.parent / "shared" / "fixtures" / "real_adapters"))

Suite = Callable[[argparse.Namespace], dict[str, Any]]
SUITES: dict[str, Suite] = {}


def register_suite(name: str, fn: Suite) -> None:
    if name in SUITES:
        raise ValueError(f"suite {name!r} is already registered")
    SUITES[name] = fn


def machine() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def _lazy(target: str) -> Suite:
    """A suite living in another module, imported only when it runs."""

    def run(args: argparse.Namespace) -> dict[str, Any]:
        import importlib

        module, fn = target.split(":")
        return getattr(importlib.import_module(module), fn)(args)  # type: ignore[no-any-return]

    return run


register_suite("ingest", _lazy("benchmarks.ingest_suite:suite_ingest"))
register_suite("zoo", _lazy("benchmarks.zoo_suite:suite_zoo"))
register_suite("retrieval", _lazy("benchmarks.retrieval:suite_retrieval"))
register_suite("scale", _lazy("benchmarks.retrieval_scale:suite_scale"))
register_suite("scale_1m", _lazy("benchmarks.retrieval_scale_index:suite_scale_1m"))
register_suite("reliability", _lazy("benchmarks.reliability:suite_reliability"))
register_suite("generation", _lazy("benchmarks.generation:suite_generation"))
register_suite("generation_real", _lazy("benchmarks.generation_real:suite_generation_real"))
register_suite("fusion", _lazy("benchmarks.fusion:suite_fusion"))
register_suite("relevance", _lazy("benchmarks.relevance:suite_relevance"))
register_suite("replicas", _lazy("benchmarks.replicas:suite_replicas"))
register_suite("queue", _lazy("benchmarks.queue_kills:suite_queue"))
register_suite("workers", _lazy("benchmarks.worker_ingest:suite_workers"))
register_suite("workers_scale", _lazy("benchmarks.worker_ingest_scale:suite_workers_scale"))
register_suite("api_replicas", _lazy("benchmarks.api_replicas:suite_api_replicas"))
register_suite("ui_flows", _lazy("benchmarks.ui_flows:suite_ui_flows"))
register_suite("by_example", _lazy("benchmarks.by_example:suite_by_example"))
register_suite("by_example_images", _lazy("benchmarks.by_example_images:suite_by_example_images"))
register_suite("compose_picks", _lazy("benchmarks.compose_picks:suite_compose_picks"))
register_suite("compose_steps", _lazy("benchmarks.compose_steps:suite_compose_steps"))


# -- reporting -----------------------------------------------------------------------------
def to_markdown(suite: str, result: dict[str, Any]) -> str:
    lines = [f"# {suite}", "", f"machine: `{json.dumps(result['machine'])}`", ""]
    tables: list[list[dict[str, Any]]] = []  # runs of rows with the same columns: one table each
    for r in result.get("rows") or []:
        if not tables or list(tables[-1][0]) != list(r):
            tables.append([])
        tables[-1].append(r)
    for rows in tables:
        cols = list(rows[0])
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in rows:
            lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
        lines.append("")
    extra = {k: v for k, v in result.items() if k not in {"rows", "machine", "runs"}}
    lines += ["```json", json.dumps(extra, indent=2), "```", ""]
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    try:
        return [int(float(v)) for v in text.split(",")]  # 1e6 reads as 1000000
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__)
    p.add_argument("suites", nargs="*", default=["ingest"], help=f"known: {', '.join(SUITES)}")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--adapters", default=None, help="folder of adapters for the ingest suite")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--quick", action="store_true", help="smaller samples (smoke runs and tests)")
    p.add_argument("--zoo-dir", default=None, help="one zoo folder (default: every built zoo under benchmarks/zoo/)")
    p.add_argument("--parts", default=None, help="reliability: a comma list of crash, jobs, concurrency, api, fuzz")
    p.add_argument(
        "--text-map",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="retrieval: fit each zoo registry's text map on the zoo's training texts, as a fresh start of the "
        "service does (default; --no-text-map: plain text-encoder cosines)",
    )
    p.add_argument("--tune-text", action="store_true",
                   help="retrieval: with the text map, also fine-tune the text encoder (train-encoder --text --tune)")  # fmt: skip
    p.add_argument("--encoder-dir", default=None, help="weight encoder checkpoint to use instead of the bundled one")
    p.add_argument("--sizes", type=_ints, default=None, help="scale, scale_1m: comma list of registry sizes N")
    p.add_argument("--types", type=lambda s: s.split(","), default=None, help="scale_1m: comma list of index types")
    p.add_argument("--data", default=None, help="scale_1m: synthetic embeddings, clustered (default) or overlapping")
    p.add_argument("--methods", type=lambda s: s.split(","), default=None,
                   help="generation: a comma list of generator methods to run (default: every committed one)")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        p.error(f"unknown suite(s) {unknown}; known: {', '.join(SUITES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.suites:
        result = {"suite": name, "machine": machine(), **SUITES[name](args)}
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=2))
        md = to_markdown(name, result)
        (args.out / f"{name}.md").write_text(md)
        print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
