"""``semantic`` (SG-LoRA): a CVAE over canonical params, conditioned on the nearest experts.

For a description: top-K experts by description cosine (K=4), softmax(cos/τ) weights w,
condition c = (μ*, σ*²): μ* the canonical factors of the exact weighted ΔW sum of the experts,
σ*² per module the total variance Σ wᵢ(‖θᵢ − μ*‖² + vᵢ) in normalized units, with vᵢ each
expert's within-task variance measured on the zoo's extra seeds (``_s1``, ``_s2``; the mean of
the measured ones for tasks with one seed). A per-module-token decoder reads [z; μ*_m; log σ*²_m;
module token] and writes a normalized correction added to μ*; the encoder q(z | θ, c) pools
per-module tokens of (θ − μ*); a learned prior p(z | c) pools the condition tokens. Training
leaves the item's own task out of its experts half of the time (so the model learns to move
from neighbours to an unseen task) and keeps it in the other half (unseen paraphrases of a seen
task). Generation samples z from the prior with a generator seeded by ``seed``.
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
class SemanticConfig:
    k: int = 4  # experts per condition (paper: 4)
    temperature: float = 0.05  # softmax temperature over description cosines
    latent: int = 16  # z width
    width: int = 96  # token width
    steps: int = 600  # optimizer steps
    batch_size: int = 16  # adapters per step
    lr: float = 2e-3  # AdamW learning rate (cosine decay)
    beta: float = 0.05  # KL weight
    own_task_share: float = 0.5  # share of training conditions that include the item's own task
    contexts: int = 4  # precomputed expert contexts per item (descriptions drawn from its paraphrases)
    rank: int | None = None  # canonical rank (None: the largest training rank)
    seed: int = 0  # initialization and sampling seed
    text_map_steps: int = 300  # steps of the library's description map (encoders.text_map); 0: plain cosine
    store_half: bool = True  # network weights kept as float16 in the checkpoint (half the bytes)

    def __post_init__(self) -> None:
        for name in ("k", "latent", "width", "steps", "batch_size", "contexts"):
            if getattr(self, name) < 1:
                raise GeneratorTrainingError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.temperature <= 0 or self.lr <= 0 or self.beta < 0:
            raise GeneratorTrainingError("temperature and lr must be > 0, beta ≥ 0")
        if not 0 <= self.own_task_share <= 1:
            raise GeneratorTrainingError(f"own_task_share must be in [0, 1], got {self.own_task_share}")


def build_net(layout: Any, cfg: SemanticConfig) -> Any:  # the method's nn.Module (its own attributes)
    import torch
    from torch import nn

    from generators.tokens import token_ids

    t_ids, d_ids, types, s_ids = token_ids(layout)
    shapes = list(dict.fromkeys(s.shape_key for s in layout.modules))
    size = {s.shape_key: layout.rank * (s.in_flat + s.out_features) for s in layout.modules}
    groups = [[i for i, g in enumerate(s_ids) if g == j] for j in range(len(shapes))]
    w, zd = cfg.width, cfg.latent

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.groups = groups
            self.register_buffer("t_ids", torch.tensor(t_ids), persistent=False)
            self.register_buffer("d_ids", torch.tensor([min(d, 63) for d in d_ids]), persistent=False)
            self.type_emb = nn.Embedding(len(types), w)
            self.depth_emb = nn.Embedding(64, w)
            # one reader per module shape, for μ*_m (condition) and θ_m − μ*_m (posterior) alike: both are
            # normalized canonical factors, and one reader keeps the checkpoint small (it grows with shapes × width)
            self.read = nn.ModuleList([nn.Linear(size[k], w) for k in shapes])
            self.var_in = nn.Linear(1, w)
            self.enc = nn.Sequential(nn.Linear(2 * w, w), nn.GELU(), nn.Linear(w, 2 * zd))
            self.prior = nn.Sequential(nn.Linear(w, w), nn.GELU(), nn.Linear(w, 2 * zd))
            self.z_in = nn.Linear(zd, w)
            self.trunk = nn.Sequential(nn.GELU(), nn.Linear(w, w), nn.GELU())
            heads = [nn.Linear(w, size[k]) for k in shapes]
            for h in heads:
                nn.init.zeros_(h.weight)
                nn.init.zeros_(h.bias)
            self.heads = nn.ModuleList(heads)

        def _read(self, readers: nn.ModuleList, flat: list[torch.Tensor]) -> torch.Tensor:
            b = flat[0].shape[0]
            m = sum(len(g) for g in self.groups)
            out = flat[0].new_zeros(b, m, w)
            for rd, idx, y in zip(readers, self.groups, flat, strict=True):
                out[:, idx] = rd(y)  # (b, G, w)
            return out

        def cond_tokens(self, mu: list[torch.Tensor], logvar: torch.Tensor) -> torch.Tensor:
            tok = self.type_emb(self.t_ids) + self.depth_emb(self.d_ids)  # (M, w)
            return self._read(self.read, mu) + self.var_in(logvar[..., None]) + tok[None]  # (b, M, w)

        def posterior(self, c: torch.Tensor, x: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            h = torch.cat([c.mean(1), self._read(self.read, x).mean(1)], dim=-1)  # (b, 2w)
            mu, logv = self.enc(h).chunk(2, dim=-1)
            return mu, logv.clamp(-8, 4)

        def prior_of(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mu, logv = self.prior(c.mean(1)).chunk(2, dim=-1)
            return mu, logv.clamp(-8, 4)

        def decode(self, c: torch.Tensor, z: torch.Tensor) -> list[torch.Tensor]:
            h = self.trunk(c + self.z_in(z)[:, None])  # (b, M, w)
            return [head(h[:, idx]) for head, idx in zip(self.heads, self.groups, strict=True)]

    return Net()


def normalize(gs: Any, groups: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """Inverse of ``GroupStats.denormalize``: per group (A (b, G, r, in), B (b, G, out, r)) → (b, G, r·(in+out))."""
    import torch

    out = []
    for g, (a, b) in enumerate(groups):
        std = gs.std[g][None, :, None, None]
        na = ((a - gs.a_mean[g]) / std).flatten(2)  # (b, G, r·in)
        nb = ((b - gs.b_mean[g]) / std).transpose(2, 3).flatten(2)  # (b, G, r·out)
        out.append(torch.cat([na, nb], dim=2))
    return out


def group_factors(gs: Any, facs: Factors) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Module factors (A (r, in), B (out, r)) → per group (A (1, G, r, in), B (1, G, out, r))."""
    import torch

    return [
        (torch.stack([facs[s.name][0] for s in specs])[None], torch.stack([facs[s.name][1] for s in specs])[None])
        for specs in gs.specs
    ]


