"""Suite ``scale`` (issue #4): retrieval latency as the registry grows, and the int8 text path.

Index part, at each N: synthetic unit-norm 384-d embeddings (fixed seed), clustered (N/32
centres, at most 4096, log-normal sizes, plus per-item noise) so that nearest neighbours are neighbours and
HNSW recall means something. Per-query latency p50/p99 over ``queries`` single queries for
NumPy brute force (the baseline: ``emb @ q`` + ``argpartition``), ``VectorIndex`` flat and
``VectorIndex`` hnsw, with ratios to the baseline's p50 and Recall@10 against the exact top 10.

End-to-end part, at each N: a real SQLite registry (Alembic schema, N adapter rows with tags
and their embedding rows, bulk-inserted with SQLAlchemy core; no blob files, search does not
read them) whose ``text`` index holds the synthetic vectors; ``LocalService.search(mode="text")``
timed per prompt: text encoding + index search + fetching the top-10 rows. ``cold``: every
prompt new to the encoder's cache; ``warm``: the same prompts again (cache hits).

Text part: one-short-prompt encode latency of the float MiniLM (reference) against the int8
path (``TextEncoderConfig(quantize=True)``), and Recall@10 of int8 queries against float
queries over a gallery of adapter-style descriptions composed from the lists below.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from encoders.text import TextEncoder
    from registry.index import VectorIndex
    from registry.store import Registry

K = 10
DIM = 384
RECALL_TARGET = 0.99  # int8 may become the default only at or above this Recall@10 (and faster)


@dataclass
class ScaleConfig:
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000)  # registry sizes N
    queries: int = 300  # synthetic queries per N, each timed alone (p50/p99)
    prompts: int = 200  # text prompts per N and index type for the end-to-end timings
    encode_prompts: int = 200  # short prompts timed through the float and the int8 encoder
    gallery: int = 400  # adapter-style descriptions for the int8 Recall@10
    gallery_queries: int = 150  # short prompts searched over that gallery
    rounds: int = 3  # timing passes, spread over the run and pooled (p50/p99 over all of them)
    seed: int = 0

    def __post_init__(self) -> None:
        if (
            not self.sizes
            or min(self.sizes) < K
            or min(self.queries, self.prompts, self.encode_prompts, self.rounds) < 1
        ):
            raise ValueError(f"sizes must be ≥ {K} and counts ≥ 1, got {self}")

    @classmethod
    def quick(cls) -> ScaleConfig:
        """Tiny run for tests and smoke checks (seconds)."""
        return cls(sizes=(300,), queries=30, prompts=12, encode_prompts=12, gallery=60, gallery_queries=20, rounds=1)


# -- timing ----------------------------------------------------------------------------------
def time_interleaved(
    fns: dict[str, Callable[[Any], Any]], items: Sequence[Any], warmup: int = 3
) -> dict[str, list[float]]:
    """Seconds per call of each ``fns[name](item)``, one call per method and item, after
    ``warmup`` untimed items; methods run item by item in a rotating order, so that load
    changes on the machine fall on every method alike."""
    names = list(fns)
    for item in items[:warmup]:
        for name in names:
            fns[name](item)
    out: dict[str, list[float]] = {name: [] for name in names}
    for j, item in enumerate(items):  # rotate: a slow spell on the machine is shared by all
        for name in names[j % len(names) :] + names[: j % len(names)]:
            t0 = time.perf_counter()
            fns[name](item)
            out[name].append(time.perf_counter() - t0)
    return out


def pooled(runs: Iterable[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Concatenate the per-method timings of several runs."""
    out: dict[str, list[float]] = {}
    for run in runs:
        for name, times in run.items():
            out.setdefault(name, []).extend(times)
    return out


def percentiles_ms(times: Sequence[float]) -> tuple[float, float]:
    import numpy as np

    p50, p99 = np.percentile(np.asarray(times) * 1e3, [50, 99])
    return float(p50), float(p99)


def row(n: int | str, method: str, times: Sequence[float], base_p50: float | None, recall: float | None,
        baseline: str) -> dict[str, Any]:  # fmt: skip
    p50, p99 = percentiles_ms(times)
    return {"N": n, "method": method, "p50_ms": p50, "p99_ms": p99,
            "ratio_to_baseline_p50": p50 / base_p50 if base_p50 else 1.0, "baseline": baseline,
            "recall_at_10": recall}  # fmt: skip


