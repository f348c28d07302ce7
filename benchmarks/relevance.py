"""Calibrated relevance and "nothing fits" (issue 15): fit, measure, write the calibration files.

``python -m benchmarks.relevance dump OUT.json`` ingests both zoos (described) into one registry
and stores, per query, the weights and text cosines of every adapter (a few minutes).
``python -m benchmarks.relevance fit OUT.json [--write]`` fits ``loradex.relevance`` on the
fitting queries only (training-task queries of the paraphrase set and of every voice but the held-out
one, and the ``fit`` requests no adapter does), chooses the "nothing fits" threshold on them, then
measures on the rest: held-out tasks in every voice, the held-out voice, and the ``heldout``
requests of ``relevance_queries.json``. ``--write`` stores the fitted calibration next to the bundled
encoders (``encoders/weight/checkpoints/<family>/calibration.json``, ``encoders/text_calibration.json``).
The suite ``python -m benchmarks.run relevance`` runs both steps and writes ``results/relevance.*``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.retrieval import REPO, VOICES, ZOOS, _queries, adapter_tasks

QUERIES = REPO / "benchmarks" / "relevance_queries.json"
TOP = 10  # candidates per signal and query that the calibration is fitted and measured on
OUT_OF_SCOPE = "none"  # task label of a request no adapter does


def dump(out: Path) -> dict[str, Any]:
    """Both zoos in one registry; per query and adapter: weights and text cosines."""
    from loradex.service import LocalService

    held_out = json.loads(VOICES.read_text())["held_out_voice"]
    oos = json.loads(QUERIES.read_text())
    queries: list[dict[str, Any]] = []
    task_of: dict[int, str] = {}
    family_of: dict[int, str] = {}
    with tempfile.TemporaryDirectory() as d:
        svc = LocalService.open(Path(d))
        for kind, zoo in ZOOS.items():
            manifest = json.loads((zoo / "manifest.json").read_text())
            svc.ingest([zoo / "adapters"])
            folder_task = adapter_tasks(manifest)
            for r in svc.list():
                if r["name"] in folder_task and r["id"] not in task_of:
                    task_of[r["id"]], family_of[r["id"]] = f"{kind}:{folder_task[r['name']]}", r["family"]
            for qset, items in _queries(manifest).items():
                for text, task in items:
                    queries.append({"zoo": kind, "set": qset, "query": text, "task": f"{kind}:{task}"})
        for split in ("fit", "heldout"):
            queries += [{"zoo": "any", "set": f"out of scope/{split}", "query": q, "task": OUT_OF_SCOPE}
                        for q in oos[split]]  # fmt: skip
        n = len(svc.list())
        for q in queries:
            for mode in ("weights", "text"):
                q[mode] = {h.adapter["id"]: round(h.score, 5) for h in svc.search(q["query"], n, mode=mode)}
        svc.close()
    data = {"held_out_voice": held_out, "task_of": task_of, "family_of": family_of, "queries": queries}
    out.write_text(json.dumps(data))
    return data


def is_fit_query(q: dict[str, Any], held_out_voice: str) -> bool:
    s = q["set"]
    if s.startswith("out of scope/"):
        return s.endswith("/fit")
    return (s == "unseen_paraphrases" or s.endswith("/training tasks")) and not s.startswith(held_out_voice + "/")


Signal = dict[int, float]


def top(sig: Signal, n: int) -> set[int]:
    """The ``n`` ids with the highest scores."""
    return set(sorted(sig, key=lambda i: -sig[i])[:n])


def candidates(w: Signal, t: Signal) -> set[int]:
    """The adapters a search could show for a query: each signal's top ``TOP``."""
    return top(w, TOP) | top(t, TOP)


def chosen(data: dict[str, Any], pred: Any) -> Iterator[tuple[int, dict[str, Any], Signal, Signal]]:
    """(query number, query, weights cosines, text cosines) of each query ``pred`` keeps."""
    for qi, q in enumerate(data["queries"]):
        if pred(q):
            yield qi, q, {int(i): v for i, v in q["weights"].items()}, {int(i): v for i, v in q["text"].items()}


def labels(data: dict[str, Any]) -> tuple[dict[int, str], dict[int, str]]:
    """adapter id → task, adapter id → family."""
    return {int(i): t for i, t in data["task_of"].items()}, {int(i): f for i, f in data["family_of"].items()}


def pairs(data: dict[str, Any], pred: Any) -> list[tuple[str, float | None, float | None, int, int]]:
    """(family, weights cos, text cos, relevant, query number) over each chosen query's candidates."""
    task_of, family_of = labels(data)
    return [(family_of[i], w.get(i), t.get(i), int(task_of[i] == q["task"]), qi)
            for qi, q, w, t in chosen(data, pred) for i in candidates(w, t)]  # fmt: skip


def logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50) -> list[float]:
    """Logistic regression by Newton steps: x (n, d), y (n,) → [coef…, intercept]."""
    xb = np.hstack([x, np.ones((len(x), 1))])  # (n, d+1)
    beta = np.zeros(xb.shape[1])
    reg = l2 * np.eye(xb.shape[1])
    reg[-1, -1] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-xb @ beta))
        grad = xb.T @ (p - y) + reg @ beta
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return [round(float(b), 5) for b in beta]


def fit(data: dict[str, Any]) -> dict[str, Any]:
    """family → {"both": [a_w, a_t, b], "weights": [a_w, b]}; "text" → [a_t, b] (all families)."""
    held = data["held_out_voice"]
    rows = pairs(data, lambda q: is_fit_query(q, held))
    out: dict[str, Any] = {"families": {}}
    text = [(t, y) for _, _, t, y, _ in rows if t is not None]
    out["text"] = logistic(np.array([[t] for t, _ in text]), np.array([y for _, y in text], dtype=float))
    for family in sorted({f for f, *_ in rows}):
        mine = [(w, t, y) for f, w, t, y, _ in rows if f == family and w is not None]
        if not mine:
            continue
        y = np.array([r[2] for r in mine], dtype=float)
        both = [(w, t, yy) for w, t, yy in mine if t is not None]
        out["families"][family] = {
            "weights": logistic(np.array([[r[0]] for r in mine]), y),
            "both": logistic(np.array([[w, t] for w, t, _ in both]), np.array([r[2] for r in both], dtype=float)),
        }
    return out


def per_query(data: dict[str, Any], cal: dict[str, Any], pred: Any) -> list[dict[str, Any]]:
    """Per chosen query: the best relevance over its candidates, and (relevance, relevant) pairs."""
    from loradex.relevance import Calibration

    calibration = Calibration.from_dict(cal)
    task_of, family_of = labels(data)
    out = []
    for _, q, w, t in chosen(data, pred):
        rel = [(calibration.relevance(family_of[i], {"weights": w.get(i), "text": t.get(i)}),
                int(task_of[i] == q["task"])) for i in candidates(w, t)]  # fmt: skip
        scored = [(r, y) for r, y in rel if r is not None]
        out.append({"set": q["set"], "zoo": q["zoo"], "best": max((r for r, _ in scored), default=0.0),
                    "pairs": scored, "in_scope": q["task"] != OUT_OF_SCOPE})  # fmt: skip
    return out


def balanced_threshold(rows: list[dict[str, Any]], key: str, taus: Any, tol: float = 0.0) -> float:
    """The first of ``taus`` that maximises the balanced accuracy of "nothing fits when ``key`` <
    tau" over ``rows`` (in scope or not); a later tau must beat the best by more than ``tol``."""
    ins = [r[key] for r in rows if r["in_scope"]]
    oos = [r[key] for r in rows if not r["in_scope"]]
    best, best_score = None, -1.0
    for tau in taus:
        score = sum(v >= tau for v in ins) / len(ins) + sum(v < tau for v in oos) / len(oos)
        if score > best_score + tol:
            best, best_score = float(tau), score
    assert best is not None
    return best


def choose_threshold(rows: list[dict[str, Any]]) -> float:
    """The relevance threshold of "nothing fits", on a 0.01 grid, from the fitting queries."""
    return round(balanced_threshold(rows, "best", np.arange(0.02, 0.9, 0.01), tol=1e-9), 2)


def ece(pairs_: list[tuple[float, int]], bins: int = 10) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error and the reliability diagram's bins."""
    diagram, err, n = [], 0.0, len(pairs_)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(r, y) for r, y in pairs_ if lo <= r < hi or (b == bins - 1 and r == 1.0)]
        if not inside:
            continue
        conf = sum(r for r, _ in inside) / len(inside)
        acc = sum(y for _, y in inside) / len(inside)
        err += len(inside) / n * abs(conf - acc)
        diagram.append({"bin": round(lo, 1), "n": len(inside), "predicted": round(conf, 3), "observed": round(acc, 3)})
    return round(err, 4), diagram


def best_raw(data: dict[str, Any], pred: Any) -> list[dict[str, Any]]:
    """Baselines per chosen query: the best raw text cosine, and the best hybrid ranking score
    (``loradex.search.fuse``, what search showed before relevance) over the query's candidates."""
    from loradex.search import REFERENCE_POOL, fuse

    out = []
    for _, q, w, t in chosen(data, pred):
        fused = fuse({"weights": w, "text": t}, reference=top(w, REFERENCE_POOL) | top(t, REFERENCE_POOL))
        cand = candidates(w, t)
        out.append({"in_scope": q["task"] != OUT_OF_SCOPE, "text cosine": max(t.get(i, -1.0) for i in cand),
                    "hybrid score": max(fused.get(i, -9.0) for i in cand)})  # fmt: skip
    return out