def context(lib: Any, gs: Any, within: torch.Tensor, emb: torch.Tensor, cfg: SemanticConfig,
            rank: int, exclude: int | None = None) -> tuple[list[torch.Tensor], torch.Tensor, list[int], torch.Tensor]:  # fmt: skip
    """Condition of one description: normalized μ* per group (1, G, size), log σ*² (M,), experts, weights."""
    import torch

    s = lib.scores(emb)
    if exclude is not None:
        s[exclude] = -9.0
    k = min(cfg.k, len(lib) - (exclude is not None))
    vals, idx = torch.topk(s, k)
    w = torch.softmax(vals / cfg.temperature, dim=0)
    ids = [int(i) for i in idx]
    mu = normalize(gs, group_factors(gs, lib.mix(ids, w, rank)))  # (1, G, size) per group
    pairs = [
        (torch.stack([lib.factors[sp.name][0][ids] for sp in specs], 1),  # (k, G, r, in)
         torch.stack([lib.factors[sp.name][1][ids] for sp in specs], 1))  # (k, G, out, r)
        for specs in gs.specs
    ]  # fmt: skip
    experts = normalize(gs, pairs)  # per group (k, G, size)
    spread_all = torch.cat([((e - m) ** 2).mean(2) for e, m in zip(experts, mu, strict=True)], dim=1)  # (k, M)
    tot = (w[:, None] * (spread_all + within[ids])).sum(0)  # (M,) in group order
    order = torch.tensor([i for idx in gs.groups for i in idx])
    by_module = torch.empty_like(tot)
    by_module[order] = tot  # (M,) in layout order, as the tokens are
    return mu, by_module.clamp_min(1e-6).log(), ids, w


