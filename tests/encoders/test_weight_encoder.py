"""Weight encoder: invariances, masking of absent modules, checkpoints, and that training learns."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from encoders.weight.config import WeightEncoderConfig, module_type
from encoders.weight.features import adapter_factors, collate, vocabulary
from encoders.weight.model import WeightEncoder, checkpoint_version
from registry.formats.canonical import LoraAdapter, LoraModule

SHAPES = {"q_proj": (16, 16), "v_proj": (16, 16), "up_proj": (40, 16), "down_proj": (16, 40)}  # (out, in)


def make_adapter(seed: int, rank: int = 4, layers: int = 2, skip: set[str] = frozenset()) -> LoraAdapter:
    g = torch.Generator().manual_seed(seed)
    mods = {}
    for layer in range(layers):
        for leaf, (o, i) in SHAPES.items():
            name = f"model.model.layers.{layer}.{'mlp' if 'proj' in leaf and leaf[0] in 'ud' else 'self_attn'}.{leaf}"
            if name in skip:
                continue
            mods[name] = LoraModule(name, torch.randn(rank, i, generator=g), torch.randn(o, rank, generator=g), 0.5)
    return LoraAdapter(mods, family="toy", format="peft")


def encoder_for(adapters: list[LoraAdapter]) -> WeightEncoder:
    types, slots = vocabulary(adapters)
    torch.manual_seed(0)
    return WeightEncoder(WeightEncoderConfig("toy", types, slots, out_dim=12, n_probes=3, d_model=16)).eval()


def embed(model: WeightEncoder, ad: LoraAdapter) -> np.ndarray:
    with torch.no_grad():
        return model(collate([adapter_factors(ad, model.cfg)], model.cfg))[0].numpy()


def transformed(ad: LoraAdapter, how: str, seed: int = 1) -> LoraAdapter:
    g = torch.Generator().manual_seed(seed)
    mods = {}
    for name, m in ad.modules.items():
        a, b, s = m.down.clone(), m.up.clone(), m.scale
        r = a.shape[0]
        if how == "rescale":  # A·c, B/c, and the scale moved into the factors
            c = 3.7
            a, b, s = a * c, b / c * s * 2, 0.5
        elif how == "rotate":  # A → R·A, B → B·Rᵀ with R orthogonal
            q, _ = torch.linalg.qr(torch.randn(r, r, generator=g))
            a, b = q @ a, b @ q.T
        elif how == "permute":
            p = torch.randperm(r, generator=g)
            a, b = a[p], b[:, p]
        elif how == "higher_rank":  # the same ΔW at rank 2r: duplicated components, halved, and another alpha
            a, b = torch.cat([a, a]), torch.cat([b, b], dim=1) / 2 * (s / 0.25)
            s = 0.25
        mods[name] = LoraModule(name, a, b, s)
    return LoraAdapter(mods, family=ad.family, format=ad.format)


def test_module_type_strips_block_indices() -> None:
    assert module_type("model.model.layers.12.self_attn.q_proj") == "model.model.layers.#.self_attn.q_proj"
    assert module_type("unet.down_blocks.0.attentions.1.proj_in") == "unet.down_blocks.#.attentions.#.proj_in"


@pytest.mark.parametrize("how", ["rescale", "rotate", "permute", "higher_rank"])
def test_embedding_depends_on_delta_w_only(how: str) -> None:
    ads = [make_adapter(s) for s in range(3)]
    model = encoder_for(ads)
    for ad in ads:
        other = transformed(ad, how)
        for name, m in ad.modules.items():  # the factors really changed, ΔW did not
            t = other.modules[name]
            assert t.down.shape != m.down.shape or not torch.allclose(t.down, m.down), how
            assert torch.allclose(t.delta(), m.delta(), atol=1e-4), how
        a, b = embed(model, ad), embed(model, other)
        # unit vectors, so a·b is a cosine: a large unnormalised product could not pass for "unchanged"
        assert abs(float(a @ a) - 1) < 1e-5 and abs(float(b @ b) - 1) < 1e-5, how
        assert abs(1 - float(a @ b)) < 1e-4, how
    # and it is not constant: different adapters are told apart
    e = [embed(model, ad) for ad in ads]
    assert max(float(e[0] @ e[1]), float(e[0] @ e[2])) < 1 - 1e-3


def test_partial_coverage_and_batch_independence() -> None:
    full = make_adapter(0)
    part = make_adapter(1, skip={"model.model.layers.1.mlp.up_proj", "model.model.layers.0.self_attn.q_proj"})
    model = encoder_for([full])
    f = adapter_factors(part, model.cfg)
    assert len(f.modules) == len(part.modules) and not f.skipped
    with torch.no_grad():
        together = model(collate([adapter_factors(full, model.cfg), f], model.cfg)).numpy()
    # padding / masking: an adapter's vector does not depend on what else is in the batch
    assert np.allclose(together[0], embed(model, full), atol=1e-5)
    assert np.allclose(together[1], embed(model, part), atol=1e-5)
    assert math.isclose(float(np.linalg.norm(together[1])), 1.0, rel_tol=1e-5)
    # unknown modules are skipped, not guessed; an adapter with none of the known modules is refused
    other = LoraAdapter({"x.lin": LoraModule("x.lin", torch.randn(2, 7), torch.randn(5, 2), 1.0)}, family="toy")
    assert adapter_factors(other, model.cfg).skipped == ["x.lin"]
    with pytest.raises(ValueError, match="none of the modules"):
        model(collate([adapter_factors(other, model.cfg)], model.cfg))


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    ads = [make_adapter(s) for s in range(2)]
    model = encoder_for(ads)
    version = model.save(tmp_path / "ck", {"note": "test"})
    assert version == checkpoint_version(tmp_path / "ck") and version.startswith("w:toy:")
    again = WeightEncoder.load(tmp_path / "ck")
    assert np.allclose(embed(model, ads[0]), embed(again, ads[0]), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="not a weight encoder checkpoint"):
        WeightEncoder.load(tmp_path)


TOY_TASKS = [
    "shift every letter by three places", "write the text backwards", "make every letter uppercase",
    "repeat each character twice", "remove all vowels from the string", "sort the characters alphabetically",
    "append the word ing at the end", "swap the case of each letter",
]  # fmt: skip


def toy_training_set() -> tuple[list[LoraAdapter], list]:
    """Eight toy tasks, three noisy seeds each, three texts per task: (adapters, TrainItems)."""
    from encoders.weight.train import TrainItem

    items, adapters = [], []
    for t in range(len(TOY_TASKS)):
        base = make_adapter(100 + t)
        for seed in range(3):
            noisy = transformed(base, "rotate", seed)
            for m in noisy.modules.values():
                m.up = m.up + 0.05 * torch.randn(m.up.shape, generator=torch.Generator().manual_seed(seed))
            adapters.append(noisy)
    probe = encoder_for(adapters).cfg
    for i, a in enumerate(adapters):
        t, desc = i // 3, TOY_TASKS[i // 3]
        texts = [desc, f"please {desc}", f"{desc}, thanks"]
        items.append(TrainItem(adapter_factors(a, probe), texts, task=f"t{t}", group="g" + str(t % 2)))
    return adapters, items


def test_training_aligns_weights_with_descriptions() -> None:
    """After training, each task's description finds its adapters."""
    from encoders.text import get_text_encoder
    from encoders.weight.train import TrainConfig, embed_all, recall_at, train_encoder

    adapters, items = toy_training_set()
    text = get_text_encoder()
    model, metrics = train_encoder(
        items, "toy", text.encode, model_cfg={"n_probes": 3, "d_model": 32}, vocab=vocabulary(adapters),
        cfg=TrainConfig(epochs=60, batch_size=12, val_fraction=0.0, val_paraphrases=1, eval_every=20, device="cpu"),
    )  # fmt: skip
    assert encoder_for(adapters).cfg.slots == model.cfg.slots
    assert "para_recall@1" in metrics["best"]  # the held-out paraphrase of each task picked the checkpoint
    assert metrics["best"]["all_recall@1"] >= 0.75, metrics["best"]
    # the recorded metric is what the returned model does
    g = embed_all(model, collate([adapter_factors(a, model.cfg) for a in adapters], model.cfg)).numpy()
    r = recall_at(text.encode(TOY_TASKS), g, [f"t{t}" for t in range(8)], [it.task for it in items])
    assert r["recall@1"] >= 0.75 and r["recall@5"] == 1.0


