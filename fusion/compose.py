"""High-level composition: ``compose_images`` (diffusion pipelines) and ``compose_text`` (causal LMs).

Both take already-loaded models and ``LoraAdapter`` objects, install the adapters side by side
(``fusion.runtime``), run, and remove them again (the model is left as it was). Strategies:

* ``gate`` (default): the family's gate (``gate_dir``; else the training-free description gate)
  weighs each adapter by how well its description matches the request, per layer, channel and
  timestep for a trained image gate;
* ``linear``: static weights (diffusers ``set_adapters``), default 1 each;
* ``switch`` (LoRA Switch): one adapter active per denoising step, cycling every
  ``switch_every`` steps;
* ``composite`` (LoRA Composite): classifier-free guidance computed with each adapter alone, the
  guided predictions averaged (one batched pass: rows routed to their adapter);
* ``merge:S``: the adapters merged with strategy ``S`` of ``fusion.merge``, then applied alone
  (``merge:zip``: its coefficients fitted on the pipeline first, images only);
* ``chain`` (text only): the adapters applied one after another, each to the previous output.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fusion.errors import FusionError, UnknownStrategyError
from fusion.runtime import FusionHandle, install
from fusion.strategies import RUNTIME

if TYPE_CHECKING:  # pragma: no cover
    from registry.formats.canonical import LoraAdapter

IMAGE_STRATEGIES = (*RUNTIME["image"], "merge:<strategy>")
TEXT_STRATEGIES = (*RUNTIME["text"], "merge:<strategy>")
DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 7.5


@dataclass
class ComposeResult:
    images: list[Any] = field(default_factory=list)  # PIL images (image families)
    outputs: list[str] = field(default_factory=list)  # one output per input (text families)
    gate_trace: dict[str, Any] = field(
        default_factory=dict
    )  # adapters, layers, timesteps, values[layer][step][adapter]
    weights: list[float] = field(default_factory=list)  # per adapter: routed / static weight
    info: dict[str, Any] = field(default_factory=dict)  # strategy, steps, guidance, scores, merge info …
    tensor: torch.Tensor | None = None  # (n, 3, H, W) in [0, 1] (image families)


def adapter_description(adapter: LoraAdapter) -> str:
    """The text a gate routes by: the description, else metadata, else the trigger words / title."""
    for v in (adapter.description, adapter.metadata.get("modelspec.description"), adapter.metadata.get("description")):
        if isinstance(v, str) and v.strip():
            return v.strip()
    words = " ".join(adapter.trigger_words + adapter.tags)
    title = adapter.metadata.get("modelspec.title") or adapter.metadata.get("name") or ""
    return (f"{title} {words}").strip() or "an adapter"


_CLAUSE = r"[,;:+]|(?<![\w-])(?:and|with|plus|then|also)(?![\w-])"  # not inside "black-and-white"


def clauses(request: str) -> list[str]:
    """The request and its clauses (split at , ; : + and with plus then also): a request that
    asks for several things matches each adapter through the clause that names it."""
    import re

    parts = [p.strip() for p in re.split(_CLAUSE, request, flags=re.IGNORECASE)]
    parts = [p for p in parts if len(p.split()) >= 1 and p != request.strip()]
    return [request, *dict.fromkeys(parts)]


def _embed(texts: list[str], text_encoder: Any = None) -> torch.Tensor:
    """Text embeddings (n, d) by ``text_encoder``, else the bundled one."""
    if text_encoder is None:
        from encoders.text import get_text_encoder

        text_encoder = get_text_encoder()
    return torch.as_tensor(text_encoder.encode(texts), dtype=torch.float32)


def similarity(request: str, descriptions: list[str], text_encoder: Any = None) -> torch.Tensor:
    """Cosine of each description with the request or its best-matching clause (k,)."""
    qs = clauses(request)
    emb = torch.nn.functional.normalize(_embed([*qs, *descriptions], text_encoder), dim=-1)  # (q+k, d)
    return (emb[len(qs) :] @ emb[: len(qs)].T).max(dim=1).values  # (k,)


@torch.no_grad()
def head_scores(request: str, adapters: list[LoraAdapter], text_encoder: Any = None,
                weight_embedder: Any = None) -> torch.Tensor | None:  # fmt: skip
    """The weights signal of a request (k,): each adapter's best cosine, over the request's clauses,
    between its weight embedding and the clause through its family's weight encoder query head (the
    search's weights signal, ``Searcher._weight_queries``). The head learned from many wordings of
    what each training adapter does, so it reads some a description lacks ("sepia" ≈ "old-timey
    brown photo"). None when the family has no encoder with a query head or an adapter has no
    embedding. ``weight_embedder``: the service's (its registry's encoders too), else the bundled."""
    if weight_embedder is None:
        from encoders.weight.embedder import WeightEmbedder

        weight_embedder = WeightEmbedder()
    family = adapters[0].family
    if family not in weight_embedder.query_families():
        return None
    vecs = [weight_embedder.embed_adapter(a) for a in adapters]
    if any(v is None for v in vecs):
        return None
    qs = _embed(clauses(request), text_encoder)  # (q, d)
    heads = torch.stack([torch.as_tensor(weight_embedder.query(family, q.numpy())) for q in qs])  # (q, e)
    keys = torch.nn.functional.normalize(torch.as_tensor(np.stack(vecs)).float(), dim=-1)  # (k, e)
    return (keys @ torch.nn.functional.normalize(heads, dim=-1).T).max(dim=1).values  # (k,)


@torch.no_grad()
def route_scores(gate: Any, request: str, descriptions: list[str], text_encoder: Any = None,
                 head: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """An image gate's relevances (k,): through its own map of the request's clauses when it has one
    (the calibrated gate), else the plain cosine with the best clause (``similarity``). ``head`` (k,):
    the weights signal (``head_scores``), added as the calibrated gate's config says
    (``head_scale`` × (head − ``head_offset``)) when it says so."""
    if not hasattr(gate, "scores"):
        return similarity(request, descriptions, text_encoder)
    qs = clauses(request)
    emb = _embed([*qs, *descriptions], text_encoder)  # (q+k, d)
    scores = gate.scores(emb[: len(qs)], emb[len(qs) :])  # (k,)
    if head is not None and gate.config.head_scale > 0:
        scores = scores + gate.config.head_scale * (head.float() - gate.config.head_offset)
    return scores


def _gate_for(adapters: list[LoraAdapter], gate_dir: str | Path | None, kind: str) -> Any:
    from fusion.gate import bundled_gate_dir, load_gate

    family = adapters[0].family
    folder = gate_dir if gate_dir is not None else bundled_gate_dir(family)
    gate = load_gate(folder, kind=kind, family=family)
    if gate.config.kind != kind:
        raise FusionError(f"the gate at {folder} is a {gate.config.kind} gate; this is a {kind} composition")
    return gate


def _check_weights(weights: list[float] | None, k: int) -> list[float]:
    w = [1.0] * k if weights is None else [float(x) for x in weights]
    if len(w) != k:
        raise FusionError(f"{len(w)} weights for {k} adapters")
    return w


def _merged(
    adapters: list[LoraAdapter],
    weights: list[float],
    strategy: str,
    options: dict[str, Any],
    *,
    pipe: Any = None,
    own_prompts: list[str] | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[LoraAdapter, dict[str, Any]]:
    """``merge:S`` → the merged adapter and the merge's info. ``merge:zip`` without ``coefficients``
    fits them first on ``pipe`` (a diffusion pipeline), each adapter drawing its data alone from
    ``own_prompts[i]`` unless the options give ``prompts`` (``ziplora.zip_options``); ``progress``
    sees that fit (``ziplora.fit_merge``). The other merges are quick and report nothing."""
    from fusion.merge import merge

    name = strategy.split(":", 1)[1]
    if name == "zip" and "coefficients" not in options:
        from fusion.merge.ziplora import fit_merge, zip_options

        if pipe is None:
            raise FusionError(
                f"strategy 'merge:zip' learns on a diffusion base; family {adapters[0].family!r} is a language "
                "model: compose it with an exact merge (merge:cat, merge:ties …)"
            )
        cfg, data = zip_options(options, seed)
        prompts = own_prompts or [adapter_description(a) for a in adapters]
        res = fit_merge(pipe, adapters, [[p] for p in prompts], weights, cfg, data, progress=progress)
        res.info.pop("coefficients", None)  # tensors; the fit's summary stays in info["zip"]
    else:
        res = merge(adapters, weights, strategy=name, missing="zero", **options)
    return res.adapter, res.info


# ------------------------------------------------------------------------------------ images
@torch.no_grad()
def encode_prompts(pipe: Any, prompts: list[str]) -> torch.Tensor:
    """Text states (B, tokens, width) as ``StableDiffusionPipeline`` computes them."""
    tok = pipe.tokenizer
    ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
    return pipe.text_encoder(ids.input_ids.to(pipe.text_encoder.device))[0]


def initial_latents(pipe: Any, seeds: list[int]) -> torch.Tensor:
    """(B, C, H, W) as ``pipe(..., generator=[Generator().manual_seed(s) …])`` draws them."""
    from diffusers.utils.torch_utils import randn_tensor

    c = pipe.unet.config
    shape = (len(seeds), c.in_channels, c.sample_size, c.sample_size)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    return randn_tensor(shape, generator=gens, device=torch.device("cpu"), dtype=torch.float32)


@torch.no_grad()
def sample_images(
    pipe: Any,
    prompts: list[str],
    seeds: list[int],
    *,
    steps: int,
    guidance: float,
    handle: FusionHandle | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    composite: bool = False,
    decode: bool = True,
) -> torch.Tensor:
    """The pipeline's own denoising loop with classifier-free guidance → (B, 3, H, W) in [0, 1]
    (``decode=False``: the final latents (B, C, h, w) in the UNet's space, VAE latents × scaling factor).

    ``on_step(i, steps, t01)`` runs before step i (t01 = t / train timesteps, 1 = noise).
    ``composite``: each installed adapter gets its own guided prediction (rows routed to it),
    and the predictions are averaged (LoRA Composite).
    """
    device = pipe.unet.device
    sched = type(pipe.scheduler).from_config(pipe.scheduler.config)
    step_kw = {"eta": 0.0} if "eta" in inspect.signature(sched.step).parameters else {}
    b = len(prompts)
    cond = encode_prompts(pipe, prompts).to(device)  # (b, tokens, width)
    uncond = encode_prompts(pipe, [""] * b).to(device)
    k = handle.k if (composite and handle is not None) else 1
    states = torch.cat([uncond, cond] * k)  # (2bk, tokens, width): per adapter [uncond; cond]
    if composite and handle is not None:
        eye = torch.eye(k)
        handle.set_row_weights(eye.repeat_interleave(2 * b, dim=0))  # (2bk, k): block i → adapter i
    latents = initial_latents(pipe, seeds).to(device) * sched.init_noise_sigma  # (b, C, H, W)
    sched.set_timesteps(steps, device=device)
    n_train = float(sched.config.num_train_timesteps)
    try:
        for i, t in enumerate(sched.timesteps):
            t01 = float(t) / n_train
            if handle is not None:
                handle.context["t"] = t01
                handle.context["step"] = i
            if on_step is not None:
                on_step(i, steps, t01)
            model_in = sched.scale_model_input(torch.cat([latents] * (2 * k)), t)
            pred = pipe.unet(model_in, t, encoder_hidden_states=states).sample  # (2bk, C, H, W)
            pred = pred.reshape(k, 2, b, *pred.shape[1:])  # (k, 2, b, C, H, W)
            u, c = pred[:, 0], pred[:, 1]
            guided = (u + guidance * (c - u)).mean(dim=0)  # (b, C, H, W)
            latents = sched.step(guided, t, latents, **step_kw).prev_sample
    finally:
        if composite and handle is not None:
            handle.set_row_weights(None)
    if not decode:
        return latents.float().cpu()
    scale = getattr(pipe.vae.config, "scaling_factor", 1.0)
    image = pipe.vae.decode(latents / scale).sample  # (b, 3, H, W) in [-1, 1]
    return (image / 2 + 0.5).clamp(0, 1).float().cpu()


def to_pil(images: torch.Tensor) -> list[Any]:
    from PIL import Image

    arr = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (n, H, W, 3)
    return [Image.fromarray(a) for a in arr]


def _trace(handle: FusionHandle, timesteps: list[float]) -> dict[str, Any]:
    layers = list(handle.trace)
    return {
        "adapters": list(handle.names),
        "layers": layers,
        "timesteps": timesteps,
        "values": [handle.trace[n] for n in layers],  # [layer][step][adapter]
    }


def compose_images(
    pipe: Any,
    adapters: list[LoraAdapter],
    prompt: str | list[str],
    *,
    strategy: str = "gate",
    weights: list[float] | None = None,
    gate_dir: str | Path | None = None,
    seed: int = 0,
    n_images: int = 1,
    steps: int | None = None,
    text_encoder: Any = None,
    progress: Callable[[int, int], None] | None = None,
    request: str | None = None,
    descriptions: list[str] | None = None,
    names: list[str] | None = None,
    guidance: float | None = None,
    seeds: list[int] | None = None,
    switch_every: int = 1,
    merge_options: dict[str, Any] | None = None,
    scores: torch.Tensor | None = None,
    weight_embedder: Any = None,
) -> ComposeResult:
    """Render ``n_images`` per prompt with ``adapters`` composed by ``strategy``.

    ``request``: the text the gate routes by (default: the prompt; give it when the pipeline's
    prompt holds only the content, e.g. a zoo caption, and the styles are asked for in words).
    ``scores`` (k,): precomputed description similarities (skips the text encoder).
    ``weight_embedder``: whose query heads give a calibrated gate's weights signal (``head_scores``;
    default: the bundled weight encoders).
    ``merge_options``: the ``merge:S`` strategy's options (``merge:zip``: ``ziplora.zip_options``).
    Steps and guidance default to the family gate's sampling defaults, else 20 and 7.5.
    ``progress(done, total)``: the denoising steps; with ``merge:zip`` the fit's units come first
    (total = fit units + steps), so done only rises.
    """
    if not adapters:
        raise FusionError("compose needs at least one adapter")
    k = len(adapters)
    w = _check_weights(weights, k)
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    all_prompts = [p for p in prompts for _ in range(n_images)]
    seeds = list(seeds) if seeds is not None else [seed + i for i in range(len(all_prompts))]
    if len(seeds) != len(all_prompts):
        raise FusionError(f"{len(seeds)} seeds for {len(all_prompts)} images")
    kind = strategy.split(":", 1)[0]
    if kind not in (*RUNTIME["image"], "merge"):
        raise UnknownStrategyError("composition", strategy, list(IMAGE_STRATEGIES))
    gate = _gate_for(adapters, gate_dir, "image")
    steps = steps or gate.config.steps or DEFAULT_STEPS
    guidance = guidance if guidance is not None else (gate.config.guidance or DEFAULT_GUIDANCE)
    names = names or [f"adapter_{i}" for i in range(k)]
    info: dict[str, Any] = {
        "strategy": strategy,
        "steps": steps,
        "guidance": guidance,
        "seeds": seeds,
        "adapters": names,
    }
    installed = adapters
    ratios: dict[str, list[float]] = {}
    fitted = 0  # units a merge:zip fit reported before rendering
    if kind == "merge":

        def fit_progress(done: int, total: int) -> None:
            nonlocal fitted
            fitted = total
            if progress is not None:
                progress(done, total + steps)

        merged, minfo = _merged(adapters, w, strategy, merge_options or {}, pipe=pipe, own_prompts=descriptions,
                                seed=seed, progress=fit_progress)  # fmt: skip
        installed, info["merge"] = [merged], minfo
    calibrated = kind == "gate" and hasattr(gate, "calibrate")  # a calibrated gate: rescales the adapters it knows
    if calibrated:
        from fusion.gate.calibrated import scale_ratios

        installed, which = gate.calibrate(adapters)
        info["calibrated"] = [n for n, on in zip(names, which, strict=True) if on]
        ratios = scale_ratios(adapters, installed)  # layer → each adapter's ‖ΔW'‖ / ‖ΔW‖
    handle = install(pipe, installed, names if kind != "merge" else ["merged"])
    routed = w
    try:
        gate_fn = None
        if kind == "gate":
            asked = request or prompts[0]
            if scores is None:
                descs = descriptions or [adapter_description(a) for a in adapters]
                head = None
                if calibrated and gate.config.head_scale > 0:
                    head = head_scores(asked, adapters, text_encoder, weight_embedder)
                    info["head_scores"] = None if head is None else [round(float(x), 4) for x in head]
                scores = route_scores(gate, asked, descs, text_encoder, head)
            if calibrated:  # an adapter the request names is asked for, whatever its cosine
                from fusion.gate.calibrated import names_in

                routed_t = gate.route(scores, names_in(asked, names)) * torch.tensor(w)
            else:
                routed_t = gate.route(scores) * torch.tensor(w)
            routed = [float(x) for x in routed_t]
            info["turned_down"] = [n for n, x in zip(names, routed, strict=True) if x < 0.5]  # not asked for
            gate_fn = gate.gate_fn(scores)
            if hasattr(gate, "check_layers"):
                gate.check_layers(list(handle.layers))
            info["scores"] = [float(x) for x in scores]
            info["gate"] = ("calibrated" if calibrated else "trained") if gate.trained else "description"
            handle.set_weights(routed)
            handle.set_gate(gate_fn)
        elif kind in ("linear", "composite"):
            handle.set_weights(w)
        elif kind == "merge":
            handle.set_weights([1.0])

        timesteps: list[float] = []

        def on_step(i: int, n: int, t01: float) -> None:
            timesteps.append(t01)
            if kind == "switch":
                j = (i // max(1, switch_every)) % k
                handle.set_weights([w[a] if a == j else 0.0 for a in range(k)])
            if progress is not None:
                progress(fitted + i, fitted + n)

        handle.start_trace()
        images = sample_images(
            pipe, all_prompts, seeds, steps=steps, guidance=guidance, handle=handle, on_step=on_step,
            composite=kind == "composite",
        )  # fmt: skip
        handle.stop_trace()
        trace = _trace(handle, timesteps)
        if ratios:  # the picture shows each layer's weight × what the calibration made of the adapter there
            trace["values"] = [[[v * r for v, r in zip(step, ratios.get(layer, []) or [1.0] * len(step), strict=True)]
                                for step in values] for layer, values in zip(trace["layers"], trace["values"], strict=True)]  # fmt: skip
    finally:
        handle.remove()
    if progress is not None:
        progress(fitted + steps, fitted + steps)
    return ComposeResult(images=to_pil(images), gate_trace=trace, weights=routed, info=info, tensor=images)


# -------------------------------------------------------------------------------------- text
@torch.no_grad()
def greedy_generate(model: Any, tokenizer: Any, inputs: list[str], *, max_new_tokens: int = 64) -> list[str]:
    """Greedy continuation of each input until the end token (no padding: rows grouped by length).

    Tokenizers with a ``prompt(text)`` method (the text zoo's) build their own prompts; others
    are called as Hugging Face tokenizers.
    """
    if hasattr(tokenizer, "prompt"):
        prompts = [tokenizer.prompt(s) for s in inputs]
        eos = tokenizer.eos_id

        def decode(ids: list[int]) -> str:
            return str(tokenizer.decode(ids))
    else:
        prompts = [list(tokenizer(s)["input_ids"]) for s in inputs]
        eos = tokenizer.eos_token_id

        def decode(ids: list[int]) -> str:
            if eos in ids:
                ids = ids[: ids.index(eos)]
            return str(tokenizer.decode(ids, skip_special_tokens=True))

    device = next(model.parameters()).device
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    out = [""] * len(inputs)
    for idx in groups.values():
        ids = torch.tensor([prompts[i] for i in idx], device=device)  # (b, len)
        done = torch.zeros(len(idx), dtype=torch.bool, device=device)
        gen = ids.new_empty(len(idx), 0)
        for _ in range(max_new_tokens):
            logits = model(input_ids=torch.cat([ids, gen], dim=1)).logits[:, -1]  # (b, vocab)
            nxt = torch.where(done, torch.full_like(logits[:, 0], eos, dtype=torch.long), logits.argmax(-1))
            gen = torch.cat([gen, nxt[:, None]], dim=1)
            done |= nxt == eos
            if bool(done.all()):
                break
        for row, i in enumerate(idx):
            out[i] = decode(gen[row].tolist())
    return out


def compose_text(
    model: Any,
    tokenizer: Any,
    adapters: list[LoraAdapter],
    task: str,
    inputs: list[str],
    *,
    strategy: str = "gate",
    weights: list[float] | None = None,
    gate_dir: str | Path | None = None,
    text_encoder: Any = None,
    generate_fn: Callable[[Any, Any, list[str]], list[str]] | None = None,
    descriptions: list[str] | None = None,
    names: list[str] | None = None,
    merge_options: dict[str, Any] | None = None,
    scores: torch.Tensor | None = None,
) -> ComposeResult:
    """Run ``inputs`` through ``model`` with ``adapters`` composed for ``task`` (a description).

    ``gate`` routes by the similarity of ``task`` to each adapter's description (softmax at the
    gate's temperature; a trained text gate maps the embeddings first). ``chain`` applies the
    adapters in order, each to the previous output (two-step tasks from one-step adapters).
    ``generate_fn(model, tokenizer, inputs) → outputs`` defaults to ``greedy_generate``.
    ``scores`` (k,): the caller's relevance of each adapter to ``task`` (e.g. a registry's search
    scores), routed by the gate in place of its own description similarities.
    """
    if not adapters:
        raise FusionError("compose needs at least one adapter")
    k = len(adapters)
    w = _check_weights(weights, k)
    kind = strategy.split(":", 1)[0]
    if kind not in (*RUNTIME["text"], "merge"):
        raise UnknownStrategyError("composition", strategy, list(TEXT_STRATEGIES))
    gen = generate_fn or greedy_generate
    names = names or [f"adapter_{i}" for i in range(k)]
    info: dict[str, Any] = {"strategy": strategy, "adapters": names}
    if kind == "chain":
        outs = list(inputs)
        for a, n in zip(adapters, names, strict=True):
            with install(model, [a], [n]):
                outs = gen(model, tokenizer, outs)
        return ComposeResult(outputs=outs, weights=w, info=info)
    installed, routed = adapters, w
    if kind == "merge":
        merged, info["merge"] = _merged(adapters, w, strategy, merge_options or {})
        installed, routed = [merged], [1.0]
    elif kind == "gate":
        gate = _gate_for(adapters, gate_dir, "text")
        if scores is None:
            descs = descriptions or [adapter_description(a) for a in adapters]
            scores = gate_scores(gate, task, descs, text_encoder)
        routed = [float(x) for x in gate.route(scores) * torch.tensor(w)]
        info["scores"] = [float(x) for x in scores]
        info["gate"] = "trained" if gate.trained else "description"
    with install(model, installed, names if kind != "merge" else ["merged"]) as handle:
        handle.set_weights(routed)
        outs = gen(model, tokenizer, list(inputs))
    trace = {"adapters": names, "layers": ["all"], "timesteps": [0.0], "values": [[routed]]}
    return ComposeResult(outputs=outs, gate_trace=trace, weights=routed, info=info)


@torch.no_grad()
def gate_scores(gate: Any, request: str, descriptions: list[str], text_encoder: Any = None) -> torch.Tensor:
    """Description similarities (k,), through the gate's own embedding map when it has one."""
    if hasattr(gate, "scores"):
        emb = _embed([request, *descriptions], text_encoder)  # (1+k, d)
        return gate.scores(emb[0], emb[1:])
    return similarity(request, descriptions, text_encoder)
