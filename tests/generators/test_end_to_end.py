"""The end-to-end objective: the frozen text base with generated factors applied per task, its loss
on the tasks' examples, and the hypernet trained through it."""

from __future__ import annotations

from typing import Any

import pytest

from generators import GeneratorTrainingError, TrainItem, load_generator, train_generator
from generators.canonical import Layout, stack
from generators.end_to_end import TaskLoss
from tests.generators.conftest import TEXT_IDS

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def zoo_text() -> tuple[Any, Any]:
    from benchmarks.zoo.plugins import load_zoo_text

    return load_zoo_text()  # (LlamaForCausalLM, CharTokenizer)


@pytest.fixture(scope="module")
def examples() -> dict[str, list[tuple[str, str]]]:
    from benchmarks.generation_data import text_tasks, train_examples

    tasks = text_tasks()
    return {t: train_examples(tasks[t]) for t in TEXT_IDS}


def factors_of(items: list[TrainItem], names: list[str]) -> tuple[Layout, dict[str, tuple[Any, Any]]]:
    ads = {it.name: it.adapter for it in items}
    layout = Layout.from_adapters([ads[n] for n in names])
    return layout, stack([ads[n] for n in names], layout)  # module → (A (n, r, in), B (n, out, r))


def test_own_factors_do_the_task_and_swapped_ones_do_not(zoo_text: tuple, text_items: list, examples: dict) -> None:
    import torch

    layout, f = factors_of(text_items, ["caesar_1", "reverse"])
    loss = TaskLoss(zoo_text, layout)
    ex = [examples["caesar_1"][:4], examples["reverse"][:4]]
    with torch.no_grad():
        own = float(loss(f, ex))
        swapped = float(loss({k: (a[[1, 0]], b[[1, 0]]) for k, (a, b) in f.items()}, ex))
        zero = float(loss({k: (torch.zeros_like(a), torch.zeros_like(b)) for k, (a, b) in f.items()}, ex))
    assert own < 0.05  # each task's own adapter writes its outputs
    assert swapped > 1.0 and zero > 1.0  # the rows really get their own task's factors
    loss.close()


def test_loss_matches_peft_and_leaves_the_base_alone(zoo_text: tuple, text_items: list, examples: dict,
                                                     tmp_path: Any) -> None:  # fmt: skip
    import torch
    from peft import PeftModel

    from registry.formats import write_adapter

    model, tok = zoo_text
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layout, f = factors_of(text_items, ["reverse"])
    loss = TaskLoss(zoo_text, layout)
    ex = [examples["reverse"][:3]]
    a0 = {k: (a.clone().requires_grad_(True), b.clone().requires_grad_(True)) for k, (a, b) in f.items()}
    ours = loss(a0, ex)
    ours.backward()
    assert all(a.grad is not None and b.grad is not None and float(b.grad.abs().sum()) > 0 for a, b in a0.values())
    assert all(p.grad is None for p in model.parameters())
    # The same loss from the adapter file loaded with PEFT into the base.
    ids, mask, lab = loss.batch(ex)
    ad = next(it.adapter for it in text_items if it.name == "reverse")
    write_adapter(ad, ad.format, tmp_path / "reverse")
    peft_model = PeftModel.from_pretrained(model, str(tmp_path / "reverse")).eval()
    with torch.no_grad():
        logits = peft_model(input_ids=ids, attention_mask=mask).logits
    peft_model.unload()
    ref = torch.nn.functional.cross_entropy(logits.flatten(0, 1), lab.flatten(), ignore_index=-100)
    assert abs(float(ours) - float(ref)) < 1e-4
    loss.close()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(m._forward_hooks for m in model.modules())


def test_uneven_or_empty_example_batches_are_refused(zoo_text: tuple, text_items: list, examples: dict) -> None:
    layout, f = factors_of(text_items, ["caesar_1", "reverse"])
    loss = TaskLoss(zoo_text, layout)
    with pytest.raises(GeneratorTrainingError, match="same, non-zero number"):
        loss(f, [examples["caesar_1"][:2], examples["reverse"][:3]])
    loss.close()


def with_examples(items: list[TrainItem], examples: dict) -> list[TrainItem]:
    return [TrainItem(it.name, it.adapter, it.descriptions, it.task, examples[it.name]) for it in items]


