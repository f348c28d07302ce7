"""The tuned side of a registry's text map (``loradex train-encoder --text --tune``; issue 15).

A linear map (``encoders.registry_text_map``) moves MiniLM's vectors but cannot change what the
encoder reads. With ``tune`` the map folder also holds a LoRA (PEFT, rank ``TuneConfig.rank`` on
query/key/value/dense) of the base encoder, fine-tuned on the same per-adapter groups the map fits on
(metadata text + paraphrases) by an in-batch contrastive loss (``finetune``), and a second map W_t
fitted on the tuned encoder's vectors. A text's index vector is then
``concat(unit(W·plain(text)), unit(W_t·tuned(text))) / √2`` (2d, unit): its inner product with a
prompt's is the mean of the two cosines, the ensemble that scored best in
``benchmarks/text_tune.py`` (``benchmarks/results/text_tune.md``: +0.02–0.05 text-cosine MRR on
held-out tasks, training tasks kept).

Files beside ``text_map.safetensors``: ``text_lora.safetensors`` (the LoRA's tensors as
``peft.get_peft_model_state_dict`` names them) and ``text_map_tuned.safetensors`` (W_t); the
config's ``"tune"`` is ``TuneConfig`` as a dict. The map's version is a digest over all three
(``registry_text_map.text_map_version``). Importing this module does not import torch.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from encoders.text import TextEncoder, TextEncoderConfig

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

LORA_FILE = "text_lora.safetensors"
TUNED_MAP_FILE = "text_map_tuned.safetensors"
TUNE_FILES = (LORA_FILE, TUNED_MAP_FILE)  # what a tuned map adds to its folder (and to its version)
Progress = Callable[[int, int], None]  # (optimizer steps done, steps in all)


@dataclass(frozen=True)
class TuneConfig:
    """How the text encoder is fine-tuned (defaults: what ``benchmarks/text_tune.py`` measured)."""

    rank: int = 8  # LoRA rank; alpha is 2 × rank
    lr: float = 5e-4
    epochs: int = 1  # each non-first text of a group is an anchor once per epoch
    batch: int = 32  # groups per batch (one text of each)
    scale: float = 20.0  # InfoNCE logit scale (1 / temperature)
    seed: int = 0
    max_steps: int | None = None  # stop after this many optimizer steps (None: every epoch to its end)
    target_modules: tuple[str, ...] = ("query", "key", "value", "dense")

    def __post_init__(self) -> None:
        problems = []
        for name, low in (("rank", 1), ("epochs", 1), ("batch", 4)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                problems.append(f"{name} must be an integer ≥ {low}, got {v!r}")
        for name in ("lr", "scale"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
                problems.append(f"{name} must be a number > 0, got {v!r}")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            problems.append(f"max_steps must be an integer ≥ 1 or None, got {self.max_steps!r}")
        if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
            problems.append(f"target_modules must name modules, got {self.target_modules!r}")
        if problems:
            raise ValueError("tune config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TuneConfig:
        """From a config.json / request dict; unknown keys and bad values raise ``ValueError``."""
        if not isinstance(d, dict):
            raise ValueError(f"tune config must be an object, got {d!r}")
        known = {f.name for f in fields(cls)}
        extra = sorted(set(d) - known)
        if extra:
            raise ValueError(f"tune config: unknown field(s) {', '.join(extra)}; known: {', '.join(sorted(known))}")
        if "target_modules" in d:
            d = {**d, "target_modules": tuple(d["target_modules"] or ())}
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "target_modules": list(self.target_modules)}


def _lora_config(cfg: TuneConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=cfg.rank, lora_alpha=2 * cfg.rank, target_modules=list(cfg.target_modules))


def _batches(pending: list[tuple[int, str]], batch: int) -> list[list[tuple[int, str]]]:
    """Greedy batches of (group, text), at most one text per group in a batch, in ``pending``'s order;
    batches of fewer than 4 texts (too few negatives) are dropped."""
    out = []
    while pending:
        picked: list[tuple[int, str]] = []
        rest, used = [], set()
        for g, a in pending:
            if g in used or len(picked) >= batch:
                rest.append((g, a))
            else:
                used.add(g)
                picked.append((g, a))
        pending = rest
        if len(picked) < 4:
            break
        out.append(picked)
    return out


def finetune(
    model: Any, data: Sequence[Sequence[str]], cfg: TuneConfig, progress: Progress | None = None
) -> dict[str, Any]:
    """In-batch contrastive fine-tune of a SentenceTransformer ``model`` (its trainable parameters: the
    LoRA's when wrapped by ``lora_model``), in place: each non-first text of a group is an anchor once
    per epoch, its positive another text of its group, the other groups' positives the negatives (one
    text per group a batch); symmetric InfoNCE at ``cfg.scale``. Returns ``{"steps", "loss"}``."""
    import torch
    from torch.nn import functional as F

    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    model.train()
    steps, loss_value = 0, float("nan")
    plans = []
    for _ in range(cfg.epochs):  # the order of every epoch first: the total is known for progress
        pending = [(g, a) for g, texts in enumerate(data) for a in texts[1:]]
        rng.shuffle(pending)
        plans.append(_batches(pending, cfg.batch))
    total = sum(map(len, plans))
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    for plan in plans:
        for picked in plan:
            if steps >= total:
                break
            pos = [rng.choice([t for t in data[g] if t != a] or [a]) for g, a in picked]
            ea = F.normalize(model(model.tokenize([a for _, a in picked]))["sentence_embedding"], dim=-1)  # (b, d)
            ep = F.normalize(model(model.tokenize(pos))["sentence_embedding"], dim=-1)  # (b, d)
            logits = cfg.scale * ea @ ep.T  # (b, b)
            labels = torch.arange(len(picked))
            loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps, loss_value = steps + 1, float(loss.item())
            if progress is not None:
                progress(steps, total)
    model.eval()
    return {"steps": steps, "loss": round(loss_value, 4)}


def lora_model(base_path: Path, cfg: TuneConfig, device: str | None = None) -> Any:
    """The SentenceTransformer at ``base_path`` with a fresh LoRA (seeded by ``cfg.seed``) on its
    transformer: only the LoRA's parameters train."""
    import torch
    from peft import get_peft_model
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(base_path), device=device or "cpu")
    torch.manual_seed(cfg.seed)  # the LoRA's A matrices start random
    inner: Any = model[0].model  # the transformers model
    with warnings.catch_warnings():  # PEFT asks transformers a deprecated question; nothing for a user to do
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model[0].model = get_peft_model(inner, _lora_config(cfg))
    return model


