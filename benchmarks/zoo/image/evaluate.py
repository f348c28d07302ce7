"""Judge generated images: style hit rate and content kept, for the base and for each adapter.

``sample`` is the pipeline's own DDIM loop with classifier-free guidance (same prompt encoding,
same per-image seeded latents, same scheduler steps, same decoding; a test checks that it
matches ``pipe(...)``), batched over many adapters through ``Routing`` rows.

Per adapter, ``n`` evaluation prompts (fixed seeds, never used in training): for style adapters
(palette, texture, combo) the same content prompts for all, so the base images are shared; for
a new-shape adapter the prompts ask for that shape. Criteria:

* **style hit**: palette adapters: the palette head says the palette; texture adapters: the
  texture head says the texture; combos: both; new shapes: the shape head says the new shape.
* **content kept**: style adapters: the shape head still says the prompt's shape; new shapes:
  the colour head says the prompt's colour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from benchmarks.zoo.image.captions import AdapterSpec, caption
from benchmarks.zoo.image.classifiers import ZooClassifier, predict
from benchmarks.zoo.image.model import encode_prompts
from benchmarks.zoo.image.shapes import BASE_SHAPES, COLOUR_PAIRS, Scene, rng_for

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

    from benchmarks.zoo.image.lora import Routing

N_EVAL = 32  # prompts per adapter
EVAL_STEPS = 20  # DDIM steps
GUIDANCE = 4.0  # classifier-free guidance scale


def eval_scenes(spec: AdapterSpec | None, n: int = N_EVAL, seed: int = 0) -> list[Scene]:
    """The ``n`` content scenes an adapter is judged on (``None``: the shared style prompts).

    Shapes and colour pairs cycle through every combination in a seeded order, so small ``n``
    still covers all base shapes. The list for a smaller ``n`` is a prefix of a larger one.
    """
    shape = spec.shape if spec is not None and spec.family == "shape" else None
    rng = rng_for("eval-scenes", shape or "style", seed)
    pairs = [COLOUR_PAIRS[i] for i in rng.permutation(len(COLOUR_PAIRS))]
    shapes = [BASE_SHAPES[i] for i in rng.permutation(len(BASE_SHAPES))]
    return [Scene(shape or shapes[i % len(shapes)], *pairs[i % len(pairs)]) for i in range(n)]


def eval_seeds(n: int = N_EVAL, seed: int = 0) -> list[int]:
    """Latent seeds of the evaluation images (far from anything training draws)."""
    return [1_000_000 + 1000 * seed + i for i in range(n)]


def initial_latents(pipe: StableDiffusionPipeline, seeds: list[int]) -> torch.Tensor:
    """``(B, 12, 16, 16)`` as ``pipe(..., generator=[torch.Generator().manual_seed(s) for s in seeds])`` draws them."""
    from diffusers.utils.torch_utils import randn_tensor

    c = pipe.unet.config
    shape = (len(seeds), c.in_channels, c.sample_size, c.sample_size)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    return randn_tensor(shape, generator=gens, device=torch.device("cpu"), dtype=torch.float32)


@torch.no_grad()
def sample(
    pipe: StableDiffusionPipeline,
    prompts: list[str],
    seeds: list[int],
    *,
    steps: int = EVAL_STEPS,
    guidance: float = GUIDANCE,
    routing: Routing | None = None,
    adapters: list[int] | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """Images ``(B, 3, 32, 32)`` in [0, 1]; with ``routing``, row ``i`` uses adapter ``adapters[i]`` (-1: none)."""
    from diffusers import DDIMScheduler

    device = pipe.unet.device
    sched = DDIMScheduler.from_config(pipe.scheduler.config)
    out = []
    for s in range(0, len(prompts), batch_size):
        ps, ss = prompts[s : s + batch_size], seeds[s : s + batch_size]
        b = len(ps)
        cond = encode_prompts(pipe, ps)  # (b, tokens, width)
        uncond = encode_prompts(pipe, [""] * b)
        states = torch.cat([uncond, cond])  # (2b, tokens, width): the pipeline's order
        if routing is not None:
            assert adapters is not None, "routing needs an adapter index per prompt"
            rows = torch.tensor(adapters[s : s + batch_size], device=device)
            routing.group, routing.rows = None, torch.cat([rows, rows])  # (2b,)
        latents = initial_latents(pipe, ss).to(device) * sched.init_noise_sigma  # (b, 12, 16, 16)
        sched.set_timesteps(steps, device=device)
        for t in sched.timesteps:
            model_in = sched.scale_model_input(torch.cat([latents, latents]), t)
            pred = pipe.unet(model_in, t, encoder_hidden_states=states).sample  # (2b, 12, 16, 16)
            u, c = pred.chunk(2)
            latents = sched.step(u + guidance * (c - u), t, latents, eta=0.0).prev_sample
        image = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample  # (b, 3, 32, 32) in [-1, 1]
        out.append((image / 2 + 0.5).clamp(0, 1).cpu())
    return torch.cat(out)


def style_hits(spec: AdapterSpec, pred: dict[str, list[str]], idx: list[int]) -> list[bool]:
    """Does image ``i`` (for ``i`` in ``idx``) show the adapter's style or concept?"""
    if spec.family == "shape":
        return [pred["shape"][i] == spec.shape for i in idx]
    ok_p = [spec.palette is None or pred["palette"][i] == spec.palette for i in idx]
    ok_t = [spec.texture is None or pred["texture"][i] == spec.texture for i in idx]
    return [a and b for a, b in zip(ok_p, ok_t, strict=True)]


