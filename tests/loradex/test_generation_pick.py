"""Where a generator answers with one library expert as is, ``generate`` answers with the adapter
the registry's search ranks first among the family's ingested ones (``loradex.generation.search_pick``,
``Generator.picked``), in the library or outside it: real text-zoo adapters in a real registry with
a fitted text map, the bundled ``zoo-text`` generators, the generated adapter run on the zoo's base."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks.zoo.text.tasks import all_tasks
from generators import BUNDLED, Expert, load_generator
from loradex.generation import library_rows, search_pick
from loradex.search import readable_for
from loradex.service import LocalService
from tests.conftest import fit_zoo_text_map, text_zoo_service

ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "text"
# keep_4's own words; the bundled analogy generator's nearest expert for them is repeat_4
REQUEST = "keep one letter in four, starting from the first"
HELD = "shift each letter forward by 3 in the alphabet"  # caesar_3's own adapter is registered, not in the library
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
    assert search_pick(svc, "zoo-text", analogy, asked) == Expert("keep_4")
    after = svc.generate(REQUEST, family="zoo-text", method="analogy")
    assert _names(after) == ["keep_4"] and after.lineage["picked_over"] == "repeat_4"
    assert after.adapter["parents"] == [{"id": ids["keep_4"], "weight": 1.0, "method": "generate:analogy"}]
    out = svc.compose(REQUEST, adapters=[int(after.adapter["id"])], inputs=INPUTS, strategy="linear").outputs
    assert out == [task.apply(s) for s in INPUTS]


def test_an_adapter_outside_the_library_is_picked_with_its_own_weights(svc: LocalService) -> None:
    from encoders.text import get_text_encoder

    nearest = load_generator(BUNDLED / "zoo-text" / "nearest", text_encoder=get_text_encoder())
    (task,) = [t for t in all_tasks() if t.id == "caesar_3"]
    ids = {r["name"]: int(r["id"]) for r in svc.list()}
    assert "caesar_3" not in nearest.expert_names()
    fit_zoo_text_map(svc, TASKS)
    top = search_pick(svc, "zoo-text", nearest, readable_for(svc.text_encoder, HELD))
    assert isinstance(top, Expert) and (top.name, top.ref) == ("caesar_3", ids["caesar_3"]) and top.outside
    alone = nearest.generate(HELD, seed=0)
    assert len(_names(alone)) == 1 and _names(alone) != ["caesar_3"]  # the library lacks it: a sibling
    out = svc.generate(HELD, family="zoo-text", method="nearest")
    assert out.lineage["experts"] == [
        {"name": "caesar_3", "weight": 1.0, "outside_library": True, "id": ids["caesar_3"]}
    ]
    assert out.lineage["picked_over"] == _names(alone)[0]
    assert out.adapter["parents"] == [{"id": ids["caesar_3"], "weight": 1.0, "method": "generate:nearest"}]
    written, own = svc.load(int(out.adapter["id"])), svc.load(ids["caesar_3"])
    assert set(written.modules) == set(own.modules)
    for name, m in own.modules.items():  # the registered adapter's own ΔW, written exactly
        assert torch.allclose(written.modules[name].delta().float(), m.delta().float(), atol=2e-3, rtol=1e-2)
    got = svc.compose(HELD, adapters=[int(out.adapter["id"])], inputs=INPUTS, strategy="linear").outputs
    assert got == [task.apply(s) for s in INPUTS]


def test_cli_generate_says_the_answer_is_an_adapter_already_registered(
    svc: LocalService, capsys: pytest.CaptureFixture[str]
) -> None:
    from ui.cli import main

    fit_zoo_text_map(svc, TASKS)
    ref = {r["name"]: int(r["id"]) for r in svc.list()}["caesar_3"]
    assert main(["--home", str(svc.home), "generate", HELD, "--family", "zoo-text", "--method", "nearest"]) == 0
    out = capsys.readouterr().out
    assert "from: caesar_3 (1.00)" in out and f"note: caesar_3 (#{ref}) is already registered" in out, out


def test_adapters_the_service_made_are_never_picked(svc: LocalService) -> None:
    from encoders.text import get_text_encoder

    nearest = load_generator(BUNDLED / "zoo-text" / "nearest", text_encoder=get_text_encoder())
    fit_zoo_text_map(svc, TASKS)
    made = svc.generate("write every letter of the text in capitals", family="zoo-text", method="nearest")
    (parent,) = made.adapter["parents"]
    asked = readable_for(svc.text_encoder, "write every letter of the text in capitals")
    top = search_pick(svc, "zoo-text", nearest, asked)
    assert top is not None and top.ref != made.adapter["id"] and top.name != made.adapter["name"]
    # its description is the request itself: by text it outranks the adapter it copied, which search lists first
    plain = svc.search(asked, 5, mode="text")
    ids = [int(h.adapter["id"]) for h in plain]
    assert ids.index(parent["id"]) + 1 == ids.index(int(made.adapter["id"]))
    copy = plain[ids.index(int(made.adapter["id"]))]
    assert f"a copy of #{parent['id']}" in copy.why and copy.score <= plain[ids.index(parent["id"])].score
    summed = svc.generate("keep every other letter, then repeat each letter four times", family="zoo-text",
                          method="nearest")  # fmt: skip
    assert len(summed.lineage["experts"]) == 2  # a sum of two experts is no copy, even with one registered
    made_ids = [int(made.adapter["id"]), int(summed.adapter["id"])]
    assert svc.registry.copies_of(made_ids) == {int(made.adapter["id"]): parent["id"]}


def test_an_outside_adapter_replaces_a_blend_but_never_a_chain(svc: LocalService, analogy: Any) -> None:
    ref = {r["name"]: int(r["id"]) for r in svc.list()}["caesar_3"]
    own = Expert("caesar_3", adapter=svc.load(ref), ref=ref)
    blend = analogy.generate(HELD, seed=0)  # analogy triples: the library has no caesar_3
    assert len(_names(blend)) > 1 and not blend.lineage.get("chain")
    assert _names(analogy.generate(HELD, seed=0, expert="repeat_4")) == _names(blend)  # a library expert does not
    out = analogy.generate(HELD, seed=0, expert=own)
    assert _names(out) == ["caesar_3"] and out.lineage["picked_over"] == ", ".join(_names(blend))
    chain = "stick ing on the end, then write everything in capitals"  # summed: append_ing + upper
    assert _names(analogy.generate(chain, seed=0, expert=own)) == ["append_ing", "upper"]
    fit_zoo_text_map(svc, TASKS)
    assert _names(svc.generate(HELD, family="zoo-text", method="analogy")) == ["caesar_3"]


CHAIN_TASKS = ("delete_a", "upper", "reverse", "delete_a__then__upper")  # the two-step one is held out
CHAIN = "delete all a's, then capitalize everything"


def test_a_registered_adapter_that_names_the_chain_s_steps_in_order_replaces_their_sum(
    tmp_path: Path, analogy: Any
) -> None:
    (task,) = [t for t in all_tasks() if t.id == "delete_a__then__upper"]
    with text_zoo_service(tmp_path / "chain", CHAIN_TASKS) as s:
        fit_zoo_text_map(s, CHAIN_TASKS)
        ref = {r["name"]: int(r["id"]) for r in s.list()}["delete_a__then__upper"]
        summed = analogy.generate(CHAIN, seed=0)
        assert _names(summed) == ["delete_a", "upper"] and summed.lineage.get("chain")
        top = search_pick(s, "zoo-text", analogy, readable_for(s.text_encoder, CHAIN))
        assert top is not None and (top.name, top.ref, top.covers_steps) == ("delete_a__then__upper", ref, True)
        out = s.generate(CHAIN, family="zoo-text", method="analogy")
        assert _names(out) == ["delete_a__then__upper"] and out.lineage["picked_over"] == "delete_a, upper"
        got = s.compose(CHAIN, adapters=[int(out.adapter["id"])], inputs=INPUTS, strategy="linear")
        assert got.outputs == [task.apply(x) for x in INPUTS]
        # the same steps in the other order are another task: the sum stays
        other = "capitalize everything, then delete all a's"
        picked = search_pick(s, "zoo-text", analogy, readable_for(s.text_encoder, other))
        assert picked is None or not picked.covers_steps
        assert "delete_a__then__upper" not in _names(s.generate(other, family="zoo-text", method="analogy"))


def test_the_web_generate_card_says_the_answer_is_an_adapter_already_registered(svc: LocalService) -> None:
    from ui.web import WebUI
    from ui.web.make import MakeUI

    fit_zoo_text_map(svc, TASKS)
    ref = {r["name"]: int(r["id"]) for r in svc.list()}["caesar_3"]
    ui = MakeUI(svc, WebUI(svc, admin_token="t").check_token)
    card, *_ = ui.generate("t", HELD, "zoo-text", "nearest", "", 0, "", progress=lambda *a, **k: None)
    assert f'<a href="?adapter={ref}">caesar_3</a> is already registered and ranks first' in card, card


def test_a_library_chain_expert_that_covers_the_steps_replaces_their_sum(analogy: Any) -> None:
    req = "rot13 then keep every second letter"  # the library holds caesar_13__then__keep_2
    summed = analogy.generate(req, seed=0)
    assert summed.lineage.get("chain") and len(_names(summed)) == 2
    assert _names(analogy.generate(req, seed=0, expert="caesar_13__then__keep_2")) == _names(summed)
    out = analogy.generate(req, seed=0, expert=Expert("caesar_13__then__keep_2", covers_steps=True))
    assert _names(out) == ["caesar_13__then__keep_2"] and out.lineage["picked_over"] == ", ".join(_names(summed))
