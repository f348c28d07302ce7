"""Many UNet LoRAs at once: stacked factors, per-row routing, export to diffusers LoRA files.

Every targeted ``nn.Linear`` / ``nn.Conv2d`` of the UNet is wrapped by ``StackedLoRA`` holding the
factors of ``n`` adapters: ``A (n, r, in[, kh, kw])`` and ``B (n, out, r)``. A shared ``Routing``
says which adapter each batch row uses: contiguous equal groups (training: one batched matmul or
grouped convolution per layer) or an index per row (sampling with classifier-free guidance,
where the batch is ``[uncond rows; cond rows]``), with index ``-1`` meaning no adapter.
``delta = (alpha / r) * B @ A`` is exactly PEFT's LoRA (for convolutions ``lora_A`` is a conv with
the base layer's kernel, stride and padding, ``lora_B`` a 1×1 conv), so ``write_diffusers`` saves
``pytorch_lora_weights.safetensors`` files that ``pipe.load_lora_weights`` loads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.zoo.common import (  # noqa: F401 (re-exported)
    check_lora_shape,
    lora_parameters,
    round_to_storage,  # noqa: F401 (re-exported for the build)
    stable_seed,
)
from benchmarks.zoo.image.model import BASE_NAME

WEIGHT_NAME = "pytorch_lora_weights.safetensors"
TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "conv1", "conv2", "conv_in", "conv_out")


@dataclass
class LoraShape:
    """Rank, scale and targets shared by every adapter (written into each file's metadata)."""

    r: int = 4  # rank of every adapter
    alpha: float = 4.0  # PEFT lora_alpha; the update is (alpha / r) * B @ A
    targets: tuple[str, ...] = TARGETS  # UNet module names (suffixes) that get a LoRA
    dtype: str = "float16"  # storage dtype of the safetensors file

    def __post_init__(self) -> None:
        self.targets = tuple(self.targets)
        check_lora_shape(self.r, self.targets, TARGETS, self.dtype)


@dataclass
class Routing:
    """Which adapter each batch row uses; shared by every wrapped layer."""

    group: int | None = None  # rows per adapter when rows are contiguous equal groups of all n adapters
    rows: torch.Tensor | None = None  # (batch,) adapter index per row (-1: none), used when group is None
    enabled: bool = field(default=True)  # False: plain base model


class StackedLoRA(nn.Module):
    """``base(x) + scale * B_i(A_i(x))`` with ``i`` the adapter of each row; Linear or Conv2d base."""

    def __init__(self, base: nn.Linear | nn.Conv2d, n: int, shape: LoraShape, routing: Routing, seeds: list[int]):
        super().__init__()
        self.base = base
        self.routing = routing
        self.scale = shape.alpha / shape.r
        self.conv = isinstance(base, nn.Conv2d)
        dev = base.weight.device
        a_shape = (shape.r, *base.weight.shape[1:])  # (r, in) or (r, in, kh, kw)
        fan_in = base.weight[0].numel()
        A = torch.empty(n, *a_shape)
        for i, s in enumerate(seeds):  # PEFT's kaiming_uniform_(a=sqrt(5)) bound, seeded per adapter and layer
            A[i].uniform_(-(fan_in**-0.5), fan_in**-0.5, generator=torch.Generator().manual_seed(s))
        self.A = nn.Parameter(A.to(dev))
        self.B = nn.Parameter(torch.zeros(n, base.weight.shape[0], shape.r, device=dev))  # (n, out, r)

    def _conv_a(self, x: torch.Tensor, A: torch.Tensor, groups: int) -> torch.Tensor:
        c = self.base
        assert isinstance(c, nn.Conv2d)
        return F.conv2d(x, A.flatten(0, 1), None, c.stride, c.padding, c.dilation, groups)  # type: ignore[arg-type]

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        rt = self.routing
        n, b = self.A.shape[0], x.shape[0]
        if rt.group is not None:  # rows [0, g) use adapter 0, [g, 2g) adapter 1, ...
            g = rt.group
            if self.conv:  # x: (n*g, C, H, W) -> (g, n*C, H, W), grouped conv per adapter
                xg = x.view(n, g, *x.shape[1:]).transpose(0, 1).flatten(1, 2)
                h = self._conv_a(xg, self.A, n)  # (g, n*r, H', W')
                h = h.view(g, n, -1, *h.shape[2:])  # (g, n, r, H', W')
                d = torch.einsum("gnrhw,nor->ngohw", h, self.B)  # (n, g, out, H', W')
                return d.reshape(b, *d.shape[2:])
            xg = x.reshape(n, -1, x.shape[-1])  # (n, g*tokens, in)
            h = torch.bmm(xg, self.A.transpose(1, 2))  # (n, g*tokens, r)
            return torch.bmm(h, self.B.transpose(1, 2)).reshape(*x.shape[:-1], -1)  # (..., out)
        assert rt.rows is not None, "Routing needs either group or rows"
        keep = (rt.rows >= 0).to(x.dtype)  # (b,)
        idx = rt.rows.clamp(min=0)
        A, B = self.A[idx], self.B[idx]  # (b, r, in[, kh, kw]), (b, out, r)
        if self.conv:  # one group per row
            h = self._conv_a(x.reshape(1, -1, *x.shape[2:]), A, b)  # (1, b*r, H', W')
            h = h.view(b, -1, *h.shape[2:])  # (b, r, H', W')
            d = torch.einsum("brhw,bor->bohw", h, B)  # (b, out, H', W')
            return d * keep[:, None, None, None]
        xf = x.reshape(b, -1, x.shape[-1])  # (b, tokens, in)
        d = torch.bmm(torch.bmm(xf, A.transpose(1, 2)), B.transpose(1, 2))  # (b, tokens, out)
        return (d * keep[:, None, None]).reshape(*x.shape[:-1], -1)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        y = self.base(x)
        if not self.routing.enabled:
            return y
        return y + self.scale * self.delta(x)


def target_names(unet: nn.Module, shape: LoraShape) -> list[str]:
    """Module names of the UNet that ``shape`` targets (Linear and Conv2d only)."""
    out = []
    for name, m in unet.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and any(name == t or name.endswith("." + t) for t in shape.targets):
            out.append(name)
    return out


def inject(unet: nn.Module, n: int, shape: LoraShape, seeds: list[int]) -> tuple[Routing, dict[str, StackedLoRA]]:
    """Wrap every target layer of ``unet`` with ``n`` stacked adapters (A seeded per adapter and layer)."""
    routing = Routing()
    wrapped: dict[str, StackedLoRA] = {}
    for name in target_names(unet, shape):
        parent, _, leaf = name.rpartition(".")
        module = unet.get_submodule(name)
        w = StackedLoRA(module, n, shape, routing, [stable_seed(s, name) for s in seeds])  # type: ignore[arg-type]
        setattr(unet.get_submodule(parent) if parent else unet, leaf, w)
        wrapped[name] = w
    if not wrapped:
        raise ValueError(f"no modules named {shape.targets} found in the UNet")
    return routing, wrapped


def remove(unet: nn.Module, wrapped: dict[str, StackedLoRA]) -> None:
    """Put the original layers back (the base weights were never modified)."""
    for name, w in wrapped.items():
        parent, _, leaf = name.rpartition(".")
        setattr(unet.get_submodule(parent) if parent else unet, leaf, w.base)


@torch.no_grad()
def adapter_state(wrapped: dict[str, StackedLoRA], i: int, shape: LoraShape) -> dict[str, torch.Tensor]:
    """Adapter ``i`` as a diffusers state dict: ``unet.<module>.lora_A.weight`` / ``.lora_B.weight``."""
    dt = getattr(torch, shape.dtype)
    out = {}
    for name, w in wrapped.items():
        b = w.B[i]  # (out, r)
        out[f"unet.{name}.lora_A.weight"] = w.A[i].detach().to("cpu", dt).contiguous()  # (r, in[, kh, kw])
        b = b[..., None, None] if w.conv else b  # convolutions: lora_B is a 1×1 conv (out, r, 1, 1)
        out[f"unet.{name}.lora_B.weight"] = b.detach().to("cpu", dt).contiguous()
    return out


def lora_metadata(shape: LoraShape, modules: list[str]) -> dict[str, Any]:
    """The UNet's ``LoraConfig`` kwargs, packed as diffusers' ``save_lora_weights`` does (``unet.`` prefix)."""
    cfg = {"r": shape.r, "lora_alpha": shape.alpha, "target_modules": sorted(modules), "lora_dropout": 0.0,
           "bias": "none", "use_dora": False, "use_rslora": False, "base_model_name_or_path": BASE_NAME}  # fmt: skip
    return {f"unet.{k}": v for k, v in cfg.items()}


def write_diffusers(
    folder: Path, state: dict[str, torch.Tensor], shape: LoraShape, description: str, title: str
) -> Path:
    """``pytorch_lora_weights.safetensors`` (+ ``description.txt``) that ``load_lora_weights`` reads.

    Besides diffusers' ``lora_adapter_metadata`` the file carries ``modelspec.*`` keys naming the
    zoo base (``loradex-zoo-image``), which the registry reads as the base family.
    """
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    modules = sorted({k[len("unet.") : -len(".lora_A.weight")] for k in state if k.endswith(".lora_A.weight")})
    meta = {
        "format": "pt",
        "lora_adapter_metadata": json.dumps(lora_metadata(shape, modules), sort_keys=True),
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "loradex-zoo-image/lora",
        "modelspec.implementation": "diffusers",
        "modelspec.title": title,
        "modelspec.description": description,
        "base_model_name_or_path": BASE_NAME,
    }
    path = folder / WEIGHT_NAME
    save_file(state, str(path), metadata=meta)
    (folder / "description.txt").write_text(description.strip() + "\n")
    return path


@torch.no_grad()
def load_stacked(unet: nn.Module, folders: list[Path], shape: LoraShape) -> tuple[Routing, dict[str, StackedLoRA]]:
    """Wrap ``unet`` with the diffusers LoRA files in ``folders`` stacked (adapter ``i`` = ``folders[i]``)."""
    from safetensors.torch import load_file

    routing, wrapped = inject(unet, len(folders), shape, list(range(len(folders))))
    for i, folder in enumerate(folders):
        state = load_file(str(Path(folder) / WEIGHT_NAME))
        for name, w in wrapped.items():
            w.A[i].copy_(state[f"unet.{name}.lora_A.weight"].float())
            w.B[i].copy_(state[f"unet.{name}.lora_B.weight"].float().reshape(w.B.shape[1:]))
    return routing, wrapped


def shape_dict(shape: LoraShape) -> dict[str, Any]:
    return {**asdict(shape), "targets": list(shape.targets)}
