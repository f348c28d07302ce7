"""Gates for runtime fusion, registered by name; ``load_gate(folder)`` reads a trained one.

``register_gate("description", …)`` is the training-free default (description similarity ×
timestep schedule); ``register_gate("autolora", …)`` the trained per-layer/channel gate;
``register_gate("calibrated", …)`` the per-adapter, layer and channel coefficients learned on
known compositions (``fusion.gate.calibrated``).
A checkpoint folder holds ``config.json`` (``GateConfig``), ``model.safetensors`` (trained
gates only) and ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fusion.errors import GateError, UnknownStrategyError
from fusion.gate.config import GateConfig

_GATES: dict[str, Callable[[GateConfig], Any]] = {}
CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def register_gate(name: str, build: Callable[[GateConfig], Any]) -> None:
    if name in _GATES:
        raise ValueError(f"gate {name!r} is already registered")
    _GATES[name] = build


def gates() -> list[str]:
    return list(_GATES)


def build_gate(name: str, config: GateConfig) -> Any:
    if name not in _GATES:
        raise UnknownStrategyError("gate", name, list(_GATES))
    return _GATES[name](config)


def bundled_gate_dir(family: str) -> Path | None:
    """The committed gate of a family (``fusion/checkpoints/<family>``), if there is one."""
    d = CHECKPOINTS / family
    return d if (d / "config.json").is_file() else None


def load_gate(folder: str | Path | None, *, kind: str = "image", family: str = "unknown") -> Any:
    """The gate in ``folder`` (trained when it holds ``model.safetensors``), else the default."""
    from fusion.gate.calibrated import CalibratedGate
    from fusion.gate.model import AutoLoRAGate, DescriptionGate, TextRouterGate

    if folder is None:
        return DescriptionGate(GateConfig(kind=kind, family=family))
    folder = Path(folder)
    cfg = GateConfig.load(folder)
    weights = folder / "model.safetensors"
    if cfg.kind == "image" and not cfg.layers or cfg.kind == "text" and not weights.is_file():
        return DescriptionGate(cfg)
    if not weights.is_file():
        raise GateError(f"gate config at {folder} lists layers but there is no {weights.name}")
    from safetensors.torch import load_file

    gate: Any
    if cfg.kind == "text":
        gate = TextRouterGate(cfg)
    else:
        gate = CalibratedGate(cfg) if cfg.method == "calibrated" else AutoLoRAGate(cfg)
    state = load_file(str(weights))
    try:
        gate.load_state_dict(state)
    except RuntimeError as e:
        raise GateError(f"gate weights at {weights} do not fit its config: {e}") from None
    return gate.eval()


def save_gate(gate: Any, folder: str | Path, metrics: dict[str, Any] | None = None) -> Path:
    import json

    folder = Path(folder)
    gate.config.save(folder)
    if getattr(gate, "trained", False):
        from safetensors.torch import save_file

        save_file(
            {k: v.detach().float().contiguous() for k, v in gate.state_dict().items()},
            str(folder / "model.safetensors"),
        )
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    return folder


def _description(cfg: GateConfig) -> Any:
    from fusion.gate.model import DescriptionGate

    return DescriptionGate(cfg)


def _autolora(cfg: GateConfig) -> Any:
    from fusion.gate.model import AutoLoRAGate

    return AutoLoRAGate(cfg)


def _calibrated(cfg: GateConfig) -> Any:
    from fusion.gate.calibrated import CalibratedGate

    return CalibratedGate(cfg)


register_gate("description", _description)
register_gate("autolora", _autolora)
register_gate("calibrated", _calibrated)
