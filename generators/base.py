"""Generator interface, registry, checkpoints and training entry point.

A generator turns a task description (and optionally a few input → output examples) into a
``LoraAdapter`` of one family, in the family's native format. Every method works on the
canonical parameterization (``generators.canonical``) and keeps its state as tensors in
``model.safetensors`` beside ``config.json`` (method, family, layout, template adapter fields,
the method's dataclass config) and ``metrics.json``; ``load_generator`` rebuilds any of them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from generators.errors import (
    GeneratorCheckpointError,
    GeneratorError,
    GeneratorTrainingError,
    UnknownGeneratorError,
    check_description,
    check_examples,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from generators.canonical import Layout
    from registry.formats.canonical import LoraAdapter

CHECKPOINT_FORMAT = 1  # bump when the checkpoint layout changes
Factors = dict[str, tuple["torch.Tensor", "torch.Tensor"]]  # module → (A (r, in_flat), B (out, r))
# Scores candidate adapters on the caller's examples (higher is better); the library never runs a base model.
ScoreCandidates = Callable[[list["LoraAdapter"]], list[float]]


@dataclass
class GeneratedAdapter:
    adapter: LoraAdapter  # canonical adapter in the family's native format (write_adapter(adapter, adapter.format, d))
    lineage: dict[str, Any]  # generator, version, method, seed, rank, experts [{"name", "weight"}], …


@dataclass(frozen=True)
class Expert:
    """The adapter a caller ranks first for a request (e.g. the registry's search): a library expert
    by ``name``, or, with ``adapter`` (or ``load``, which reads it) given, an adapter of the family
    outside the library (its registered file; ``ref`` is its registry id), used as is."""

    name: str
    adapter: LoraAdapter | None = None
    ref: int | None = None
    covers_steps: bool = False  # its description names the request's steps in their order (it may replace a chain)
    load: Callable[[], LoraAdapter] | None = None  # reads ``adapter`` when it is needed (a large file)

    @property
    def outside(self) -> bool:
        """An adapter from outside the generator's library (given, or to be read)."""
        return self.adapter is not None or self.load is not None


@dataclass
class TrainItem:
    """One training adapter."""

    name: str  # adapter name (unique)
    adapter: LoraAdapter  # its weights
    descriptions: list[str]  # canonical description and training paraphrases (never held-out ones)
    task: str  # groups the seeds of one task
    examples: list[tuple[str, str]] = field(default_factory=list)  # optional (input, output) pairs of the task


@dataclass
class TrainData:
    """What every method's ``fit`` gets: canonical params, embeddings, task grouping."""

    layout: Layout
    names: list[str]  # item names, in the order of the stacked tensors
    tasks: list[str]  # task of each item
    factors: Factors  # module → (A (n, r, in_flat), B (n, out, r))
    desc_emb: list[np.ndarray]  # per item: (n_desc, d) embeddings of its descriptions
    example_emb: list[np.ndarray | None]  # per item: (n_examples, d) embeddings of "in => out" texts, or None
    text_dim: int  # text embedding width
    steps: list[int] = field(default_factory=list)  # per item: steps its descriptions chain (generators.steps)
    # per item: for each description that names several steps, the (n_parts, d) embeddings of its parts
    part_emb: list[list[np.ndarray]] = field(default_factory=list)
    examples: list[list[tuple[str, str]]] = field(default_factory=list)  # per item: its (input, output) pairs
    task_model: Any = None  # (frozen base model, tokenizer) for end-to-end objectives (generators.end_to_end)


EMBEDDED_EXAMPLES = 8  # examples per item the text encoder embeds; the rest feed end-to-end objectives only


def example_text(inp: str, out: str) -> str:
    """How one in-context example is embedded by the text encoder."""
    return f"{inp} => {out}"


class Generator:
    """Base class: subclasses set ``method`` and ``config_cls`` and implement ``fit`` and ``factors``."""

    method: ClassVar[str] = ""
    config_cls: ClassVar[type] = object

    def __init__(
        self,
        *,
        family: str,
        layout: Layout,
        template: dict[str, Any],
        config: Any,
        state: dict[str, torch.Tensor],
        info: dict[str, Any],
        text_encoder: Any = None,
        version: str = "",
    ) -> None:
        self.family = family
        self.layout = layout
        self.template = template
        self.config = config
        self.state = state
        self.info = info  # JSON-safe extras saved in config.json (item names, text model …)
        self._text_encoder = text_encoder
        self.version = version
        self.setup()

    # -- to implement ------------------------------------------------------------------
    def setup(self) -> None:
        """Build modules from ``self.state`` (called once after construction)."""

    @classmethod
    def fit(
        cls, data: TrainData, config: Any, progress: Callable[[int, int], None] | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
        """Train: (state tensors, JSON info, metrics)."""
        raise NotImplementedError

    def factors(self, emb: torch.Tensor, example_emb: torch.Tensor | None, seed: int) -> tuple[Factors, dict[str, Any]]:
        """Canonical factors for one description embedding (d,) (+ examples (m, d)), and lineage extras."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    @property
    def text_encoder(self) -> Any:
        if self._text_encoder is None:
            from encoders.text import get_text_encoder

            self._text_encoder = get_text_encoder()
        return self._text_encoder

    def embed(self, texts: list[str]) -> torch.Tensor:
        import torch

        want = self.info.get("text_model")
        have = getattr(self.text_encoder, "version", None)
        if want and have and want != have:
            raise GeneratorCheckpointError(
                f"generator {self.family}/{self.method} was trained with text encoder {want}, "
                f"but {have} was given: retrain the generator or pass the matching encoder"
            )

        return torch.from_numpy(self.text_encoder.encode(texts)).float()  # (n, d)

    def generate(
        self,
        description: str,
        *,
        examples: list[tuple[str, str]] | None = None,
        seed: int = 0,
        rank: int | None = None,
        score_candidates: ScoreCandidates | None = None,
        expert: str | Expert | None = None,
    ) -> GeneratedAdapter:
        """A new adapter for ``description``; same arguments ⇒ bit-identical tensors.

        With ``examples`` and ``score_candidates``, the generated adapter competes with the
        nearest library experts (methods that keep a library) on the caller's scoring of the
        examples, and the best-scoring one is returned (lineage says which).

        ``expert``: the expert the caller ranks first for the request (the service's search), a
        library expert's name or an ``Expert`` (which may be an adapter outside the library): when
        the method answers with one library expert as is, it is that one (``picked``; lineage
        ``picked_over`` names the method's own choice); with examples it is a candidate too.
        """
        import torch

        from generators.canonical import few_threads, recanonical, to_adapter

        text = check_description(description)
        exs = check_examples(examples)
        expert = Expert(expert) if isinstance(expert, str) else expert
        if rank is not None and not 1 <= int(rank) <= 256:
            raise GeneratorError(f"rank {rank!r} is out of range; use 1 … 256")
        emb = self.embed([text])[0]  # (d,)
        ex_emb = self.embed([example_text(i, o) for i, o in exs]) if exs else None  # (m, d)
        with torch.no_grad(), few_threads():
            chained = self.chain(text, emb)
            facs, extra = chained if chained is not None else self.factors(emb, ex_emb, int(seed))
            swapped = self.picked(extra, expert) if expert else None
            facs, extra = swapped or (facs, extra)
        r = self.output_rank(facs) if rank is None else int(rank)
        chosen = "generated"
        if exs and score_candidates is not None:
            cands = [(chosen, facs, extra)] + self.candidates(emb, ex_emb)
            found = self.expert_factors(expert) if expert and expert.name not in {c[0] for c in cands} else None
            cands += [(expert.name, *found)] if expert and found else []  # the caller's pick competes
            with few_threads():
                adapters = [to_adapter(recanonical(f, _kept_rank(f, e, r, rank)), self.layout, self.template, text)
                            for _, f, e in cands]  # fmt: skip
            scores = [float(s) for s in score_candidates(adapters)]
            best = max(range(len(cands)), key=lambda i: (scores[i], -i))
            chosen, facs, extra = cands[best]
            extra = {**extra, "candidates": [{"name": c[0], "score": s} for c, s in zip(cands, scores, strict=True)]}
        r = _kept_rank(facs, extra, r, rank)
        with few_threads():
            facs = recanonical(facs, r)
        adapter = to_adapter(facs, self.layout, self.template, text)
        lineage = {
            "generator": f"{self.family}/{self.method}",
            "version": self.version,
            "method": self.method,
            "family": self.family,
            "seed": int(seed),
            "rank": r,
            "description": text,
            "examples": [list(e) for e in exs],
            "experts": [],
            "chosen": chosen,
            **extra,
        }
        return GeneratedAdapter(adapter, lineage)

    def candidates(self, emb: torch.Tensor, ex_emb: torch.Tensor | None) -> list[tuple[str, Factors, dict[str, Any]]]:
        """Alternatives to try on examples (library experts); none by default."""
        return []

    def expert_names(self) -> list[str]:
        """The library experts this generator draws on (none for methods without a library)."""
        lib = getattr(self, "library", None)
        return list(lib.names) if lib is not None else []

    def library_expert(self, name: str) -> tuple[Factors, dict[str, Any]] | None:
        """Library expert ``name`` as is (factors, lineage extras); None when there is no library or it lacks ``name``."""
        lib = getattr(self, "library", None)
        if lib is None or name not in lib.names:
            return None
        return lib.expert(lib.names.index(name)), {"experts": [{"name": name, "weight": 1.0}]}

    def expert_factors(self, expert: Expert) -> tuple[Factors, dict[str, Any]] | None:
        """``expert`` as is: the library's factors, or an outside adapter's own re-expressed on the
        family's layout (exactly, at its own rank); None when neither is possible (not in the library
        and no adapter; an adapter with modules or shapes the family's layout lacks)."""
        if not expert.outside:
            return self.library_expert(expert.name)
        from generators.canonical import few_threads, module_factors

        ad = expert.adapter if expert.adapter is not None else expert.load()  # type: ignore[misc]
        if not ad.modules or set(ad.modules) - set(self.layout.names):
            return None
        rank = max(max(ad.ranks), 1)
        try:
            with few_threads():
                facs = {spec.name: module_factors(ad, spec, rank) for spec in self.layout.modules}
        except ValueError:  # a module's shape differs from the family's
            return None
        entry: dict[str, Any] = {"name": expert.name, "weight": 1.0, "outside_library": True}
        if expert.ref is not None:
            entry["id"] = int(expert.ref)
        return facs, {"experts": [entry]}

    def picked(self, extra: dict[str, Any], expert: Expert) -> tuple[Factors, dict[str, Any]] | None:
        """``expert`` (the one the caller ranks first, e.g. the registry's search) in place of the
        method's answer, or None to keep it. A library expert replaces an answer that is one library
        expert as is (``nearest``; ``analogy`` when no triple beats the nearest expert). An adapter
        from outside the library also replaces a blend of experts (an analogy, a top-K mean): the
        blend guesses at a task the library lacks, and the caller ranks first an adapter this
        generator was never shown. A chain's answer (the sum of its steps, or the chain expert that
        holds them) stays, unless ``expert.covers_steps`` (the caller found the request's steps, in
        order, in the expert's own description: one adapter trained on the chain beats a sum of its
        steps), and so does an answer drawn from no expert (a learned method's own)."""
        experts = extra.get("experts") or []
        if not experts or ((extra.get("chain") or extra.get("chain_held")) and not expert.covers_steps):
            return None
        one = len(experts) == 1 and float(experts[0].get("weight", 0.0)) == 1.0
        if (one and experts[0]["name"] == expert.name) or not (one or expert.outside or expert.covers_steps):
            return None
        found = self.expert_factors(expert)
        if found is None:
            return None
        return found[0], {**extra, **found[1], "picked_over": ", ".join(str(e["name"]) for e in experts)}

    def chain(self, text: str, emb: torch.Tensor) -> tuple[Factors, dict[str, Any]] | None:
        """Factors for a request that chains steps (``generators.steps``), or None to use ``factors``."""
        return None

    def output_rank(self, factors: Factors) -> int:
        """Rank of the written adapter when the caller names none: the family's canonical rank
        (methods whose output is an exact sum of several experts keep the sum's rank)."""
        return self.layout.rank

    # -- persistence ------------------------------------------------------------------------
    def save(self, folder: str | Path, metrics: dict[str, Any] | None = None) -> str:
        """config.json + model.safetensors (+ metrics.json); returns the content version."""
        from safetensors.torch import save_file

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        cfg = {
            "checkpoint_format": CHECKPOINT_FORMAT,
            "method": self.method,
            "family": self.family,
            "config": asdict(self.config),
            "layout": self.layout.to_json(),
            "template": self.template,
            "info": self.info,
        }
        cfg_text = json.dumps(cfg, indent=1, sort_keys=True)
        (out / "config.json").write_text(cfg_text + "\n")
        half = bool(getattr(self.config, "store_half", False))
        tensors = {k: _stored(k, v, half) for k, v in sorted(self.state.items())}
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
        self.version = checkpoint_version(out)
        if metrics is not None:
            (out / "metrics.json").write_text(json.dumps({**metrics, "version": self.version}, indent=1) + "\n")
        return self.version


def _kept_rank(factors: Factors, extra: dict[str, Any], r: int, asked: int | None) -> int:
    """The written rank: ``r``, or for an adapter from outside the library answered as is (and no
    rank asked for) at least its own, so it is written exactly."""
    outside = any(e.get("outside_library") for e in extra.get("experts") or [])
    if asked is not None or not outside:
        return r
    return min(256, max(r, max(int(a.shape[0]) for a, _ in factors.values())))


def _stored(key: str, t: torch.Tensor, half: bool) -> torch.Tensor:
    """A state tensor as saved: network weights (``net.*``) as float16 when the config asks for it."""
    t = t.detach().cpu().contiguous()
    return t.half() if half and key.startswith("net.") and t.is_floating_point() else t


def round_half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Network weights rounded through float16, so a generator fresh from training and the same
    generator loaded from its half-precision checkpoint compute the same adapters."""
    return {k: v.half().float() if k.startswith("net.") and v.is_floating_point() else v for k, v in state.items()}


def checkpoint_version(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        h.update((folder / name).read_bytes())
    return h.hexdigest()[:16]


# -- registry ---------------------------------------------------------------------------------
_GENERATORS: dict[str, type[Generator]] = {}
_loaded = False


def register_generator(name: str, cls: type[Generator]) -> None:
    if name in _GENERATORS:
        raise ValueError(f"generator {name!r} is already registered")
    _GENERATORS[name] = cls


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        import importlib

        for mod in (
            "generators.baselines",
            "generators.analogy",
            "generators.hypernet",
            "generators.semantic",
            "generators.cvae",
        ):
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as e:  # a method folder not built yet
                if e.name != mod:
                    raise
        _loaded = True


def generator_methods() -> list[str]:
    _load_builtin()
    return list(_GENERATORS)


def get_generator_class(method: str) -> type[Generator]:
    _load_builtin()
    if method not in _GENERATORS:
        raise UnknownGeneratorError(method, list(_GENERATORS))
    return _GENERATORS[method]


def make_config(cls: type[Generator], config: dict[str, Any] | None) -> Any:
    """The method's dataclass config; unknown keys are dropped."""
    known = {f.name for f in fields(cls.config_cls)}
    return cls.config_cls(**{k: v for k, v in (config or {}).items() if k in known})


def load_generator(folder: str | Path, *, text_encoder: Any = None) -> Generator:
    """Rebuild a generator from ``config.json`` + ``model.safetensors``."""
    import torch
    from safetensors.torch import load_file

    from generators.canonical import Layout

    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise GeneratorCheckpointError(f"{folder}: a generator checkpoint needs config.json and model.safetensors")
    cfg = json.loads((folder / "config.json").read_text())
    if cfg.get("checkpoint_format") != CHECKPOINT_FORMAT:
        raise GeneratorCheckpointError(
            f"{folder}: checkpoint format {cfg.get('checkpoint_format')!r}, expected {CHECKPOINT_FORMAT}"
        )
    cls = get_generator_class(cfg["method"])
    return cls(
        family=cfg["family"],
        layout=Layout.from_json(cfg["layout"]),
        template=cfg["template"],
        config=make_config(cls, {**getattr(cls.config_cls, "saved_defaults", {}), **cfg["config"]}),
        state={
            k: v.float() if v.dtype == torch.float16 else v
            for k, v in load_file(str(folder / "model.safetensors")).items()
        },
        info=cfg.get("info") or {},
        text_encoder=text_encoder,
        version=checkpoint_version(folder),
    )


def prepare(items: list[TrainItem], text_encoder: Any, rank: int | None = None) -> TrainData:
    """Canonical params and description embeddings of the training items."""
    import numpy as np

    from generators.canonical import Layout, stack
    from generators.steps import description_steps, split_steps

    if len(items) < 2:
        raise GeneratorTrainingError(f"{len(items)} training adapters; a generator needs at least 2")
    names = [it.name for it in items]
    if len(set(names)) != len(names):
        raise GeneratorTrainingError("training adapter names must be unique")
    for it in items:
        if not [d for d in it.descriptions if d.strip()]:
            raise GeneratorTrainingError(f"training adapter {it.name!r} has no description")
    adapters = [it.adapter for it in items]
    layout = Layout.from_adapters(adapters, rank)
    descs = [[d for d in it.descriptions if d.strip()] for it in items]
    exs = [[example_text(i, o) for i, o in it.examples[:EMBEDDED_EXAMPLES]] for it in items]
    parts = [[split_steps(d) for d in group] for group in descs]  # per item, per description: its steps
    parts = [[p for p in group if len(p) > 1] for group in parts]
    part_texts = [t for group in parts for p in group for t in p]
    texts = list(dict.fromkeys(t for group in descs + exs + [part_texts] for t in group))
    vecs = dict(zip(texts, text_encoder.encode(texts), strict=True))  # one batched pass over every text
    desc_emb = [np.stack([vecs[t] for t in d]) for d in descs]
    ex_emb = [np.stack([vecs[t] for t in e]) if e else None for e in exs]
    return TrainData(
        layout=layout,
        names=names,
        tasks=[it.task for it in items],
        factors=stack(adapters, layout),
        desc_emb=desc_emb,
        example_emb=ex_emb,
        text_dim=int(desc_emb[0].shape[1]),
        steps=[description_steps(d) for d in descs],
        part_emb=[[np.stack([vecs[t] for t in p]) for p in group] for group in parts],
        examples=[list(it.examples) for it in items],
    )


def train_generator(
    method: str,
    family: str,
    items: list[TrainItem],
    out_dir: str | Path,
    *,
    config: dict[str, Any] | None = None,
    text_encoder: Any = None,
    progress: Callable[[int, int], None] | None = None,
    prepared: TrainData | None = None,
    task_model: Any = None,
) -> dict[str, Any]:
    """Train ``method`` on ``items`` and save the checkpoint in ``out_dir``.

    ``prepared``: the ``prepare(items, text_encoder)`` result, to share between methods.
    ``task_model``: the family's ``(base model, tokenizer)``, for end-to-end objectives.
    Returns ``{"path", "version", "metrics", "seconds"}``.
    """
    from generators.canonical import template_of

    cls = get_generator_class(method)
    cfg = make_config(cls, config)
    if text_encoder is None:
        from encoders.text import get_text_encoder

        text_encoder = get_text_encoder()
    t0 = time.perf_counter()
    rank = getattr(cfg, "rank", None)
    reuse = prepared is not None and (rank is None or rank == prepared.layout.rank)
    data = prepared if reuse and prepared is not None else prepare(items, text_encoder, rank)
    if task_model is not None:
        data = replace(data, task_model=task_model)
    state, info, metrics = cls.fit(data, cfg, progress)
    if getattr(cfg, "store_half", False):
        state = round_half(state)
    info = {**info, "items": data.names, "text_model": getattr(text_encoder, "version", "unknown")}
    gen = cls(
        family=family,
        layout=data.layout,
        template=template_of(items[0].adapter),
        config=cfg,
        state=state,
        info=info,
        text_encoder=text_encoder,
    )
    seconds = time.perf_counter() - t0
    metrics = {**metrics, "seconds": round(seconds, 2), "items": len(items), "tasks": len(set(data.tasks))}
    version = gen.save(out_dir, metrics)
    return {"path": str(Path(out_dir)), "version": version, "metrics": metrics, "seconds": seconds}
