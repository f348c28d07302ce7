"""The ``generation`` suite: every committed generator on both zoos, against base, controls and oracle.

Splits (queries from ``benchmarks/generation_queries.json``, written before tuning):
* ``validation``: every 4th training task asked with its first held-out paraphrase. The best
  description-only generator is chosen here, and only here.
* ``unseen_paraphrase``: the same training tasks asked with their second held-out paraphrase
  and a terse keyword query.
* ``heldout_task``: held-out tasks (never seen in training) asked in every voice.

Quality per task is averaged over the task's queries; gain recovered = (m − base) / (oracle −
base) per task (tasks whose oracle − base < 0.05 are skipped), ratio = m / oracle; both are
then averaged per task family and over tasks. Image: the metric is style hit (content kept
reported beside it), on 3 of the zoo's 32 evaluation prompts per task (the first 3: same
prompts and seeds for every method); text on the first 20 of the zoo's 200 evaluation strings.
Image queries: held-out tasks in the canonical, terse and hand-written "user" voices; probe tasks
with one held-out paraphrase for validation and one plus the "user" voice for the report.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.generation_data import (
    CHECKPOINTS,
    FAMILIES,
    METHODS,
    ZOOS,
    load_queries,
    manifest,
    text_tasks,
    weights_path,
)

DESC_METHODS = ("nearest", "topk_mean", "analogy", "hypernet", "semantic", "cvae")  # description-dependent methods


def _gain(m: float, base: float, oracle: float) -> float | None:
    return None if oracle - base < 0.05 else (m - base) / (oracle - base)


def _mean(xs: list[float | None]) -> float | None:
    v = [x for x in xs if x is not None]
    return float(statistics.fmean(v)) if v else None


def summarize(scores: dict[tuple[str, str], list[float]], base: dict[str, float], oracle: dict[str, float],
              families: dict[str, str]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """scores[(method, task)] = metric per query → per method: mean metric, ratio, gain, per family gain."""
    out: dict[str, dict[str, Any]] = {}
    methods = dict.fromkeys(m for m, _ in scores)
    for m in methods:
        tasks = [t for (mm, t) in scores if mm == m]
        per_task = {t: statistics.fmean(scores[(m, t)]) for t in tasks}
        gains = {t: _gain(v, base[t], oracle[t]) for t, v in per_task.items()}
        fam: dict[str, list[float | None]] = defaultdict(list)
        for t, g in gains.items():
            fam[families[t]].append(g)
        out[m] = {
            "metric": statistics.fmean(per_task.values()),
            "ratio": _mean([v / oracle[t] if oracle[t] > 0 else None for t, v in per_task.items()]),
            "gain": _mean(list(gains.values())),
            "gain_per_family": {f: _mean(v) for f, v in sorted(fam.items())},
            "tasks": len(tasks),
            "per_task": per_task,
        }
    return out


def load_generators(family: str, methods: list[str] | None = None) -> dict[str, Any]:
    """The committed generators of ``family`` (only ``methods`` when given)."""
    from generators import load_generator

    return {
        m: load_generator(CHECKPOINTS / family / m)
        for m in METHODS
        if (CHECKPOINTS / family / m / "config.json").is_file() and (methods is None or m in methods)
    }


def generate_all(gens: dict[str, Any], rows: list[dict[str, Any]], seed: int = 0) -> dict[str, list[Any]]:
    return {m: [gens[m].generate(r["query"], seed=seed).adapter for r in rows] for m in DESC_METHODS if m in gens}


def latency_and_diversity(gens: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m, g in gens.items():
        times = []
        for t in texts:
            g.text_encoder.clear_cache()
            t0 = time.perf_counter()
            g.generate(t, seed=0)
            times.append(time.perf_counter() - t0)
        divs = []
        for t in texts[:4]:
            ds = [g.generate(t, seed=s).adapter.deltas() for s in range(3)]
            for i in range(3):
                for j in range(i + 1, 3):
                    num = sum(float((ds[i][k] - ds[j][k]).norm() ** 2) for k in ds[i])
                    den = sum(float(ds[i][k].norm() ** 2) for k in ds[i])
                    divs.append((num / max(den, 1e-12)) ** 0.5)
        out[m] = {"latency_p50_ms": 1000 * statistics.median(times), "diversity": statistics.fmean(divs)}
    return out


def sizes(zoo: str, family: str) -> dict[str, Any]:
    lib = 0
    for t in manifest(zoo)["tasks"]:
        if t["split"] == "train":
            for a in t["adapters"]:
                p = ZOOS[zoo] / a["path"]
                lib += sum(f.stat().st_size for f in p.rglob("*.safetensors"))
    out: dict[str, Any] = {"library_bytes": lib}
    for m in METHODS:
        folder = CHECKPOINTS / family / m
        if folder.is_dir():
            b = sum(f.stat().st_size for f in folder.iterdir())
            out[m] = {"bytes": b, "fraction_of_library": b / lib}
    return out


def run_zoo(zoo: str, args: argparse.Namespace) -> dict[str, Any]:
    from generators.canonical import Layout, delta_error, module_factors, template_of, to_adapter
    from registry.formats import read_adapter

    family = FAMILIES[zoo]
    man = {t["id"]: t for t in manifest(zoo)["tasks"]}
    families = {t: r["family"] for t, r in man.items()}
    q = load_queries()
    rows = q[zoo]
    quick = bool(getattr(args, "quick", False))
    if zoo == "image":
        # image: sampling is slow on CPU, so fewer queries: held-out tasks in the canonical and terse
        # voices, probe tasks with one held-out paraphrase each for validation and for the report
        keep = {("heldout_task", "canonical"), ("heldout_task", "terse"), ("heldout_task", "user"),
                ("validation", "everyday"), ("unseen_paraphrase", "everyday"), ("unseen_paraphrase", "user")}  # fmt: skip
        rows = [r for r in rows if (r["split"], r["voice"]) in keep]
    else:
        # text: held-out tasks in the canonical, terse and examples voices; probe tasks with one
        # held-out paraphrase for validation and one for the report (CPU time on a shared machine)
        keep = {("heldout_task", "canonical"), ("heldout_task", "terse"), ("heldout_task", "examples"),
                ("validation", "everyday"), ("unseen_paraphrase", "everyday")}  # fmt: skip
        seen_k: set[tuple[str, str, str]] = set()
        pick = []
        for r in rows:
            k = (r["task"], r["split"], r["voice"])
            if (r["split"], r["voice"]) in keep and k not in seen_k:
                pick.append(r)
                seen_k.add(k)
        rows = pick
    if quick:
        rows = rows[:: max(1, len(rows) // 12)]
    gens = load_generators(family, getattr(args, "methods", None))
    tasks = sorted({r["task"] for r in rows})
    oracle_ad = {t: read_adapter(weights_path(zoo, man[t]["adapters"][0]["path"])) for t in tasks}
    layout = Layout.from_adapters([oracle_ad[tasks[0]]])
    canon_f = {t: {s.name: module_factors(oracle_ad[t], s, layout.rank) for s in layout.modules} for t in tasks}
    canon_ad = {t: to_adapter(canon_f[t], layout, template_of(oracle_ad[t]), "canonical") for t in tasks}
    delta_err = {t: delta_error(oracle_ad[t], canon_f[t]) for t in tasks}
    train_ids = [t for t, r in man.items() if r["split"] == "train"]
    rng = random.Random(f"generation-controls-{zoo}")
    rand_task = {t: rng.choice([x for x in train_ids if families[x] != families[t]]) for t in tasks}
    rand_ad = {t: read_adapter(weights_path(zoo, man[rand_task[t]]["adapters"][0]["path"])) for t in tasks}
    rand_desc = {t: man[rand_task[t]]["canonical"] for t in tasks}
    junk = q["junk"]

    t0 = time.perf_counter()
    gen_ads = generate_all(gens, rows)
    gen_s = time.perf_counter() - t0
    # Evaluation rows: (label, split, task, adapter)
    ev: list[tuple[str, str, str, Any]] = []
    for m, ads in gen_ads.items():
        ev += [(m, r["split"], r["task"], a) for r, a in zip(rows, ads, strict=True)]
    for t in tasks:
        ev += [("base", "*", t, None), ("oracle", "*", t, oracle_ad[t]), ("oracle_canonical", "*", t, canon_ad[t]),
               ("random_adapter", "*", t, rand_ad[t])]  # fmt: skip
        if "mean_all" in gens:
            ev.append(("mean_all", "*", t, gens["mean_all"].generate("any", seed=0).adapter))
        for m in DESC_METHODS:
            # controls with every mixing or learned method: every task on text; held-out tasks only on image
            if m in gens and m != "nearest" and (zoo == "text" or man[t]["split"] == "heldout"):
                ev.append((f"{m}:random_description", "*", t, gens[m].generate(rand_desc[t], seed=0).adapter))
                ev.append(
                    (
                        f"{m}:junk_description",
                        "*",
                        t,
                        gens[m].generate(junk[len(t) % len(junk)], seed=0).adapter,
                    )
                )
    examples_rows: list[tuple[str, str, str, Any]] = []
    if zoo == "text":
        from benchmarks.generation_data import query_examples
        from benchmarks.generation_judges import TextJudge

        judge = TextJudge(n=10 if quick else 20)
        ttasks = text_tasks()
        for t in [t for t in tasks if man[t]["split"] == "heldout"]:
            ex = query_examples(ttasks[t])
            desc = man[t]["canonical"]
            if "hypernet" in gens:
                examples_rows.append(
                    ("hypernet+examples", "heldout_task", t, gens["hypernet"].generate(desc, examples=ex).adapter)
                )
            for m in ("topk_mean",):
                if m in gens:
                    g = gens[m].generate(desc, examples=ex, score_candidates=judge.example_scorer(ex))
                    examples_rows.append((f"{m}+examples+verify", "heldout_task", t, g.adapter))
        ev += examples_rows
        t1 = time.perf_counter()
        vals = judge.accuracy([(t, a) for _, _, t, a in ev])
        metric = [{"metric": v} for v in vals]
    else:
        from benchmarks.generation_judges import ImageJudge

        judge_i = ImageJudge(n=2 if quick else 3)
        t1 = time.perf_counter()
        res = judge_i.scores([(t, a) for _, _, t, a in ev])
        metric = [{"metric": r["style_hit"], "content_kept": r["content_kept"], "images": r["images"]} for r in res]
    eval_s = time.perf_counter() - t1

    base = {t: m["metric"] for (lab, _, t, _), m in zip(ev, metric, strict=True) if lab == "base"}
    oracle = {t: m["metric"] for (lab, _, t, _), m in zip(ev, metric, strict=True) if lab == "oracle"}
    splits = ["validation", "unseen_paraphrase", "heldout_task"]
    table: dict[str, Any] = {}
    for sp in splits:
        sp_tasks = {r["task"] for r in rows if r["split"] == sp}
        sc: dict[tuple[str, str], list[float]] = defaultdict(list)
        ck: dict[str, list[float]] = defaultdict(list)
        for (lab, s, t, _), m in zip(ev, metric, strict=True):
            if t in sp_tasks and (s == sp or s == "*" or (s == "heldout_task" and sp == "heldout_task")):
                sc[(lab, t)].append(m["metric"])
                if "content_kept" in m:
                    ck[lab].append(m["content_kept"])
        summ = summarize(sc, base, oracle, families)
        for lab in summ:
            if ck.get(lab):
                summ[lab]["content_kept"] = statistics.fmean(ck[lab])
        table[sp] = summ
    # gain recovered per query voice (generated rows only: ev starts with them, in ``rows`` order per method)
    n_gen = sum(len(a) for a in gen_ads.values())
    voices: dict[str, dict[str, dict[str, list[float | None]]]] = {}
    gen_rows = [r for _ in gen_ads for r in rows]
    for (lab, sp, t, _), m, r in zip(ev[:n_gen], metric[:n_gen], gen_rows, strict=True):
        g = _gain(m["metric"], base[t], oracle[t])
        voices.setdefault(sp, {}).setdefault(lab, {}).setdefault(r["voice"], []).append(g)
    by_voice = {sp: {lab: {v: _mean(gs) for v, gs in sorted(d.items())} for lab, d in labs.items()}
                for sp, labs in voices.items()}  # fmt: skip
    val = table["validation"]
    best = max([m for m in DESC_METHODS if m in val], key=lambda m: (val[m]["gain"] or -9, val[m]["metric"]))
    texts = [r["query"] for r in rows if r["split"] == "heldout_task"][: 10 if quick else 20]
    out = {
        "zoo": zoo,
        "family": family,
        "best_on_validation": best,
        "splits": table,
        "gain_by_voice": by_voice,
        "latency_and_diversity": latency_and_diversity(gens, texts),
        "sizes": sizes(zoo, family),
        "queries": {sp: sum(r["split"] == sp for r in rows) for sp in splits},
        "eval_n": judge.n if zoo == "text" else judge_i.n,
        "seconds": {"generate_all": round(gen_s, 1), "evaluate": round(eval_s, 1)},
        "canonical_check": {
            "adapters": len(delta_err),
            "max_relative_delta_error": max(delta_err.values()),
            "oracle_mean": statistics.fmean(oracle.values()),
            "canonical_mean": statistics.fmean(
                m["metric"] for (lab, _, _, _), m in zip(ev, metric, strict=True) if lab == "oracle_canonical"
            ),
            "max_abs_change": max(
                abs(m["metric"] - oracle[t])
                for (lab, _, t, _), m in zip(ev, metric, strict=True)
                if lab == "oracle_canonical"
            ),
        },
    }
    out["_picture"] = picture_data(zoo, ev, metric, rows, best, man)
    return out


def picture_data(zoo: str, ev: list, metric: list, rows: list, best: str, man: dict) -> dict[str, Any]:
    """Per held-out task: base / nearest / best on validation / analogy / oracle scores (and first
    images for image); a method that is both best and nearest or analogy gets one column."""
    held = sorted({r["task"] for r in rows if r["split"] == "heldout_task"})
    first_q = {}
    for r in rows:
        if r["split"] == "heldout_task" and r["task"] not in first_q:
            first_q[r["task"]] = r["query"]
    columns = list(dict.fromkeys(["base", "nearest", best, "analogy", "oracle"]))
    pic: dict[str, Any] = {}
    for t in held:
        ent: dict[str, Any] = {}
        for (lab, s, tt, _), m in zip(ev, metric, strict=True):
            if tt != t or lab not in columns:
                continue
            if s not in ("*", "heldout_task"):
                continue
            ent.setdefault(lab, {"scores": [], "images": m.get("images")})
            ent[lab]["scores"].append(m["metric"])
        pic[t] = {k: {"score": statistics.fmean(v["scores"]), "images": v["images"]} for k, v in ent.items()}
    return {"best": best, "columns": columns, "tasks": pic}


def run_suite(args: argparse.Namespace) -> dict[str, Any]:
    import json

    import torch

    from benchmarks.generation_picture import draw

    torch.set_num_threads(1)  # many small batched ops; on a busy 2-core machine one thread is faster
    zoos = [z for z in ("text", "image") if (CHECKPOINTS / FAMILIES[z]).is_dir()]
    only = getattr(args, "zoo_dir", None)
    if only:
        zoos = [z for z in zoos if Path(only).name == z]
    out: dict[str, Any] = {"zoos": {}}
    rows = []
    for z in zoos:
        res = run_zoo(z, args)
        pic = res.pop("_picture")
        draw(z, pic, Path(args.out) / f"generation_{z}.png")
        out["zoos"][z] = res
        for sp, summ in res["splits"].items():
            for lab, v in summ.items():
                rows.append({"zoo": z, "split": sp, "method": lab, "metric": v["metric"], "ratio": v["ratio"],
                             "gain": v["gain"], "content_kept": v.get("content_kept"), "tasks": v["tasks"]})  # fmt: skip
        for sp in res["splits"].values():
            for v in sp.values():
                v.pop("per_task", None) if getattr(args, "quick", False) else None
    out["rows"] = rows
    json.dumps(out)  # fail early on anything not JSON-safe
    return out