def content_kept(spec: AdapterSpec, scenes: list[Scene], pred: dict[str, list[str]], idx: list[int]) -> list[bool]:
    """Did the prompt's content survive: its shape (style adapters) or its colour (new shapes)?"""
    if spec.family == "shape":
        return [pred["colour"][i] == s.colour for i, s in zip(idx, scenes, strict=True)]
    return [pred["shape"][i] == s.shape for i, s in zip(idx, scenes, strict=True)]


def _mean(xs: list[bool]) -> float:
    return sum(xs) / max(len(xs), 1)


def evaluate(
    pipe: StableDiffusionPipeline,
    judge: ZooClassifier,
    specs: list[AdapterSpec],
    *,
    routing: Routing | None = None,
    adapters: list[int] | None = None,
    n: int = N_EVAL,
    steps: int = EVAL_STEPS,
    guidance: float = GUIDANCE,
    seed: int = 0,
    return_images: bool = False,
) -> list[dict[str, Any]]:
    """Per spec: ``style_hit`` and ``content_kept`` of the images generated through ``adapters[j]``
    (or, with ``routing`` None, through the bare base: the "base" numbers)."""
    prompts, seeds, rows, owner = [], [], [], []
    scenes_of = [eval_scenes(s, n, seed) for s in specs]
    for j, scenes in enumerate(scenes_of):
        prompts += [caption(sc) for sc in scenes]
        seeds += eval_seeds(n, seed)
        rows += [adapters[j] if adapters is not None else -1] * n
        owner += [j] * n
    keys = list(zip(prompts, seeds, rows, strict=True))
    unique = list(dict.fromkeys(keys))  # the base generates the shared style prompts once
    where = {k: i for i, k in enumerate(unique)}
    images = sample(pipe, [k[0] for k in unique], [k[1] for k in unique], steps=steps, guidance=guidance,
                    routing=routing, adapters=[k[2] for k in unique] if routing is not None else None)  # fmt: skip
    images = images[[where[k] for k in keys]]
    pred = predict(judge, images)
    out = []
    for j, spec in enumerate(specs):
        idx = [i for i, o in enumerate(owner) if o == j]
        rec: dict[str, Any] = {
            "style_hit": _mean(style_hits(spec, pred, idx)),
            "content_kept": _mean(content_kept(spec, scenes_of[j], pred, idx)),
        }
        if return_images:
            rec["images"] = images[idx]
        out.append(rec)
    return out


def base_content_accuracy(
    pipe: StableDiffusionPipeline, judge: ZooClassifier, n: int, seed: int = 0
) -> dict[str, float]:
    """How well the bare base draws what plain prompts ask for (shape, colour, no style)."""
    scenes = eval_scenes(None, n, seed)
    images = sample(pipe, [caption(s) for s in scenes], eval_seeds(n, seed))
    pred = predict(judge, images)
    return {
        "shape": float(np.mean([p == s.shape for p, s in zip(pred["shape"], scenes, strict=True)])),
        "colour": float(np.mean([p == s.colour for p, s in zip(pred["colour"], scenes, strict=True)])),
        "plain_palette": float(np.mean([p == "plain" for p in pred["palette"]])),
        "no_texture": float(np.mean([p == "none" for p in pred["texture"]])),
    }
