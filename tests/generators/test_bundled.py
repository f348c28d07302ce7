"""The committed generator checkpoints: every method for both zoos, lean, loadable, and generating
adapters of the zoo's module set; half-precision networks compute the same adapters before and
after a save."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from generators import BUNDLED, bundled_generators, load_generator, train_generator
from tests.generators.conftest import FAST

ALL = ["analogy", "cvae", "hypernet", "mean_all", "nearest", "semantic", "topk_mean"]
MAX_BYTES = 10_000_000  # issue 12: each checkpoint ≤ 10 MB


def test_both_zoos_have_every_method_within_the_size_cap() -> None:
    have = bundled_generators()
    for family in ("zoo-text", "zoo-image"):
        assert have[family] == ALL
        for method in ALL:
            size = sum(f.stat().st_size for f in (BUNDLED / family / method).iterdir())
            assert size <= MAX_BYTES, (family, method, size)


@pytest.mark.parametrize("method", ["semantic", "cvae"])
def test_bundled_learned_generators_load_and_make_a_zoo_adapter(method: str, text_items: list,
                                                                  text_encoder: Any) -> None:  # fmt: skip
    gen = load_generator(BUNDLED / "zoo-text" / method, text_encoder=text_encoder)
    net = [k for k in gen.state if k.startswith("net.")]
    assert net and all(gen.state[k].dtype in (torch.float32, torch.int64) for k in net)  # float16 on disk only
    out = gen.generate("move every letter two places forward in the alphabet", seed=0)
    assert set(out.adapter.modules) == set(text_items[0].adapter.modules)
    assert all(torch.isfinite(m.delta()).all() for m in out.adapter.modules.values())


@pytest.mark.parametrize("method", ["semantic", "cvae"])
def test_half_precision_network_is_what_the_trained_generator_used(method: str, text_items: list,
                                                                   text_encoder: Any, tmp_path: Path) -> None:  # fmt: skip
    from safetensors import safe_open

    from generators.base import get_generator_class, make_config, prepare, round_half

    train_generator(method, "zoo-text", text_items, tmp_path / "g", config=FAST, text_encoder=text_encoder)
    with safe_open(str(tmp_path / "g" / "model.safetensors"), "pt") as f:
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118
    assert {d for k, d in dtypes.items() if k.startswith("net.")} == {"F16"}
    # stats and library untouched; the library's description map is stored in half from the start
    assert all(d != "F16" for k, d in dtypes.items() if not k.startswith("net.") and k != "lib.text_map")
    # the same fit again (seeded), rounded as train_generator rounds it: exactly the stored weights
    cls = get_generator_class(method)
    state, _, _ = cls.fit(prepare(text_items, text_encoder), make_config(cls, FAST), None)
    loaded = load_generator(tmp_path / "g", text_encoder=text_encoder)
    rounded = round_half(state)
    for k, v in loaded.state.items():
        assert torch.equal(v, rounded[k]), k
    assert any(not torch.equal(state[k], rounded[k]) for k in state if k.startswith("net."))
    # a float32 checkpoint of the same config is larger
    train_generator(method, "zoo-text", text_items, tmp_path / "f32", config={**FAST, "store_half": False},
                    text_encoder=text_encoder)  # fmt: skip
    assert (tmp_path / "f32" / "model.safetensors").stat().st_size > (
        tmp_path / "g" / "model.safetensors"
    ).stat().st_size
