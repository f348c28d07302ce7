"""``hypernet`` (Text-to-LoRA): description embedding (+ examples) → A and B of every module in one pass.

Condition: an MLP of the description's text embedding, plus (when the training items carry
in-context examples) an MLP of the mean embedding of the ``"input => output"`` example texts.
Per-module tokens with shared weights (``generators.tokens``) write normalized canonical
factors. Two training objectives (``objective``), as in Text-to-LoRA:

* ``reconstruct``: the per-module normalized ‖ΔŴ − ΔW‖² against the library's adapters;
* ``end_to_end``: the frozen base model's loss on each task's (input, output) examples with the
  generated adapter applied (``generators.end_to_end``; needs the family's text base), plus
  ``recon_weight`` × the reconstruction loss. The generated ΔW only has to *do* the task.

Each step's description is drawn from the task's training paraphrases (plus embedding noise).
Deterministic: the seed only goes into the lineage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generators.base import Factors, Generator, TrainData, register_generator
from generators.end_to_end import draw_examples
from generators.errors import GeneratorTrainingError

if TYPE_CHECKING:  # pragma: no cover
    import torch


OBJECTIVES = ("reconstruct", "end_to_end")


@dataclass
class HypernetConfig:
    width: int = 128  # token / condition width
    steps: int = 1500  # optimizer steps
    batch_size: int = 32  # adapters per step
    lr: float = 2e-3  # AdamW learning rate (cosine decay)
    weight_decay: float = 0.01  # AdamW weight decay
    emb_noise: float = 0.05  # std of Gaussian noise added to description embeddings in training
    dropout: float = 0.1  # dropout in the condition MLP and the token trunk
    example_drop: float = 0.5  # share of training steps without the examples branch
    n_examples: int = 3  # examples drawn per item and step (when items have examples)
    rank: int | None = None  # canonical rank (None: the largest training rank)
    seed: int = 0  # initialization and sampling seed
    objective: str = "reconstruct"  # "reconstruct" | "end_to_end" (through the frozen base model)
    recon_weight: float = 0.0  # end_to_end only: weight of the reconstruction term added to the task loss
    task_examples: int = 4  # end_to_end only: (input, output) examples per task and step
    text_map_steps: int = 0  # > 0: condition on descriptions through a map fitted on the tasks' own (encoders.text_map)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise GeneratorTrainingError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.recon_weight < 0 or self.task_examples < 1:
            raise GeneratorTrainingError("recon_weight must be ≥ 0 and task_examples ≥ 1")
        for name in ("width", "steps", "batch_size", "n_examples"):
            if getattr(self, name) < 1:
                raise GeneratorTrainingError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise GeneratorTrainingError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.dropout < 1 or not 0 <= self.example_drop <= 1:
            raise GeneratorTrainingError("dropout must be in [0, 1) and example_drop in [0, 1]")


def build_net(layout: Any, text_dim: int, cfg: HypernetConfig) -> Any:  # the method's nn.Module (its own attributes)
    from torch import nn

    from generators.tokens import ModuleTokens

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = cfg.width
            self.desc = nn.Sequential(nn.Linear(text_dim, w), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(w, w))
            self.ex = nn.Sequential(nn.Linear(text_dim, w), nn.GELU(), nn.Linear(w, w))
            self.tokens = ModuleTokens(layout, w, w, dropout=cfg.dropout)

        def forward(self, emb: torch.Tensor, ex: torch.Tensor | None) -> list[torch.Tensor]:
            c = self.desc(emb)  # (b, w)
            if ex is not None:
                c = c + self.ex(ex)
            return self.tokens(c)  # type: ignore[no-any-return]

    return Net()


def sample_batch(
    data: TrainData,
    idx: list[int],
    rng: Any,
    cfg: HypernetConfig,
    use_examples: bool,
    text_map: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Description embeddings (b, d) drawn from each item's texts, through ``text_map`` when given
    (+ mean example embeddings)."""
    import numpy as np
    import torch

    emb = np.stack([data.desc_emb[i][rng.integers(len(data.desc_emb[i]))] for i in idx])
    if text_map is not None:
        from encoders.text_map import apply_text_map

        emb = apply_text_map(torch.from_numpy(emb), text_map).numpy()
    emb = emb + rng.normal(0, cfg.emb_noise, emb.shape)
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    ex = None
    if use_examples:
        rows = []
        for i in idx:
            e = data.example_emb[i]
            pick = rng.choice(len(e), size=min(cfg.n_examples, len(e)), replace=False)  # type: ignore[arg-type]
            rows.append(e[pick].mean(0))  # type: ignore[index]
        ex = torch.from_numpy(np.stack(rows)).float()
    return torch.from_numpy(emb).float(), ex


