"""``cvae`` (ICM-LoRA): a conditional VAE over normalized canonical params.

Condition: an MLP of the description's text embedding, plus (when the training items carry
in-context examples) an MLP of the mean embedding of their ``"input => output"`` texts. The
encoder q(z | θ, c) pools per-module tokens of the normalized factors θ (one reader per module
shape); the decoder is the per-module-token network of ``generators.tokens`` fed with
condition + projected z. Prior N(0, I), as in the paper; generation samples z with a generator
seeded by ``seed`` (so a seed is reproducible and seeds differ).
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
class CvaeConfig:
    latent: int = 16  # z width
    width: int = 96  # token / condition width
    steps: int = 800  # optimizer steps
    batch_size: int = 32  # adapters per step
    lr: float = 2e-3  # AdamW learning rate (cosine decay)
    beta: float = 0.02  # KL weight
    emb_noise: float = 0.05  # std of Gaussian noise on description embeddings in training
    example_drop: float = 0.5  # share of steps trained without the examples branch
    n_examples: int = 3  # examples drawn per item and step
    rank: int | None = None  # canonical rank (None: the largest training rank)
    seed: int = 0  # initialization and sampling seed
    store_half: bool = True  # network weights kept as float16 in the checkpoint (half the bytes)

    def __post_init__(self) -> None:
        for name in ("latent", "width", "steps", "batch_size", "n_examples"):
            if getattr(self, name) < 1:
                raise GeneratorTrainingError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.beta < 0 or not 0 <= self.example_drop <= 1:
            raise GeneratorTrainingError("lr must be > 0, beta ≥ 0, example_drop in [0, 1]")


def build_net(layout: Any, text_dim: int, cfg: CvaeConfig) -> Any:  # the method's nn.Module (its own attributes)
    import torch
    from torch import nn

    from generators.tokens import ModuleTokens

    w, zd = cfg.width, cfg.latent

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.desc = nn.Sequential(nn.Linear(text_dim, w), nn.GELU(), nn.Linear(w, w))
            self.ex = nn.Sequential(nn.Linear(text_dim, w), nn.GELU(), nn.Linear(w, w))
            self.z_in = nn.Linear(zd, w)
            self.tokens = ModuleTokens(layout, w, w)
            sizes = [layout.rank * (layout.modules[g[0]].in_flat + layout.modules[g[0]].out_features)
                     for g in self.tokens.groups]  # fmt: skip
            self.read = nn.ModuleList([nn.Linear(s, w) for s in sizes])
            self.enc = nn.Sequential(nn.Linear(2 * w, w), nn.GELU(), nn.Linear(w, 2 * zd))

        def cond(self, emb: torch.Tensor, ex: torch.Tensor | None) -> torch.Tensor:
            c = self.desc(emb)  # (b, w)
            return c + self.ex(ex) if ex is not None else c

        def posterior(self, c: torch.Tensor, x: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            pooled = torch.cat([rd(y) for rd, y in zip(self.read, x, strict=True)], dim=1).mean(1)  # (b, w)
            mu, logv = self.enc(torch.cat([c, pooled], dim=-1)).chunk(2, dim=-1)
            return mu, logv.clamp(-8, 4)

        def decode(self, c: torch.Tensor, z: torch.Tensor) -> list[torch.Tensor]:
            return self.tokens(c + self.z_in(z))  # type: ignore[no-any-return]

    return Net()


class CvaeGenerator(Generator):
    method = "cvae"
    config_cls = CvaeConfig

    def setup(self) -> None:
        from generators.tokens import GroupStats

        self.net = build_net(self.layout, int(self.info["text_dim"]), self.config)
        self.net.load_state_dict({k[4:]: v for k, v in self.state.items() if k.startswith("net.")})
        self.net.eval()
        stats = {k: v for k, v in self.state.items() if k.startswith("norm.")}
        self.gs = GroupStats(self.layout, self.net.tokens.groups, stats)

    @classmethod
    def fit(
        cls, data: TrainData, config: Any, progress: Callable[[int, int], None] | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
        import numpy as np
        import torch

        from generators.hypernet import sample_batch
        from generators.semantic import normalize
        from generators.tokens import GroupStats, fit_start

        cfg: CvaeConfig = config
        rng, stats = fit_start(data, cfg.seed)
        net = build_net(data.layout, data.text_dim, cfg)
        gs = GroupStats(data.layout, net.tokens.groups, stats)
        targets = gs.stack_targets(data.factors)
        norm_items = normalize(gs, targets)  # per group (n, G, size)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps, eta_min=cfg.lr * 0.05)
        has_ex = all(e is not None and len(e) for e in data.example_emb)
        n = len(data.names)
        recs, kls = [], []
        net.train()
        for step in range(cfg.steps):
            idx = rng.choice(n, size=min(cfg.batch_size, n), replace=False)
            use_ex = has_ex and rng.random() >= cfg.example_drop
            emb, ex = sample_batch(data, idx.tolist(), rng, cfg, use_ex)  # type: ignore[arg-type]
            sel = torch.from_numpy(idx)
            c = net.cond(emb, ex)
            qm, qv = net.posterior(c, [t[sel] for t in norm_items])
            z = qm + torch.randn_like(qm) * (0.5 * qv).exp()
            pred = gs.denormalize(net.decode(c, z))
            rec = gs.delta_loss(pred, [(a[sel], b[sel]) for a, b in targets])
            kl = 0.5 * (qm**2 + qv.exp() - 1 - qv).sum(1).mean()
            loss = rec + cfg.beta * kl
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            recs.append(float(rec.detach()))
            kls.append(float(kl.detach()))
            if progress and (step % 50 == 0 or step == cfg.steps - 1):
                progress(step + 1, cfg.steps)
        state = {f"net.{k}": v.detach().clone() for k, v in net.state_dict().items()}
        state.update(stats)
        metrics = {"final_rec": float(np.mean(recs[-50:])), "final_kl": float(np.mean(kls[-50:])),
                   "params": sum(p.numel() for p in net.parameters())}  # fmt: skip
        return state, {"text_dim": data.text_dim, "trained_with_examples": has_ex}, metrics

    def factors(self, emb: torch.Tensor, example_emb: torch.Tensor | None, seed: int) -> tuple[Factors, dict[str, Any]]:
        import torch

        ex = None
        if example_emb is not None and self.info.get("trained_with_examples"):
            ex = example_emb.mean(0, keepdim=True)  # (1, d)
        c = self.net.cond(emb[None], ex)
        z = torch.randn((1, self.config.latent), generator=torch.Generator().manual_seed(int(seed)))
        out = self.gs.to_modules(self.gs.denormalize(self.net.decode(c, z)))
        return out, {"used_examples": ex is not None}


register_generator("cvae", CvaeGenerator)
