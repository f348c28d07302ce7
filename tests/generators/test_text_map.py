"""The learned description map of a generator's expert library (``encoders.text_map``): fitted on
the library's own descriptions, saved with the checkpoint, and used to match requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from encoders.text_map import TextMapConfig, apply_text_map, fit_text_map
from generators import load_generator, train_generator
from generators.base import prepare
from generators.library import Library, library_state


def _clusters(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Items whose descriptions agree on one private direction, under a strong shared nuisance
    direction that changes from description to description (like wording shared across items)."""
    g = torch.Generator().manual_seed(seed)
    d, n, per = 32, 6, 4
    signal = torch.randn(n, d, generator=g)  # (n, d)
    nuisance = torch.randn(per, d, generator=g) * 3  # (per, d): the i-th wording, the same for every item
    emb = torch.stack([signal[i] + nuisance[j] for i in range(n) for j in range(per)])  # (n·per, d)
    owner = torch.arange(n).repeat_interleave(per)
    return torch.nn.functional.normalize(emb, dim=-1), owner


def test_map_makes_descriptions_find_their_own_item() -> None:
    emb, owner = _clusters()
    w, metrics = fit_text_map(emb, owner, TextMapConfig(steps=200))
    assert metrics["loo_top1_before"] < 0.5  # the shared wording dominates the plain cosine
    assert metrics["loo_top1_after"] == 1.0
    assert metrics["loss_last"] < metrics["loss_first"]
    # a new wording of item 2, never seen: matched through the map, not through the plain cosine
    g = torch.Generator().manual_seed(1)
    new = torch.nn.functional.normalize(emb[owner == 2].mean(0) + torch.randn(32, generator=g) * 0.05, dim=-1)
    mapped = apply_text_map(emb, w) @ apply_text_map(new, w)
    assert int(owner[mapped.argmax()]) == 2


def test_no_steps_or_no_siblings_is_the_plain_cosine() -> None:
    emb, owner = _clusters()
    w, metrics = fit_text_map(emb, owner, TextMapConfig(steps=0))
    assert torch.equal(w, torch.eye(32)) and metrics["steps"] == 0
    w, metrics = fit_text_map(emb[:6], torch.arange(6), TextMapConfig(steps=50))  # one description each
    assert torch.equal(w, torch.eye(32)) and metrics["loo_top1_after"] is None
    x = torch.randn(3, 32)
    assert torch.allclose(apply_text_map(x, None), torch.nn.functional.normalize(x, dim=-1))


def test_library_saves_the_map_and_scores_through_it(text_items: list, text_encoder: Any) -> None:
    data = prepare(text_items, text_encoder)
    plain_state, _ = library_state(data)
    state, info = library_state(data, map_steps=100)
    assert "lib.text_map" not in plain_state
    assert state["lib.text_map"].shape == (384, 384) and state["lib.text_map"].dtype == torch.float16
    assert info["text_map"]["loo_top1_after"] >= info["text_map"]["loo_top1_before"]
    plain = Library(plain_state, info["experts"], data.layout.names)
    mapped = Library(state, info["experts"], data.layout.names)
    q = torch.as_tensor(text_encoder.encode(["rotate each letter of the word by one"])[0]).float()
    sims = plain.emb @ torch.nn.functional.normalize(q, dim=0)  # (m,) plain cosines
    expected = torch.full((len(plain),), -2.0).scatter_reduce(0, plain.owner, sims, reduce="amax")
    assert torch.allclose(plain.scores(q), expected)
    assert not torch.allclose(plain.scores(q), mapped.scores(q))


@pytest.mark.parametrize("method", ["nearest", "semantic"])
def test_checkpoint_keeps_the_map_and_old_checkpoints_still_load(method: str, text_items: list, text_encoder: Any,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    cfg = {"steps": 5, "batch_size": 4, "width": 32, "contexts": 1} if method == "semantic" else {}
    train_generator(method, "zoo-text", text_items, tmp_path / "m", config={**cfg, "text_map_steps": 50},
                    text_encoder=text_encoder)  # fmt: skip
    train_generator(method, "zoo-text", text_items, tmp_path / "p", config={**cfg, "text_map_steps": 0},
                    text_encoder=text_encoder)  # fmt: skip
    with_map = load_generator(tmp_path / "m", text_encoder=text_encoder)
    without = load_generator(tmp_path / "p", text_encoder=text_encoder)
    assert with_map.library.text_map is not None and without.library.text_map is None
    q = "push every letter of the alphabet one step further"
    a, b = with_map.generate(q, seed=0), without.generate(q, seed=0)
    assert a.adapter.modules and b.adapter.modules
