"""Replay hybrid fusion rules offline on the voice queries (issue 15).

``python -m benchmarks.retrieval_fusion_sweep dump OUT.json`` ingests both zoos once and stores,
per query, every zoo adapter's weights and text cosines (slow: minutes). ``… sweep OUT.json``
replays fusion rules on them (seconds) and prints R@1 / R@5 / MRR on the tuning set
(training-task queries of every voice but the held-out one) and, for reporting only, on the
other sets. Rules mirror ``loradex.search.fuse``: z-scores over the union of each signal's top
``REFERENCE_POOL``, spread floored at ``MIN_SPREAD``. How the numbers in
``results/retrieval_voices_notes.md`` were produced.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

Scores = dict[int, float]
ID_OFFSET = 1_000_000  # per zoo in ``relevance_data``: the zoos' registries number adapters alike
Rule = Callable[[Scores, Scores], Scores]


def dump(out: Path, text_map: bool = False) -> None:
    """Per zoo registry and query: every zoo adapter's weights and text cosines. ``text_map``: also
    fit the registry's text map on the zoo's training texts (as ``retrieval --text-map``) and store
    the plain cosines as ``text_plain``, the mapped ones as ``text``; requests no adapter does
    (``relevance_queries.json``) are added as sets ``out of scope/fit`` and ``out of scope/heldout``
    (task ``none``)."""
    from benchmarks.retrieval import VOICES, ZOOS, _queries, adapter_tasks, zoo_family
    from loradex.service import LocalService

    held_out = json.loads(VOICES.read_text())["held_out_voice"]
    oos = json.loads((VOICES.parent / "relevance_queries.json").read_text())
    data: dict[str, object] = {"held_out_voice": held_out}
    for kind, zoo in ZOOS.items():
        manifest = json.loads((zoo / "manifest.json").read_text())
        family, qs = zoo_family(manifest), _queries(manifest)
        qs["unseen_paraphrases"], qs["heldout_tasks"] = qs["unseen_paraphrases"][::4], qs["heldout_tasks"][::4]
        if text_map:
            qs.update({f"out of scope/{split}": [(q, "none") for q in oos[split]] for split in ("fit", "heldout")})
        with tempfile.TemporaryDirectory() as d:
            svc = LocalService.open(Path(d))
            svc.ingest([zoo / "adapters"])
            rows = svc.list(family=family)
            folder_task = adapter_tasks(manifest)
            rows_out = [{"set": qname, "query": text, "task": task, "weights": _scores(svc, text, "weights", family),
                         "text": _scores(svc, text, "text", family)} for qname, items in qs.items() for text, task in items]  # fmt: skip
            if text_map:
                from benchmarks.zoo import training_texts

                svc.train_text_map(training_texts(manifest))
                for r in rows_out:
                    r["text_plain"], r["text"] = r["text"], _scores(svc, str(r["query"]), "text", family)
            data[kind] = {"task_of": {r["id"]: folder_task[r["name"]] for r in rows}, "queries": rows_out}
            svc.close()
    out.write_text(json.dumps(data))


def _scores(svc: Any, text: str, mode: str, family: str) -> dict[int, float]:
    """Cosine of every adapter of ``family`` with the prompt in ``mode``."""
    n = len(svc.list(family=family))
    return {h.adapter["id"]: h.score for h in svc.search(text, n, mode=mode, family=family)}


def _z(scores: Scores, ref: set[int]) -> Scores:
    from loradex.search import MIN_SPREAD

    vals = [scores[i] for i in ref if i in scores]
    mean = sum(vals) / len(vals)
    std = max((sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5, MIN_SPREAD)
    return {i: (v - mean) / std for i, v in scores.items()}


def zfuse(ww: float, wt: float, conf: Callable[[list[float]], float] | None = None, a: float = 0.0) -> Rule:
    from loradex.search import REFERENCE_POOL

    def rule(w: Scores, t: Scores) -> Scores:
        ref = set(sorted(w, key=lambda i: -w[i])[:REFERENCE_POOL]) | set(
            sorted(t, key=lambda i: -t[i])[:REFERENCE_POOL]
        )
        zw, zt = _z(w, ref), _z(t, ref)
        kw, kt = ww, wt
        if conf is not None:
            kw *= math.exp(a * conf(sorted(zw.values(), reverse=True)))
            kt *= math.exp(a * conf(sorted(zt.values(), reverse=True)))
        return {i: (kw * zw.get(i, 0.0) + kt * zt.get(i, 0.0)) / (kw + kt) for i in set(w) | set(t)}

    return rule


def gate(signal: str, a: float, wt: float = 0.65) -> Rule:
    """Text weight per query: logistic of logit(``wt``) + ``a`` × x, x = text's top-1 z minus the
    weights' (``signal`` "top"), text's top-1 z margin minus the weights' ("margin"), or the best text
    cosine minus 0.5 ("raw")."""
    from loradex.search import REFERENCE_POOL

    def rule(w: Scores, t: Scores) -> Scores:
        ref = set(sorted(w, key=lambda i: -w[i])[:REFERENCE_POOL]) | set(
            sorted(t, key=lambda i: -t[i])[:REFERENCE_POOL]
        )
        zw, zt = _z(w, ref), _z(t, ref)
        sw, st = sorted(zw.values(), reverse=True), sorted(zt.values(), reverse=True)
        x = {"top": st[0] - sw[0], "margin": (st[0] - st[1]) - (sw[0] - sw[1]), "raw": max(t.values()) - 0.5}[signal]
        kt = 1 / (1 + math.exp(-(math.log(wt / (1 - wt)) + a * x)))
        return {i: (1 - kt) * zw.get(i, 0.0) + kt * zt.get(i, 0.0) for i in set(w) | set(t)}

    return rule


def rrf(ww: float, wt: float, k0: int) -> Rule:
    def rule(w: Scores, t: Scores) -> Scores:
        rw = {i: r for r, i in enumerate(sorted(w, key=lambda i: -w[i]))}
        rt = {i: r for r, i in enumerate(sorted(t, key=lambda i: -t[i]))}
        return {i: ww / (k0 + rw.get(i, 10**6)) + wt / (k0 + rt.get(i, 10**6)) for i in set(w) | set(t)}

    return rule


CONFIDENCES: dict[str, Callable[[list[float]], float]] = {
    "top-1 margin": lambda z: z[0] - z[1],
    "top-1 minus mean of next 4": lambda z: z[0] - sum(z[1:5]) / len(z[1:5]),
    "top-1 z": lambda z: z[0],
}


def rules() -> dict[str, Rule]:
    out: dict[str, Rule] = {"weights": lambda w, t: w, "text": lambda w, t: t}
    for wt in (0.3, 0.4, 0.5, 0.6):
        out[f"z {1 - wt:.1f}/{wt:.1f}"] = zfuse(1 - wt, wt)
    for k0 in (5, 20, 60):
        for wt in (0.3, 0.5):
            out[f"rrf k0={k0} text={wt}"] = rrf(1 - wt, wt, k0)
    for name, conf in CONFIDENCES.items():
        for a in (0.5, 1.0, 2.0):
            out[f"z 0.7/0.3 × exp({a} × {name})"] = zfuse(0.7, 0.3, conf, a)
    return out


def mapped_rules() -> dict[str, Rule]:
    """Rules tried on mapped text cosines: the text weight over a wider grid, and the confidence
    weightings on top of the even split."""
    out: dict[str, Rule] = {"weights": lambda w, t: w, "text": lambda w, t: t}
    for wt in (0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9):
        out[f"z {1 - wt:.2f}/{wt:.2f}"] = zfuse(1 - wt, wt)
    for k0 in (5, 20, 60):
        for wt in (0.5, 0.7):
            out[f"rrf k0={k0} text={wt}"] = rrf(1 - wt, wt, k0)
    for base in (0.5, 0.7):
        for name, conf in CONFIDENCES.items():
            for a in (0.5, 1.0, 2.0):
                out[f"z {1 - base:.1f}/{base:.1f} × exp({a} × {name})"] = zfuse(1 - base, base, conf, a)
    for signal in ("top", "margin", "raw"):
        for a in (0.5, 1.0, 2.0, 4.0, 8.0):
            out[f"gate 0.65 text, {signal}, a={a}"] = gate(signal, a)
    return out


def sweep(path: Path, mapped: bool = False) -> None:
    data = json.loads(path.read_text())
    held_out = data.pop("held_out_voice")
    sets: dict[str, Callable[[str], bool]] = {
        "tuning": lambda q: "/training" in q and not q.startswith(held_out + "/"),
        "paraphrases": lambda q: "/" not in q,
        "voices, held-out tasks": lambda q: "/held-out" in q and not q.startswith(held_out + "/"),
    }
    print("rule".ljust(44) + "".join(s.rjust(26) for s in sets))
    for name, rule in (mapped_rules() if mapped else rules()).items():
        cells = []
        for pred in sets.values():
            ranks = []
            for zoo in data.values():
                task_of = {int(i): t for i, t in zoo["task_of"].items()}
                for q in zoo["queries"]:
                    if not pred(q["set"]) or q["task"] == "none":
                        continue
                    s = rule({int(i): v for i, v in q["weights"].items()}, {int(i): v for i, v in q["text"].items()})
                    order = sorted(s, key=lambda i: (-s[i], i))
                    ranks.append(next((r for r, i in enumerate(order) if task_of[i] == q["task"]), len(order)))
            n = len(ranks)
            r1, r5, mrr = (
                sum(r < 1 for r in ranks) / n,
                sum(r < 5 for r in ranks) / n,
                sum(1 / (r + 1) for r in ranks) / n,
            )
            cells.append(f"{r1:.3f}/{r5:.3f}/{mrr:.3f}".rjust(26))
        print(name.ljust(44) + "".join(cells))


def relevance_data(data: dict[str, Any], text_key: str = "text") -> dict[str, Any]:
    """A ``--text-map`` dump in ``benchmarks.relevance``'s form (one id space: image ids offset by
    ``ID_OFFSET``), with ``text_key``'s cosines as the text signal."""
    out: dict[str, Any] = {"held_out_voice": data["held_out_voice"], "task_of": {}, "family_of": {}, "queries": []}
    for n, kind in enumerate(k for k in data if k != "held_out_voice"):
        zoo = data[kind]
        gid = {int(i): n * ID_OFFSET + int(i) for i in zoo["task_of"]}
        for i, task in zoo["task_of"].items():
            out["task_of"][gid[int(i)]], out["family_of"][gid[int(i)]] = f"{kind}:{task}", f"zoo-{kind}"
        for q in zoo["queries"]:
            out["queries"].append({"zoo": kind, "set": q["set"], "query": q["query"],
                                   "task": q["task"] if q["task"] == "none" else f"{kind}:{q['task']}",
                                   "weights": {gid[int(i)]: v for i, v in q["weights"].items()},
                                   "text": {gid[int(i)]: v for i, v in q[text_key].items()}})  # fmt: skip
    return out