# -- synthetic embeddings --------------------------------------------------------------------
def _unit(x: np.ndarray) -> np.ndarray:
    import numpy as np

    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, n_queries: int, dim: int = DIM, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) gallery and (n_queries, dim) queries, unit-norm, around shared cluster centres."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_centres = int(min(4096, max(8, n // 32)))
    centres = _unit(rng.standard_normal((n_centres, dim)))  # (c, dim)
    sizes = rng.lognormal(0.0, 1.0, n_centres)  # uneven cluster sizes (largest ≈ 20× the mean), not one giant
    assign = rng.choice(n_centres, size=n, p=sizes / sizes.sum())  # (n,)
    sigma = rng.uniform(0.6, 1.2, size=(n, 1))  # (n, 1): cosine to the centre ≈ 1/√(1+σ²)
    emb = _unit(centres[assign] + sigma * rng.standard_normal((n, dim)) / np.sqrt(dim))  # (n, dim)
    q_centres = assign[rng.integers(0, n, n_queries)]  # queries follow the data's cluster mix
    queries = _unit(centres[q_centres] + 0.8 * rng.standard_normal((n_queries, dim)) / np.sqrt(dim))
    return emb, queries


def numpy_topk(emb: np.ndarray, q: np.ndarray, k: int = K) -> np.ndarray:
    """Exact top-k row indices for one query (dim,), best first: the brute-force baseline."""
    import numpy as np

    scores = emb @ q  # (n,)
    top = np.argpartition(-scores, k)[:k]  # (k,) unordered
    return top[np.argsort(-scores[top])]


def recall_at_k(found: Sequence[Sequence[int]], exact: Sequence[Sequence[int]]) -> float:
    hits = sum(len(set(f) & set(e)) for f, e in zip(found, exact, strict=True))
    return hits / sum(len(e) for e in exact)


def build_index(index_type: str, emb: np.ndarray, version: str, folder: Path) -> tuple[VectorIndex, float]:
    """A ``VectorIndex`` over rows 0..n-1 as adapter ids 1..n, and its build seconds."""
    import numpy as np

    from registry.index import VectorIndex

    index = VectorIndex(folder, "text", index_type)
    t0 = time.perf_counter()
    index.add(list(range(1, len(emb) + 1)), np.asarray(emb), version)
    return index, time.perf_counter() - t0


# -- a real registry, bulk-built ---------------------------------------------------------------
TAGS = ("anime", "style", "character", "photo", "landscape", "concept", "pixel", "portrait", "llm", "sdxl")


def open_registry(home: Path) -> Registry:
    from registry.store import Registry

    return Registry(home, f"sqlite:///{home / 'scale.db'}")


def bulk_registry(home: Path, emb: np.ndarray, version: str, chunk: int = 10_000) -> Registry:
    """A migrated SQLite registry at ``home`` whose adapters 1..n exist, with tags and ``text``
    embedding rows of ``version`` (no blob files). Core ``executemany``, one transaction."""
    from sqlalchemy import insert

    from registry.db import upgrade
    from registry.index import vector_to_bytes
    from registry.models import Adapter, AdapterEmbedding, BaseFamily, Tag, adapter_tags

    adapters, embeddings = Adapter.__table__, AdapterEmbedding.__table__
    reg = open_registry(home)
    reg.home.mkdir(parents=True, exist_ok=True)
    upgrade(reg.engine)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with reg.engine.begin() as conn:
        conn.execute(
            insert(BaseFamily.__table__), [{"id": "sd1", "kind": "diffusion", "label": "Stable Diffusion 1.x"}]
        )
        conn.execute(insert(Tag.__table__), [{"id": i + 1, "name": t} for i, t in enumerate(TAGS)])
        for lo in range(0, len(emb), chunk):
            ids = range(lo + 1, min(lo + chunk, len(emb)) + 1)
            conn.execute(insert(adapters), [
                {"id": i, "sha256": hashlib.sha256(f"scale-{i}".encode()).hexdigest(), "name": f"synthetic-{i:06d}",
                 "family": "sd1", "format": "kohya", "origin": "ingested", "ranks": [8], "module_count": 128,
                 "modules": [], "param_count": 3_000_000, "file_size": 12_000_000, "files": ["lora.safetensors"],
                 "description": f"synthetic adapter {i}", "trigger_words": [], "metadata": {}, "warnings": [],
                 "created_at": now}
                for i in ids
            ])  # fmt: skip
            conn.execute(insert(adapter_tags), [
                {"adapter_id": i, "tag_id": t + 1} for i in ids for t in {i % len(TAGS), (i * 7) % len(TAGS)}
            ])  # fmt: skip
            conn.execute(insert(embeddings), [
                {"adapter_id": i, "kind": "text", "encoder_version": version, "dim": emb.shape[1],
                 "vector": vector_to_bytes(emb[i - 1]), "created_at": now}
                for i in ids
            ])  # fmt: skip
    return reg


