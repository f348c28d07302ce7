"""``WeightEmbedder``: the registry embedder of kind ``weights``.

It holds one weight encoder per base family (bundled checkpoints, then the ones recorded in
the registry; a later one of a family wins). Its ``version`` names the whole set, so training
a new encoder re-embeds on the next index sync. Adapters of a family with no encoder get no
weight embedding: they stay findable by their metadata text.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encoders.weight import bundled_checkpoints


class WeightEmbedder:
    kind = "weights"

    def __init__(self, sources: Callable[[], list[Path]] | None = None, device: str | None = None) -> None:
        self._sources = sources or (lambda: [])
        self.device = device
        self._lock = threading.Lock()
        self._models: dict[str, Any] | None = None
        self._versions: dict[str, str] = {}
        self._fits: dict[str, dict[str, list[float]]] = {}
        self._trained: dict[str, frozenset[str]] = {}  # family → sha256 of the adapters its encoder learned

    def set_sources(self, sources: Callable[[], list[Path]]) -> None:
        self._sources = sources
        self.reload()

    def reload(self) -> None:
        with self._lock:
            self._models = None

    def _load(self) -> dict[str, Any]:
        with self._lock:
            if self._models is None:
                from encoders.weight.model import WeightEncoder, checkpoint_version
                from encoders.weight.trained import load_trained_adapters

                models: dict[str, Any] = {}
                versions: dict[str, str] = {}
                fits: dict[str, dict[str, list[float]]] = {}
                trained: dict[str, frozenset[str]] = {}
                for folder in [*bundled_checkpoints(), *self._sources()]:
                    m = WeightEncoder.load(Path(folder), self.device)
                    models[m.cfg.family] = m
                    versions[m.cfg.family] = checkpoint_version(Path(folder))
                    fit = Path(folder) / "calibration.json"  # relevance fit of this encoder's cosines
                    if fit.is_file():
                        fits[m.cfg.family] = json.loads(fit.read_text())
                    else:
                        fits.pop(m.cfg.family, None)  # a later encoder of the family has no fit
                    learned = load_trained_adapters(Path(folder))
                    if learned is not None:
                        trained[m.cfg.family] = learned
                    else:
                        trained.pop(m.cfg.family, None)  # a later encoder of the family does not say
                self._models, self._versions, self._fits, self._trained = models, versions, fits, trained
            return self._models

    @property
    def families(self) -> dict[str, str]:
        """family → checkpoint version of the encoders in use."""
        self._load()
        return dict(self._versions)

    def calibrations(self) -> dict[str, dict[str, list[float]]]:
        """family → relevance fit of its encoder's cosines (``loradex.relevance``), where one exists."""
        self._load()
        return dict(self._fits)

    def trained_on(self, family: str) -> frozenset[str] | None:
        """sha256 of the adapters ``family``'s encoder was trained on (``encoders.weight.trained``),
        None when it has no encoder or its checkpoint does not record them."""
        self._load()
        return self._trained.get(family)

    @property
    def version(self) -> str:
        pairs = ";".join(f"{f}={v}" for f, v in sorted(self.families.items()))
        return "weights:" + hashlib.sha256(pairs.encode()).hexdigest()[:16]

    def encoder(self, family: str) -> Any:
        return self._load().get(family)

    def query_families(self) -> list[str]:
        """Families whose encoder scores prompts through a query head (``WeightEncoder.encode_query``)."""
        return sorted(f for f, m in self._load().items() if m.query_head is not None)

    def query(self, family: str, prompt_vec: np.ndarray) -> np.ndarray:
        """The (dim,) unit vector a prompt embedding (dim,) becomes for ``family``'s weight embeddings."""
        import torch

        model = self.encoder(family)
        q = np.asarray(prompt_vec, dtype=np.float32).reshape(-1)
        if model is None or model.query_head is None:
            return q
        dev = next(model.parameters()).device
        with torch.no_grad():
            return model.encode_query(torch.from_numpy(q)[None].to(dev))[0].cpu().numpy().astype(np.float32)

    def embed(self, info: dict[str, Any], load: Callable[[], Any]) -> np.ndarray | None:
        model = self.encoder(str(info.get("family")))
        if model is None:
            return None
        return self.embed_adapter(load(), model)

    def embed_many(
        self, infos: Sequence[dict[str, Any]], loads: Sequence[Callable[[], Any]]
    ) -> list[np.ndarray | None]:
        """``embed`` of each (info, load), adapters of one family and one layout (the same modules at
        the same ranks) through the encoder together: a batch of them has no padding, so each vector
        is what ``embed`` gives up to float rounding (~1e-7, the matmuls' shapes follow the batch:
        ``tests/encoders/test_weight_batching.py``); ~3x faster on the text zoo."""
        import torch

        from encoders.weight.features import adapter_factors, collate

        out: list[np.ndarray | None] = [None] * len(infos)
        groups: dict[tuple[Any, ...], list[tuple[int, Any]]] = {}
        for k, (info, load) in enumerate(zip(infos, loads, strict=True)):
            family = str(info.get("family"))
            model = self.encoder(family)
            if model is None:
                continue
            factors = adapter_factors(load(), model.cfg)
            if not factors.modules:
                continue
            layout = tuple(sorted((name, int(a.shape[0])) for name, (a, _) in factors.modules.items()))
            groups.setdefault((family, layout), []).append((k, factors))
        for (family, _), members in groups.items():
            model = self.encoder(family)
            with torch.no_grad():
                vecs = model(collate([f for _, f in members], model.cfg)).cpu().numpy().astype(np.float32)  # (n, dim)
            for (k, _), v in zip(members, vecs, strict=True):
                out[k] = v
        return out

    def embed_adapter(self, adapter: Any, model: Any = None) -> np.ndarray | None:
        """The (dim,) unit vector of a ``LoraAdapter``, or None when no module fits the encoder."""
        import torch

        from encoders.weight.features import adapter_factors, collate

        model = model or self.encoder(adapter.family)
        if model is None:
            return None
        factors = adapter_factors(adapter, model.cfg)
        if not factors.modules:
            return None
        with torch.no_grad():
            return model(collate([factors], model.cfg))[0].cpu().numpy().astype(np.float32)