def fit_task_map(data: TrainData, steps: int) -> tuple[torch.Tensor | None, dict[str, Any]]:
    """The description map (``encoders.text_map``) fitted so a task's paraphrases gather, or None."""
    if steps <= 0:
        return None, {}
    import numpy as np
    import torch

    from encoders.text_map import TextMapConfig, fit_text_map

    first = {t: i for i, t in reversed(list(enumerate(data.tasks)))}  # one item per task (seeds share texts)
    rows = [data.desc_emb[i] for i in first.values()]
    emb = torch.from_numpy(np.concatenate(rows)).float()  # (m, d)
    owner = torch.tensor([j for j, e in enumerate(rows) for _ in range(len(e))])
    w, metrics = fit_text_map(emb, owner, TextMapConfig(steps=steps))
    return w, {"text_map": metrics}


def end_to_end_loss(data: TrainData, cfg: HypernetConfig) -> tuple[Any, list[int]]:
    """The task loss of ``generators.end_to_end`` for an ``end_to_end`` run (else None) and the items
    a step may draw: all, or for end to end those with examples (at least two)."""
    everything = list(range(len(data.names)))
    if cfg.objective != "end_to_end":
        return None, everything
    from generators.end_to_end import TaskLoss

    examples = data.examples or [[] for _ in everything]
    pool = [i for i in everything if examples[i]]
    if len(pool) < 2:
        lacking = [data.names[i] for i in everything if not examples[i]]
        more = f" (and {len(lacking) - 3} more)" if len(lacking) > 3 else ""
        raise GeneratorTrainingError(
            f"end-to-end training needs (input, output) examples for at least 2 adapters, {len(pool)} have some; "
            f'none for {", ".join(lacking[:3])}{more} (the texts file\'s "examples")'
        )
    return TaskLoss(data.task_model, data.layout), pool


class HypernetGenerator(Generator):
    method = "hypernet"
    config_cls = HypernetConfig

    def setup(self) -> None:
        self.net = build_net(self.layout, int(self.info["text_dim"]), self.config)
        self.net.load_state_dict({k[4:]: v for k, v in self.state.items() if k.startswith("net.")})
        self.net.eval()
        from generators.tokens import GroupStats

        stats = {k: v for k, v in self.state.items() if k.startswith("norm.")}
        self.gstats = GroupStats(self.layout, self.net.tokens.groups, stats)

    @classmethod
    def fit(
        cls, data: TrainData, config: Any, progress: Callable[[int, int], None] | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
        import numpy as np
        import torch

        from generators.tokens import GroupStats, fit_start

        cfg: HypernetConfig = config
        rng, stats = fit_start(data, cfg.seed)
        text_map, map_info = fit_task_map(data, cfg.text_map_steps)
        net = build_net(data.layout, data.text_dim, cfg)
        gs = GroupStats(data.layout, net.tokens.groups, stats)
        targets = gs.stack_targets(data.factors)  # per group (A (n, G, r, in), B (n, G, out, r))
        task_loss, pool = end_to_end_loss(data, cfg)  # pool: the items a step draws from
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps, eta_min=cfg.lr * 0.05)
        has_ex = all(e is not None and len(e) for e in data.example_emb)
        n = len(pool)
        losses = []
        net.train()
        for step in range(cfg.steps):
            idx = np.asarray(pool)[rng.choice(n, size=min(cfg.batch_size, n), replace=False)]
            use_ex = has_ex and rng.random() >= cfg.example_drop
            emb, ex = sample_batch(data, idx.tolist(), rng, cfg, use_ex, text_map)
            sel = torch.from_numpy(idx)
            pred = gs.denormalize(net(emb, ex))
            if task_loss is None:
                loss = gs.delta_loss(pred, [(a[sel], b[sel]) for a, b in targets])
            else:
                exs = [draw_examples(data.examples[i], cfg.task_examples, rng) for i in idx.tolist()]
                loss = task_loss(gs.by_module(pred), exs)
                if cfg.recon_weight:
                    loss = loss + cfg.recon_weight * gs.delta_loss(pred, [(a[sel], b[sel]) for a, b in targets])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if progress and (step % 50 == 0 or step == cfg.steps - 1):
                progress(step + 1, cfg.steps)
        if task_loss is not None:
            task_loss.close()
        state = {f"net.{k}": v.detach().clone() for k, v in net.state_dict().items()}
        state.update(stats)
        if text_map is not None:
            state["text_map"] = text_map.half()  # (d, d)
        params = sum(p.numel() for p in net.parameters())
        metrics = {"final_loss": float(np.mean(losses[-50:])), "first_loss": losses[0], "params": params,
                   "objective": cfg.objective, "without_examples": len(data.names) - n}  # fmt: skip
        info = {"text_dim": data.text_dim, "trained_with_examples": has_ex, **map_info}
        return state, info, metrics

    def factors(self, emb: torch.Tensor, example_emb: torch.Tensor | None, seed: int) -> tuple[Factors, dict[str, Any]]:
        ex = None
        if example_emb is not None and self.info.get("trained_with_examples"):
            ex = example_emb.mean(0, keepdim=True)  # (1, d)
        if "text_map" in self.state:
            from encoders.text_map import apply_text_map

            emb = apply_text_map(emb, self.state["text_map"].float())  # (d,)
        out = self.gstats.to_modules(self.gstats.denormalize(self.net(emb[None], ex)))
        return out, {"used_examples": ex is not None}


register_generator("hypernet", HypernetGenerator)
