"""Hybrid search lowers, among its top hits, adapters whose description names more or fewer steps
than the request (``rerank_by_steps``): "shift letters +1" asks one step, and an adapter that
rotates and then shifts does more than that."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import loradex.search as search
from loradex.search import STEP_PENALTY, rerank_by_steps
from loradex.service import LocalService
from tests.conftest import text_zoo_service


def test_each_step_off_the_request_costs_the_penalty() -> None:
    ranked = [(2.0, 1, None), (1.8, 2, None), (1.0, 3, None), (0.9, 4, None)]
    steps = {1: 2, 2: 1, 3: 3}  # 4 has no description: kept as it is
    out = rerank_by_steps(ranked, steps, asked=1, penalty=0.5)
    assert [(round(s, 3), i) for s, i, _ in out] == [(1.8, 2), (1.5, 1), (0.9, 4), (0.0, 3)]
    two = rerank_by_steps(ranked, steps, asked=2, penalty=0.5)  # a request of two steps: the chain stays first
    assert [i for _, i, _ in two] == [1, 2, 4, 3]
    assert rerank_by_steps(ranked, steps, asked=1, penalty=0.0) == ranked
    assert rerank_by_steps(ranked, {}, asked=1) == ranked


TASKS = ("caesar_1", "rotr_1__then__caesar_1", "reverse__then__caesar_1", "upper", "reverse")


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    with text_zoo_service(tmp_path_factory.mktemp("steps") / "home", TASKS) as s:
        yield s


def test_search_lowers_chains_for_a_one_step_request(svc: LocalService, monkeypatch: pytest.MonkeyPatch) -> None:
    prompt = "shift letters +1"
    with_prior = {h.adapter["name"]: h.score for h in svc.search(prompt, k=5, mode="hybrid")}
    monkeypatch.setattr(search, "STEP_PENALTY", 0.0)
    without = {h.adapter["name"]: h.score for h in svc.search(prompt, k=5, mode="hybrid")}
    for name in ("rotr_1__then__caesar_1", "reverse__then__caesar_1"):  # two steps for one asked
        assert with_prior[name] == pytest.approx(without[name] - STEP_PENALTY)
    for name in ("caesar_1", "upper", "reverse"):
        assert with_prior[name] == pytest.approx(without[name])
    assert max(with_prior, key=with_prior.__getitem__) == "caesar_1"


def test_a_two_step_request_keeps_its_chain_first(svc: LocalService) -> None:
    hits = svc.search("reverse the string, then shift each letter forward by one", k=5, mode="hybrid")
    assert hits[0].adapter["name"] == "reverse__then__caesar_1"
    scores = {h.adapter["name"]: h.score for h in hits}
    assert scores["reverse__then__caesar_1"] > scores["caesar_1"]