class _NoWeightEncoders:
    """Stands in for ``WeightEmbedder``: text-mode search only asks which families it encodes."""

    kind = "weights"
    families: dict[str, str] = {}


def text_service(reg: Registry, encoder: TextEncoder) -> Any:
    """The real ``LocalService.search`` over a bulk-built registry, opened from these ready-made parts
    without a sync (which would re-check all N adapters for missing embeddings before every run)."""
    from loradex.service import LocalService

    return LocalService.open(registry=reg, text_encoder=encoder, weight_embedder=_NoWeightEncoders(), sync=False)


# -- prompts and descriptions ------------------------------------------------------------------
SUBJECTS = ("red-haired elf archer", "old fisherman", "corgi puppy", "steampunk airship", "samurai in the rain",
            "cozy coffee shop interior", "snowy mountain village", "cyberpunk street market", "medieval castle",
            "bowl of ramen", "vintage sports car", "witch's potion shelf", "deep sea creature",
            "knight in golden armor", "desert caravan", "friendly robot", "field of sunflowers",
            "haunted victorian house", "orbiting space station", "koi pond", "young woman's portrait", "dragon",
            "lighthouse in a storm", "busy train station")  # fmt: skip
STYLES = ("watercolor", "pixel art", "ukiyo-e woodblock print", "oil painting", "anime", "low poly 3D render",
          "charcoal sketch", "art nouveau poster", "vaporwave", "photorealistic photo", "claymation",
          "stained glass", "comic book ink", "isometric game art", "pencil lineart", "impressionist painting",
          "neon synthwave", "paper cutout", "gothic dark fantasy", "children's book illustration")  # fmt: skip
DETAILS = ("soft pastel colors", "dramatic rim lighting", "muted earthy tones", "bold outlines", "shallow depth of field",
           "grainy film texture", "vivid saturated colors", "a misty atmosphere", "intricate ornaments",
           "clean flat shading", "warm golden-hour light", "a three-color palette")  # fmt: skip
TASKS = ("summarizes legal contracts", "translates English to Spanish", "writes SQL from questions",
         "answers like a pirate", "classifies support tickets", "extracts dates and amounts from invoices",
         "writes haiku", "explains code in plain words", "rewrites text formally", "answers medical FAQs",
         "reverses the letters of words", "converts Python to Rust")  # fmt: skip
FRAMES = ("A LoRA that renders a {s} as {st}, with {d}.", "{St} style adapter trained on pictures of a {s}; {d}.",
          "Generates a {s} in a {st} look, {d}.", "Character and style LoRA: {s}, {st}, {d}.")  # fmt: skip
LLM_FRAMES = ("A text LoRA that {t}.", "Fine-tuned adapter for a small LLM: {t}, concise answers.",
              "Instruction adapter that {t} in {d2} tone.")  # fmt: skip


