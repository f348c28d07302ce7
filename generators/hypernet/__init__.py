"""``hypernet`` (Text-to-LoRA): description embedding (+ examples) → A and B of every module in one pass.

Condition: an MLP of the description's text embedding, plus (when the training items carry
in-context examples) an MLP of the mean embedding of the ``"input => output"`` example texts.
Per-module tokens with shared weights (``generators.tokens``) write normalized canonical
factors. Trained by reconstruction: the loss is the per-module normalized ‖ΔŴ − ΔW‖², with
each step's description drawn from the task's training paraphrases (plus embedding noise).
Deterministic: the seed only goes into the lineage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generators.base import Factors, Generator, TrainData, register_generator
from generators.errors import GeneratorTrainingError

if TYPE_CHECKING:  # pragma: no cover
    import torch


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

    def __post_init__(self) -> None:
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
    data: TrainData, idx: list[int], rng: Any, cfg: HypernetConfig, use_examples: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Description embeddings (b, d) drawn from each item's texts (+ mean example embeddings)."""
    import numpy as np
    import torch

    emb = np.stack([data.desc_emb[i][rng.integers(len(data.desc_emb[i]))] for i in idx])
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
        net = build_net(data.layout, data.text_dim, cfg)
        gs = GroupStats(data.layout, net.tokens.groups, stats)
        targets = gs.stack_targets(data.factors)  # per group (A (n, G, r, in), B (n, G, out, r))
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps, eta_min=cfg.lr * 0.05)
        has_ex = all(e is not None and len(e) for e in data.example_emb)
        n = len(data.names)
        losses = []
        net.train()
        for step in range(cfg.steps):
            idx = rng.choice(n, size=min(cfg.batch_size, n), replace=False)
            use_ex = has_ex and rng.random() >= cfg.example_drop
            emb, ex = sample_batch(data, idx.tolist(), rng, cfg, use_ex)
            sel = torch.from_numpy(idx)
            pred = gs.denormalize(net(emb, ex))
            loss = gs.delta_loss(pred, [(a[sel], b[sel]) for a, b in targets])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if progress and (step % 50 == 0 or step == cfg.steps - 1):
                progress(step + 1, cfg.steps)
        state = {f"net.{k}": v.detach().clone() for k, v in net.state_dict().items()}
        state.update(stats)
        params = sum(p.numel() for p in net.parameters())
        metrics = {"final_loss": float(np.mean(losses[-50:])), "first_loss": losses[0], "params": params}
        return state, {"text_dim": data.text_dim, "trained_with_examples": has_ex}, metrics

    def factors(self, emb: torch.Tensor, example_emb: torch.Tensor | None, seed: int) -> tuple[Factors, dict[str, Any]]:
        ex = None
        if example_emb is not None and self.info.get("trained_with_examples"):
            ex = example_emb.mean(0, keepdim=True)  # (1, d)
        out = self.gstats.to_modules(self.gstats.denormalize(self.net(emb[None], ex)))
        return out, {"used_examples": ex is not None}


register_generator("hypernet", HypernetGenerator)
