"""The weight encoder: LoRA factors → a unit vector in the text encoder's space (AutoLoRA).

Per targeted module a token is computed from ΔW = B·A·scale only, through learned probes on
both sides (ΔW·P and ΔWᵀ·Q, never forming ΔW), normalised by ‖ΔW‖_F with log‖ΔW‖_F as an
extra feature. Tokens get a slot (position) and a module-type embedding, go through a small
transformer that masks absent modules, are mean-pooled over the present ones, projected to
the text space and L2-normalised. An optional query head (``encode_query``) maps prompt
embeddings to the vectors the weight embeddings are scored against.

A checkpoint is a folder: ``config.json`` (``WeightEncoderConfig``), ``model.safetensors``,
``metrics.json``; its version is ``w:<family>:<sha256 of the weights, 12 hex>``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from encoders.weight.config import WeightEncoderConfig
from encoders.weight.features import TypeBatch

EPS = 1e-8


class WeightEncoder(nn.Module):
    def __init__(self, cfg: WeightEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        p, d = cfg.n_probes, cfg.d_model
        gen = torch.Generator().manual_seed(0)
        self.probes_in = nn.ParameterList(
            [nn.Parameter(torch.randn(t.in_features, p, generator=gen) / math.sqrt(t.in_features)) for t in cfg.types]
        )  # per type (in, p)
        self.probes_out = nn.ParameterList(
            [nn.Parameter(torch.randn(t.out_features, p, generator=gen) / math.sqrt(t.out_features)) for t in cfg.types]
        )  # per type (out, p)
        self.proj = nn.ModuleList(
            [nn.Sequential(nn.Linear((t.in_features + t.out_features) * p + 1, d), nn.LayerNorm(d)) for t in cfg.types]
        )
        self.slot_emb = nn.Embedding(max(1, len(cfg.slots)), d)
        self.type_emb = nn.Embedding(max(1, len(cfg.types)), d)
        layer = nn.TransformerEncoderLayer(
            d, cfg.n_heads, cfg.ff_mult * d, cfg.dropout, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, cfg.out_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # learned temperature
        self.query_head: nn.Module | None = None
        if cfg.query_hidden:
            h = cfg.query_hidden
            first, last = nn.Linear(cfg.out_dim, h), nn.Linear(h, cfg.out_dim)  # created in this order (seeded init)
            nn.init.zeros_(last.weight)  # starts as the identity: prompts as the text encoder gives them
            nn.init.zeros_(last.bias)
            self.query_head = nn.Sequential(first, nn.GELU(), nn.Dropout(cfg.query_dropout), last)

    def tokens(self, batch: list[TypeBatch]) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (n, S, d), present (n, S)) over every slot of every type."""
        toks, masks = [], []
        dev = self.slot_emb.weight.device
        for t, tb in enumerate(batch):
            if tb.present.shape[1] == 0:
                continue
            a, b = tb.down.to(dev), tb.up.to(dev)  # (n, S, R, in), (n, S, out, R)
            left = b @ (a @ self.probes_in[t])  # ΔW·P: (n, S, out, p)
            right = a.transpose(-1, -2) @ (b.transpose(-1, -2) @ self.probes_out[t])  # ΔWᵀ·Q: (n, S, in, p)
            fro2 = ((a @ a.transpose(-1, -2)) * (b.transpose(-1, -2) @ b)).sum((-1, -2))  # ‖ΔW‖²: (n, S)
            norm = fro2.clamp_min(0).sqrt()[..., None]  # (n, S, 1)
            feats = torch.cat(
                [left.flatten(-2) / (norm + EPS), right.flatten(-2) / (norm + EPS), torch.log(norm + EPS)], dim=-1
            )  # (n, S, (out+in)·p + 1)
            tok = self.proj[t](feats) + self.slot_emb(tb.slot_ids.to(dev)) + self.type_emb.weight[t]  # (n, S, d)
            toks.append(tok)
            masks.append(tb.present.to(dev))
        if not toks:
            raise ValueError("the adapter covers none of the modules this weight encoder knows")
        return torch.cat(toks, dim=1), torch.cat(masks, dim=1)

    def forward(self, batch: list[TypeBatch]) -> torch.Tensor:
        """Unit vectors (n, out_dim)."""
        tok, present = self.tokens(batch)  # (n, S, d), (n, S)
        empty = ~present.any(dim=1)  # (n,)
        if bool(empty.any()):
            raise ValueError(f"{int(empty.sum())} adapter(s) cover none of the modules this weight encoder knows")
        h = self.blocks(tok, src_key_padding_mask=~present)  # (n, S, d)
        w = present.to(h.dtype)[..., None]  # (n, S, 1)
        pooled = (h * w).sum(1) / w.sum(1)  # (n, d)
        return nn.functional.normalize(self.head(pooled), dim=-1)  # (n, out_dim)

    def headed(self, text: torch.Tensor) -> torch.Tensor:
        """Prompt embeddings (n, out_dim) through the query head: unit vectors (n, out_dim). A residual
        MLP (``query_hidden``) trained with the weight side: a linear map would add nothing, since the
        weight side can absorb it, but a non-linear one can pull apart prompts the text encoder puts
        close together (e.g. shifts by 3 and by 4). Without a head, the prompts as encoded."""
        if self.query_head is None:
            return nn.functional.normalize(text, dim=-1)
        return nn.functional.normalize(text + self.query_head(text), dim=-1)  # (n, out_dim)

    def encode_query(self, text: torch.Tensor) -> torch.Tensor:
        """Prompt embeddings (n, out_dim) from the text encoder → the unit vectors this family's weight
        embeddings are scored against at search: the head's output, blended with the prompt as encoded
        by ``query_raw_share``. The head sharpens prompts near the training texts, but maps a prompt of
        a task never trained on towards the nearest trained one; the prompt as encoded (which training
        with ``raw_query_weight`` keeps aligned too) holds such prompts in place."""
        out = self.headed(text)  # (n, out_dim)
        share = self.cfg.query_raw_share
        if self.query_head is None or not share:
            return out
        raw = nn.functional.normalize(text, dim=-1)  # (n, out_dim)
        return nn.functional.normalize(share * raw + (1 - share) * out, dim=-1)  # (n, out_dim)

    # -- checkpoints -----------------------------------------------------------------------
    def save(self, folder: Path, metrics: dict[str, Any] | None = None) -> str:
        """Write the checkpoint folder; returns its version string."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        self.cfg.save(folder / "config.json")
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))
        (folder / "metrics.json").write_text(json.dumps(metrics or {}, indent=1))
        return checkpoint_version(folder)

    @classmethod
    def load(cls, folder: Path, device: str | None = None) -> WeightEncoder:
        from safetensors.torch import load_file

        folder = Path(folder)
        for name in ("config.json", "model.safetensors"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder}: not a weight encoder checkpoint (no {name})")
        model = cls(WeightEncoderConfig.load(folder / "config.json"))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return model.to(device or "cpu").eval()


def checkpoint_version(folder: Path) -> str:
    cfg = json.loads((Path(folder) / "config.json").read_text())
    digest = hashlib.sha256((Path(folder) / "model.safetensors").read_bytes()).hexdigest()[:12]
    return f"w:{cfg['family']}:{digest}"
