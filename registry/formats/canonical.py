"""The one in-memory type for a LoRA adapter, whatever file format it came from.

Conventions (every reader produces these, every writer consumes them):

* ``LoraModule.name`` is the dotted module path *including* the component prefix:
  ``unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q``,
  ``text_encoder.text_model.encoder.layers.0.self_attn.q_proj``, ``text_encoder_2.…``,
  ``transformer.single_transformer_blocks.12.proj_out`` (Flux / SD3), and for language /
  encoder models (PEFT) ``model.<path as in the base model>``, e.g.
  ``model.transformer.h.0.attn.c_attn``. PEFT's ``base_model.model.`` wrapper is stripped.
* ``down`` is A with shape (r, in) for linear layers, (r, in, kh, kw) for conv layers;
  ``up`` is B with shape (out, r) or (out, r, 1, 1). Both float32 torch tensors on CPU.
* ``scale`` is the factor applied to B·A (alpha / r, or alpha / sqrt(r) with rsLoRA);
  ``alpha`` is kept as written in the source so writers can round-trip it.
* ΔW = scale · B·A, shape (out, in) (conv: (out, in, kh, kw)). For GPT-2 style Conv1D
  layers (``fan_in_fan_out``) the *base* weight is stored transposed; ΔW here is still in
  the (out, in) sense, and ``LoraAdapter.fan_in_fan_out`` records the flag for writers.

Torch is imported lazily so that ``import registry`` stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    import torch

# Components a diffusion adapter may touch; anything else is a language / encoder model.
DIFFUSION_COMPONENTS = ("unet", "text_encoder", "text_encoder_2", "text_encoder_3", "transformer")
MODEL_COMPONENT = "model"

ModuleKind = Literal["linear", "conv"]


@dataclass
class LoraModule:
    """One targeted layer: ΔW = scale · up @ down."""

    name: str  # dotted module path with component prefix (see module docstring)
    down: torch.Tensor  # A: (r, in) or (r, in, kh, kw)
    up: torch.Tensor  # B: (out, r) or (out, r, 1, 1)
    scale: float  # multiplier of up @ down
    alpha: float | None = None  # alpha as written in the source, if any
    kind: ModuleKind = "linear"
    magnitude: torch.Tensor | None = None  # DoRA magnitude vector (out,), kept verbatim
    approx_error: float | None = None  # relative Frobenius error when ΔW was approximated
    source_type: str = "lora"  # lora | locon | loha | lokr | fused_qkv … (what the file held)

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.down.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.up.shape[0])

    @property
    def component(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def path(self) -> str:
        """The module path without the component prefix."""
        return self.name.split(".", 1)[1] if "." in self.name else ""

    def delta(self) -> torch.Tensor:
        """ΔW = scale · B·A: (out, in) for linear, (out, in, kh, kw) for conv."""
        import torch

        a = self.down.float()
        b = self.up.float()
        if self.kind == "conv":
            r = a.shape[0]
            d = b.reshape(b.shape[0], r) @ a.reshape(r, -1)  # (out, in*kh*kw)
            return (d * self.scale).reshape(b.shape[0], *a.shape[1:])
        return torch.as_tensor(self.scale, dtype=torch.float32) * (b @ a)  # (out, in)

    def param_count(self) -> int:
        n = self.down.numel() + self.up.numel()
        if self.magnitude is not None:
            n += self.magnitude.numel()
        return int(n)


@dataclass
class LoraAdapter:
    """A whole adapter: modules plus everything the source said about itself."""

    modules: dict[str, LoraModule]  # keyed by LoraModule.name
    family: str = "unknown"  # base family id, e.g. sd1, sd2, sdxl, flux, gpt2, llama …
    format: str = "unknown"  # source format: kohya, diffusers, peft, cloneofsimo, lycoris
    metadata: dict[str, Any] = field(default_factory=dict)  # raw header / config metadata
    description: str | None = None
    trigger_words: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    license: str | None = None
    base_model: str | None = None  # base model name as the source states it
    fan_in_fan_out: bool = False  # base weights stored (in, out) (GPT-2 Conv1D)
    use_rslora: bool = False
    extra_tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # TI embeddings, modules_to_save …
    warnings: list[str] = field(default_factory=list)
    dtype: str = "float32"  # the source's weight dtype (float32 | float16 | bfloat16): writers keep it

    def weight_dtype(self) -> torch.dtype:
        """The torch dtype writers store A, B (and DoRA magnitudes) in: the source's, float32 if unknown."""
        import torch

        return {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(self.dtype, torch.float32)

    @property
    def ranks(self) -> list[int]:
        return sorted({m.rank for m in self.modules.values()})

    @property
    def components(self) -> list[str]:
        return sorted({m.component for m in self.modules.values()})

    def param_count(self) -> int:
        return sum(m.param_count() for m in self.modules.values()) + sum(
            int(t.numel()) for t in self.extra_tensors.values()
        )

    def deltas(self) -> dict[str, torch.Tensor]:
        return {name: m.delta() for name, m in self.modules.items()}


def lora_scale(alpha: float | None, rank: int, *, rslora: bool = False) -> float:
    """PEFT / kohya scale: alpha / r (alpha defaults to r), alpha / sqrt(r) with rsLoRA."""
    if rank <= 0:
        raise ValueError(f"rank must be positive, got {rank}")
    a = float(rank) if alpha is None else float(alpha)
    return a / math.sqrt(rank) if rslora else a / rank


def low_rank_approx(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Best rank-``rank`` factors of ΔW (out, in[, kh, kw]) by SVD.

    Returns (down (r, in…), up (out, r), relative Frobenius error). Used to store LyCORIS
    LoHa / LoKr / Tucker modules as plain LoRA factors while recording the loss.
    """
    import torch

    out = delta.shape[0]
    mat = delta.reshape(out, -1).float()  # (out, in*kh*kw)
    u, s, vh = torch.linalg.svd(mat, full_matrices=False)
    r = max(1, min(rank, s.numel()))
    sq = s[:r].sqrt()
    up = u[:, :r] * sq  # (out, r)
    down = sq[:, None] * vh[:r]  # (r, in*kh*kw)
    total = float(torch.linalg.norm(s))
    err = float(torch.linalg.norm(s[r:])) / total if total > 0 else 0.0
    down = down.reshape(r, *delta.shape[1:])
    if delta.dim() == 4:
        up = up.reshape(out, r, 1, 1)
    return down.contiguous(), up.contiguous(), err