def test_a_query_head_trained_with_raw_prompts_blends_both() -> None:
    """With ``raw_query_weight`` the weight side stays aligned with prompts as encoded as well as with
    the head's output, and the search query mixes the two by ``query_raw_share``."""
    from encoders.text import get_text_encoder
    from encoders.weight.train import TrainConfig, embed_all, recall_at, train_encoder

    adapters, items = toy_training_set()
    text = get_text_encoder()
    model, _ = train_encoder(
        items, "toy", text.encode, vocab=vocabulary(adapters),
        model_cfg={"n_probes": 3, "d_model": 32, "query_hidden": 32, "query_dropout": 0.5, "query_raw_share": 0.5},
        cfg=TrainConfig(epochs=60, batch_size=12, val_fraction=0.0, eval_every=20, device="cpu", raw_query_weight=2.0),
    )  # fmt: skip
    g = embed_all(model, collate([adapter_factors(a, model.cfg) for a in adapters], model.cfg)).numpy()
    prompts = torch.from_numpy(text.encode(TOY_TASKS))  # (8, 384)
    tasks, gallery = [f"t{t}" for t in range(8)], [it.task for it in items]
    with torch.no_grad():
        raw, headed, query = (
            torch.nn.functional.normalize(prompts, dim=-1),
            model.headed(prompts),
            model.encode_query(prompts),
        )
    assert not torch.allclose(headed, raw, atol=1e-3)  # the head moved the prompts
    expected = torch.nn.functional.normalize(0.5 * raw + 0.5 * headed, dim=-1)
    assert torch.allclose(query, expected, atol=1e-6)
    for form in (raw, headed, query):  # every form finds each task's adapters
        r = recall_at(form.numpy(), g, tasks, gallery)
        assert r["recall@1"] >= 0.75 and r["recall@5"] == 1.0, r
    with pytest.raises(ValueError, match="query_raw_share"):
        WeightEncoderConfig("toy", *vocabulary(adapters), query_hidden=8, query_raw_share=1.0)


