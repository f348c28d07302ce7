"""Replay hybrid fusion rules offline on the voice queries (issue 15).

``python -m benchmarks.retrieval_fusion_sweep dump OUT.json`` ingests both zoos once and stores,
per query, every zoo adapter's weights and text cosines (slow: minutes; ``--text-map``: with the
registry's text map, ``--tune-text``: a tuned one). ``… sweep OUT.json``
replays fusion rules on them (seconds) and prints R@1 / R@5 / MRR on the tuning set
(training-task queries of every voice but the held-out one) and, for reporting only, on the
other sets. Rules mirror ``loradex.search.fuse``: z-scores over the union of each signal's top
``REFERENCE_POOL``, spread floored at ``MIN_SPREAD``. How the numbers in
``results/retrieval_voices_notes.md`` were produced. ``… trust OUT.json [FIGURES.json]`` replays
per-query trust gates on a ``--text-map`` dump (``results/retrieval_trust.md``).
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


def dump(out: Path, text_map: bool = False, extra: Path | None = None, tune: bool = False) -> None:
    """Per zoo registry and query: every zoo adapter's weights and text cosines. ``text_map``: also
    fit the registry's text map on the zoo's training texts (as ``retrieval --text-map``) and store
    the plain cosines as ``text_plain``, the mapped ones as ``text``; requests no adapter does
    (``relevance_queries.json``) are added as sets ``out of scope/fit`` and ``out of scope/heldout``
    (task ``none``). ``extra``: a queries file in ``retrieval_fresh.json``'s form, added as set
    ``extra_set(...)`` (a name none of the other sets' selectors matches, so their figures stay).
    ``tune``: the map fitted with the text-encoder tune (``train-encoder --text --tune``): ``text``
    holds the tuned map's cosines (the mean of both sides)."""
    from benchmarks.retrieval import VOICES, ZOOS, _queries, adapter_tasks, zoo_family
    from loradex.service import LocalService

    held_out = json.loads(VOICES.read_text())["held_out_voice"]
    oos = json.loads((VOICES.parent / "relevance_queries.json").read_text())
    more = json.loads(extra.read_text()) if extra is not None else None
    data: dict[str, object] = {"held_out_voice": held_out}
    for kind, zoo in ZOOS.items():
        manifest = json.loads((zoo / "manifest.json").read_text())
        family, qs = zoo_family(manifest), _queries(manifest)
        qs["unseen_paraphrases"], qs["heldout_tasks"] = qs["unseen_paraphrases"][::4], qs["heldout_tasks"][::4]
        if text_map:
            qs.update({f"out of scope/{split}": [(q, "none") for q in oos[split]] for split in ("fit", "heldout")})
        if more is not None:
            qs[extra_set(more["voice"])] = [(q, task) for q, task in more.get(kind, [])]
        with tempfile.TemporaryDirectory() as d:
            svc = LocalService.open(Path(d))
            svc.ingest([zoo / "adapters"])
            rows = svc.list(family=family)
            folder_task = adapter_tasks(manifest)
            rows_out = [{"set": qname, "query": text, "task": task, "weights": _scores(svc, text, "weights", family),
                         "text": _scores(svc, text, "text", family)} for qname, items in qs.items() for text, task in items]  # fmt: skip
            if text_map:
                from benchmarks.zoo import training_texts

                tuned = None
                if tune:
                    from encoders.registry_text_tune import TuneConfig

                    tuned = TuneConfig()
                svc.train_text_map(training_texts(manifest), tune=tuned)
                for r in rows_out:
                    r["text_plain"], r["text"] = r["text"], _scores(svc, str(r["query"]), "text", family)
            data[kind] = {"task_of": {r["id"]: folder_task[r["name"]] for r in rows}, "queries": rows_out}
            svc.close()
    out.write_text(json.dumps(data))


def extra_set(voice: str) -> str:
    """The dump's set name for an extra queries file's requests (all on training tasks): no ``/``, not
    ``unseen_paraphrases`` / ``heldout_tasks``, so no selector of ``sweep`` or ``trust`` takes it."""
    return f"{voice}: training tasks"


def _scores(svc: Any, text: str, mode: str, family: str) -> dict[int, float]:
    """Cosine of every adapter of ``family`` with the prompt in ``mode``."""
    n = len(svc.list(family=family))
    return {h.adapter["id"]: h.score for h in svc.search(text, n, mode=mode, family=family)}


def _z(scores: Scores, ref: set[int]) -> Scores:
    from loradex.ranking import MIN_SPREAD

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
        "paraphrases": lambda q: q in ("unseen_paraphrases", "heldout_tasks"),
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


def fit_mapped(path: Path, weights: dict[str, float], write: bool = False, tuned: bool = False) -> dict[str, Any]:
    """Fit the relevance calibration on mapped text cosines (``benchmarks.relevance``'s fitting
    queries and rules), then per query group the "nothing fits" rate: plain cosines with the shipped
    calibration (a registry without a map), mapped cosines with the shipped calibration (a map before
    this fit), mapped cosines with this fit and ``weights`` (a map now). ``write``: store the fit and
    ``weights`` as ``MAPPED_SEARCH`` (new maps carry them). ``tuned``: ``path`` is a ``dump --tune-text``;
    ``write`` stores ``MAPPED_SEARCH``'s settings with this calibration and ``weights`` as ``TUNED_SEARCH``
    (what tuned maps carry)."""
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
    kept = {k: v for k, v in json.loads(MAPPED_SEARCH.read_text()).items() if k == "untrained_top_weights"}
    settings = {"signal_weights": weights, **kept,
                "calibration": {"text": cal["text"], "families": {f: {"both": c["both"]} for f, c in cal["families"].items()},
                                "nothing_fits_below": cal["nothing_fits_below"],
                                "nothing_fits_text_below": cal["nothing_fits_text_below"]}}  # fmt: skip
    if write and tuned:  # the mapped settings' other keys kept (re-rank, per-family weights): not refitted
        from encoders.registry_text_map import TUNED_SEARCH

        settings = {**json.loads(MAPPED_SEARCH.read_text()), **settings}
        TUNED_SEARCH.write_text(json.dumps(settings, indent=1) + "\n")
    elif write:
        MAPPED_SEARCH.write_text(json.dumps(settings, indent=1) + "\n")
    return {"settings": settings, "verdicts": rates, "relevance_rows": rows}


# --- trust gate (issue 15, "fusion that knows when to trust which signal") -------------------------
# Pre-registered before any gated run. A gate fuses at the map's fixed weights (FIXED) when it
# trusts the weight encoder for the query and text-led (TEXT_LED) when it does not. Two gates:
#  "familiar"   the prompt's best cosine with the encoder's trained texts ≥ tau; tau: the largest
#               of TRUST_GRID keeping both training-task query sets (the tuning set and the unseen
#               paraphrases) within TIE_MRR of the fixed fusion's MRR;
#  "known top"  the text signal's best adapter is one the encoder was trained on (no parameter).
# Leave-one-task-out simulates an unseen task on training-task queries: the query's own task's
# texts (familiar) or adapters (known top) count as not trained on. The gate to ship: of those
# within TIE_MRR on both training-task sets, the one that flags the most simulated unseen-task
# queries of the tuning set (ties: the one flagging fewer real training-task queries).
FIXED = (0.35, 0.65)  # encoders/text_map_search.json
TEXT_LED = (0.1, 0.9)  # weights keep a small vote: weight-only adapters still rank
TRUST_GRID = [round(0.3 + 0.01 * i, 2) for i in range(66)]
TIE_MRR = 0.005


def trust_features(data: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Per zoo, per query (dump order): ``fam`` (best cosine of the prompt with the zoo encoder's
    trained texts: its training tasks' descriptions and training paraphrases, as
    ``benchmarks.retrieval`` trains the bundled encoders), ``fam_loo`` (the same without the query's own
    task's texts: the query's task simulated unseen; equal to ``fam`` for tasks not trained on),
    ``fam_top3`` (mean of the best three), ``known`` (1.0 when the text signal's best adapter is of a
    task the encoder was trained on), ``known_loo`` (the same with the query's own task unseen), and
    the other query-time signals: the weights' top-1 z, text's top-1 z minus the weights', each
    signal's top-1 z margin, whether both signals' best adapter is the same."""
    import numpy as np

    from benchmarks.retrieval import ZOOS
    from benchmarks.zoo import training_texts
    from encoders.text import get_text_encoder

    enc = get_text_encoder()
    out = {}
    for kind, zoo in ZOOS.items():
        if kind not in data:
            continue
        manifest = json.loads((zoo / "manifest.json").read_text())
        by_task: dict[str, list[str]] = {}
        for entry in training_texts(manifest).values():
            by_task.setdefault(entry["task"], [])
            by_task[entry["task"]] += [t for t in entry["texts"] if t not in by_task[entry["task"]]]
        texts = list(dict.fromkeys(t for ts in by_task.values() for t in ts))
        task_of_text = {t: task for task, ts in by_task.items() for t in ts}
        vecs = enc.encode(texts)  # (n, dim)
        owner = np.array([task_of_text[t] for t in texts])
        qs = data[kind]["queries"]
        qv = enc.encode([q["query"] for q in qs])  # (m, dim)
        cos = qv @ vecs.T  # (m, n)
        task_of = {int(i): t for i, t in data[kind]["task_of"].items()}
        f: dict[str, list[float]] = {k: [] for k in ("fam", "fam_loo", "fam_top3", "known", "known_loo", "weights top z",
                                                     "text top z minus weights'", "text margin", "weights margin",
                                                     "top-1 agree")}  # fmt: skip
        for k, q in enumerate(qs):
            f["fam"].append(float(cos[k].max()))
            f["fam_loo"].append(float(cos[k][owner != q["task"]].max()))
            f["fam_top3"].append(float(np.sort(cos[k])[-3:].mean()))
            text = {int(i): v for i, v in q["text"].items()}
            top = task_of[min(text, key=lambda i: (-text[i], i))]  # the text signal's best adapter's task
            f["known"].append(float(top in by_task))
            f["known_loo"].append(float(top in by_task and top != q["task"]))
            w = {int(i): v for i, v in q["weights"].items()}
            ref = top_ids(w) | top_ids(text)
            zw, zt = (sorted(_z(sig, ref).values(), reverse=True) for sig in (w, text))
            f["weights top z"].append(zw[0])
            f["text top z minus weights'"].append(zt[0] - zw[0])
            f["text margin"].append(zt[0] - zt[1])
            f["weights margin"].append(zw[0] - zw[1])
            f["top-1 agree"].append(float(min(w, key=lambda i: (-w[i], i)) == min(text, key=lambda i: (-text[i], i))))
        out[kind] = f
    return out


def top_ids(scores: Scores) -> set[int]:
    """The ``REFERENCE_POOL`` best-scored ids (``fuse``'s reference pool, one signal's share)."""
    from loradex.search import REFERENCE_POOL

    return set(sorted(scores, key=lambda i: -scores[i])[:REFERENCE_POOL])


def trust_gate(tau: float, key: str = "fam", led: tuple[float, float] = TEXT_LED) -> Callable[..., Scores]:
    """z-fusion at ``FIXED`` when the query's ``key`` feature ≥ ``tau``, at ``led`` below."""
    fixed, text_led = zfuse(*FIXED), zfuse(*led)

    def rule(w: Scores, t: Scores, feat: dict[str, float]) -> Scores:
        return (fixed if feat[key] >= tau else text_led)(w, t)

    return rule


def _ranks(data: dict[str, Any], feats: dict[str, Any], pred: Callable[[str, str], bool],
           rule: Callable[..., Scores]) -> list[int]:  # fmt: skip
    """Rank of the first adapter of each chosen query's task (``pred(zoo, set)``) under ``rule``."""
    ranks = []
    for kind, zoo in data.items():
        if kind == "held_out_voice":
            continue
        task_of = {int(i): t for i, t in zoo["task_of"].items()}
        for k, q in enumerate(zoo["queries"]):
            if q["task"] == "none" or not pred(kind, q["set"]):
                continue
            feat = {name: vals[k] for name, vals in feats[kind].items()}
            s = rule({int(i): v for i, v in q["weights"].items()}, {int(i): v for i, v in q["text"].items()}, feat)
            order = sorted(s, key=lambda i: (-s[i], i))
            ranks.append(next((r for r, i in enumerate(order) if task_of[i] == q["task"]), len(order)))
    return ranks


def _metrics(ranks: list[int]) -> tuple[float, float, float]:
    n = len(ranks)
    return (sum(r < 1 for r in ranks) / n, sum(r < 5 for r in ranks) / n, sum(1 / (r + 1) for r in ranks) / n)


def _better_worse(before: list[int], after: list[int]) -> tuple[int, int]:
    return sum(b < a for a, b in zip(before, after, strict=True)), sum(
        b > a for a, b in zip(before, after, strict=True)
    )


def _auc(pos: list[float], neg: list[float]) -> float:
    """P(a ``pos`` value > a ``neg`` value), ties half."""
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def trust(path: Path) -> dict[str, Any]:
    """Choose a trust gate on training-task queries (the pre-registered rule above) and report every
    split for weights, text, the fixed fusion and each gate; returns the figures."""
    data = json.loads(path.read_text())
    held_out = data["held_out_voice"]
    feats = trust_features(data)
    tuning = lambda z, s: "/training" in s and not s.startswith(held_out + "/")  # noqa: E731
    paras = lambda z, s: s == "unseen_paraphrases"  # noqa: E731
    train_sets = {"tuning": tuning, "paras": paras}
    fixed = zfuse(*FIXED)
    plain: dict[str, Callable[..., Scores]] = {
        "weights": lambda w, t, f: w, "text": lambda w, t, f: t, "fixed": lambda w, t, f: fixed(w, t),
    }  # fmt: skip

    def flagged(key: str, tau: float, pred: Callable[[str, str], bool]) -> float:
        v = [feats[z][key][k] < tau for z in feats for k, q in enumerate(data[z]["queries"]) if pred(z, q["set"])]
        return sum(v) / len(v)

    def assess(key: str, tau: float) -> dict[str, Any]:
        rule = trust_gate(tau, key)
        row: dict[str, Any] = {"key": key, "tau": tau}
        row.update({n: _metrics(_ranks(data, feats, p, rule)) for n, p in train_sets.items()})
        row["flags_training_queries"] = flagged(key, tau, tuning)
        row["flags_simulated_unseen"] = flagged(key + "_loo", tau, tuning)
        row["ok"] = all(row[n][2] >= base[n] - TIE_MRR for n in train_sets)
        return row

    base = {n: _metrics(_ranks(data, feats, p, plain["fixed"]))[2] for n, p in train_sets.items()}
    grid = [assess("fam", tau) for tau in TRUST_GRID]
    candidates = {
        "familiar": max((r for r in grid if r["ok"]), key=lambda r: r["tau"]),
        "known top": assess("known", 0.5),
    }
    ok = {n: r for n, r in candidates.items() if r["ok"]}
    chosen = max(ok, key=lambda n: (ok[n]["flags_simulated_unseen"], -ok[n]["flags_training_queries"])) if ok else None
    rules = {**plain, **{f"gate {n}": trust_gate(r["tau"], r["key"]) for n, r in candidates.items()}}
    z_gate = gate("top", 2.0)  # retrieval_voices_fusion.md's untaken candidate, for comparison only
    rules["z-gate top a=2"] = lambda w, t, f: z_gate(w, t)

    sets = sorted({(z, q["set"]) for z in feats for q in data[z]["queries"] if q["task"] != "none"})
    rows = []
    for z, st in sets:
        pred = lambda zz, ss, z=z, st=st: (zz, ss) == (z, st)  # noqa: E731
        rows.append({"zoo": z, "set": st, "n": len(_ranks(data, feats, pred, plain["text"])),
                     **{n: _metrics(_ranks(data, feats, pred, r)) for n, r in rules.items()}})  # fmt: skip
    splits = {
        "training tasks: tuning set (keywords/everyday/jargon)": tuning,
        "training tasks: unseen paraphrases": paras,
        "training tasks: long (held-out voice)": lambda z, s: s == f"{held_out}/training tasks",
        "held-out tasks: keywords/everyday/jargon": lambda z, s: "/held-out" in s and not s.startswith(held_out + "/"),
        "held-out tasks: paraphrases (heldout_tasks)": lambda z, s: s == "heldout_tasks",
        "held-out tasks: long (held-out voice)": lambda z, s: s == f"{held_out}/held-out tasks",
    }
    voices = sorted(
        {q["set"] for z in feats for q in data[z]["queries"] if "/" in q["set"] and "scope" not in q["set"]}
    )
    splits.update({f"both zoos: {v}": (lambda z, s, v=v: s == v) for v in voices})
    pooled = [{"split": name, "n": len(_ranks(data, feats, p, plain["text"])),
               **{n: _metrics(_ranks(data, feats, p, r)) for n, r in rules.items()}} for name, p in splits.items()]  # fmt: skip
    changed = {  # per split and gate: queries the gate ranks better / worse than the fixed fusion
        name: {n: _better_worse(_ranks(data, feats, p, plain["fixed"]), _ranks(data, feats, p, r))
               for n, r in rules.items() if n.startswith(("gate", "z-gate"))} for name, p in splits.items()
    }  # fmt: skip
    fires = {
        name: {g: flagged(r["key"], r["tau"], p) for g, r in candidates.items()}
        for name, p in {**splits, "requests no adapter does": lambda z, s: s.startswith("out of scope/")}.items()
    }

    def values(key: str, pred: Callable[[str, str], bool]) -> list[float]:
        return [feats[z][key][k] for z in feats for k, q in enumerate(data[z]["queries"]) if pred(z, q["set"])]

    voice_train = lambda z, s: "/training" in s  # noqa: E731
    voice_held = lambda z, s: "/held-out" in s  # noqa: E731
    separation = {  # AUC, reporting only: 0.5 = the feature does not tell the two apart
        f"{key}: training- vs held-out-task queries, {what}": _auc(values(key, tr), values(key, he))
        for key in (
            "fam",
            "fam_top3",
            "known",
            "weights top z",
            "text top z minus weights'",
            "text margin",
            "weights margin",
            "top-1 agree",
        )
        for what, tr, he in (
            ("voices", voice_train, voice_held),
            ("paraphrases", paras, lambda z, s: s == "heldout_tasks"),
        )
    }
    separation["fam vs fam_loo, voices' training-task queries (what the simulation moves)"] = _auc(
        values("fam", voice_train), values("fam_loo", voice_train)
    )
    quantiles = {}
    for name, key, pred in (("voices, training tasks: fam", "fam", voice_train), ("voices, training tasks: fam_loo", "fam_loo", voice_train),
                            ("voices, held-out tasks: fam", "fam", voice_held), ("unseen paraphrases: fam", "fam", paras),
                            ("heldout_tasks paraphrases: fam", "fam", lambda z, s: s == "heldout_tasks"),
                            ("requests no adapter does: fam", "fam", lambda z, s: s.startswith("out of scope/"))):  # fmt: skip
        v = sorted(values(key, pred))
        quantiles[name] = {
            "n": len(v),
            **{f"q{p}": round(v[min(len(v) - 1, int(p / 100 * len(v)))], 3) for p in (10, 50, 90)},
        }
    return {"fixed": FIXED, "text_led": TEXT_LED, "base_mrr": base, "grid": grid, "candidates": candidates,
            "chosen": chosen, "rows": rows, "pooled": pooled, "changed": changed, "fires": fires, "separation": separation,
            "quantiles": quantiles}  # fmt: skip


# --- known-top gate, decided on fresh training-task requests ------------------------------------
# Fixed before the fresh requests (retrieval_fresh.json, committed first) were dumped or replayed:
# ship the known-top gate if, on the fresh requests (both zoos pooled), its MRR ≥ the fixed fusion's
# − TIE_MRR, and on the tuning set it loses no more than OLD_TUNING_LOSS (what retrieval_trust.json
# already records: 0.848 → 0.841). Text-led weights stay TEXT_LED (not tuned).
OLD_TUNING_LOSS = 0.007


def known(path: Path, voice: str = "fresh") -> dict[str, Any]:
    """Fixed fusion vs the known-top gate on a dump made with ``--extra`` (the ``voice`` requests),
    on the fresh requests (pooled and per zoo) and the tuning set, with the decision rule above."""
    data = json.loads(path.read_text())
    held_out = data["held_out_voice"]
    feats = trust_features(data)
    fixed = zfuse(*FIXED)
    rules: dict[str, Callable[..., Scores]] = {
        "weights": lambda w, t, f: w, "text": lambda w, t, f: t, "fixed": lambda w, t, f: fixed(w, t),
        "known top": trust_gate(0.5, "known"),
    }  # fmt: skip
    fresh = extra_set(voice)
    splits: dict[str, Callable[[str, str], bool]] = {
        f"{voice} training-task requests, both zoos": lambda z, s: s == fresh,
        f"{voice}, text zoo": lambda z, s: z == "text" and s == fresh,
        f"{voice}, image zoo": lambda z, s: z == "image" and s == fresh,
        "tuning set (keywords/everyday/jargon, training tasks)": lambda z, s: (
            "/training" in s and not s.startswith(held_out + "/")
        ),
        "unseen paraphrases (training tasks)": lambda z, s: s == "unseen_paraphrases",
        "held-out tasks: keywords/everyday/jargon": lambda z, s: "/held-out" in s and not s.startswith(held_out + "/"),
        "held-out tasks: paraphrases": lambda z, s: s == "heldout_tasks",
    }
    rows, moved = [], {}
    for name, pred in splits.items():
        ranks = {n: _ranks(data, feats, pred, r) for n, r in rules.items()}
        flags = [1 - feats[z]["known"][k] for z in feats for k, q in enumerate(data[z]["queries"]) if pred(z, q["set"])]
        rows.append({"split": name, "n": len(ranks["fixed"]), "gate fires": sum(flags) / len(flags),
                     **{n: _metrics(r) for n, r in ranks.items()}})  # fmt: skip
        moved[name] = _better_worse(ranks["fixed"], ranks["known top"])
    fresh_row, tuning_row = rows[0], rows[3]
    fresh_ok = fresh_row["known top"][2] >= fresh_row["fixed"][2] - TIE_MRR
    old_ok = tuning_row["fixed"][2] - tuning_row["known top"][2] <= OLD_TUNING_LOSS + 1e-9
    losers = []  # fresh requests the gate ranks worse: query, task, text's best task, rank fixed → gate
    for kind, zoo in data.items():
        if kind == "held_out_voice":
            continue
        task_of = {int(i): t for i, t in zoo["task_of"].items()}
        for k, q in enumerate(zoo["queries"]):
            if q["set"] != fresh:
                continue
            w, t = ({int(i): v for i, v in q[key].items()} for key in ("weights", "text"))
            feat = {name: vals[k] for name, vals in feats[kind].items()}
            r = []
            for rule in (rules["fixed"], rules["known top"]):
                sc = rule(w, t, feat)
                order = sorted(sc, key=lambda i: (-sc[i], i))
                r.append(next((n for n, i in enumerate(order) if task_of[i] == q["task"]), len(order)))
            if r[0] != r[1]:
                losers.append({"zoo": kind, "query": q["query"], "task": q["task"],
                               "text's best": task_of[min(t, key=lambda i: (-t[i], i))], "rank fixed": r[0] + 1,
                               "rank known top": r[1] + 1})  # fmt: skip
    return {"fixed": FIXED, "text_led": TEXT_LED, "rows": rows, "better / worse": moved, "changed queries": losers,
            "fresh within TIE_MRR": fresh_ok, "tuning loss within OLD_TUNING_LOSS": old_ok,
            "ship": fresh_ok and old_ok}  # fmt: skip


FAMILY_GRID = [round(0.05 * i, 2) for i in range(2, 19)]  # the weights' share when text's best is known


def per_family(path: Path, voice: str = "fresh") -> dict[str, Any]:
    """Per zoo (= family), the known-top gate with the weights' share of the known-top case chosen for
    that family alone (``FAMILY_GRID``; the text-led case stays ``TEXT_LED``), on a dump made with
    ``--text-map --extra``. Chosen by MRR over the family's training-task queries (the voices but the
    held-out one, the unseen paraphrases, the ``voice`` requests; ties: nearest ``FIXED``); held-out
    tasks and the held-out voice are reported, never used."""
    data = json.loads(path.read_text())
    held_out = data["held_out_voice"]
    feats = trust_features(data)
    fresh = extra_set(voice)

    def training(s: str) -> bool:
        return s in ("unseen_paraphrases", fresh) or ("/training" in s and not s.startswith(held_out + "/"))

    splits: dict[str, Callable[[str], bool]] = {
        "choice: training-task queries": training,
        "held-out tasks: keywords/everyday/jargon": lambda s: "/held-out" in s and not s.startswith(held_out + "/"),
        "held-out tasks: paraphrases": lambda s: s == "heldout_tasks",
        f"held-out voice '{held_out}', training tasks": lambda s: s.startswith(f"{held_out}/training"),
        f"held-out voice '{held_out}', held-out tasks": lambda s: s.startswith(f"{held_out}/held-out"),
    }
    out: dict[str, Any] = {}
    for kind in (k for k in data if k != "held_out_voice"):

        def gate_at(ww: float) -> Callable[..., Scores]:
            known_rule, led = zfuse(ww, round(1 - ww, 4)), zfuse(*TEXT_LED)
            return lambda w, t, f: (known_rule if f["known"] >= 0.5 else led)(w, t)

        def mrr(rule: Callable[..., Scores], pred: Callable[[str], bool], kind: str = kind) -> tuple[float, ...]:
            return _metrics(_ranks(data, feats, lambda z, s: z == kind and pred(s), rule))

        grid = {ww: mrr(gate_at(ww), training)[2] for ww in FAMILY_GRID}
        best = max(grid.values())
        chosen = min((ww for ww, v in grid.items() if v >= best - 1e-9), key=lambda ww: abs(ww - FIXED[0]))
        rules = {"weights": lambda w, t, f: w, "text": lambda w, t, f: t, "shipped (known top)": gate_at(FIXED[0]),
                 f"per family (known top at {chosen})": gate_at(chosen)}  # fmt: skip
        out[kind] = {"grid (training MRR)": grid, "chosen": chosen,
                     "rows": {name: {r: mrr(rule, pred) for r, rule in rules.items()} for name, pred in splits.items()}}  # fmt: skip
    return out


def per_family_table(res: dict[str, Any]) -> str:
    """``per_family``'s figures as markdown (R@1 / R@5 / MRR)."""
    lines = []
    for kind, r in res.items():
        cols = list(next(iter(r["rows"].values())))
        lines += [f"**{kind} zoo** (weights' share when text's best is known: chosen {r['chosen']}, shipped {FIXED[0]})",
                  "", "| split | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]  # fmt: skip
        for split, row in r["rows"].items():
            lines.append(f"| {split} | " + " | ".join(" / ".join(f"{v:.3f}" for v in row[c]) for c in cols) + " |")
        lines.append("")
    return "\n".join(lines)


def known_table(res: dict[str, Any]) -> str:
    """``known``'s figures as markdown (R@1 / R@5 / MRR)."""
    cols = ["weights", "text", "fixed", "known top"]
    out = ["| split | n | gate fires | " + " | ".join(cols) + " | better / worse |", "|" + "---|" * (len(cols) + 4)]
    for r in res["rows"]:
        bw = res["better / worse"][r["split"]]
        out.append(f"| {r['split']} | {r['n']} | {r['gate fires']:.1%} | "
                   + " | ".join(" / ".join(f"{v:.3f}" for v in r[c]) for c in cols) + f" | {bw[0]} / {bw[1]} |")  # fmt: skip
    return "\n".join(out)


def trust_table(res: dict[str, Any]) -> str:
    """``trust``'s figures as markdown: pooled splits, then per zoo and query set (R@1 / R@5 / MRR),
    with whether each hybrid is ≥ the better single signal on all three."""
    gates = [k for k in res["pooled"][0] if "gate" in k]
    cols = ["weights", "text", "fixed", *gates]

    def fmt(m: list[float]) -> str:
        return " / ".join(f"{v:.3f}" for v in m)

    def geq(row: dict[str, Any], name: str) -> str:
        best = [max(a, b) for a, b in zip(row["weights"], row["text"], strict=True)]
        return "".join("y" if v >= b - 1e-9 else "n" for v, b in zip(row[name], best, strict=True))

    head = "| {} | n | {} | {} |".format(
        "{}", " | ".join(cols), " | ".join(f"{c} ≥ best single" for c in ["fixed", *gates])
    )
    out = [head.format("split"), "|" + "---|" * (2 + len(cols) + 1 + len(gates))]
    for r in res["pooled"]:
        out.append(f"| {r['split']} | {r['n']} | " + " | ".join(fmt(r[c]) for c in cols) + " | "
                   + " | ".join(geq(r, c) for c in ["fixed", *gates]) + " |")  # fmt: skip
    out += ["", head.format("zoo: set"), "|" + "---|" * (2 + len(cols) + 1 + len(gates))]
    for r in res["rows"]:
        out.append(f"| {r['zoo']}: {r['set']} | {r['n']} | " + " | ".join(fmt(r[c]) for c in cols) + " | "
                   + " | ".join(geq(r, c) for c in ["fixed", *gates]) + " |")  # fmt: skip
    for c in ["fixed", *gates]:
        flags = [geq(r, c) for r in res["rows"]]
        out.append(f"\n{c}: ≥ the better single signal on all three metrics in {sum(f == 'yyy' for f in flags)} of "
                   f"{len(flags)} rows, {sum(f.count('y') for f in flags)} of {3 * len(flags)} cells")  # fmt: skip
    return "\n".join(out)


if __name__ == "__main__":
    cmd, file = sys.argv[1], Path(sys.argv[2])
    if cmd == "dump":
        rest = sys.argv[3:]
        dump(file, "--text-map" in rest or "--tune-text" in rest,
             Path(rest[rest.index("--extra") + 1]) if "--extra" in rest else None, "--tune-text" in rest)  # fmt: skip
    elif cmd == "trust":  # trust FILE [OUT.json]
        res = trust(file)
        if len(sys.argv) > 3:
            Path(sys.argv[3]).write_text(json.dumps(res, indent=1))
        print(json.dumps({k: res[k] for k in ("candidates", "chosen", "separation", "quantiles", "fires", "changed")}))
        print(trust_table(res))
    elif cmd == "known":  # known FILE [OUT.json]: FILE from dump --text-map --extra retrieval_fresh.json
        res = known(file)
        if len(sys.argv) > 3:
            Path(sys.argv[3]).write_text(json.dumps(res, indent=1))
        print(json.dumps({k: v for k, v in res.items() if k not in ("rows",)}, indent=1))
        print(known_table(res))
    elif cmd == "per-family":  # per-family FILE [OUT.json]: FILE from dump --text-map --extra retrieval_fresh.json
        res = per_family(file)
        if len(sys.argv) > 3:
            Path(sys.argv[3]).write_text(json.dumps(res, indent=1))
        print(per_family_table(res))
    elif cmd == "fit-mapped":  # fit-mapped FILE TEXT_WEIGHT [--write] [--tuned]
        wt, flags = float(sys.argv[3]), sys.argv[4:]
        found = fit_mapped(file, {"weights": round(1 - wt, 4), "text": wt}, "--write" in flags, "--tuned" in flags)
        print(json.dumps(found, indent=1))
    else:
        sweep(file, "--mapped" in sys.argv[3:])
