"""``zip`` (ZipLoRA-style): a merge whose per-channel mixing coefficients are fitted on the base model.

For k adapters with weighted updates ΔWᵢ = wᵢsᵢBᵢAᵢ, flattened (out, in·kh·kw), the merge is

    ΔW = Σᵢ mᵢ ⊙ ΔWᵢ

with one coefficient vector mᵢ per module and adapter: one entry per output channel
(``axis="out"``, default: mᵢ scales the rows of Bᵢ) or per input column (``axis="in"``, the
ZipLoRA layout: mᵢ scales the columns of Aᵢ). Either way the written adapter is exact: the
``cat`` factors with the coefficients folded into one side, ranks add.

``learn`` fits the coefficients, starting from 1 (the plain sum), so that the merged model
reproduces each adapter's own prediction on that adapter's own data (its samplers: noised
latents and prompts), and penalizes overlap between the scaled updates::

    L = mean over rows ‖ε_merged(xᵢ, t) − εᵢ(xᵢ, t)‖²  +  λ · mean over modules and pairs |cos(mᵢ⊙ΔWᵢ, mⱼ⊙ΔWⱼ)|

The cosine is Frobenius (whole matrices): between matching columns it would not depend on the
coefficients at all, since a column scaled by a positive number keeps its direction. The adapters
are installed side by side (``fusion.runtime``) with the coefficients applied to the stacked
factors; the teacher rows route each row to its own adapter, so one install serves both passes
and the base weights are never written.

The strategy itself only applies given coefficients: ``merge(ads, w, strategy="zip",
coefficients=..., axis=...)``; ``zip_merge(pipe, ads, samplers)`` learns them and merges;
``fit_merge`` does so with each adapter's data drawn by the adapter itself, from the options a
user gives (``zip_options``: checked before anything runs).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from fusion.errors import FusionError
from fusion.merge import MergeResult, ModuleInput, StrategyContext, check_compatible, merge, register_strategy

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from registry.formats.canonical import LoraAdapter

AXES = ("out", "in")
# (n, generator) → (latents x0 (n, C, h, w) in the UNet's space, n prompts)
Sampler = Callable[[int, "torch.Generator"], "tuple[torch.Tensor, list[str]]"]
Progress = Callable[[int, int], None]  # (units done, units in all), as generation and compose report


@dataclass
class ZipConfig:
    steps: int = 15  # optimizer steps (chosen on the image zoo's training combos; see fusion_notes.md)
    batch: int = 4  # rows per adapter per step (each adapter's own data)
    lr: float = 0.02  # Adam learning rate on the coefficients
    cos_weight: float = 0.01  # λ of the |cos| penalty
    axis: str = "out"  # out: one coefficient per output channel; in: per input column (ZipLoRA)
    seed: int = 0  # timesteps, noise and batches

    def __post_init__(self) -> None:
        if self.axis not in AXES:
            raise FusionError(f"zip axis must be one of {', '.join(AXES)}, got {self.axis!r}")
        if self.steps < 0 or self.batch < 1:
            raise FusionError(f"zip needs steps ≥ 0 and batch ≥ 1, got steps {self.steps}, batch {self.batch}")
        if not self.lr > 0 or self.cos_weight < 0:
            raise FusionError(f"zip needs lr > 0 and cos_weight ≥ 0, got lr {self.lr}, cos_weight {self.cos_weight}")


# ---------------------------------------------------------------------------------- strategy
def _scaled(mi: ModuleInput, ctx: StrategyContext) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """[m₁⊙w₁s₁B₁ …] @ [A₁; …] (axis out) or [w₁s₁B₁ …] @ [A₁⊙m₁; …] (axis in): exact."""
    import torch

    coefs = ctx.options.get("coefficients")
    if coefs is None:
        raise FusionError(
            "merge strategy 'zip' learns its coefficients on the base model: use "
            "fusion.merge.ziplora.zip_merge(pipe, adapters, samplers) or LocalService.merge(..., strategy='zip'), "
            "or pass coefficients={module: (k, n) tensor}"
        )
    axis = str(ctx.options.get("axis", "out"))
    if axis not in AXES:
        raise FusionError(f"zip axis must be one of {', '.join(AXES)}, got {axis!r}")
    if mi.name not in coefs:
        raise FusionError(f"zip coefficients have no entry for module {mi.name!r}")
    k = len(mi.downs)
    n = mi.shape[0] if axis == "out" else mi.downs[0].shape[1]
    m = torch.as_tensor(coefs[mi.name], dtype=torch.float32)
    if tuple(m.shape) != (k, n):
        raise FusionError(
            f"zip coefficients of {mi.name!r} have shape {tuple(m.shape)}; expected ({k}, {n}) "
            f"(adapters present × {'output channels' if axis == 'out' else 'input columns'})"
        )
    if axis == "out":
        ups = [u * m[i][:, None] for i, u in enumerate(mi.ups)]  # (out, rᵢ)
        return torch.cat(mi.downs, dim=0), torch.cat(ups, dim=1), True
    downs = [a * m[i][None, :] for i, a in enumerate(mi.downs)]  # (rᵢ, in·kh·kw)
    return torch.cat(downs, dim=0), torch.cat(mi.ups, dim=1), True


register_strategy("zip", _scaled, ("coefficients", "axis"), learned=True)


# ---------------------------------------------------------------------------------- learning
@dataclass
class ZipLearned:
    coefficients: dict[str, torch.Tensor]  # module → (adapters present, n)
    metrics: dict[str, Any]  # losses first / last, cos first / last, coefficient summary, seconds


def _cos_stats(layer: Any, axis: str) -> tuple[torch.Tensor, int]:
    """Per-channel Gram entries of the k weighted updates: G (k, k, n) with G[i, j, c] = ⟨ΔWᵢ[c], ΔWⱼ[c]⟩."""
    import torch

    k = layer.k
    a = layer.lora_A.reshape(k, layer.r, -1).float()  # (k, r, cols)
    b = layer.lora_B.float() * (layer.lora_s * layer.static).float()[:, None, None]  # (k, out, r)
    d = torch.einsum("kor,krc->koc", b, a)  # (k, out, cols)
    if axis == "in":
        d = d.transpose(1, 2)  # (k, cols, out)
    return torch.einsum("inc,jnc->ijn", d, d), int(d.shape[1])  # (k, k, n), n


def _penalty(grams: list[torch.Tensor], ms: list[torch.Tensor]) -> torch.Tensor:
    """Mean over modules and adapter pairs of |cos(mᵢ⊙ΔWᵢ, mⱼ⊙ΔWⱼ)| (Frobenius)."""
    import torch

    vals = []
    for g, m in zip(grams, ms, strict=True):
        k = m.shape[0]
        for i, j in itertools.combinations(range(k), 2):
            num = (m[i] * m[j] * g[i, j]).sum()
            den = ((m[i] ** 2 * g[i, i]).sum() * (m[j] ** 2 * g[j, j]).sum()).sqrt()
            if float(den.detach()) > 0:
                vals.append((num / den).abs())
    return torch.stack(vals).mean() if vals else torch.zeros(())


def learn(
    pipe: Any,
    adapters: list[LoraAdapter],
    samplers: list[Sampler],
    weights: list[float] | None = None,
    config: ZipConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> ZipLearned:
    """Fit zip coefficients for ``adapters`` on ``pipe`` (a diffusers pipeline); see the module doc.
    ``progress(done, steps)``: once before the first optimizer step, then after each one."""
    import torch

    from fusion.compose import encode_prompts
    from fusion.runtime import install

    cfg = config or ZipConfig()
    k = len(adapters)
    if k < 2:
        raise FusionError(f"zip merges at least two adapters, got {k}")
    if len(samplers) != k:
        raise FusionError(f"zip needs one sampler per adapter: {len(samplers)} for {k} adapters")
    w = [1.0] * k if weights is None else [float(x) for x in weights]
    if len(w) != k:
        raise FusionError(f"{len(w)} weights for {k} adapters")
    sched = pipe.scheduler
    unet = pipe.unet
    params = [p for c in (unet, getattr(pipe, "text_encoder", None)) if c is not None for p in c.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    handle = install(pipe, adapters)
    layers = handle.layers
    try:
        handle.set_weights(w)
        a0 = {n: lay.lora_A.clone() for n, lay in layers.items()}  # (k, r, in[, kh, kw])
        b0 = {n: lay.lora_B.clone() for n, lay in layers.items()}  # (k, out, r)
        grams, ms = [], []
        for lay in layers.values():
            g, n = _cos_stats(lay, cfg.axis)
            grams.append(g)
            ms.append(torch.ones(k, n, requires_grad=True))
        opt = torch.optim.Adam(ms, lr=cfg.lr)

        def apply(coef: list[torch.Tensor] | None) -> None:
            """The coefficients folded into the stacked factors (None: the adapters as they are)."""
            for i, (name, lay) in enumerate(layers.items()):
                if coef is None:
                    lay.lora_A, lay.lora_B = a0[name], b0[name]
                elif cfg.axis == "out":
                    lay.lora_B = b0[name] * coef[i].to(b0[name])[:, :, None]  # (k, out, r)
                else:
                    shape = (k, 1, *a0[name].shape[2:])
                    lay.lora_A = a0[name] * coef[i].to(a0[name]).reshape(shape)  # (k, r, in[, kh, kw])

        gen = torch.Generator().manual_seed(cfg.seed)
        losses: list[float] = []
        coss: list[float] = []
        t0 = time.perf_counter()
        n_train = int(sched.config.num_train_timesteps)
        if progress is not None:
            progress(0, cfg.steps)
        for step in range(cfg.steps):
            xs, caps = [], []
            for s in samplers:
                x, c = s(cfg.batch, gen)  # (b, C, h, w)
                xs.append(x)
                caps += c
            x0 = torch.cat(xs)  # (k·b, C, h, w)
            route = torch.arange(k).repeat_interleave(cfg.batch)  # (k·b,) row → its own adapter
            noise = torch.randn(x0.shape, generator=gen)
            t = torch.randint(0, n_train, (x0.shape[0],), generator=gen)
            noisy = sched.add_noise(x0, noise, t)
            with torch.no_grad():
                apply(None)
                handle.set_row_adapters(route)
                target = unet(noisy, t, encoder_hidden_states=encode_prompts(pipe, caps)).sample
                handle.set_row_adapters(None)
            apply(ms)
            pred = unet(noisy, t, encoder_hidden_states=encode_prompts(pipe, caps)).sample
            mse = torch.nn.functional.mse_loss(pred, target)
            cos = _penalty(grams, ms)
            opt.zero_grad()
            (mse + cfg.cos_weight * cos).backward()
            opt.step()
            losses.append(mse.item())
            coss.append(cos.item())
            if log is not None and (step % 10 == 0 or step == cfg.steps - 1):
                log(f"zip step {step}: mse {mse.item():.5f} |cos| {cos.item():.4f} ({time.perf_counter() - t0:.0f}s)")
            if progress is not None:
                progress(step + 1, cfg.steps)
        apply(None)
    finally:
        handle.remove()
        for p, f in zip(params, flags, strict=True):
            p.requires_grad_(f)
    present = {n: [i for i, a in enumerate(adapters) if n in a.modules] for n in layers}
    coefs = {n: m.detach()[present[n]].clone() for n, m in zip(layers, ms, strict=True)}
    win = max(1, min(10, cfg.steps // 5))
    allm = torch.cat([m.detach() for m in ms], dim=1)  # (k, Σn)
    metrics: dict[str, Any] = {
        "config": asdict(cfg),
        "weights": w,
        "mse_first": sum(losses[:win]) / win if losses else None,
        "mse_last": sum(losses[-win:]) / win if losses else None,
        "cos_first": sum(coss[:win]) / win if coss else None,
        "cos_last": sum(coss[-win:]) / win if coss else None,
        "coefficient_mean": [round(float(x), 4) for x in allm.mean(dim=1)],
        "coefficient_min": [round(float(x), 4) for x in allm.min(dim=1).values],
        "coefficient_max": [round(float(x), 4) for x in allm.max(dim=1).values],
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return ZipLearned(coefs, metrics)


def own_samples(
    pipe: Any, adapter: LoraAdapter, prompts: list[str], n: int, *, steps: int = 10, guidance: float = 4.0,
    seed: int = 0, progress: Progress | None = None,
) -> Sampler:  # fmt: skip
    """A sampler over ``n`` latents the adapter draws alone from ``prompts`` (cycled), drawn once:
    the data of an adapter whose training images are not at hand. ``progress(done, steps)`` per
    denoising step of the draw."""
    import torch

    from fusion.compose import sample_images
    from fusion.runtime import install

    if not prompts:
        raise FusionError("own_samples needs at least one prompt")
    ps = [prompts[i % len(prompts)] for i in range(n)]
    with install(pipe, [adapter]) as h:
        pool = sample_images(pipe, ps, [seed + i for i in range(n)], steps=steps, guidance=guidance, handle=h,
                             decode=False, on_step=(lambda i, k, _t: progress(i, k)) if progress else None)  # fmt: skip
    if progress is not None:
        progress(steps, steps)

    def sample(b: int, gen: torch.Generator) -> tuple[torch.Tensor, list[str]]:
        idx = torch.randint(0, n, (b,), generator=gen)
        return pool[idx], [ps[int(i)] for i in idx]

    return sample


def zip_merge(
    pipe: Any,
    adapters: list[LoraAdapter],
    samplers: list[Sampler],
    weights: list[float] | None = None,
    config: ZipConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> MergeResult:
    """Learn zip coefficients on ``pipe`` and merge: the result's ΔW is exactly Σ mᵢ ⊙ wᵢΔWᵢ.
    ``info["zip"]`` holds the training metrics and the coefficient summary; ``progress`` as ``learn``."""
    cfg = config or ZipConfig()
    check_compatible(adapters)  # refuse before any training
    learned = learn(pipe, adapters, samplers, weights, cfg, log=log, progress=progress)
    res = merge(adapters, weights, strategy="zip", seed=cfg.seed, coefficients=learned.coefficients, axis=cfg.axis)
    res.info["options"] = {"axis": cfg.axis}
    res.info["zip"] = learned.metrics
    res.info["coefficients"] = learned.coefficients
    res.adapter.metadata["merge"] = {**res.adapter.metadata["merge"], "zip": learned.metrics}
    return res


@dataclass
class ZipData:
    """How each adapter's data are drawn for ``fit_merge`` (the options besides ``ZipConfig``'s)."""

    prompts: list[str] | None = None  # every adapter draws from these (None: each from its own prompts)
    samples: int = 8  # latents each adapter draws alone
    sample_steps: int = 10  # DDIM steps of each draw
    guidance: float = 4.0  # classifier-free guidance of each draw

    def __post_init__(self) -> None:
        p = self.prompts
        if p is not None and (not isinstance(p, list) or not p or not all(isinstance(x, str) and x for x in p)):
            raise FusionError(f"zip option prompts must be a list of non-empty strings, got {p!r}")
        if self.samples < 1 or self.sample_steps < 1:
            raise FusionError(f"zip needs samples ≥ 1 and sample_steps ≥ 1, got {self.samples}, {self.sample_steps}")


def option_names() -> list[str]:
    """Every option ``zip_options`` takes: ``ZipConfig``'s fields, then ``ZipData``'s."""
    return [f.name for f in fields(ZipConfig)] + [f.name for f in fields(ZipData)]


def zip_options(options: dict[str, Any] | None, seed: int = 0) -> tuple[ZipConfig, ZipData]:
    """A user's options (JSON values) → the fit's config and how its data are drawn; ``FusionError``
    naming the option and the valid ones for anything else. ``seed`` unless the options give one."""
    o = dict(options or {})
    unknown = sorted(set(o) - set(option_names()))
    if unknown:
        raise FusionError(
            f"strategy 'zip' takes no option {', '.join(unknown)}; its options: {', '.join(option_names())}"
        )
    data = {f.name: o.pop(f.name) for f in fields(ZipData) if f.name in o}
    types = {"steps": int, "batch": int, "seed": int, "samples": int, "sample_steps": int, "lr": float,
             "cos_weight": float, "guidance": float, "axis": str}  # fmt: skip
    for k, v in {**o, **data}.items():
        want = types.get(k)
        if want is None:  # prompts: checked by ZipData
            continue
        if isinstance(v, bool) or not (isinstance(v, want) or (want is float and isinstance(v, int))):
            kind = {int: "an integer", float: "a number", str: "a string"}[want]
            raise FusionError(f"zip option {k} must be {kind}, got {v!r}")
    return ZipConfig(**{"seed": seed, **o}), ZipData(**data)


def fit_units(k: int, config: ZipConfig | None = None, data: ZipData | None = None) -> int:
    """How many units ``fit_merge`` of ``k`` adapters reports: each adapter's denoising steps
    drawing its data, then the optimizer steps."""
    cfg, d = config or ZipConfig(), data or ZipData()
    return k * d.sample_steps + cfg.steps


def fit_merge(
    pipe: Any,
    adapters: list[LoraAdapter],
    own_prompts: list[list[str]],
    weights: list[float] | None = None,
    config: ZipConfig | None = None,
    data: ZipData | None = None,
    *,
    log: Callable[[str], None] | None = None,
    progress: Progress | None = None,
) -> MergeResult:
    """``zip_merge`` on ``pipe`` where each adapter's data are latents it draws alone
    (``own_samples``) from ``data.prompts``, else from its ``own_prompts`` (its description).
    ``progress(done, total)`` counts the draws' denoising steps, then the optimizer steps:
    total = ``fit_units(len(adapters), config, data)``, done rises to it."""
    cfg, d = config or ZipConfig(), data or ZipData()
    if len(own_prompts) != len(adapters):
        raise FusionError(f"{len(own_prompts)} prompt lists for {len(adapters)} adapters")
    check_compatible(adapters)  # refuse before drawing anything
    total = fit_units(len(adapters), cfg, d)
    drawn = len(adapters) * d.sample_steps

    def part(offset: int) -> Progress | None:
        """A phase's (done, of) as the whole fit's (offset + done, total)."""
        return (lambda done, _of: progress(offset + done, total)) if progress is not None else None

    samplers: list[Sampler] = []
    for i, (a, p) in enumerate(zip(adapters, own_prompts, strict=True)):
        draw = part(i * d.sample_steps)  # adapter i's draw: units i·sample_steps … (i + 1)·sample_steps
        s = own_samples(pipe, a, d.prompts or p, d.samples, steps=d.sample_steps, guidance=d.guidance, seed=cfg.seed,
                        progress=draw)  # fmt: skip
        samplers.append(s)
    return zip_merge(pipe, adapters, samplers, weights, cfg, log=log, progress=part(drawn))


__all__ = ["Progress", "ZipConfig", "ZipData", "ZipLearned", "fit_merge", "fit_units", "learn", "option_names",
           "own_samples", "zip_merge", "zip_options"]  # fmt: skip
