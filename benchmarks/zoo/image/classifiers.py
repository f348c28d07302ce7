"""The judge: a small multi-head CNN trained on procedural images, never on generated ones.

Heads: ``shape`` (base and new shapes), ``palette`` (plain or one of the palettes), ``texture``
(none or one of the textures) and ``colour`` (the shape's colour; trained on plain images
only). Training images mix every shape, palette, texture and colour pair, with mild Gaussian
noise and blur so that slightly imperfect generated images are judged by what they show.
Saved as ``classifiers/classifier.safetensors`` + ``classifiers/config.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from benchmarks.zoo.image.shapes import (
    COLOUR_PAIRS,
    COMBO_TEXTURE_REGION,
    FOREGROUNDS,
    MASK_PALETTES,
    PALETTES,
    SHAPES,
    TEXTURES,
    Scene,
    render,
    rng_for,
)

PLAIN, NO_TEXTURE = "plain", "none"
HEADS: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "palette": (PLAIN, *PALETTES),
    "texture": (NO_TEXTURE, *TEXTURES),
    "colour": tuple(FOREGROUNDS),
}
WEIGHTS_FILE, CONFIG_FILE = "classifier.safetensors", "config.json"


@dataclass
class ClassifierConfig:
    """Judge network and its training schedule (saved in ``classifiers/config.json``)."""

    width: int = 32  # channels of the first conv; doubled twice
    steps: int = 2500  # optimizer steps
    batch_size: int = 128  # images per step
    lr: float = 3e-3  # peak AdamW learning rate (cosine decay)
    plain_share: float = 0.35  # share of images with no palette
    untextured_share: float = 0.4  # share of images with no texture
    noise: float = 0.06  # max std of the Gaussian noise added to training images
    seed: int = 0  # data and init seed
    combo_texture: str = COMBO_TEXTURE_REGION  # where palette + texture images put the texture (see shapes)

    def __post_init__(self) -> None:
        if self.combo_texture != COMBO_TEXTURE_REGION:
            raise ValueError(f"this renderer puts combo textures on the {COMBO_TEXTURE_REGION}, "
                             f"not the {self.combo_texture}: train a new judge")  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassifierConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class ZooClassifier(nn.Module):
    """Six 3×3 convs (32×32 → 4×4), global average pool, one linear head per question."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        chans = [(3, w, 1), (w, w, 2), (w, 2 * w, 1), (2 * w, 2 * w, 2), (2 * w, 4 * w, 1), (4 * w, 4 * w, 2)]
        layers: list[nn.Module] = []
        for cin, cout, stride in chans:
            layers += [nn.Conv2d(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.SiLU()]
        self.features = nn.Sequential(*layers)
        self.heads = nn.ModuleDict({k: nn.Linear(4 * w, len(v)) for k, v in HEADS.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # x: (B, 3, 32, 32) in [0, 1]
        h = self.features(x * 2 - 1).mean(dim=(2, 3))  # (B, 4w)
        return {k: head(h) for k, head in self.heads.items()}  # each (B, classes)


def random_labelled(rng: np.random.Generator, n: int, cfg: ClassifierConfig) -> tuple[list[Scene], np.ndarray]:
    """Scenes over every shape, palette, texture and colour pair; and the images ``(n, 32, 32, 3)``."""
    scenes = []
    for _ in range(n):
        fg, bg = COLOUR_PAIRS[rng.integers(len(COLOUR_PAIRS))]
        palette = None if rng.random() < cfg.plain_share else PALETTES[rng.integers(len(PALETTES))]
        texture = None if rng.random() < cfg.untextured_share else TEXTURES[rng.integers(len(TEXTURES))]
        if palette in MASK_PALETTES:
            texture = None
        scenes.append(Scene(SHAPES[rng.integers(len(SHAPES))], fg, bg, texture, palette))
    return scenes, render(scenes, rng)


def labels(scenes: list[Scene]) -> dict[str, torch.Tensor]:
    """Class indices per head ``(B,)``; ``colour`` is -100 (ignored) where a palette changes colours."""
    return {
        "shape": torch.tensor([SHAPES.index(s.shape) for s in scenes]),
        "palette": torch.tensor([HEADS["palette"].index(s.palette or PLAIN) for s in scenes]),
        "texture": torch.tensor([HEADS["texture"].index(s.texture or NO_TEXTURE) for s in scenes]),
        "colour": torch.tensor([HEADS["colour"].index(s.colour) if s.palette is None else -100 for s in scenes]),
    }


def augment(x: torch.Tensor, rng: np.random.Generator, noise: float) -> torch.Tensor:
    """Per-image Gaussian noise (std up to ``noise``) and, for a third of the images, a light blur."""
    b = x.shape[0]
    std = torch.from_numpy(rng.uniform(0, noise, size=(b, 1, 1, 1)).astype(np.float32))
    x = x + std * torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32))
    blur = torch.from_numpy((rng.random(b) < 0.33).astype(np.float32))[:, None, None, None]
    soft = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    x = x * (1 - 0.5 * blur) + soft * 0.5 * blur
    return x.clamp(0, 1)


def to_batch(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))  # (B, 3, 32, 32) in [0, 1]


