"""Suite ``workers_scale`` (issue #17): ingestion of many synthetic zoo-like adapters into PostgreSQL
through 1 and 2 ``loradex worker`` processes: adapters/s per chunk as the registry grows, and
database bytes per adapter.

The adapters are synthetic: each copies one zoo adapter (image and text zoos, taken in turn: the
same formats, key names, shapes and base families as the zoo) with seeded Gaussian noise (1% of
each tensor's standard deviation) added to every tensor and ``(variant i)`` appended to its
description, so every one has its own sha256, text and weight embedding. Per worker count, one
fresh schema and one set of workers (``benchmarks.worker_ingest.worker_pool``); chunks of
``--sizes`` adapters are generated straight into upload folders of ``batch`` adapters (outside the
clock), ingested as one job per folder, and timed from the first deferral to the last job done
(embedding included), after a warm-up of one job per worker (not reported: it loads the encoders);
database bytes per adapter count from after the warm-up. A chunk starts only when, at the previous
chunk's pace, it would end within ``budget`` seconds of the configuration's start
(``LORADEX_BENCH_BUDGET_S``), so on a slow machine the run stops short of the total and says so
(``reached``). A flat rate across chunks means the registry's size does not slow ingestion.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.worker_ingest import _db_bytes, run_jobs, worker_pool

REPO = Path(__file__).resolve().parents[1]
ZOOS = [REPO / "benchmarks" / "zoo" / "image" / "adapters", REPO / "benchmarks" / "zoo" / "text" / "adapters"]


class Synthetic:
    """Zoo adapters as templates: ``write(i, folder)`` makes synthetic adapter ``i`` in ``folder``."""

    def __init__(self, zoos: list[Path] = ZOOS) -> None:
        per_zoo = [sorted(d for d in z.iterdir() if (d / "description.txt").is_file()) for z in zoos if z.is_dir()]
        self.templates = [d for group in itertools.zip_longest(*per_zoo) for d in group if d is not None]  # in turn
        assert self.templates, f"no zoo adapters under {zoos} (build the zoos first)"
        self._cache: dict[Path, tuple[str, dict[str, np.ndarray], dict[str, str], list[Path]]] = {}

    def _load(self, d: Path) -> tuple[str, dict[str, np.ndarray], dict[str, str], list[Path]]:
        if d not in self._cache:
            from safetensors import safe_open

            (weights,) = sorted(d.glob("*.safetensors"))
            with safe_open(str(weights), "np") as f:
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
                meta = dict(f.metadata() or {})
            others = [p for p in d.iterdir() if p.is_file() and p != weights and p.name != "description.txt"]
            self._cache[d] = (weights.name, tensors, meta, others)
        return self._cache[d]

    def write(self, i: int, folder: Path) -> Path:
        from safetensors.numpy import save_file

        template = self.templates[i % len(self.templates)]
        name, tensors, meta, others = self._load(template)
        rng = np.random.default_rng(i)
        out = folder / f"{template.name}_v{i:05d}"
        out.mkdir(parents=True)
        noisy = {k: (t + rng.standard_normal(t.shape, dtype=np.float32) * (0.01 * (float(t.std()) or 1.0)))
                 .astype(t.dtype) for k, t in tensors.items()}  # fmt: skip
        save_file(noisy, str(out / name), meta or None)
        for p in others:  # adapter_config.json of PEFT adapters
            (out / p.name).write_bytes(p.read_bytes())
        text = (template / "description.txt").read_text().strip()
        (out / "description.txt").write_text(f"{text} (variant {i})\n")
        return out


def stage(synth: Synthetic, start: int, n: int, root: Path, batch: int) -> list[Path]:
    """Synthetic adapters ``start`` … ``start + n - 1`` in upload folders of ``batch``."""
    folders = []
    for k in range(start, start + n, batch):
        folder = root / f"chunk-{start:06d}-batch-{k:06d}"
        folder.mkdir(parents=True)
        for i in range(k, min(k + batch, start + n)):
            synth.write(i, folder)
        folders.append(folder)
    return folders


def measure(work: Path, workers: int, sizes: list[int], batch: int, budget: float) -> list[dict[str, Any]]:
    synth = Synthetic()
    rows: list[dict[str, Any]] = []
    t_start = time.monotonic()
    per_adapter = 0.0  # seconds per adapter of the last chunk, generation included
    with worker_pool(work, workers) as (api, runner):
        # Warm-up, not reported: one job per worker loads each family's weight encoder there.
        warm = batch * workers
        run_jobs(api, runner, stage(synth, 0, warm, api.uploads, batch), work)
        before = _db_bytes(api)
        total = warm
        for n in sizes:
            if rows and time.monotonic() - t_start + n * per_adapter > budget:
                break  # this chunk would end past the budget
            t0 = time.perf_counter()
            folders = stage(synth, total, n, api.uploads, batch)
            seconds, ingested = run_jobs(api, runner, folders, work)
            per_adapter = (time.perf_counter() - t0) / n
            assert ingested == n, f"{ingested} of {n} ingested (see {work})"
            total += n
            size = _db_bytes(api) - before
            rows.append({"workers": workers, "chunk": n, "registry_after": total, "seconds": round(seconds, 1),
                         "adapters_per_s": n / seconds, "db_bytes_per_adapter": size / (total - warm),
                         "load_1min": round(os.getloadavg()[0], 2)})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def suite_workers_scale(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    sizes = args.sizes or ([20, 20] if quick else [500, 1000, 2000, 2000, 4500])
    batch = 10 if quick else 50
    budget = float(os.environ.get("LORADEX_BENCH_BUDGET_S", 60 if quick else 600))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="loradex-workers-scale-") as tmp:
        for w in (1, 2):
            rows += measure(Path(tmp) / f"w{w}", w, sizes, batch, budget)
    reached = {w: max(r["registry_after"] for r in rows if r["workers"] == w) for w in (1, 2)}
    return {
        "rows": rows,
        "planned": sizes,
        "reached": reached,
        "batch": batch,
        "budget_s_per_config": budget,
        "adapters": "synthetic: zoo adapters (image and text, in turn) with 1% seeded noise on every tensor and "
        "'(variant i)' appended to the description; embedding (text and weight encoders) included",
        "note": "workers, PostgreSQL and this process share the machine's 2 cores (and other users' load: "
        "load_1min); a chunk starts only when it would end within the configuration's budget",
    }
