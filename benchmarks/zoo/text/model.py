"""The text zoo's base model: a character tokenizer and a small transformers Llama, saved and loaded offline.

``base/`` holds ``config.json`` + ``model.safetensors`` (``LlamaForCausalLM.save_pretrained``), the
tokenizer as ``tokenizer.json`` and the zoo's own ``ModelConfig`` as ``zoo_model_config.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.zoo.common import FromDict
from benchmarks.zoo.text.tasks import LOWER, SYMBOLS, UPPER, code_vocab

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM

PAD, BOS, EOS, SEP = "<pad>", "<bos>", "\n", "="
TOKENIZER_FILE = "tokenizer.json"
MODEL_CONFIG_FILE = "zoo_model_config.json"


class CharTokenizer:
    """One id per character (plus special and task-code tokens). Prompts are ``<bos> [codes] input =``."""

    def __init__(self, tokens: list[str]) -> None:
        if len(set(tokens)) != len(tokens):
            raise ValueError("duplicate tokens in the vocabulary")
        for t in (PAD, BOS, EOS, SEP):
            if t not in tokens:
                raise ValueError(f"vocabulary lacks {t!r}")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(tokens)}
        self.pad_id, self.bos_id, self.eos_id, self.sep_id = (self.index[t] for t in (PAD, BOS, EOS, SEP))

    @classmethod
    def default(cls) -> CharTokenizer:
        return cls([PAD, BOS, EOS, SEP, *LOWER, *UPPER, *SYMBOLS, *code_vocab()])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.index[c] for c in text]
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the vocabulary") from None

    def prompt(self, text: str, codes: list[str] | tuple[str, ...] = ()) -> list[int]:
        """``<bos>``, optional task-code tokens, the input characters, ``=``."""
        return [self.bos_id, *(self.index[c] for c in codes), *self.encode(text), self.sep_id]

    def decode(self, ids: list[int]) -> str:
        """Characters up to (not including) the first end-of-line; special tokens are dropped."""
        out = []
        for i in ids:
            if i == self.eos_id:
                break
            tok = self.tokens[i]
            if len(tok) == 1:
                out.append(tok)
        return "".join(out)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"type": "loradex-char", "tokens": self.tokens}, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        return cls(json.loads(Path(path).read_text())["tokens"])


@dataclass
class ModelConfig(FromDict):
    """Shape of the base Llama (saved as ``zoo_model_config.json`` beside the checkpoint)."""

    hidden_size: int = 128  # residual width
    num_layers: int = 4  # decoder blocks
    num_heads: int = 4  # attention heads (no grouped-query attention)
    intermediate_size: int = 384  # SwiGLU MLP width
    max_positions: int = 64  # longest sequence: <bos> + codes + input + "=" + output + "\n"

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if min(self.hidden_size, self.num_layers, self.intermediate_size, self.max_positions) <= 0:
            raise ValueError(f"model sizes must be positive: {self}")

    @classmethod
    def tiny(cls) -> ModelConfig:
        return cls(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)


def build_model(cfg: ModelConfig, tokenizer: CharTokenizer, seed: int = 0) -> LlamaForCausalLM:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    llama = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_id,
        bos_token_id=tokenizer.bos_id,
        eos_token_id=tokenizer.eos_id,
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(llama)


def save_base(model: LlamaForCausalLM, cfg: ModelConfig, tokenizer: CharTokenizer, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save(out / TOKENIZER_FILE)
    (out / MODEL_CONFIG_FILE).write_text(json.dumps(asdict(cfg), indent=2))


def load_base(path: str | Path, device: str = "cpu") -> tuple[LlamaForCausalLM, CharTokenizer]:
    """The base model (eval mode, fp32) and its tokenizer, from a ``base/`` folder."""
    from transformers import LlamaForCausalLM

    path = Path(path)
    model = LlamaForCausalLM.from_pretrained(path, attn_implementation="sdpa").to(device).eval()
    return model, CharTokenizer.load(path / TOKENIZER_FILE)


def count_params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())
