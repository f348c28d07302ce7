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
import tempfile
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


# -- suite: ingest -------------------------------------------------------------------------
def _read_plain(files: list[Path]) -> None:
    """Baseline: load every weights file with safetensors alone (torch.load for pickles)."""
    import torch
    from safetensors.torch import load_file

    for f in files:
        if f.suffix == ".safetensors":
            load_file(str(f))
        else:
            torch.load(str(f), map_location="cpu", weights_only=True)


def suite_ingest(args: argparse.Namespace) -> dict[str, Any]:
    from registry.formats import resolve_source
    from registry.ingest import discover
    from registry.store import Registry

    root = Path(args.adapters) if args.adapters else (FIXTURES if FIXTURES.is_dir() else REPO / "samples" / "adapters")
    units = [u for u in discover([root]) if u.problem is None]
    weights = [resolve_source(u.path).weights for u in units]
    total_mb = sum(f.stat().st_size for f in weights) / 1e6
    _read_plain(weights)  # warm the page cache and imports for both sides

    def ingest_once() -> None:
        with tempfile.TemporaryDirectory() as d:
            reg = Registry(home=d, db_url=f"sqlite:///{d}/b.db")
            reg.init()
            rep = reg.ingest([root])
            assert rep.count("ingested") == len(units), rep.to_dict()
            reg.close()

    ingest_once()
    t_plain, plain_runs = median_time(lambda: _read_plain(weights), args.repeats)
    t_ingest, ingest_runs = median_time(ingest_once, args.repeats)
    n = len(units)
    rows = [
        {"method": "safetensors / torch.load only", "seconds": t_plain, "adapters_per_s": n / t_plain,
         "mb_per_s": total_mb / t_plain, "ratio_to_baseline": 1.0},
        {"method": "loradex ingest (parse, validate, hash, blob, SQLite row)", "seconds": t_ingest,
         "adapters_per_s": n / t_ingest, "mb_per_s": total_mb / t_ingest, "ratio_to_baseline": t_ingest / t_plain},
    ]  # fmt: skip
    return {
        "adapters": n,
        "megabytes": round(total_mb, 2),
        "source": str(root),
        "repeats": args.repeats,
        "rows": rows,
        "runs": {"plain": plain_runs, "ingest": ingest_runs},
    }


register_suite("ingest", suite_ingest)


def _lazy(target: str) -> Suite:
    """A suite living in another module, imported only when it runs."""

    def run(args: argparse.Namespace) -> dict[str, Any]:
        import importlib

        module, fn = target.split(":")
        return getattr(importlib.import_module(module), fn)(args)  # type: ignore[no-any-return]

    return run


register_suite("zoo", _lazy("benchmarks.zoo_suite:suite_zoo"))
register_suite("retrieval", _lazy("benchmarks.retrieval:suite_retrieval"))
register_suite("scale", _lazy("benchmarks.retrieval_scale:suite_scale"))
register_suite("reliability", _lazy("benchmarks.reliability:suite_reliability"))
register_suite("generation", _lazy("benchmarks.generation:suite_generation"))
register_suite("generation_real", _lazy("benchmarks.generation_real:suite_generation_real"))
register_suite("fusion", _lazy("benchmarks.fusion:suite_fusion"))
register_suite("replicas", _lazy("benchmarks.replicas:suite_replicas"))
register_suite("queue", _lazy("benchmarks.queue_kills:suite_queue"))
register_suite("workers", _lazy("benchmarks.worker_ingest:suite_workers"))
register_suite("ui_flows", _lazy("benchmarks.ui_flows:suite_ui_flows"))


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__)
    p.add_argument("suites", nargs="*", default=["ingest"], help=f"known: {', '.join(SUITES)}")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--adapters", default=None, help="folder of adapters for the ingest suite")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--quick", action="store_true", help="smaller samples (smoke runs and tests)")
    p.add_argument("--zoo-dir", default=None, help="one zoo folder (default: every built zoo under benchmarks/zoo/)")
    p.add_argument("--encoder-dir", default=None, help="weight encoder checkpoint to use instead of the bundled one")
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