def verdict_rates(data: dict[str, Any], cal: Any, weights: dict[str, float]) -> dict[str, float]:
    """Per query group, the share of queries search says "nothing fits" for, as ``Searcher.search``
    decides it: relevances of the top ``VERDICT_POOL`` hybrid hits (fused with ``weights``) and the
    best text cosine against the floor."""
    from benchmarks.relevance import OUT_OF_SCOPE, chosen, groups, labels, top
    from loradex.search import REFERENCE_POOL, VERDICT_POOL, fuse

    _, family_of = labels(data)
    out = {}
    for name, pred in groups(data["held_out_voice"]).items():
        said = []
        for _, _, w, t in chosen(data, pred):
            fused = fuse({"weights": w, "text": t}, weights, top(w, REFERENCE_POOL) | top(t, REFERENCE_POOL))
            shown = sorted(fused, key=lambda i: (-fused[i], i))[:VERDICT_POOL]
            rel = [cal.relevance(family_of[i], {"weights": w.get(i), "text": t.get(i)}) for i in shown]
            said.append(cal.nothing_fits(rel, max(t.values())) is True)
        out[name] = round(sum(said) / len(said), 3)
    assert OUT_OF_SCOPE == "none"
    return out


def fit_mapped(path: Path, weights: dict[str, float], write: bool = False) -> dict[str, Any]:
    """Fit the relevance calibration on mapped text cosines (``benchmarks.relevance``'s fitting
    queries and rules), then per query group the "nothing fits" rate: plain cosines with the shipped
    calibration (a registry without a map), mapped cosines with the shipped calibration (a map before
    this fit), mapped cosines with this fit and ``weights`` (a map now). ``write``: store the fit and
    ``weights`` as ``MAPPED_SEARCH`` (new maps carry them)."""
    from benchmarks.relevance import choose_threshold, fit, is_fit_query, measure, per_query
    from encoders.registry_text_map import MAPPED_SEARCH
    from encoders.weight import BUNDLED
    from loradex.relevance import Calibration
    from loradex.search import SIGNAL_WEIGHTS

    raw = json.loads(path.read_text())
    mapped, plain = relevance_data(raw, "text"), relevance_data(raw, "text_plain")
    cal = fit(mapped)
    cal["nothing_fits_below"] = choose_threshold(
        per_query(mapped, cal, lambda q: is_fit_query(q, mapped["held_out_voice"]))
    )
    rows, extra = measure(mapped, cal)
    cal["nothing_fits_text_below"] = extra["baseline_thresholds"]["text cosine"]
    shipped = Calibration.load(
        {f: json.loads((BUNDLED / f / "calibration.json").read_text()) for f in ("zoo-text", "zoo-image")}
    )
    new = shipped.for_mapped_text({**cal, "families": {f: {"both": c["both"]} for f, c in cal["families"].items()}})
    rates = {
        "no map (plain cosines, shipped calibration)": verdict_rates(plain, shipped, SIGNAL_WEIGHTS),
        "map, shipped calibration and fusion": verdict_rates(mapped, shipped, SIGNAL_WEIGHTS),
        "map, mapped calibration and fusion": verdict_rates(mapped, new, weights),
    }
    settings = {"signal_weights": weights,
                "calibration": {"text": cal["text"], "families": {f: {"both": c["both"]} for f, c in cal["families"].items()},
                                "nothing_fits_below": cal["nothing_fits_below"],
                                "nothing_fits_text_below": cal["nothing_fits_text_below"]}}  # fmt: skip
    if write:
        MAPPED_SEARCH.write_text(json.dumps(settings, indent=1) + "\n")
    return {"settings": settings, "verdicts": rates, "relevance_rows": rows}


if __name__ == "__main__":
    cmd, file = sys.argv[1], Path(sys.argv[2])
    if cmd == "dump":
        dump(file, "--text-map" in sys.argv[3:])
    elif cmd == "fit-mapped":  # fit-mapped FILE TEXT_WEIGHT [--write]
        wt = float(sys.argv[3])
        print(
            json.dumps(fit_mapped(file, {"weights": round(1 - wt, 4), "text": wt}, "--write" in sys.argv[4:]), indent=1)
        )
    else:
        sweep(file, "--mapped" in sys.argv[3:])