def test_held_out_texts_never_take_the_canonical_one() -> None:
    from encoders.weight.train import TrainItem, held_out_texts

    items = [TrainItem(None, ["a", "b", "c"], "t1"), TrainItem(None, ["x", "y"], "t2")]  # type: ignore[arg-type]
    assert held_out_texts(items, 1) == {"t1": ["c"]}  # t2 would keep only its canonical text
    assert held_out_texts(items, 0) == {}


def test_query_head_starts_as_the_identity_and_survives_a_checkpoint(tmp_path: Path) -> None:
    ads = [make_adapter(s) for s in range(2)]
    types, slots = vocabulary(ads)
    model = WeightEncoder(WeightEncoderConfig("toy", types, slots, out_dim=12, n_probes=3, d_model=16,
                                              query_hidden=24)).eval()  # fmt: skip
    prompts = torch.randn(5, 12, generator=torch.Generator().manual_seed(3))  # (5, 12)
    unit = torch.nn.functional.normalize(prompts, dim=-1)
    assert torch.allclose(model.encode_query(prompts), unit, atol=1e-6)  # untrained: prompts pass unchanged
    with torch.no_grad():
        for p in model.query_head.parameters():  # type: ignore[union-attr]
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(4)))
    moved = model.encode_query(prompts)
    assert not torch.allclose(moved, unit, atol=1e-2) and torch.allclose(moved.norm(dim=-1), torch.ones(5))
    model.save(tmp_path / "ck")
    again = WeightEncoder.load(tmp_path / "ck")
    assert again.cfg.query_hidden == 24 and torch.allclose(again.encode_query(prompts), moved, atol=1e-6)
    # a checkpoint written before query heads existed has none, and scores prompts as they are
    plain = encoder_for(ads)
    plain.save(tmp_path / "old")
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    cfg.pop("query_hidden"), cfg.pop("query_dropout")
    (tmp_path / "old" / "config.json").write_text(json.dumps(cfg))
    old = WeightEncoder.load(tmp_path / "old")
    assert old.query_head is None and torch.allclose(old.encode_query(prompts), unit, atol=1e-6)
    with pytest.raises(ValueError, match="query_hidden"):
        WeightEncoderConfig("toy", types, slots, query_hidden=-1)