def descriptions(n: int, seed: int = 0) -> list[str]:
    """n distinct adapter-style descriptions: LLM tasks, then images with each (subject, style)
    pair at most once (a random frame and detail each), so the gallery is not near-duplicates."""
    rng = random.Random(seed)
    tones = ("a friendly", "a formal")
    text = sorted({f.format(t=t, d2=d2) for f, t, d2 in itertools.product(LLM_FRAMES, TASKS, tones)})
    n_text = min(len(text), n // 8)
    pairs = rng.sample(list(itertools.product(SUBJECTS, STYLES)), min(n - n_text, len(SUBJECTS) * len(STYLES)))
    image = [rng.choice(FRAMES).format(s=s, st=st, St=st[0].upper() + st[1:], d=rng.choice(DETAILS)) for s, st in pairs]
    return rng.sample(text, n_text) + image


def prompts(n: int, seed: int = 1) -> list[str]:
    """n distinct search prompts: short ones (subject + style, an LLM task) first, then longer."""
    rng = random.Random(seed)
    short = [f"{s} {st}" for s, st in itertools.product(SUBJECTS, STYLES)] + [f"lora that {t}" for t in TASKS]
    longer = [f"{st} {s}, {d}" for s, st, d in itertools.product(SUBJECTS, STYLES, DETAILS)]
    return rng.sample(short, min(n, len(short))) + rng.sample(longer, max(0, n - len(short)))


# -- the parts ---------------------------------------------------------------------------------
def bench_size(n: int, cfg: ScaleConfig, encoders: dict[str, TextEncoder], work: Path) -> tuple[list[dict], dict]:
    """Index and end-to-end rows for one N, and its build seconds. ``encoders``: one float
    encoder per index type, so that both see every prompt cold once."""
    emb, queries = clustered(n, cfg.queries, seed=cfg.seed + n)
    exact = [numpy_topk(emb, q) for q in queries]
    version = next(iter(encoders.values())).version
    build: dict[str, float] = {}
    indexes: dict[str, VectorIndex] = {}
    for kind in ("flat", "hnsw"):
        indexes[kind], build[f"index_{kind}_s"] = build_index(kind, emb, version, work / f"index-{n}")
    fns = {"numpy": lambda q: numpy_topk(emb, q)} | {kind: lambda q, i=i: i.search(q, K) for kind, i in indexes.items()}
    times = pooled(time_interleaved(fns, queries) for _ in range(cfg.rounds))
    base_p50 = percentiles_ms(times["numpy"])[0]
    rows = [row(n, "numpy brute force (emb @ q + argpartition)", times["numpy"], base_p50, 1.0, "numpy")]
    for kind, index in indexes.items():
        found = [[i - 1 for i, _ in index.search(q, K)] for q in queries]
        label = "VectorIndex flat (IndexFlatIP)" if kind == "flat" else "VectorIndex hnsw (M=32, efSearch=64)"
        rows.append(row(n, label, times[kind], base_p50, recall_at_k(found, exact), "numpy"))

    t0 = time.perf_counter()
    regs = {"flat": bulk_registry(work / f"home-{n}", emb, version)}
    build["db_rows_s"] = time.perf_counter() - t0
    regs["hnsw"] = open_registry(work / f"home-{n}")  # a second connection pool on the same database
    texts = prompts(cfg.prompts + 3, seed=cfg.seed + n)
    warm_up, texts = texts[:3], texts[3:]
    try:
        ids = [i for i, _ in indexes["flat"].search(queries[0], K)]
        fns = {"fetch": lambda _: [regs["flat"].get(i) for i in ids]}  # the row fetch alone, for reference
        for kind, reg in regs.items():
            reg.indexes["text"] = indexes[kind]
            svc = text_service(reg, encoders[kind])
            for p in warm_up:
                svc.search(p, K, mode="text")
            fns[kind] = lambda p, svc=svc: svc.search(p, K, mode="text")
        e2e: dict[str, list[dict[str, list[float]]]] = {"cold": [], "warm": []}
        for _ in range(cfg.rounds):
            for enc in encoders.values():
                enc.clear_cache()
            for temp in ("cold", "warm"):  # cold: every prompt a cache miss; warm: the same prompts again
                e2e[temp].append(time_interleaved(fns, texts, warmup=0))
        cold, warm = pooled(e2e["cold"]), pooled(e2e["warm"])
        fetch = cold.pop("fetch") + warm.pop("fetch")
        rows.append(row(n, "fetch top-10 rows (10 × registry.get)", fetch, base_p50, None, "numpy"))
        for temp, times in (("cold", cold), ("warm", warm)):
            rows += [
                row(n, f"end-to-end {kind}, {temp} prompt", times[kind], base_p50, None, "numpy") for kind in times
            ]
    finally:
        for reg in regs.values():
            reg.close()
    return rows, {k: round(v, 3) for k, v in build.items()}


def bench_text(cfg: ScaleConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Float vs int8 text encoder: one-prompt latency and Recall@10 over a description gallery."""
    import numpy as np

    from encoders.text import TextEncoder, TextEncoderConfig

    enc = {q: TextEncoder(TextEncoderConfig(quantize=q, cache_size=0, device="cpu")) for q in (False, True)}
    gallery = descriptions(cfg.gallery, seed=cfg.seed)
    queries = prompts(cfg.gallery_queries, seed=cfg.seed + 7)
    g = {q: e.encode(gallery) for q, e in enc.items()}  # (gallery, dim) each
    qv = {q: e.encode(queries) for q, e in enc.items()}  # (queries, dim) each

    def top(qm: np.ndarray, gm: np.ndarray) -> list[list[int]]:
        return [list(np.argsort(-s)[:K]) for s in qm @ gm.T]  # (queries, gallery) → k ids each

    reference = top(qv[False], g[False])
    mixed = top(qv[True], g[False])
    recall_mixed = recall_at_k(mixed, reference)  # int8 queries, float gallery
    order = [list(np.argsort(-s)) for s in qv[False] @ g[False].T]  # float ranking of the whole gallery
    stand_ins = [order[j].index(i) + 1 for j, found in enumerate(mixed) for i in found if i not in reference[j]]
    recall_int8 = recall_at_k(top(qv[True], g[True]), reference)  # both int8 (one encoder version)
    cos = (qv[True] * qv[False]).sum(1)  # (queries,)

    short = prompts(cfg.encode_prompts, seed=cfg.seed + 11)
    times: dict[bool, list[float]] = {False: [], True: []}
    for e in enc.values():
        e.encode(["warm-up prompt", "another warm-up"])
    for j, p in enumerate(short * cfg.rounds):  # interleaved, alternating order: drift hits both alike
        for q in (False, True) if j % 2 == 0 else (True, False):
            t0 = time.perf_counter()
            enc[q].encode([p])  # cache_size=0: always the model
            times[q].append(time.perf_counter() - t0)
    base_p50 = percentiles_ms(times[False])[0]
    rows = [row("-", "text encode float32 (1 short prompt, cache miss)", times[False], base_p50, 1.0, "float32"),
            row("-", "text encode int8 (1 short prompt, cache miss)", times[True], base_p50, recall_mixed,
                "float32")]  # fmt: skip
    p50_int8 = percentiles_ms(times[True])[0]
    info = {
        "gallery": len(gallery), "queries": len(queries), "int8_version": enc[True].version,
        "recall_at_10_int8_queries_float_gallery": recall_mixed,
        "recall_at_10_int8_queries_int8_gallery": recall_int8,
        "float_rank_of_int8_stand_ins": {  # where the int8 top 10 differs: the float ranks it took instead
            "count": len(stand_ins), "median": float(np.median(stand_ins)) if stand_ins else None,
            "max": max(stand_ins, default=None)},
        "top1_agreement": float(np.mean([a[0] == b[0] for a, b in zip(mixed, reference, strict=True)])),
        "cosine_int8_vs_float": {"min": float(cos.min()), "mean": float(cos.mean())},
        "encode_p50_ms": {"float32": base_p50, "int8": p50_int8}, "speedup_p50": base_p50 / p50_int8,
        "meets_default_bar": bool(min(recall_mixed, recall_int8) >= RECALL_TARGET and p50_int8 < base_p50),
    }  # fmt: skip
    return rows, info


def run_scale(cfg: ScaleConfig) -> dict[str, Any]:
    import faiss
    import torch

    from encoders.text import TextEncoder, TextEncoderConfig

    t_start = time.perf_counter()
    text_rows, text_info = bench_text(cfg)
    # the service's float encoder (default cache), one per index type for interleaved cold runs
    encoders = {kind: TextEncoder(TextEncoderConfig(device="cpu")) for kind in ("flat", "hnsw")}
    rows, build = [], {}
    with tempfile.TemporaryDirectory(prefix="loradex-scale-") as d:
        for n in cfg.sizes:
            n_rows, build[str(n)] = bench_size(n, cfg, encoders, Path(d))
            rows += n_rows
    return {
        "config": asdict(cfg),
        "k": K,
        "dim": DIM,
        "threads": {"cpu_affinity": len(os.sched_getaffinity(0)), "torch": torch.get_num_threads(),
                    "faiss": faiss.omp_get_max_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "data": "synthetic clustered unit vectors: N/32 centres (≤ 4096), log-normal cluster sizes, noise σ∈[0.6, 1.2]",
        "end_to_end": "LocalService.search(mode='text', k=10) on SQLite: encode + index search + 10 row fetches",
        "build_seconds": build,
        "text_int8": text_info,
        "rows": rows + text_rows,
        "seconds": round(time.perf_counter() - t_start, 1),
    }  # fmt: skip


def suite_scale(args: argparse.Namespace) -> dict[str, Any]:
    """``python -m benchmarks.run scale [--quick] [--sizes 1000,10000]`` (index types beyond flat and
    hnsw, and N up to 1M: suite ``scale_1m``)."""
    cfg = ScaleConfig.quick() if getattr(args, "quick", False) else ScaleConfig()
    if getattr(args, "sizes", None):
        cfg = ScaleConfig(**{**asdict(cfg), "sizes": tuple(args.sizes)})
    return run_scale(cfg)
