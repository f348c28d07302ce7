"""Runtime fusion: k adapters installed side by side in a torch module tree, base weights untouched.

``install(model_or_pipe, adapters, names)`` replaces every targeted ``nn.Linear`` / ``nn.Conv2d``
(/ transformers ``Conv1D``) by a ``FusedLayer`` that keeps the original module as its child and
holds the k adapters' factors stacked, ranks padded to the largest with zeros::

    A: (k, r, in[, kh, kw])     B: (k, out, r)     s: (k,)

and computes, in one batched product for all k adapters (two matmuls / one conv + one matmul,
never k passes)::

    out = base(x) + Σᵢ cᵢ · sᵢ · Bᵢ Aᵢ x,    cᵢ = static weight (per block) × row weight × gate

With one adapter per batch row (``set_row_adapters``), linear layers without a gate instead gather
each row's own factors and run two batched matrix products: the cost no longer grows with k.

The gate (``set_gate``) sees the base output and every adapter's output at each layer and returns
per-row, per-adapter, per-channel values (AutoLoRA / MoLE); without a gate the adapters' outputs
are never materialized separately. ``remove()`` puts the original modules back: the module tree
is then bit-identical to before (nothing was written to a base parameter).

Names follow ``registry.formats.canonical``: ``unet.<path>``, ``text_encoder.<path>`` … for a
diffusers pipeline (components in ``FUSABLE_COMPONENTS``), ``model.<path>`` for a transformers
model passed directly. Every name and shape is checked before anything is replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from fusion.errors import FusionError, InstallError

if TYPE_CHECKING:  # pragma: no cover
    from registry.formats.canonical import LoraAdapter, LoraModule

FUSABLE_COMPONENTS = ("unet", "transformer", "text_encoder", "text_encoder_2", "text_encoder_3")

# gate_fn(layer, o_base (N, …, out), o (N, …, k, out), context) → (N|1, k, out|1) or None
GateFn = Callable[["FusedLayer", torch.Tensor, torch.Tensor, dict[str, Any]], "torch.Tensor | None"]


def _is_conv1d(m: nn.Module) -> bool:
    return type(m).__name__ == "Conv1D" and hasattr(m, "nf")  # transformers GPT-2 style, weight (in, out)


def _base_shape(m: nn.Module) -> tuple[str, tuple[int, ...]] | None:
    """(kind, ΔW shape) of a module a LoRA can target, else None."""
    if isinstance(m, nn.Linear):
        return "linear", (m.out_features, m.in_features)
    if _is_conv1d(m):
        w: torch.Tensor = m.weight  # type: ignore[assignment]  # (in, out)
        return "linear", (int(w.shape[1]), int(w.shape[0]))
    if isinstance(m, nn.Conv2d):
        if m.groups != 1:
            return None
        return "conv", tuple(int(s) for s in m.weight.shape)  # (out, in, kh, kw)
    return None


class FusedLayer(nn.Module):
    """One targeted layer with k adapters stacked beside its untouched ``base`` module."""

    lora_A: torch.Tensor  # (k, r, in[, kh, kw])
    lora_B: torch.Tensor  # (k, out, r)
    lora_s: torch.Tensor  # (k,)
    static: torch.Tensor  # (k,)
    base: Any  # the original nn.Linear / nn.Conv2d / Conv1D

    def __init__(self, base: nn.Module, name: str, mods: list[LoraModule | None], handle: FusionHandle) -> None:
        super().__init__()
        self.base = base
        self.name = name  # canonical name (component prefix included)
        kind, shape = _base_shape(base)  # type: ignore[misc]
        self.kind = kind
        self.k = len(mods)
        self.r = max(m.rank for m in mods if m is not None)
        p = next(base.parameters())
        dev, dt = p.device, p.dtype
        inner = shape[1:]  # (in,) or (in, kh, kw)
        a = torch.zeros(self.k, self.r, *inner, dtype=dt)  # (k, r, in[, kh, kw])
        b = torch.zeros(self.k, shape[0], self.r, dtype=dt)  # (k, out, r)
        s = torch.zeros(self.k, dtype=dt)
        for i, m in enumerate(mods):
            if m is None:
                continue  # absent: zero factors, ΔW = 0
            a[i, : m.rank] = m.down.detach().to(dt).reshape(m.rank, *inner)
            b[i, :, : m.rank] = m.up.detach().to(dt).reshape(shape[0], m.rank)
            s[i] = m.scale
        self.register_buffer("lora_A", a.to(dev), persistent=False)
        self.register_buffer("lora_B", b.to(dev), persistent=False)
        self.register_buffer("lora_s", s.to(dev), persistent=False)
        self.register_buffer("static", torch.ones(self.k, dtype=dt, device=dev), persistent=False)  # (k,)
        self._handle = [handle]  # a list, so the handle is not registered as a submodule

    # The base module's attributes that library code reads (``attn.to_q.weight.dtype`` …).
    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight  # type: ignore[no-any-return]

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias  # type: ignore[no-any-return]

    @property
    def handle(self) -> FusionHandle:
        return self._handle[0]

    def _conv_down(self, x: torch.Tensor) -> torch.Tensor:
        """A x for all k adapters as one convolution: (N, k·r, H, W)."""
        conv = self.base
        a = self.lora_A.reshape(self.k * self.r, *self.lora_A.shape[2:])  # (k·r, in, kh, kw)
        return nn.functional.conv2d(x, a, None, conv.stride, conv.padding, conv.dilation)

    def _project_down(self, x: torch.Tensor) -> torch.Tensor:
        """h = A x for all k at once: (N, …, k, r) channel-last."""
        if self.kind == "linear":
            a = self.lora_A.reshape(self.k * self.r, -1)  # (k·r, in)
            h = x @ a.T  # (N, …, k·r)
        else:
            h = self._conv_down(x).permute(0, 2, 3, 1)  # (N, H, W, k·r)
        return h.reshape(*h.shape[:-1], self.k, self.r)

    def weights(self, n: int) -> torch.Tensor:
        """Static weight × row weight: (N|1, k) (what the trace records)."""
        w = self.static[None]  # (1, k)
        rows = self.handle.row_weights
        route = self.handle.row_adapters
        if rows is None and route is not None:
            rows = nn.functional.one_hot(route.to(w.device), self.k)  # (N, k)
        if rows is not None:
            if rows.shape[0] != n:
                raise FusionError(f"row weights for {rows.shape[0]} rows, but the batch at {self.name} has {n}")
            w = w * rows.to(w)  # (N, k)
        return w

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        y = self.base(x, *args, **kwargs)  # (N, …, out) or (N, out, H, W)
        handle = self.handle
        if not handle.enabled:
            return y
        n = x.shape[0]
        route = handle.row_adapters
        if route is not None and handle.row_weights is None and handle.gate is None and self.kind == "linear":
            return y + self._routed(x, route).to(y.dtype)
        w = self.weights(n)  # (N|1, k)
        c = w * self.lora_s  # (N|1, k): scales folded in
        h = self._project_down(x)  # (N, …, k, r)
        mid = (1,) * (h.dim() - 3)  # the dims between batch and (k, r)
        gate = handle.gate
        if gate is None and self.kind == "conv":
            hc = self._conv_down(x) * c.repeat_interleave(self.r, dim=1)[:, :, None, None]  # (N, k·r, H, W)
            bcat = self.lora_B.permute(1, 0, 2).reshape(self.lora_B.shape[1], self.k * self.r, 1, 1)  # (out, k·r, 1, 1)
            if handle.recording:
                handle._record(self.name, w.mean(dim=0))
            return y + nn.functional.conv2d(hc, bcat).to(y.dtype)  # (N, out, H, W)
        if gate is None:
            hc = h * c.reshape(c.shape[0], *mid, self.k, 1)  # (N, …, k, r)
            bcat = self.lora_B.permute(1, 0, 2).reshape(self.lora_B.shape[1], self.k * self.r)  # (out, k·r)
            delta = hc.reshape(*hc.shape[:-2], self.k * self.r) @ bcat.T  # (N, …, out)
            if handle.recording:
                handle._record(self.name, w.mean(dim=0))
        else:
            o = torch.einsum("...kr,kor->...ko", h, self.lora_B)  # (N, …, k, out)
            y_last = y if self.kind == "linear" else y.permute(0, 2, 3, 1)  # (N, …, out)
            g = gate(self, y_last, o * self.lora_s[:, None], handle.context)
            coef = c.reshape(c.shape[0], *mid, self.k, 1)  # (N|1, …, k, 1)
            if g is not None:
                if g.dim() != 3:
                    raise FusionError(f"gate at {self.name} returned shape {tuple(g.shape)}; expected (N|1, k, out|1)")
                coef = coef * g.reshape(g.shape[0], *mid, self.k, g.shape[-1])  # (N, …, k, out|1)
                if handle.recording:
                    handle._record(self.name, (w[..., None] * g).mean(dim=(0, 2)))
            elif handle.recording:
                handle._record(self.name, w.mean(dim=0))
            delta = (o * coef).sum(dim=-2)  # (N, …, out)
        if self.kind == "conv":
            delta = delta.permute(0, 3, 1, 2)  # (N, out, H, W)
        return y + delta.to(y.dtype)

    def _routed(self, x: torch.Tensor, route: torch.Tensor) -> torch.Tensor:
        """ΔW x with row n running only adapter ``route[n]``: (N, …, out), O(N) in the adapters."""
        n = x.shape[0]
        if route.shape[0] != n:
            raise FusionError(f"row adapters for {route.shape[0]} rows, but the batch at {self.name} has {n}")
        if self.handle.recording:
            self.handle._record(self.name, self.weights(n).mean(dim=0))
        route = route.to(self.lora_A.device)
        a = self.lora_A[route]  # (N, r, in)
        b = self.lora_B[route]  # (N, out, r)
        c = (self.static * self.lora_s)[route]  # (N,)
        xf = x.reshape(n, -1, x.shape[-1]).to(a.dtype)  # (N, T, in)
        h = torch.bmm(xf, a.transpose(1, 2)) * c[:, None, None]  # (N, T, r)
        return torch.bmm(h, b.transpose(1, 2)).reshape(*x.shape[:-1], b.shape[1])  # (N, …, out)


def _components(target: Any, component: str | None) -> dict[str, nn.Module]:
    if isinstance(target, Mapping):
        return dict(target)
    if isinstance(target, nn.Module):
        return {component or "model": target}
    found = {c: getattr(target, c) for c in FUSABLE_COMPONENTS if isinstance(getattr(target, c, None), nn.Module)}
    if not found:
        raise InstallError(
            f"{type(target).__name__} has none of the fusable components {', '.join(FUSABLE_COMPONENTS)}"
        )
    return found


class FusionHandle:
    """k adapters installed in a module tree; ``set_weights`` / ``set_gate`` / ``remove``."""

    def __init__(self, names: list[str], components: dict[str, nn.Module]) -> None:
        self.names = names  # one per adapter, in install order
        self.components = components
        self.layers: dict[str, FusedLayer] = {}  # canonical name → layer
        self._originals: dict[str, nn.Module] = {}
        self.gate: GateFn | None = None
        self.context: dict[str, Any] = {}  # what the gate may read: timestep, prompt embedding, …
        self.row_weights: torch.Tensor | None = None  # (N, k) per batch row, or None
        self.row_adapters: torch.Tensor | None = None  # (N,) the one adapter of each batch row, or None
        self.enabled = True
        self.recording = False
        self.trace: dict[str, list[list[float]]] = {}  # layer → one (k,) row per recorded call
        self.removed = False

    @property
    def k(self) -> int:
        return len(self.names)

    def set_weights(
        self, weights: Sequence[float] | None = None, blocks: Mapping[str, Sequence[float] | float] | None = None
    ) -> None:
        """Static weights of the k adapters (default 1 each); ``blocks`` maps a name prefix
        (``unet.down_blocks.0``, ``text_encoder``, ``model.model.layers.1``) to k weights or to one
        multiplier of ``weights``; the longest matching prefix wins (diffusers ``set_adapters``)."""
        base = torch.tensor([1.0] * self.k if weights is None else [float(w) for w in weights])
        if base.numel() != self.k:
            raise FusionError(f"{base.numel()} weights for {self.k} installed adapters ({', '.join(self.names)})")
        blocks = dict(blocks or {})
        unmatched = [p for p in blocks if not any(n == p or n.startswith(p + ".") for n in self.layers)]
        if unmatched:
            raise FusionError(f"block prefixes {unmatched} match no fused layer (e.g. {next(iter(self.layers))})")
        for name, layer in self.layers.items():
            w = base
            match = max((p for p in blocks if name == p or name.startswith(p + ".")), key=len, default=None)
            if match is not None:
                v = blocks[match]
                w = base * float(v) if isinstance(v, int | float) else torch.tensor([float(x) for x in v])
                if w.numel() != self.k:
                    raise FusionError(f"block {match!r}: {w.numel()} weights for {self.k} adapters")
            layer.static.copy_(w.to(layer.static))

    def set_gate(self, gate_fn: GateFn | None) -> None:
        self.gate = gate_fn

    def set_row_weights(self, rows: torch.Tensor | Sequence[Sequence[float]] | None) -> None:
        """Per batch row weights (N, k): e.g. one adapter per row (LoRA Composite, batched methods)."""
        if rows is None:
            self.row_weights = None
            return
        t = torch.as_tensor(rows, dtype=torch.float32)
        if t.dim() != 2 or t.shape[1] != self.k:
            raise FusionError(f"row weights must be (N, {self.k}), got {tuple(t.shape)}")
        self.row_weights = t

    def set_row_adapters(self, route: torch.Tensor | Sequence[int] | None) -> None:
        """One adapter per batch row: ``route[n]`` is the index of row n's adapter. The same as
        one-hot row weights, but linear layers without a gate compute only that adapter per row.
        Row weights (``set_row_weights``), when set, take precedence."""
        if route is None:
            self.row_adapters = None
            return
        t = torch.as_tensor(route, dtype=torch.long)
        if t.dim() != 1 or (t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.k)):
            raise FusionError(f"row adapters must be a 1-d list of indices in 0 … {self.k - 1}, got {t.tolist()[:8]}")
        self.row_adapters = t

    def start_trace(self) -> None:
        self.trace, self.recording = {}, True

    def stop_trace(self) -> dict[str, list[list[float]]]:
        self.recording = False
        return self.trace

    def _record(self, name: str, values: torch.Tensor) -> None:
        self.trace.setdefault(name, []).append([float(v) for v in values.detach().float().cpu()])

    def remove(self) -> None:
        """Put every original module back (the tree is then bit-identical to before install)."""
        if self.removed:
            return
        for name, original in self._originals.items():
            comp, path = name.split(".", 1)
            parent_path, _, leaf = path.rpartition(".")
            parent = self.components[comp].get_submodule(parent_path) if parent_path else self.components[comp]
            setattr(parent, leaf, original)
        self.removed = True

    def reinstall(self) -> None:
        """Put the fused layers of a removed handle back (a handle kept for reuse: nothing is
        restacked). Refused, with nothing changed, when a targeted module is no longer the one
        the handle replaced (the model was reloaded or another handle is installed)."""
        if not self.removed:
            raise FusionError("the handle is installed; remove() it before reinstall()")
        places = []
        for name, original in self._originals.items():
            comp, path = name.split(".", 1)
            parent_path, _, leaf = path.rpartition(".")
            parent = self.components[comp].get_submodule(parent_path) if parent_path else self.components[comp]
            if getattr(parent, leaf) is not original:
                raise InstallError(f"cannot reinstall: {name} is no longer the module this handle replaced")
            places.append((parent, leaf, self.layers[name]))
        for parent, leaf, layer in places:
            setattr(parent, leaf, layer)
        self.removed = False

    def __enter__(self) -> FusionHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def plan(
    components: dict[str, nn.Module], adapters: list[LoraAdapter], names: list[str]
) -> dict[str, list[LoraModule | None]]:
    """Check every adapter module against the model; return name → per-adapter modules."""
    problems: list[str] = []
    targets: dict[str, list[LoraModule | None]] = {}
    for i, ad in enumerate(adapters):
        for mname, m in ad.modules.items():
            if m.magnitude is not None:
                problems.append(
                    f"{names[i]}: {mname} is a DoRA module (magnitude vector); runtime fusion takes plain LoRA"
                )
                continue
            comp = m.component
            if comp not in components:
                problems.append(f"{names[i]}: {mname} targets component {comp!r}; available: {', '.join(components)}")
                continue
            try:
                mod = components[comp].get_submodule(m.path)
            except AttributeError:
                problems.append(f"{names[i]}: no module {m.path!r} in {comp}")
                continue
            if isinstance(mod, FusedLayer):
                problems.append(f"{names[i]}: {mname} already has adapters installed; remove that handle first")
                continue
            info = _base_shape(mod)
            if info is None:
                problems.append(f"{names[i]}: {mname} is a {type(mod).__name__}, not a Linear / Conv2d")
                continue
            kind, shape = info
            want = (m.out_features, *(int(s) for s in m.down.shape[1:]))
            if kind != m.kind or tuple(shape) != want:
                problems.append(
                    f"{names[i]}: {mname} is {m.kind} {want} in the adapter but {kind} {tuple(shape)} in the model"
                )
                continue
            targets.setdefault(mname, [None] * len(adapters))[i] = m
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InstallError("cannot install: " + "; ".join(problems[:5]) + more)
    return targets


def install(
    model_or_pipe: Any, adapters: list[LoraAdapter], names: list[str] | None = None, *, component: str | None = None
) -> FusionHandle:
    """Install ``adapters`` side by side into a diffusers pipeline (its ``unet`` / ``transformer`` /
    text encoders), a torch model (component ``model``, or ``component``), or a dict of components.
    Nothing is replaced unless every module of every adapter matches."""
    if not adapters:
        raise FusionError("install needs at least one adapter")
    names = list(names) if names is not None else [f"adapter_{i}" for i in range(len(adapters))]
    if len(names) != len(adapters) or len(set(names)) != len(names):
        raise FusionError(f"need one distinct name per adapter, got {names} for {len(adapters)} adapters")
    components = _components(model_or_pipe, component)
    targets = plan(components, adapters, names)
    handle = FusionHandle(names, components)
    for mname, mods in targets.items():
        comp, path = mname.split(".", 1)
        parent_path, _, leaf = path.rpartition(".")
        parent = components[comp].get_submodule(parent_path) if parent_path else components[comp]
        original = getattr(parent, leaf)
        layer = FusedLayer(original, mname, mods, handle)
        handle.layers[mname] = layer
        handle._originals[mname] = original
        setattr(parent, leaf, layer)
    return handle