def save_lora(model: Any, folder: Path) -> None:
    """The LoRA of a ``lora_model`` as ``folder/LORA_FILE`` (tensors only: loads with weights_only safety)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    state = get_peft_model_state_dict(model[0].model)
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(Path(folder) / LORA_FILE))


class TunedTextEncoder(TextEncoder):
    """``TextEncoder`` of the base model with a map folder's LoRA merged into it (float, loaded on
    first use); its ``version`` names the base and the LoRA's digest."""

    def __init__(self, base: TextEncoder, folder: Path, cfg: TuneConfig) -> None:
        super().__init__(TextEncoderConfig(model_path=str(base.path), device=base.config.device,
                                           cache_size=base.config.cache_size))  # fmt: skip
        self.folder, self.tune = Path(folder), cfg
        digest = hashlib.sha256((self.folder / LORA_FILE).read_bytes()).hexdigest()[:12]
        self.version = f"{base.version}:lora:{digest}"

    def _load(self) -> Any:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        model = lora_model(self.path, self.tune, self.device)
        state = load_file(str(self.folder / LORA_FILE))
        found = set_peft_model_state_dict(model[0].model, state)
        unexpected: list[str] = list(getattr(found, "unexpected_keys", None) or [])
        if unexpected:
            raise ValueError(f"{self.folder / LORA_FILE}: tensors that fit no LoRA module of the config "
                             f"({', '.join(sorted(unexpected)[:3])} …)")  # fmt: skip
        model[0].model = model[0].model.merge_and_unload()
        model.eval()
        return model


def tune_problem(folder: Path, cfg: dict[str, Any], dim: int) -> str | None:
    """What is wrong with a map folder's tuned side (None: it has none, or it is well formed)."""
    if cfg.get("tune") is None:
        return None
    try:
        TuneConfig.from_dict(cfg["tune"])
    except (TypeError, ValueError) as e:
        return f'config.json "tune": {e}'
    from safetensors.numpy import load_file

    missing = [name for name in TUNE_FILES if not (Path(folder) / name).is_file()]
    if missing:
        return f"a tuned map needs {', '.join(missing)}"
    try:
        w_t = load_file(str(Path(folder) / TUNED_MAP_FILE))["w"]
    except (OSError, ValueError, KeyError) as e:
        return f"{TUNED_MAP_FILE}: {e}"
    if tuple(w_t.shape) != (dim, dim):
        return f"{TUNED_MAP_FILE} must be ({dim}, {dim}) like W, got {tuple(w_t.shape)}"
    return None


def load_tuned(folder: Path, cfg: dict[str, Any], base: TextEncoder) -> tuple[TunedTextEncoder, np.ndarray] | None:
    """The tuned encoder (model loaded lazily) and W_t (d, d) of a map folder; None for a plain map."""
    if cfg.get("tune") is None:
        return None
    from safetensors.numpy import load_file

    w_t = load_file(str(Path(folder) / TUNED_MAP_FILE))["w"].astype("float32")  # (d, d)
    return TunedTextEncoder(base, folder, TuneConfig.from_dict(cfg["tune"])), w_t


def tune_and_fit(folder: Path, base: TextEncoder, groups: list[list[str]], cfg: TuneConfig, fit: Callable[[Any], Any],
                 progress: Progress | None = None) -> dict[str, Any]:  # fmt: skip
    """Fine-tune a LoRA of ``base`` on ``groups``, save it in ``folder``, and fit W_t on the saved
    LoRA's vectors of the groups' texts (``fit``: (m, d) numpy → (W_t tensor, metrics)) into
    ``folder/TUNED_MAP_FILE``. Returns the metrics (tune's steps and last loss, W_t's fit). ``base``
    must be the float encoder (``fit_registry_text_map`` refuses an int8 one before anything is fitted)."""
    from safetensors.numpy import save_file

    model = lora_model(base.path, cfg, base.device)
    metrics = finetune(model, groups, cfg, progress)
    save_lora(model, folder)
    del model
    tuned = TunedTextEncoder(base, folder, cfg)
    w_t, fit_metrics = fit(tuned.encode([t for g in groups for t in g]))  # (m, d) → (d, d)
    save_file({"w": w_t.numpy().astype("float32")}, str(Path(folder) / TUNED_MAP_FILE))  # (d, d)
    return {**metrics, "map": fit_metrics, "config": cfg.to_dict()}
