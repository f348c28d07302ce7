"""Whether a request is about pictures or text, learned from a registry's own texts (issue 15).

``loradex.modality.asked_kind`` reads the kind from words ("image", "letters", "palette" …) and says
nothing for most short requests: "black and white", "desaturate", "old timey", "heat map" name no
picture word, and the sentence encoder then matches them to whatever shares their letters ("b&w" →
the adapter that deletes every b, "black and white" → the one that prepends 'ab'). A registry's texts
know better: every description and paraphrase belongs to an adapter of a family whose kind the
registry records (``Registry.family_kinds``). ``fit_kind_prior`` fits a logistic regression of the
kind on those texts' plain encoder vectors when the registry's text map is fitted (it is stored in
the map's ``config.json``, ``"search"`` → ``"kind_prior"``); ``prior_kind`` answers a prompt's vector
with a kind only when the fit is sure (probability ≥ ``SURE``), and search lowers the other kind's
adapters as it does for the words (``loradex.search.Searcher.wanted_kind``).

Choices (``benchmarks/results/registry_requests.md``, "Kind prior"): L2 ``REG`` 1e-4 and ``SURE`` 0.95,
the sharpest fit at which, five folds by task on the bundled registry's 1785 texts, 96% of held-out
texts get a kind and none a wrong one. Importing this module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

REG = 1e-4  # L2 on the weights (not the bias), vectors of unit length
SURE = 0.95  # a kind is said only at this probability or above
MIN_TEXTS = 4  # per kind: fewer texts of a kind fit nothing
NEWTON_STEPS = 30


def fit_kind_prior(vectors: np.ndarray, kinds: Sequence[str], *, reg: float = REG,
                   sure: float = SURE) -> dict[str, Any] | None:  # fmt: skip
    """A two-kind logistic regression of ``kinds`` (one per row) on ``vectors`` (m, d), classes weighted
    to count alike; ``None`` unless exactly two kinds have ``MIN_TEXTS`` texts or more (rows of any
    other kind are left out). Returns ``{"kinds": [k0, k1], "w": [d floats], "b": float, "sure": …,
    "texts": {kind: count}}``: P(k1 | v) = sigmoid(w·v + b)."""
    import numpy as np

    counts: dict[str, int] = {}
    for k in kinds:
        counts[k] = counts.get(k, 0) + 1
    two = sorted(k for k, n in counts.items() if n >= MIN_TEXTS)
    if len(two) != 2:
        return None
    keep = np.array([k in two for k in kinds])
    x = np.asarray(vectors, dtype=np.float64)[keep]  # (m, d)
    y = np.array([k == two[1] for k in kinds], dtype=np.float64)[keep]  # (m,)
    m, d = x.shape
    weight = np.where(y > 0, 0.5 / y.mean(), 0.5 / (1 - y.mean())) / m  # (m,): each class half the loss
    xb = np.hstack([x, np.ones((m, 1))])  # (m, d + 1): the last column is the bias
    ridge = np.full(d + 1, 2 * reg)
    ridge[-1] = 0.0
    theta = np.zeros(d + 1)
    for _ in range(NEWTON_STEPS):  # Newton on the weighted log-loss + reg·|w|²
        p = 1 / (1 + np.exp(-np.clip(xb @ theta, -60, 60)))  # (m,)
        grad = xb.T @ (weight * (p - y)) + ridge * theta  # (d + 1,)
        hess = (xb * (weight * p * (1 - p))[:, None]).T @ xb + np.diag(ridge) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return {"kinds": two, "w": [round(float(v), 6) for v in theta[:-1]], "b": round(float(theta[-1]), 6),
            "sure": sure, "texts": {k: counts[k] for k in two}}  # fmt: skip


def prior_kind(prior: dict[str, Any], vector: Any) -> str | None:
    """The kind ``prior`` is sure a prompt's plain vector (d,) asks for, else None."""
    import numpy as np

    w = np.asarray(prior["w"], dtype=np.float64)
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.shape != w.shape:
        return None  # another encoder's vector: the prior cannot read it
    p = 1 / (1 + np.exp(-np.clip(float(w @ v) + float(prior["b"]), -60, 60)))
    sure = float(prior["sure"])
    return str(prior["kinds"][1]) if p >= sure else str(prior["kinds"][0]) if p <= 1 - sure else None


def prior_problem(found: Any) -> str | None:
    """What is wrong with a stored ``"kind_prior"`` (None: well formed)."""
    if not isinstance(found, dict):
        return "must be an object"
    kinds, w = found.get("kinds"), found.get("w")
    if not (isinstance(kinds, list) and len(kinds) == 2 and all(isinstance(k, str) and k for k in kinds)):
        return f"kinds must name two kinds, got {kinds!r}"
    if not (isinstance(w, list) and w and all(isinstance(v, (int, float)) for v in w)):
        return "w must be a list of numbers"
    if not isinstance(found.get("b"), (int, float)):
        return f"b must be a number, got {found.get('b')!r}"
    sure = found.get("sure")
    if not (isinstance(sure, (int, float)) and 0.5 < sure < 1):
        return f"sure must be a number between 0.5 and 1, got {sure!r}"
    return None