def test_hypernet_trained_end_to_end_lowers_the_task_loss(zoo_text: tuple, text_items: list, examples: dict,
                                                          text_encoder: Any, tmp_path: Any) -> None:  # fmt: skip
    import torch

    items = with_examples(text_items, examples)
    cfg = {"objective": "end_to_end", "steps": 60, "batch_size": 6, "width": 32, "lr": 0.005, "task_examples": 2}
    res = train_generator("hypernet", "zoo-text", items, tmp_path / "h", config=cfg, text_encoder=text_encoder,
                          task_model=zoo_text)  # fmt: skip
    m = res["metrics"]
    assert m["objective"] == "end_to_end" and m["final_loss"] < 0.5 * m["first_loss"]
    gen = load_generator(tmp_path / "h", text_encoder=text_encoder)
    assert gen.config.objective == "end_to_end"  # saved with the checkpoint
    # The generated adapter for a task's own description beats the untrained start on that task.
    layout = Layout.from_adapters([items[0].adapter])
    loss = TaskLoss(zoo_text, layout)
    out = gen.generate(items[0].descriptions[0], seed=0).adapter
    _, f = factors_of([TrainItem("g", out, ["x"], "g")], ["g"])
    with torch.no_grad():
        got = float(loss(f, [examples[items[0].name][:4]]))
    loss.close()
    assert got < m["first_loss"]


def test_end_to_end_needs_the_base_and_examples(text_items: list, examples: dict, text_encoder: Any,
                                                zoo_text: tuple, tmp_path: Any) -> None:  # fmt: skip
    cfg = {"objective": "end_to_end", "steps": 2, "batch_size": 2, "width": 16}
    with pytest.raises(GeneratorTrainingError, match="base model"):
        train_generator("hypernet", "zoo-text", with_examples(text_items, examples), tmp_path / "a", config=cfg,
                        text_encoder=text_encoder)  # fmt: skip
    with pytest.raises(GeneratorTrainingError, match=f"none for {text_items[0].name}"):
        train_generator("hypernet", "zoo-text", text_items, tmp_path / "b", config=cfg, text_encoder=text_encoder,
                        task_model=zoo_text)  # fmt: skip
    some = with_examples(text_items, examples)
    some[0] = text_items[0]  # one adapter without examples is left out of the task loss, not an error
    res = train_generator("hypernet", "zoo-text", some, tmp_path / "d", config=cfg, text_encoder=text_encoder,
                          task_model=zoo_text)  # fmt: skip
    assert res["metrics"]["without_examples"] == 1
    with pytest.raises(GeneratorTrainingError, match="objective must be one of"):
        train_generator("hypernet", "zoo-text", text_items, tmp_path / "c", config={"objective": "distill"},
                        text_encoder=text_encoder)  # fmt: skip
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())


def test_hypernet_description_map_is_fitted_on_the_tasks_and_saved(text_items: list, text_encoder: Any,
                                                                   tmp_path: Any) -> None:  # fmt: skip
    import torch

    cfg = {"steps": 2, "batch_size": 2, "width": 16, "text_map_steps": 30}
    res = train_generator("hypernet", "zoo-text", text_items, tmp_path / "m", config=cfg, text_encoder=text_encoder)
    gen = load_generator(res["path"], text_encoder=text_encoder)
    w = gen.state["text_map"]  # (d, d), fitted so each task's own descriptions gather
    assert w.shape == (text_encoder.dim, text_encoder.dim) and not torch.allclose(w, torch.eye(w.shape[0]), atol=1e-3)
    fit = gen.info["text_map"]
    assert fit["loo_top1_after"] >= fit["loo_top1_before"]
    a = gen.generate("Reverse the order of the characters.", seed=0).adapter
    b = gen.generate("Reverse the order of the characters.", seed=0).adapter
    assert all(torch.equal(a.modules[k].delta(), b.modules[k].delta()) for k in a.modules)


def test_bundled_text_hypernet_is_trained_end_to_end_and_does_a_task(zoo_text: tuple, text_encoder: Any) -> None:
    """The committed zoo-text hypernet: end-to-end, with its description map; for a request in new
    words its adapter writes the task's outputs on strings it never trained on (the zoo's own
    evaluation inputs), and another task's request does not."""
    import torch

    from benchmarks.generation_data import text_tasks
    from benchmarks.zoo.text.evaluate import eval_inputs
    from generators import BUNDLED

    gen = load_generator(BUNDLED / "zoo-text" / "hypernet", text_encoder=text_encoder)
    assert gen.config.objective == "end_to_end" and "text_map" in gen.state
    task = text_tasks()["caesar_1"]
    ex = [[(s, task.apply(s)) for s in eval_inputs(task, 200)[:8]]]
    loss = TaskLoss(zoo_text, gen.layout)
    got = {}
    for q in ("move each letter one step further along the alphabet", "write the text in capital letters"):
        f, _ = gen.factors(gen.embed([q])[0], None, 0)
        with torch.no_grad():
            got[q] = float(loss({k: (a[None], b[None]) for k, (a, b) in f.items()}, ex))
    loss.close()
    shift, upper = got.values()
    assert shift < 0.1 and upper > 1.0