def groups(held: str) -> dict[str, Any]:
    return {
        "fitting: training tasks": lambda q: is_fit_query(q, held) and q["task"] != OUT_OF_SCOPE,
        "fitting: requests no adapter does": lambda q: is_fit_query(q, held) and q["task"] == OUT_OF_SCOPE,
        "held-out tasks (paraphrases, 3 voices)": lambda q: (
            q["set"] == "heldout_tasks"
            or (q["set"].endswith("/held-out tasks") and not q["set"].startswith(held + "/"))
        ),
        f"held-out voice '{held}', training tasks": lambda q: q["set"] == f"{held}/training tasks",
        f"held-out voice '{held}', held-out tasks": lambda q: q["set"] == f"{held}/held-out tasks",
        "held-out requests no adapter does": lambda q: q["set"] == "out of scope/heldout",
    }


def measure(data: dict[str, Any], cal: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows: per query group, the "nothing fits" rate of the calibrated relevance and of the two
    baselines (thresholds fitted the same way, on the fitting queries), and the calibration error;
    and the reliability diagrams."""
    held = data["held_out_voice"]
    tau = cal["nothing_fits_below"]
    fit_raw = best_raw(data, lambda q: is_fit_query(q, held))
    taus = {
        key: balanced_threshold(fit_raw, key, sorted({r[key] for r in fit_raw}))
        for key in ("text cosine", "hybrid score")
    }
    rows, diagrams = [], {}
    for name, pred in groups(held).items():
        per = per_query(data, cal, pred)
        raw = best_raw(data, pred)
        e, diagrams[name] = ece([p for r in per for p in r["pairs"]])
        row: dict[str, Any] = {"queries": name, "n": len(per), "should say nothing fits": "no" if per[0]["in_scope"] else "yes",
                               "relevance: nothing-fits rate": round(sum(r["best"] < tau for r in per) / len(per), 3)}  # fmt: skip
        for key, t in taus.items():
            row[f"baseline {key}: nothing-fits rate"] = round(sum(r[key] < t for r in raw) / len(raw), 3)
        both = [p["best"] < tau and r["text cosine"] < taus["text cosine"] for p, r in zip(per, raw, strict=True)]
        row["relevance and text floor (shipped): nothing-fits rate"] = round(sum(both) / len(both), 3)
        row["relevance ECE (top-10 pairs)"] = e
        rows.append(row)
    return rows, {"diagrams": diagrams, "baseline_thresholds": {k: round(v, 4) for k, v in taus.items()}}


def run(dump_path: Path | None = None, write: bool = False) -> dict[str, Any]:
    path = dump_path or Path(tempfile.mkdtemp()) / "relevance_signals.json"
    data = json.loads(path.read_text()) if path.is_file() else dump(path)
    cal = fit(data)
    cal["nothing_fits_below"] = choose_threshold(
        per_query(data, cal, lambda q: is_fit_query(q, data["held_out_voice"]))
    )
    rows, extra = measure(data, cal)
    cal["nothing_fits_text_below"] = extra["baseline_thresholds"]["text cosine"]
    if write:
        write_calibration(cal)
    return {"rows": rows, "calibration": cal, **extra}


def suite_relevance(args: argparse.Namespace) -> dict[str, Any]:
    """``benchmarks.run relevance``: dump, fit and measure; the fit is not written (use ``fit --write``)."""
    return run(getattr(args, "signals", None))


def write_calibration(cal: dict[str, Any]) -> None:
    from encoders.weight import BUNDLED
    from loradex.relevance import TEXT_CALIBRATION

    for family, coefs in cal["families"].items():
        folder = BUNDLED / family
        if folder.is_dir():
            (folder / "calibration.json").write_text(json.dumps(coefs, indent=1) + "\n")
    TEXT_CALIBRATION.write_text(
        json.dumps({k: cal[k] for k in ("text", "nothing_fits_below", "nothing_fits_text_below")}, indent=1) + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.relevance")
    p.add_argument("cmd", choices=["dump", "fit"])
    p.add_argument("path", type=Path)
    p.add_argument("--write", action="store_true")
    a = p.parse_args(argv)
    if a.cmd == "dump":
        dump(a.path)
        return 0
    res = run(a.path, a.write)
    for row in res["rows"]:
        print(json.dumps(row))
    print(json.dumps(res["calibration"]), json.dumps(res["baseline_thresholds"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
