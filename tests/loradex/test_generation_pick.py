"""Where a generator answers with one library expert as is, ``generate`` answers with the one the
registry's search ranks first among the library's (``loradex.generation.search_pick``,
``Generator.picked``): real text-zoo adapters in a real registry with a fitted text map, the bundled
``zoo-text`` analogy generator, the generated adapter run on the zoo's base."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks.zoo.text.tasks import all_tasks
from generators import BUNDLED, load_generator
from loradex.generation import library_rows, search_pick
from loradex.search import readable_for
from loradex.service import LocalService
from tests.conftest import fit_zoo_text_map, text_zoo_service

ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "text"
# keep_4's own words; the bundled analogy generator's nearest expert for them is repeat_4
REQUEST = "keep one letter in four, starting from the first"
TASKS = ("keep_4", "repeat_4", "keep_2", "caesar_3")  # caesar_3 is held out: not a library expert
INPUTS = ["hello", "abcdef"]


@pytest.fixture(scope="module")
def analogy() -> Any:
    from encoders.text import get_text_encoder

    return load_generator(BUNDLED / "zoo-text" / "analogy", text_encoder=get_text_encoder())


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[LocalService]:
    with text_zoo_service(tmp_path / "home", TASKS) as s:
        yield s


def _names(out: Any) -> list[str]:
    return [e["name"] for e in out.lineage["experts"]]


def test_a_one_expert_answer_is_swapped_for_the_callers_pick(analogy: Any) -> None:
    alone = analogy.generate(REQUEST, seed=0)
    assert _names(alone) == ["repeat_4"] and "picked_over" not in alone.lineage
    picked = analogy.generate(REQUEST, seed=0, expert="keep_4")
    assert _names(picked) == ["keep_4"] and picked.lineage["picked_over"] == "repeat_4"
    assert picked.lineage["chosen"] == "generated"
    # its weights are the expert's own, whatever the request: another request answered with keep_4
    other = analogy.generate("rot13", seed=0, expert="keep_4")
    assert _names(other) == ["keep_4"]
    for name, m in other.adapter.modules.items():
        assert torch.equal(picked.adapter.modules[name].delta(), m.delta())
        assert not torch.equal(alone.adapter.modules[name].delta(), m.delta())


def test_chains_sums_and_unknown_names_are_left_alone(analogy: Any) -> None:
    chain = "stick ing on the end, then write everything in capitals"  # summed: append_ing + upper
    summed = analogy.generate(chain, seed=0, expert="sort")
    assert _names(summed) == ["append_ing", "upper"] and "picked_over" not in summed.lineage
    assert _names(analogy.generate(REQUEST, seed=0, expert="caesar_3")) == ["repeat_4"]  # not in the library
    assert "picked_over" not in analogy.generate(REQUEST, seed=0, expert="repeat_4").lineage


def test_generate_answers_with_the_registry_search_pick(svc: LocalService, analogy: Any) -> None:
    (task,) = [t for t in all_tasks() if t.id == "keep_4"]
    asked = readable_for(svc.text_encoder, REQUEST)
    ids = {r["name"]: int(r["id"]) for r in svc.list()}
    assert search_pick(svc, "zoo-text", analogy, asked) is None  # no text map yet: nothing to pick by
    before = svc.generate(REQUEST, family="zoo-text", method="analogy")
    assert _names(before) == ["repeat_4"]
    fit_zoo_text_map(svc, TASKS)
    assert library_rows(svc, "zoo-text", analogy.expert_names()) == {t: ids[t] for t in TASKS[:3]}
    assert search_pick(svc, "zoo-text", analogy, asked) == "keep_4"
    after = svc.generate(REQUEST, family="zoo-text", method="analogy")
    assert _names(after) == ["keep_4"] and after.lineage["picked_over"] == "repeat_4"
    assert after.adapter["parents"] == [{"id": ids["keep_4"], "weight": 1.0, "method": "generate:analogy"}]
    out = svc.compose(REQUEST, adapters=[int(after.adapter["id"])], inputs=INPUTS, strategy="linear").outputs
    assert out == [task.apply(s) for s in INPUTS]
