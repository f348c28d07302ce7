"""Many LoRAs on one base at once: stacked factors, per-row routing, export to ordinary PEFT folders.

Each targeted ``nn.Linear`` is wrapped by ``StackedLoRALinear`` holding ``A (n, r, in)`` and
``B (n, out, r)`` for ``n`` adapters. A shared ``Routing`` says which adapter each batch row uses:
either contiguous equal groups (training: a bmm per adapter group, no gather) or an explicit
index per row (decoding). ``delta = scale * B @ A`` is exactly PEFT's ``lora_B.weight @
lora_A.weight * lora_alpha / r``, so ``write_peft`` saves folders ``PeftModel.from_pretrained`` loads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from benchmarks.zoo.common import (  # noqa: F401 (re-exported)
    check_lora_shape,
    lora_parameters,
    round_to_storage,  # noqa: F401 (re-exported for the build)
    stable_seed,
)

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraShape:
    """Rank, scale and targets shared by every adapter in the zoo (written into adapter_config.json)."""

    r: int = 4  # rank of every adapter
    alpha: float = 8.0  # PEFT lora_alpha; the update is (alpha / r) * B @ A
    targets: tuple[str, ...] = TARGETS  # attention and MLP projections of every decoder block
    dtype: str = "float16"  # storage dtype of adapter_model.safetensors

    def __post_init__(self) -> None:
        check_lora_shape(self.r, self.targets, TARGETS, self.dtype)


@dataclass
class Routing:
    """Which adapter each batch row uses; shared by every wrapped layer."""

    group: int | None = None  # rows per adapter when rows are contiguous, equal groups of all n adapters
    rows: torch.Tensor | None = None  # (batch,) adapter index per row, used when group is None
    enabled: bool = field(default=True)  # False: plain base model


class StackedLoRALinear(nn.Module):
    """``base(x) + scale * (x @ A_i^T) @ B_i^T`` with ``i`` the adapter of each row."""

    def __init__(self, base: nn.Linear, n: int, shape: LoraShape, routing: Routing, seeds: list[int]) -> None:
        super().__init__()
        self.base = base
        self.routing = routing
        self.scale = shape.alpha / shape.r
        dev = base.weight.device
        A = torch.empty(n, shape.r, base.in_features)  # (n, r, in)
        bound = base.in_features**-0.5  # PEFT's kaiming_uniform_(a=sqrt(5)) bound
        for i, s in enumerate(seeds):
            A[i].uniform_(-bound, bound, generator=torch.Generator().manual_seed(s))
        self.A = nn.Parameter(A.to(dev))
        self.B = nn.Parameter(torch.zeros(n, base.out_features, shape.r, device=dev))  # (n, out, r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, seq, in)
        y = self.base(x)  # (batch, seq, out)
        rt = self.routing
        if not rt.enabled:
            return y
        b, t, _ = x.shape
        if rt.group is not None:
            n = self.A.shape[0]
            xg = x.reshape(n, rt.group * t, -1)  # (n, group*seq, in)
            h = torch.bmm(xg, self.A.transpose(1, 2))  # (n, group*seq, r)
            d = torch.bmm(h, self.B.transpose(1, 2)).reshape(b, t, -1)  # (batch, seq, out)
        else:
            assert rt.rows is not None, "Routing needs either group or rows"
            A = self.A[rt.rows]  # (batch, r, in)
            B = self.B[rt.rows]  # (batch, out, r)
            d = torch.bmm(torch.bmm(x, A.transpose(1, 2)), B.transpose(1, 2))  # (batch, seq, out)
        return y + self.scale * d


def inject(
    model: nn.Module, n: int, shape: LoraShape, seeds: list[int]
) -> tuple[Routing, dict[str, StackedLoRALinear]]:
    """Wrap every target linear of ``model`` with ``n`` stacked adapters (A seeded per adapter and layer)."""
    routing = Routing()
    wrapped: dict[str, StackedLoRALinear] = {}
    for name, module in list(model.named_modules()):
        leaf = name.rsplit(".", 1)[-1]
        if leaf in shape.targets and isinstance(module, nn.Linear):
            parent = model.get_submodule(name.rsplit(".", 1)[0])
            w = StackedLoRALinear(module, n, shape, routing, [stable_seed(s, name) for s in seeds])
            setattr(parent, leaf, w)
            wrapped[name] = w
    if not wrapped:
        raise ValueError(f"no modules named {shape.targets} found in the model")
    return routing, wrapped


def remove(model: nn.Module, wrapped: dict[str, StackedLoRALinear]) -> None:
    """Put the original linears back (the base weights were never modified)."""
    for name, w in wrapped.items():
        parent_name, leaf = name.rsplit(".", 1)
        setattr(model.get_submodule(parent_name), leaf, w.base)


@torch.no_grad()
def adapter_state(wrapped: dict[str, StackedLoRALinear], i: int, shape: LoraShape) -> dict[str, torch.Tensor]:
    """Adapter ``i`` as a PEFT state dict (keys without the adapter name, as PEFT saves them)."""
    dt = getattr(torch, shape.dtype)
    out = {}
    for name, w in wrapped.items():
        out[f"base_model.model.{name}.lora_A.weight"] = w.A[i].detach().to("cpu", dt).contiguous()  # (r, in)
        out[f"base_model.model.{name}.lora_B.weight"] = w.B[i].detach().to("cpu", dt).contiguous()  # (out, r)
    return out


def write_peft(
    folder: Path, state: dict[str, torch.Tensor], shape: LoraShape, description: str, base_path: str
) -> None:
    """An ordinary PEFT LoRA folder: adapter_config.json, adapter_model.safetensors, description.txt."""
    from peft import LoraConfig
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    cfg = LoraConfig(
        r=shape.r,
        lora_alpha=shape.alpha,
        target_modules=list(shape.targets),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=base_path,
    )
    cfg.save_pretrained(str(folder))
    save_file(state, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    (folder / "description.txt").write_text(description.strip() + "\n")


def shape_json(shape: LoraShape) -> str:
    return json.dumps({**asdict(shape), "targets": list(shape.targets)})


@torch.no_grad()
def load_stacked(
    model: nn.Module, folders: list[Path], shape: LoraShape
) -> tuple[Routing, dict[str, StackedLoRALinear]]:
    """Wrap ``model`` with the PEFT adapters in ``folders`` stacked (adapter ``i`` = ``folders[i]``),
    so that one batched forward pass can route every row through its own adapter."""
    from safetensors.torch import load_file

    routing, wrapped = inject(model, len(folders), shape, list(range(len(folders))))
    for i, folder in enumerate(folders):
        state = load_file(str(Path(folder) / "adapter_model.safetensors"))
        for name, w in wrapped.items():
            w.A[i].copy_(state[f"base_model.model.{name}.lora_A.weight"].float())  # (r, in)
            w.B[i].copy_(state[f"base_model.model.{name}.lora_B.weight"].float())  # (out, r)
    return routing, wrapped
