"""The task code of every job kind, one function each, taking the service, a JSON payload and the
job's handle (``loradex.jobs.JobHandle``): the same code runs in-process on ``JobRunner`` (embedded
mode) and on a ``loradex worker`` from the PostgreSQL queue (shared mode, ``loradex.queue``).

A payload is plain JSON (it travels through the queue); a task is safe to run again after a
worker died in it: ingestion and the made adapters are idempotent (same bytes → same adapter),
training records a new checkpoint.

``needs`` names what a worker must offer to run the task (``cuda``: GPU-heavy); a task that needs
nothing runs on any worker. ``needs_for(kind, payload)`` is what one job needs: a merge with a
learned strategy (``zip``, fitted on the family's diffusion base) needs ``cuda`` like generation.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loradex.types import IngestReport, IngestResult


@dataclass(frozen=True)
class TaskSpec:
    run: Callable[[Any, dict[str, Any], Any], dict[str, Any] | None]  # (service, payload, handle) → output
    needs: str | None = None  # what the worker must offer (None: any worker)
    needs_of: Callable[[dict[str, Any]], str | None] | None = None  # per payload, instead of needs
    what: str = "job"  # names the operation in the message of an unexpected failure
    total: int | None = None  # units known before it starts
    result: bool = False  # keeps an ``IngestReport`` (ingestion)


def _ingest(service: Any, payload: dict[str, Any], h: Any) -> None:
    """``{"root": staged folder}``: ingest it, paths reported relative to it, then remove it."""
    root = Path(payload["root"])
    prefix = f"{root}{os.sep}"

    def relative(r: IngestResult) -> IngestResult:
        path = Path(r.path)
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else r.path
        return replace(r, path=rel, reason=r.reason.replace(prefix, "") if r.reason else r.reason)

    seen = {r.path for r in (h.job.result.results if h.job.result else [])}  # a retry: already reported
    try:
        report = service.ingest([root], on_total=lambda n: h.update(total=n),
                                progress=lambda r: None if relative(r).path in seen else h.add_result(relative(r)))  # fmt: skip
        if not report.results and not seen:  # only other files were uploaded: fail with what was there
            from registry.errors import AdapterFormatError
            from registry.ingest import nothing_found

            raise AdapterFormatError("upload", nothing_found([root]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _train_encoder(service: Any, payload: dict[str, Any], h: Any) -> None:
    """``{"family", "texts", "train_config": TrainConfig fields}``; ``done`` counts epochs."""
    from encoders.weight.train import TrainConfig

    cfg = TrainConfig(**payload["train_config"])
    h.update(total=cfg.epochs)
    texts = payload.get("texts")
    out = service.train_encoder(payload["family"], texts=texts, only_listed=bool(texts), train_config=cfg,
                                progress=lambda epoch, total, m: h.update(done=epoch))  # fmt: skip
    h.update(encoder={"family": out["family"], "version": out["version"], "best": out["metrics"]["best"]})


def _train_text_map(service: Any, payload: dict[str, Any], h: Any) -> dict[str, Any]:
    """``{"texts": name or sha256 → {"texts": [...]} | None, "config": TextMapConfig fields, "tune":
    TuneConfig fields | None}``: fit the registry's text map (with ``tune``: and fine-tune the text
    encoder, its steps the job's progress), record it, re-embed; the output is its version and metrics."""
    from encoders.registry_text_map import REGISTRY_MAP_CONFIG
    from encoders.weight.registry_training import EncoderTrainingError

    cfg = replace(REGISTRY_MAP_CONFIG, **(payload.get("config") or {}))
    h.update(total=1)
    try:
        out = service.train_text_map(payload.get("texts"), cfg, tune=payload.get("tune"),
                                     progress=lambda done, total: h.update(done=done, total=total + 1))  # fmt: skip
    except EncoderTrainingError as e:  # the message names the data dir: a server path, kept private
        raise EncoderTrainingError(str(e).replace(str(service.home), "the registry")) from None
    steps = int((out["metrics"].get("tune") or {}).get("steps", 0))
    h.update(done=steps + 1, total=steps + 1)
    return {"version": out["version"], "metrics": out["metrics"]}


def _generate(service: Any, p: dict[str, Any], h: Any) -> dict[str, Any]:
    out = service.generate(p["description"], family=p["family"], method=p.get("method"), examples=p.get("examples"),
                           seed=p.get("seed", 0), rank=p.get("rank"), progress=lambda d, t: h.update(done=d, total=t))  # fmt: skip
    return out.to_dict()  # type: ignore[no-any-return]


def _merge(service: Any, p: dict[str, Any], h: Any) -> dict[str, Any]:
    """``done`` / ``total``: a learned strategy's fit (zip's draws, then its optimizer steps)."""
    out = service.merge(p["adapters"], p.get("weights"), strategy=p.get("strategy", "cat"), rank=p.get("rank"),
                        seed=p.get("seed", 0), name=p.get("name"), options=p.get("options"),
                        progress=lambda d, t: h.update(done=d, total=t))  # fmt: skip
    return out.to_dict()  # type: ignore[no-any-return]


def _merge_needs(p: dict[str, Any]) -> str | None:
    """A learned merge runs the family's base model (GPU-heavy); the others are seconds of linear algebra."""
    from fusion.merge import learned_strategies

    return "cuda" if p.get("strategy", "cat") in learned_strategies() else None


def _compose(service: Any, p: dict[str, Any], h: Any) -> dict[str, Any]:
    out = service.compose(p["prompt"], adapters=p.get("adapters"), auto=p.get("auto"),
                          strategy=p.get("strategy", "auto"), weights=p.get("weights"), inputs=p.get("inputs"),
                          family=p.get("family"), seed=p.get("seed", 0), n_images=p.get("n_images", 1),
                          steps=p.get("steps"), options=p.get("options"),
                          progress=lambda d, t: h.update(done=d, total=t))  # fmt: skip
    return out.to_dict()  # type: ignore[no-any-return]


TASKS: dict[str, TaskSpec] = {
    "ingest": TaskSpec(_ingest, what="ingestion", result=True),
    "merge": TaskSpec(_merge, needs_of=_merge_needs, what="merge"),
    "train-encoder": TaskSpec(_train_encoder, needs="cuda", what="training"),
    # a (d, d) fit: seconds on a CPU (with a tune: minutes)
    "train-text-map": TaskSpec(_train_text_map, what="text map fitting", total=1),
    "generate": TaskSpec(_generate, needs="cuda", what="generation", total=2),
    "compose": TaskSpec(_compose, needs="cuda", what="composition"),
}


def task(kind: str) -> TaskSpec:
    spec = TASKS.get(kind)
    if spec is None:
        raise ValueError(f"unknown job kind {kind!r}; known: {', '.join(TASKS)}")
    return spec


def needs_for(kind: str, payload: dict[str, Any] | None = None) -> str | None:
    """What a worker must offer to run this job of ``kind`` (None: any worker)."""
    spec = task(kind)
    return spec.needs_of(payload or {}) if spec.needs_of is not None else spec.needs


def new_result(kind: str) -> IngestReport | None:
    return IngestReport() if task(kind).result else None


CAPABILITIES = ("cuda",)  # what a worker may offer (``loradex worker --offers``)

__all__ = ["CAPABILITIES", "TASKS", "TaskSpec", "needs_for", "new_result", "task"]