class SemanticGenerator(Generator):
    method = "semantic"
    config_cls = SemanticConfig

    def setup(self) -> None:
        from generators.library import Library
        from generators.tokens import GroupStats

        self.net = build_net(self.layout, self.config)
        self.net.load_state_dict({k[4:]: v for k, v in self.state.items() if k.startswith("net.")})
        self.net.eval()
        self.library = Library(self.state, self.info["experts"], self.layout.names)
        stats = {k: v for k, v in self.state.items() if k.startswith("norm.")}
        self.gs = GroupStats(self.layout, self.net.groups, stats)
        self.within = self.state["within"]

    @classmethod
    def fit(
        cls, data: TrainData, config: Any, progress: Callable[[int, int], None] | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
        import numpy as np
        import torch

        from generators.library import Library, experts_of, library_state
        from generators.tokens import GroupStats, fit_start

        cfg: SemanticConfig = config
        rng, stats = fit_start(data, cfg.seed)
        net = build_net(data.layout, cfg)
        gs = GroupStats(data.layout, net.groups, stats)
        lib_state, info = library_state(data, map_steps=cfg.text_map_steps)
        lib = Library(lib_state, info["experts"], data.layout.names)
        experts = experts_of(data)
        task_of_expert = {data.tasks[i]: j for j, i in enumerate(experts)}
        # within-task variance per expert and module (normalized units), from the extra seeds
        targets = gs.stack_targets(data.factors)  # per group (A (n, G, r, in), B (n, G, out, r))
        norm_items = normalize(gs, targets)  # per group (n, G, size)
        within = torch.full((len(experts), len(data.layout.modules)), float("nan"))
        for task, j in task_of_expert.items():
            rows = [i for i, t in enumerate(data.tasks) if t == task]
            if len(rows) > 1:
                v = [((x[rows] - x[rows].mean(0)) ** 2).mean(2).mean(0) for x in norm_items]  # per group (G,)
                within[j] = torch.cat(v)
        measured = within[~within[:, 0].isnan()]
        fill = measured.mean(0) if len(measured) else torch.zeros(within.shape[1])
        within = torch.where(within.isnan(), fill[None].expand_as(within), within)
        # precomputed conditions: per item, `contexts` draws (half with the own task among the experts)
        mus: list[list[list[torch.Tensor]]] = []
        logvars: list[list[torch.Tensor]] = []
        n = len(data.names)
        from generators.canonical import few_threads

        for i in range(n):
            mi, li = [], []
            for c in range(cfg.contexts):
                e = torch.from_numpy(data.desc_emb[i][rng.integers(len(data.desc_emb[i]))]).float()
                own = task_of_expert[data.tasks[i]]
                keep_own = c < round(cfg.contexts * cfg.own_task_share)
                with few_threads():
                    mu, lv, _, _ = context(lib, gs, within, e, cfg, data.layout.rank, None if keep_own else own)
                mi.append(mu)
                li.append(lv)
            mus.append(mi)
            logvars.append(li)
            if progress and i % 20 == 0:
                progress(0, cfg.steps)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps, eta_min=cfg.lr * 0.05)
        losses, kls = [], []
        net.train()
        for step in range(cfg.steps):
            idx = rng.choice(n, size=min(cfg.batch_size, n), replace=False)
            ctx = rng.integers(cfg.contexts, size=len(idx))
            mu = [torch.cat([mus[i][c][g] for i, c in zip(idx, ctx, strict=True)]) for g in range(len(gs.specs))]
            lv = torch.stack([logvars[i][c] for i, c in zip(idx, ctx, strict=True)])  # (b, M)
            sel = torch.from_numpy(idx)
            x = [t[sel] for t in norm_items]  # per group (b, G, size)
            c = net.cond_tokens(mu, lv)
            qm, qv = net.posterior(c, [a - b for a, b in zip(x, mu, strict=True)])
            pm, pv = net.prior_of(c)
            z = qm + torch.randn_like(qm) * (0.5 * qv).exp()
            out = net.decode(c, z)
            pred = gs.denormalize([m + o for m, o in zip(mu, out, strict=True)])
            rec = gs.delta_loss(pred, [(a[sel], b[sel]) for a, b in targets])
            kl = 0.5 * (pv - qv + (qv.exp() + (qm - pm) ** 2) / pv.exp() - 1).sum(1).mean()
            loss = rec + cfg.beta * kl
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(rec.detach()))
            kls.append(float(kl.detach()))
            if progress and (step % 50 == 0 or step == cfg.steps - 1):
                progress(step + 1, cfg.steps)
        state = {f"net.{k}": v.detach().clone() for k, v in net.state_dict().items()}
        state.update(stats)
        state.update(lib_state)
        state["within"] = within
        metrics = {"final_rec": float(np.mean(losses[-50:])), "final_kl": float(np.mean(kls[-50:])),
                   "params": sum(p.numel() for p in net.parameters())}  # fmt: skip
        return state, info, metrics

    def factors(self, emb: torch.Tensor, example_emb: torch.Tensor | None, seed: int) -> tuple[Factors, dict[str, Any]]:
        import torch

        mu, lv, ids, w = context(self.library, self.gs, self.within, emb, self.config, self.layout.rank)
        c = self.net.cond_tokens(mu, lv[None])
        pm, pv = self.net.prior_of(c)
        g = torch.Generator().manual_seed(int(seed))
        z = pm + torch.randn(pm.shape, generator=g) * (0.5 * pv).exp()
        out = self.net.decode(c, z)
        facs = self.gs.to_modules(self.gs.denormalize([m + o for m, o in zip(mu, out, strict=True)]))
        experts = [{"name": self.library.names[i], "weight": float(x)} for i, x in zip(ids, w, strict=True)]
        return facs, {"experts": experts}

    def candidates(self, emb: torch.Tensor, ex_emb: torch.Tensor | None) -> list[tuple[str, Factors, dict[str, Any]]]:
        idx, _ = self.library.top(emb, 8, self.config.temperature)
        return [(self.library.names[i], self.library.expert(i), {"experts": [{"name": self.library.names[i], "weight": 1.0}]})
                for i in idx]  # fmt: skip


register_generator("semantic", SemanticGenerator)