def train_classifier(cfg: ClassifierConfig, device: str) -> ZooClassifier:
    torch.manual_seed(cfg.seed)
    model = ZooClassifier(cfg.width).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    rng = rng_for("classifier", cfg.seed)
    bar = tqdm(range(cfg.steps), desc="train classifier", unit="step")
    running = 0.0
    for step in bar:
        scenes, images = random_labelled(rng, cfg.batch_size, cfg)
        x = augment(to_batch(images), rng, cfg.noise).to(device)
        out = model(x)
        y = labels(scenes)
        loss = sum(F.cross_entropy(out[k], y[k].to(device), ignore_index=-100) for k in HEADS)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        opt.step()
        sched.step()
        running = 0.95 * running + 0.05 * loss.item() if step else loss.item()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{running:.4f}")
    return model.eval()


@torch.no_grad()
def predict(model: ZooClassifier, images: torch.Tensor, batch_size: int = 512) -> dict[str, list[str]]:
    """Predicted label names per head for ``images (B, 3, 32, 32)`` in [0, 1]."""
    device = next(model.parameters()).device
    out: dict[str, list[str]] = {k: [] for k in HEADS}
    for i in range(0, images.shape[0], batch_size):
        logits = model(images[i : i + batch_size].to(device, torch.float32))
        for k, names in HEADS.items():
            out[k] += [names[j] for j in logits[k].argmax(-1).tolist()]
    return out


@torch.no_grad()
def holdout_accuracy(model: ZooClassifier, cfg: ClassifierConfig, n: int = 2000) -> dict[str, float]:
    """Accuracy per head on fresh procedural images (another seed than training)."""
    rng = rng_for("classifier-holdout", cfg.seed)
    scenes, images = random_labelled(rng, n, cfg)
    pred = predict(model, to_batch(images))
    y = labels(scenes)
    acc = {}
    for k, names in HEADS.items():
        idx = [i for i in range(n) if int(y[k][i]) >= 0]
        acc[k] = sum(pred[k][i] == names[int(y[k][i])] for i in idx) / max(len(idx), 1)
    return acc


def judge_heads() -> dict[str, list[str]]:
    """The judge's classes per head, as ``config.json`` records them (a judge for other classes is retrained)."""
    return {k: list(v) for k, v in HEADS.items()}


def save_classifier(model: ZooClassifier, cfg: ClassifierConfig, folder: Path, extra: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_FILE))
    doc = {"config": asdict(cfg), "heads": judge_heads(), **extra}
    (folder / CONFIG_FILE).write_text(json.dumps(doc, indent=1))


def load_classifier(folder: str | Path, device: str = "cpu") -> ZooClassifier:
    from safetensors.torch import load_file

    folder = Path(folder)
    doc = json.loads((folder / CONFIG_FILE).read_text())
    if doc["heads"] != judge_heads():
        raise ValueError(f"{folder} was trained for other classes: {doc['heads']}")
    model = ZooClassifier(ClassifierConfig.from_dict(doc["config"]).width)
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    return model.to(device).eval()
