"""Judge generated adapters with the zoos' own evaluators, batched through stacked LoRA layers.

Each ``LoraAdapter`` (or ``None`` for the bare base) is copied into one row of the zoo's stacked
LoRA layers (ΔW = stack scale · B·A, so the adapter's own scale is folded into B); the zoo's
``evaluate_tasks`` / ``evaluate`` then run exactly as when the oracles were judged.
"""

from __future__ import annotations

from typing import Any

import torch

from benchmarks.generation_data import ZOOS, manifest, text_tasks


def _shape_for(shape: Any, adapters: list[Any]) -> Any:
    """The zoo's LoRA shape with the rank raised to the largest adapter's (smaller ones zero-padded)."""
    import dataclasses

    r = max([shape.r, *(m.rank for ad in adapters if ad is not None for m in ad.modules.values())])
    return dataclasses.replace(shape, r=r)


def _fill(wrapped: dict[str, Any], adapters: list[Any], prefix: str, scale: float) -> None:
    """Row i of every wrapped layer ← adapter i (zeros for None; ranks under the stack's zero-padded)."""
    with torch.no_grad():
        for name, w in wrapped.items():
            for i, ad in enumerate(adapters):
                m = None if ad is None else ad.modules.get(prefix + name)
                if m is None:
                    w.B[i].zero_()
                    continue
                r = m.rank
                if r > w.A.shape[1]:
                    raise ValueError(f"adapter rank {r} exceeds the stacked rank {w.A.shape[1]}")
                w.A[i].zero_()
                w.B[i].zero_()
                w.A[i, :r].copy_(m.down.float().reshape(r, *w.A.shape[2:]))  # (r, in[, kh, kw]); rows past r stay 0
                w.B[i, :, :r].copy_(m.up.float().reshape(w.B.shape[1], r) * (m.scale / scale))  # (out, r)


class TextJudge:
    """Exact match on ``n`` held-out strings per task (the zoo's evaluation inputs, a prefix of its 200)."""

    def __init__(self, n: int = 50) -> None:
        from benchmarks.zoo.text.lora import LoraShape
        from benchmarks.zoo.text.model import load_base

        self.n = n
        self.model, self.tok = load_base(ZOOS["text"] / "base")
        self.model.eval()
        self.shape = LoraShape(
            **{**manifest("text")["config"]["lora"], "targets": tuple(manifest("text")["config"]["lora"]["targets"])}
        )
        self.tasks = text_tasks()

    def accuracy(self, rows: list[tuple[str, Any]], chunk: int = 400) -> list[float]:
        """rows: (task id, adapter or None) → exact match of each."""
        from benchmarks.zoo.text.evaluate import evaluate_tasks
        from benchmarks.zoo.text.lora import inject, remove

        out: list[float] = []
        for s in range(0, len(rows), chunk):
            part = rows[s : s + chunk]
            shape = _shape_for(self.shape, [ad for _, ad in part])
            routing, wrapped = inject(self.model, len(part), shape, list(range(len(part))))
            try:
                _fill(wrapped, [ad for _, ad in part], "model.", shape.alpha / shape.r)
                out += evaluate_tasks(self.model, self.tok, [self.tasks[t] for t, _ in part], n=self.n,
                                      routing=routing, adapters=list(range(len(part))))  # fmt: skip
            finally:
                remove(self.model, wrapped)
        return out

    def example_scorer(self, examples: list[tuple[str, str]]) -> Any:
        """``score_candidates`` for a generator: exact matches of each candidate on the examples."""
        from benchmarks.zoo.text.evaluate import greedy_decode
        from benchmarks.zoo.text.lora import inject, remove

        def score(adapters: list[Any]) -> list[float]:
            shape = _shape_for(self.shape, adapters)
            routing, wrapped = inject(self.model, len(adapters), shape, list(range(len(adapters))))
            try:
                _fill(wrapped, adapters, "model.", shape.alpha / shape.r)
                prompts, owner = [], []
                for i in range(len(adapters)):
                    for a, _ in examples:
                        prompts.append(self.tok.prompt(a))
                        owner.append(i)
                preds = greedy_decode(self.model, prompts, self.tok, routing=routing, adapters=owner)
            finally:
                remove(self.model, wrapped)
            hits = [0.0] * len(adapters)
            for p, i, (_, b) in zip(preds, owner, examples * len(adapters), strict=True):
                hits[i] += p == b
            return hits

        return score


class ImageJudge:
    """Style hit and content kept on ``n`` evaluation prompts per task (the zoo's prompts, seeds, sampler, judge)."""

    def __init__(self, n: int = 6) -> None:
        from benchmarks.zoo.image.classifiers import load_classifier
        from benchmarks.zoo.image.lora import LoraShape
        from benchmarks.zoo.image.model import load_base
        from benchmarks.zoo.image.suite import spec_of

        m = manifest("image")
        self.cfg = m["config"]
        self.n = n
        self.pipe = load_base(ZOOS["image"] / "base")
        self.judge = load_classifier(ZOOS["image"] / "classifiers")
        lora = self.cfg["lora"]
        self.shape = LoraShape(**{**lora, "targets": tuple(lora["targets"])})
        self.specs = {t["id"]: spec_of(t) for t in m["tasks"]}

    def scores(self, rows: list[tuple[str, Any]], chunk: int = 64) -> list[dict[str, Any]]:
        """rows: (task id, adapter or None) → {"style_hit", "content_kept", "images"} of each."""
        from benchmarks.zoo.image.evaluate import evaluate
        from benchmarks.zoo.image.lora import inject, remove

        out: list[dict[str, Any]] = []
        kw = {"n": self.n, "steps": self.cfg["eval_steps"], "guidance": self.cfg["guidance"], "seed": self.cfg["seed"]}
        for s in range(0, len(rows), chunk):
            part = rows[s : s + chunk]
            shape = _shape_for(self.shape, [ad for _, ad in part])
            routing, wrapped = inject(self.pipe.unet, len(part), shape, list(range(len(part))))
            try:
                _fill(wrapped, [ad for _, ad in part], "unet.", shape.alpha / shape.r)
                with torch.no_grad():
                    out += evaluate(self.pipe, self.judge, [self.specs[t] for t, _ in part], routing=routing,
                                    adapters=list(range(len(part))), return_images=True, **kw)  # fmt: skip
            finally:
                remove(self.pipe.unet, wrapped)
        return out
