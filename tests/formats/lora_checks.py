"""Helpers for the format tests: read a file, measure the ΔW a live model applies, compare adapters."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch

from registry.formats.canonical import LoraAdapter, LoraModule


def _full_stack_available() -> bool:
    names = ("registry.formats.detect", "registry.formats.kohya", "registry.formats.cloneofsimo")
    return all(importlib.util.find_spec(n) is not None for n in names)


def read(path: str | Path) -> LoraAdapter:
    """``read_adapter`` once every format module exists; until then the same steps minus detection."""
    if _full_stack_available():
        from registry.formats import read_adapter

        return read_adapter(path)
    from registry.formats import diffusers as diffusers_fmt
    from registry.formats import load_tensor_file, read_peft_config, resolve_source
    from registry.formats import peft as peft_fmt

    src = resolve_source(Path(path))
    config = read_peft_config(src.config) if src.config else None
    tf = load_tensor_file(src.weights)
    for fmt in (diffusers_fmt, peft_fmt):
        if fmt.claims(tf, config):
            return fmt.read(tf, config)
    raise AssertionError(f"no reader claims {path}")


def write(adapter: LoraAdapter, fmt: str, out_dir: Path) -> list[Path]:
    from registry.formats import diffusers as diffusers_fmt
    from registry.formats import peft as peft_fmt

    out_dir.mkdir(parents=True, exist_ok=True)
    return {"diffusers": diffusers_fmt.write, "peft": peft_fmt.write}[fmt](adapter, out_dir)


@torch.no_grad()
def applied_delta(layer: Any) -> torch.Tensor:
    """ΔW (out, in) a PEFT LoRA layer adds in its forward pass: rows of (layer(I) − base(I))ᵀ."""
    base = layer.base_layer
    n_in = base.weight.shape[0] if type(base).__name__ == "Conv1D" else base.in_features
    eye = torch.eye(n_in)  # (in, in)
    return (layer(eye) - base(eye)).T  # (out, in)


def lora_layers(model: torch.nn.Module) -> dict[str, Any]:
    """Module path → PEFT LoRA layer, paths relative to ``model``."""
    from peft.tuners.lora import LoraLayer

    return {name: mod for name, mod in model.named_modules() if isinstance(mod, LoraLayer)}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a.float() - b.float()) / torch.linalg.norm(b.float()).clamp_min(1e-12))


def _probe(m: LoraModule, x: torch.Tensor) -> torch.Tensor:
    """ΔW·x without forming ΔW (out × in can be 3072 × 15360): scale · B (A x)."""
    a = m.down.reshape(m.rank, -1)  # (r, in*kh*kw)
    return m.scale * (m.up.reshape(m.out_features, m.rank) @ (a @ x))  # (out, k)


def assert_same_deltas(got: LoraAdapter, want: LoraAdapter, tol: float = 1e-5) -> None:
    """Every ΔW = scale·B·A agrees (relative Frobenius error < tol); DoRA magnitudes too."""
    assert sorted(got.modules) == sorted(want.modules)
    for name, m in want.modules.items():
        n_in = m.down[0].numel()
        if m.out_features * n_in > 1_000_000:  # big layers: compare ΔW on 16 random probe vectors
            x = torch.randn(n_in, 16, generator=torch.Generator().manual_seed(0))
            err = rel_err(_probe(got.modules[name], x), _probe(m, x))
        else:
            err = rel_err(got.modules[name].delta(), m.delta())
        assert err < tol, f"{name}: relative ΔW error {err:.2e}"
        if m.magnitude is not None:
            assert got.modules[name].magnitude is not None, name
            torch.testing.assert_close(got.modules[name].magnitude, m.magnitude)


def assert_model_applies(adapter: LoraAdapter, models: dict[str, torch.nn.Module], tol: float = 1e-5) -> None:
    """Every module's ΔW equals what the loaded model applies; no LoRA layer is unaccounted for."""
    from registry.formats.lora_common import canonical_path

    seen: set[str] = set()
    for component, model in models.items():
        for path, layer in lora_layers(model).items():
            name = f"{component}.{canonical_path(component, path)}"
            assert name in adapter.modules, f"model has a LoRA layer {name} the adapter lacks"
            err = rel_err(adapter.modules[name].delta(), applied_delta(layer))
            assert err < tol, f"{name}: ΔW differs from what the model applies ({err:.2e})"
            seen.add(name)
    assert seen == set(adapter.modules), sorted(set(adapter.modules) - seen)[:3]


@torch.no_grad()
def randomize_lora(model: torch.nn.Module, seed: int = 0, std: float = 0.2) -> None:
    """LoRA B starts at zero: give every factor (and DoRA magnitudes) random values."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if "lora_A" in name or "lora_B" in name:
            p.copy_(torch.randn(p.shape, generator=g) * std)
        elif "lora_magnitude_vector" in name:
            p.mul_(1 + 0.1 * torch.randn(p.shape, generator=g))
