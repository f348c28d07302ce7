"""The kind prior (``encoders.kind_prior``): a logistic fit of an adapter's kind on its texts' vectors,
sure or silent, and its checks."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.kind_prior import MIN_TEXTS, fit_kind_prior, prior_kind, prior_problem


def _clusters(n: int = 40, d: int = 16, seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = np.eye(d)[0], np.eye(d)[1]
    vecs = np.vstack([a + 0.15 * rng.standard_normal((n, d)), b + 0.15 * rng.standard_normal((n // 2, d))])
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs, ["llm"] * n + ["diffusion"] * (n // 2), a, b


def test_a_sure_fit_names_each_side_and_is_silent_between() -> None:
    vecs, kinds, a, b = _clusters()
    prior = fit_kind_prior(vecs, kinds)
    assert (
        prior is not None and prior["kinds"] == ["diffusion", "llm"] and prior["texts"] == {"llm": 40, "diffusion": 20}
    )
    assert prior_problem(prior) is None
    assert prior_kind(prior, a) == "llm" and prior_kind(prior, b) == "diffusion"
    middle = (a + b) / np.linalg.norm(a + b)
    assert prior_kind(prior, middle) is None  # not sure: says nothing
    # every training text is read as its own kind (the classes are weighted alike, the fit is sharp)
    assert [prior_kind(prior, v) for v in vecs] == kinds


def test_the_fit_is_deterministic_and_stored_as_plain_numbers() -> None:
    vecs, kinds, _, _ = _clusters()
    one, two = fit_kind_prior(vecs, kinds), fit_kind_prior(vecs[::-1].copy(), kinds[::-1])
    assert one is not None and two is not None
    assert np.allclose(one["w"], two["w"], atol=1e-5) and abs(one["b"] - two["b"]) < 1e-5
    assert all(isinstance(v, float) for v in one["w"]) and len(one["w"]) == vecs.shape[1]


def test_no_prior_without_two_kinds_with_enough_texts() -> None:
    vecs, kinds, _, _ = _clusters()
    assert fit_kind_prior(vecs[:40], kinds[:40]) is None  # one kind only
    few = kinds[: 40 + MIN_TEXTS - 1]
    assert fit_kind_prior(vecs[: len(few)], few) is None  # the second kind has too few texts
    # a third kind with too few texts is left out; the two others still fit
    third = fit_kind_prior(np.vstack([vecs, vecs[:2]]), kinds + ["other", "other"])
    assert third is not None and third["kinds"] == ["diffusion", "llm"]


def test_a_vector_of_another_size_gets_no_kind() -> None:
    vecs, kinds, _, _ = _clusters()
    prior = fit_kind_prior(vecs, kinds)
    assert prior is not None and prior_kind(prior, np.ones(5)) is None


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ([], "must be an object"),
        ({"kinds": ["llm"], "w": [1.0], "b": 0.0, "sure": 0.9}, "kinds must name two kinds"),
        ({"kinds": ["a", "b"], "w": "x", "b": 0.0, "sure": 0.9}, "w must be a list of numbers"),
        ({"kinds": ["a", "b"], "w": [1.0], "b": None, "sure": 0.9}, "b must be a number"),
        ({"kinds": ["a", "b"], "w": [1.0], "b": 0.0, "sure": 1.5}, "sure must be a number between 0.5 and 1"),
    ],
)
def test_a_broken_prior_is_named(bad: object, says: str) -> None:
    problem = prior_problem(bad)
    assert problem is not None and says in problem
