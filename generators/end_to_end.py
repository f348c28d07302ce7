"""The end-to-end training signal: a language family's frozen base model, run on a task's
(input, output) examples with a *generated* adapter applied, and its loss on the outputs.

Text-to-LoRA trains its hypernetwork either by reconstructing the library's adapters or end to
end, through the frozen base, on the tasks' own data; the second generalizes better because it
only asks the generated ΔW to *do* the task, not to equal one particular trained factorization.
``TaskLoss`` gives that loss for a batch of b tasks at once: every targeted ``nn.Linear`` of a
private copy of the base gets a forward hook that adds ``x Aᵢᵀ Bᵢᵀ`` for the rows of task i (the
canonical factors multiply to ΔW, scale folded in), so one forward/backward pass covers the
whole batch and gradients flow into the generator, never into the base.

The base comes from whoever calls training (``loradex.bases`` for a registry family; the zoo
plug-in in the benchmarks): ``(model, tokenizer)`` where the tokenizer builds its own prompts
(``prompt(text)``, ``encode(text)``, ``eos_id``, ``pad_id``), the kind ``loradex.verify`` reads.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from generators.errors import GeneratorTrainingError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from generators.canonical import Layout

IGNORE = -100  # label of positions the loss skips (prompt and padding)


def check_task_model(task_model: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` or a clear error naming what is missing."""
    if task_model is None:
        raise GeneratorTrainingError(
            "end-to-end training needs the family's base model: register a text base for the family "
            "(loradex.bases) or train with the reconstruction objective"
        )
    try:
        model, tok = task_model
    except (TypeError, ValueError):
        raise GeneratorTrainingError(
            f"the task model must be (model, tokenizer), got {type(task_model).__name__}"
        ) from None
    missing = [a for a in ("prompt", "encode", "eos_id") if not hasattr(tok, a)]
    if missing:
        raise GeneratorTrainingError(
            f"end-to-end training needs a tokenizer that builds prompts; {type(tok).__name__} lacks {', '.join(missing)}"
        )
    return model, tok


class TaskLoss:
    """Loss of the frozen base on tasks' examples with per-task generated factors applied."""

    def __init__(self, task_model: Any, layout: Layout) -> None:
        import torch

        model, tok = check_task_model(task_model)
        self.model = copy.deepcopy(model).float().eval()  # hooks never touch a shared (served) model
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.tok = tok
        self.pad = int(getattr(tok, "pad_id", tok.eos_id))
        self.current: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # module → this batch's factors
        self.hooks = []
        for spec in layout.modules:
            comp, _, path = spec.name.partition(".")
            try:
                mod = self.model.get_submodule(path) if comp == "model" else None
            except AttributeError:
                mod = None
            if not isinstance(mod, torch.nn.Linear):
                self.close()
                raise GeneratorTrainingError(
                    f"end-to-end training: module {spec.name} of the family's adapters is not a Linear of the base model"
                )
            self.hooks.append(mod.register_forward_hook(self._hook(spec.name)))

    def _hook(self, name: str) -> Any:
        import torch

        def hook(_mod: Any, inp: tuple[Any, ...], out: torch.Tensor) -> torch.Tensor:
            a, b = self.current[name]  # (n, r, in), (n, out, r): one per task
            x = inp[0]  # (n·rows, T, in)
            n = a.shape[0]
            xs = x.reshape(n, -1, x.shape[-1])  # (n, rows·T, in)
            h = torch.bmm(xs, a.transpose(1, 2))  # (n, rows·T, r)
            return out + torch.bmm(h, b.transpose(1, 2)).reshape(out.shape)  # (n·rows, T, out)

        return hook

    def close(self) -> None:
        for h in self.hooks:
            h.remove()
        self.hooks = []

    def batch(self, examples: Sequence[Sequence[tuple[str, str]]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per task the same number of (input, output) pairs → ids, attention mask, labels (n·rows, T)."""
        import torch

        seqs, labels = [], []
        for task in examples:
            for x, y in task:
                prompt = list(self.tok.prompt(x))
                target = [*self.tok.encode(y), int(self.tok.eos_id)]
                full = prompt + target
                seqs.append(full[:-1])
                labels.append([IGNORE] * (len(prompt) - 1) + target)
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        lab = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
        for i, (s, lb) in enumerate(zip(seqs, labels, strict=True)):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
            lab[i, : len(lb)] = torch.tensor(lb)
        return ids, mask, lab

    def __call__(
        self, factors: dict[str, tuple[torch.Tensor, torch.Tensor]], examples: Sequence[Sequence[tuple[str, str]]]
    ) -> torch.Tensor:
        """Mean cross-entropy of the output tokens; ``factors``: module → (A (n, r, in), B (n, out, r))."""
        import torch

        rows = {len(t) for t in examples}
        if len(rows) != 1 or 0 in rows:
            raise GeneratorTrainingError("end-to-end batches need the same, non-zero number of examples per task")
        ids, mask, lab = self.batch(examples)
        self.current = factors
        try:
            logits = self.model(input_ids=ids, attention_mask=mask).logits  # (n·rows, T, V)
        finally:
            self.current = {}
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), lab.flatten(), ignore_index=IGNORE)


def draw_examples(pool: Sequence[tuple[str, str]], k: int, rng: Any) -> list[tuple[str, str]]:
    """``k`` of a task's examples (with replacement only when it has fewer than ``k``)."""
    pick = rng.choice(len(pool), size=k, replace=len(pool) < k)
    return [tuple(pool[int(i)]) for i in pick]  # type: ignore[misc]
