"""A language-model composition routes by the registry's search when the registry has a text map
(``loradex.composition.search_scores``): the hybrid search restricted to the loaded adapters
(``Searcher.scores_among``), on real text zoo adapters in a real registry. Without a map the
family's trained router routes, as before, and misses a held-out paraphrase the map gets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.zoo.text.tasks import all_tasks
from loradex.service import LocalService
from tests.conftest import fit_zoo_text_map, text_zoo_service

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "benchmarks" / "zoo" / "text"
TASKS = ("keepfrom_2", "delete_n", "upper", "caesar_1")  # the task asked for first
# a held-out paraphrase of keepfrom_2 (never among the texts the map or the router was fitted on);
# the trained router sends it to delete_n (benchmarks/results/fusion_route.json)
REQUEST = "Drop 1 character, keep the next one, and repeat until the end."
INPUTS = ["hello", "abcdef"]


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[LocalService]:
    with text_zoo_service(tmp_path / "home", TASKS) as s:
        yield s


def _ids(svc: LocalService) -> list[int]:
    by_name = {r["name"]: int(r["id"]) for r in svc.list()}
    return [by_name[t] for t in TASKS]


def test_scores_among_the_whole_registry_are_its_search_scores(svc: LocalService) -> None:
    fit_zoo_text_map(svc, TASKS)
    ids = _ids(svc)
    found = svc.searcher.scores_among(REQUEST, ids)
    hits = svc.search(REQUEST, len(ids))  # the registry is these adapters: search's pool is the same
    assert sorted(found) == sorted(ids) and len(hits) == len(ids)
    for h in hits:
        score, parts = found[h.adapter["id"]]
        assert score == pytest.approx(h.score, abs=1e-9) and parts == h.scores
    fewer = svc.searcher.scores_among(REQUEST, ids[:2])  # standardised over the loaded ones only
    assert sorted(fewer) == sorted(ids[:2]) and fewer[ids[0]][0] != pytest.approx(found[ids[0]][0])


def test_compose_routes_a_paraphrase_by_the_registry_search_once_it_has_a_map(svc: LocalService) -> None:
    ids = _ids(svc)
    (task,) = [t for t in all_tasks() if t.id == TASKS[0]]
    wanted = [task.apply(s) for s in INPUTS]
    old = svc.compose(REQUEST, adapters=ids, inputs=INPUTS)  # no map: the family's trained router
    assert old.info["gate"] == "trained"
    assert max(range(len(ids)), key=lambda i: old.weights[i]) != 0 and old.outputs != wanted
    fit_zoo_text_map(svc, TASKS)
    new = svc.compose(REQUEST, adapters=ids, inputs=INPUTS)
    assert new.info["gate"] == "search"
    assert new.weights[0] > 0.99 and new.outputs == wanted
    found = svc.searcher.scores_among(REQUEST, ids)
    assert new.info["scores"] == pytest.approx([found[i][0] for i in ids])
    # a strategy other than the gate is not routed
    assert svc.compose(REQUEST, adapters=ids, inputs=INPUTS, strategy="linear").info.get("gate") is None


def test_the_turned_down_note_names_them_and_says_how_to_keep_one() -> None:
    from loradex.composition import turned_down_note

    assert turned_down_note({"gate": "calibrated", "turned_down": []}) is None
    assert turned_down_note({"strategy": "linear"}) is None
    assert turned_down_note({"gate": "calibrated", "turned_down": ["dots", "grid"]}) == (
        "turned down, the prompt does not ask for them: dots, grid; name one in the prompt to keep it on"
    )
    # only a calibrated gate reads names: the other gates' note has no hint
    assert turned_down_note({"gate": "description", "turned_down": ["dots"]}) == (
        "turned down, the prompt does not ask for them: dots"
    )


def test_compose_routes_by_the_examples_a_prompt_shows(svc: LocalService, capsys: pytest.CaptureFixture[str]) -> None:
    """Examples written in the prompt are run on the loaded adapters: the one that reproduces them is
    routed to, even where the words alone send the request elsewhere (no map: the router misroutes)."""
    ids = _ids(svc)
    (task,) = [t for t in all_tasks() if t.id == TASKS[0]]
    wanted = [task.apply(s) for s in INPUTS]
    shown = f"{REQUEST} For example {INPUTS[1]} -> {task.apply(INPUTS[1])}, planet -> {task.apply('planet')}"
    res = svc.compose(shown, adapters=ids, inputs=INPUTS)
    assert res.info["gate"] == "examples" and res.outputs == wanted and res.weights[0] > 0.99
    assert res.info["examples"]["reproduced"] == {"keepfrom_2": 1.0, "delete_n": 0.0, "upper": 0.0, "caesar_1": 0.0}
    from loradex.composition import examples_note

    assert examples_note(res.info) == (
        f"routed by the prompt's examples ({INPUTS[1]} → {task.apply(INPUTS[1])}; planet → {task.apply('planet')}):"
        " reproduced by keepfrom_2 100%"
    )
    from ui.cli import main

    argv = ["--home", str(svc.home), "compose", "--prompt", shown, "--adapters", *map(str, ids), "--input", INPUTS[0]]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{INPUTS[0]} → {wanted[0]}" in out and "routed by the prompt's examples (" in out
    # examples no loaded adapter reproduces (words misread as examples, or nothing loaded does them) are set aside
    res = svc.compose(f"{REQUEST} like abc -> zzz", adapters=ids, inputs=INPUTS)
    assert res.info["gate"] == "trained" and "examples" not in res.info and examples_note(res.info) is None
