"""Routing among loaded language-model adapters: which score picks the task's adapter.

    python -m benchmarks.fusion_route [--home DIR] [--inputs N] [--out FILE]

The ``fusion`` suite's text-zoo protocol (``benchmarks.fusion.text_suite``: 8 one-step tasks drawn
with ``random.Random(0)``, each named by its first held-out paraphrase, k = 2, 4, 8 adapters
loaded: the task's own and seeded random other one-step tasks; accuracy kept = composed accuracy ÷
the task's own adapter on the same ``N`` inputs), with the adapters' routing scores from:

* ``router``: the committed trained router gate (``fusion/checkpoints/zoo-text``) over the tasks'
  canonical descriptions (the suite's baseline);
* ``mapped_text``: cosines in the registry's text map (the text index's stored vectors against the
  mapped prompt), the map fitted as a first start fits it (the bundled set's training paraphrases);
* ``search``: the service's hybrid search scores restricted to the loaded adapters
  (``Searcher.scores_among``: weights and mapped-text signals fused, description-precision lift);
* ``search_no_map``: the same search in a registry of the same adapters without a text map
  (plain text cosines and the weights signal, the plain-cosine fusion weights);
* ``router+search``: the router's and the search's scores, each standardised over the loaded
  adapters (``loradex.search.fuse``, equal weights, nothing tuned);
* ``plain_text``: plain MiniLM cosines of the descriptions (the training-free gate).

Every score goes through the gate's routing (softmax at its temperature) as ``compose`` does.
A wider routing-only measure (no generation): top-1 among the loaded adapters for every one-step
task and every one of its held-out paraphrases at k = 2, 4, 8, split by training / held-out task,
with the per-task rate and the misrouted requests at k = 8; the other loaded tasks are drawn with
``random.Random(task id)``, either at random or (``siblings``, the hard case) the task's own
family first (the other rotations for a rotation, the other Caesar shifts for a shift …).

The registry (``--home``; default a temporary one) holds the text zoo's 235 adapters and a text
map fitted on ``Settings(adapter_sets=("zoo-text",)).bundled_texts()`` (training tasks' canonical
descriptions and training paraphrases; no held-out paraphrase is seen by any method).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
TEXT_ZOO = REPO / "benchmarks" / "zoo" / "text"
RESULTS = REPO / "benchmarks" / "results"
METHODS = ("router", "mapped_text", "search", "search_no_map", "router+search", "plain_text")
KS = (2, 4, 8)


def open_registry(home: Path, text_map: bool = True, tune: bool = False) -> Any:
    """The text zoo's adapters in a registry at ``home``, with (``text_map``) its text map fitted as
    a first start fits it (``ui.server.fit_bundled_text_map`` on the text zoo's set; ``tune``: then
    tuned as a first serve does, ``ui.server.start_text_tune``); reused when already there."""
    from loradex.service import LocalService
    from loradex.settings import Settings

    svc = LocalService.open(home)
    if svc.registry.count() == 0:
        svc.ingest([TEXT_ZOO / "adapters"])
    texts = Settings(adapter_sets=("zoo-text",)).bundled_texts() if text_map else {}
    if text_map and not any(e["kind"] == "text" for e in svc.encoders()):
        svc.train_text_map(texts)
    if text_map and tune and not (svc.text_map() or {}).get("tuned"):
        from encoders.registry_text_tune import TuneConfig

        svc.train_text_map(texts, tune=TuneConfig())
    return svc


class Scorer:
    """Routing scores (k,) of each method for a request over loaded tasks."""

    def __init__(self, svc: Any, tasks: dict[str, Any], no_map: Any) -> None:
        from fusion.gate import bundled_gate_dir, load_gate

        self.svc, self.tasks, self.no_map = svc, tasks, no_map
        self.router = load_gate(bundled_gate_dir("zoo-text"), kind="text", family="zoo-text")
        self.plain = load_gate(None, kind="text", family="zoo-text")
        self._ids: dict[Any, dict[str, int]] = {}
        self.text_map = svc.registry.embedders["text"]

    def adapter_id(self, tid: str, svc: Any = None) -> int:
        svc = svc or self.svc
        if svc not in self._ids:
            self._ids[svc] = {r["name"]: int(r["id"]) for r in svc.list(family="zoo-text", limit=10_000)}
        return self._ids[svc][self.tasks[tid]["adapters"][0]["path"].rsplit("/", 1)[-1]]

    @torch.no_grad()
    def __call__(self, method: str, query: str, tids: list[str]) -> torch.Tensor:
        from fusion.compose import gate_scores

        enc = self.svc.text_encoder
        if method in ("router", "plain_text"):
            gate = self.router if method == "router" else self.plain
            return gate_scores(gate, query, [self.tasks[t]["canonical"] for t in tids], enc)
        if method == "mapped_text":
            ids = [self.adapter_id(t) for t in tids]
            from loradex.search import readable_for

            read = readable_for(enc, query)
            q = self.text_map.query_text(read, enc.encode([read])[0])
            cos = self.svc.registry.indexes["text"].score_ids(q, ids)
            return torch.tensor([cos[i] for i in ids])
        if method == "router+search":
            from loradex.search import fuse

            both = {m: dict(enumerate(self(m, query, tids).tolist())) for m in ("router", "search")}
            fused = fuse(both, {"router": 1.0, "search": 1.0})
            return torch.tensor([fused[i] for i in range(len(tids))])
        if method in ("search", "search_no_map"):
            svc = self.svc if method == "search" else self.no_map
            found = svc.searcher.scores_among(query, [self.adapter_id(t, svc) for t in tids])
            return torch.tensor([found[self.adapter_id(t, svc)][0] for t in tids])
        raise ValueError(method)


def protocol_cases(tasks: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """The suite's cases: (task, its first held-out paraphrase, 7 others), drawn as ``text_suite`` draws them."""
    one_step = [t for t in tasks if "__then__" not in t]
    rng = random.Random(0)
    targets = rng.sample(one_step, 8)
    out = []
    for tid in targets:
        held = [p["text"] for p in tasks[tid]["paraphrases"] if p["split"] == "heldout"] or [tasks[tid]["canonical"]]
        out.append((tid, held[0], rng.sample([t for t in one_step if t != tid], 7)))
    return out


def accuracy_rows(scorer: Scorer, tasks: dict[str, Any], n_inputs: int, log: Any) -> dict[str, Any]:
    """Accuracy kept per method and k on the suite's cases (composed through ``compose_text``)."""
    from benchmarks.fusion import text_zoo_kit
    from benchmarks.zoo.text.evaluate import eval_inputs
    from benchmarks.zoo.text.model import load_base
    from fusion.compose import compose_text

    model, tok = load_base(TEXT_ZOO / "base")
    fns, adapter, acc = text_zoo_kit(tasks)

    kept: dict[str, dict[int, list[float]]] = {m: {k: [] for k in KS} for m in METHODS}
    right: dict[str, dict[int, list[bool]]] = {m: {k: [] for k in KS} for m in METHODS}
    cases = protocol_cases(tasks)
    per_case: list[dict[str, Any]] = []
    for tid, query, others in cases:
        inputs = eval_inputs(fns[tid], n_inputs)
        own = acc(compose_text(model, tok, [adapter(tid)], "", inputs, strategy="linear").outputs, tid, inputs)
        row: dict[str, Any] = {"task": tid, "query": query, "own_accuracy": own}
        for k in KS:
            tids = [tid, *others[: k - 1]]
            for m in METHODS:
                scores = scorer(m, query, tids)
                res = compose_text(model, tok, [adapter(t) for t in tids], query, inputs, gate_dir=None, scores=scores)
                kept[m][k].append(acc(res.outputs, tid, inputs) / max(own, 1e-9))
                right[m][k].append(int(torch.argmax(scores)) == 0)
                row[f"{m}@{k}"] = {"kept": round(kept[m][k][-1], 3), "routed_to": tids[int(torch.argmax(scores))],
                                   "weight_own": round(res.weights[0], 3)}  # fmt: skip
        per_case.append(row)
        log(f"{tid}: " + ", ".join(f"{m} {[row[f'{m}@{k}']['kept'] for k in KS]}" for m in METHODS))
    return {
        "accuracy_kept": {m: {str(k): round(sum(v) / len(v), 4) for k, v in by.items()} for m, by in kept.items()},
        "top1_routed": {m: {str(k): round(sum(v) / len(v), 4) for k, v in by.items()} for m, by in right.items()},
        "cases": per_case,
        "n_inputs": n_inputs,
    }


def others_for(tid: str, tasks: dict[str, Any], one_step: list[str], distractors: str) -> list[str]:
    """The 7 other loaded tasks: seeded random one-step tasks, or (``siblings``) the task's own
    family first (e.g. the other rotations for a rotation), then seeded random ones."""
    rng = random.Random(tid)
    rest = [t for t in one_step if t != tid]
    if distractors == "random":
        return rng.sample(rest, max(KS) - 1)
    same = [t for t in rest if tasks[t]["family"] == tasks[tid]["family"]]
    rng.shuffle(same)
    fill = rng.sample([t for t in rest if t not in same], max(KS) - 1)
    return [*same, *fill][: max(KS) - 1]


def routing_rows(scorer: Scorer, tasks: dict[str, Any], distractors: str, log: Any) -> dict[str, Any]:
    """Top-1 among the loaded adapters for every one-step task × held-out paraphrase (no generation)."""
    one_step = [t for t in tasks if "__then__" not in t]
    hits: dict[str, dict[str, dict[int, list[bool]]]] = {
        split: {m: {k: [] for k in KS} for m in METHODS} for split in ("train", "heldout")
    }
    per_task: dict[str, dict[str, Any]] = {}
    wrong: dict[str, list[dict[str, str]]] = {m: [] for m in METHODS}
    for tid in one_step:
        others = others_for(tid, tasks, one_step, distractors)
        split = tasks[tid]["split"]
        queries = [p["text"] for p in tasks[tid]["paraphrases"] if p["split"] == "heldout"]
        mine: dict[str, list[bool]] = {m: [] for m in METHODS}
        for q in queries:
            alone = {m: scorer(m, q, [tid, *others]) for m in METHODS if "search" not in m}  # set-free: slices
            for k in KS:
                tids = [tid, *others[: k - 1]]
                for m in METHODS:
                    top = int(torch.argmax(alone[m][:k] if m in alone else scorer(m, q, tids)))
                    hits[split][m][k].append(top == 0)
                    if k == max(KS):
                        mine[m].append(top == 0)
                        if top != 0:
                            wrong[m].append({"task": tid, "query": q, "routed_to": tids[top]})
        if queries:
            per_task[tid] = {"split": split, "n": len(queries)} | {m: sum(v) / len(v) for m, v in mine.items()}
    log(f"routing ({distractors} distractors): {len(per_task)} tasks")
    summary = {
        split: {m: {str(k): {"top1": round(sum(v) / max(len(v), 1), 4), "n": len(v)} for k, v in by.items()}
                for m, by in per_method.items()}
        for split, per_method in hits.items()
    }  # fmt: skip
    return {"top1": summary, "per_task_k8": per_task, "misrouted_k8": wrong}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.fusion_route", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--home", type=Path, default=None, help="registry data dir (reused; default: a temporary one)")
    ap.add_argument("--inputs", type=int, default=20, help="inputs per task (the suite's full run: 20)")
    ap.add_argument("--out", type=Path, default=RESULTS / "fusion_route.json")
    ap.add_argument("--tune-text", action="store_true", help="the registry's text map tuned, as a first serve makes it")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)

    tasks = {t["id"]: t for t in json.loads((TEXT_ZOO / "manifest.json").read_text())["tasks"]}
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        svc = open_registry(home, tune=args.tune_text)
        no_map = open_registry(home.with_name(home.name + "-no-map"), text_map=False)
        try:
            log(f"registry: {svc.registry.count()} adapters, text map {svc.registry.embedders['text'].map_version}")
            scorer = Scorer(svc, tasks, no_map)
            result: dict[str, Any] = {"suite_protocol": accuracy_rows(scorer, tasks, args.inputs, log)}
            for d in ("random", "siblings"):
                result[f"routing_heldout_paraphrases_{d}"] = routing_rows(scorer, tasks, d, log)
        finally:
            svc.close()
            no_map.close()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result["suite_protocol"][k] for k in ("accuracy_kept", "top1_routed")}, indent=1))
    for d in ("random", "siblings"):
        top1 = result[f"routing_heldout_paraphrases_{d}"]["top1"]
        print(
            d, json.dumps({sp: {m: [v[str(k)]["top1"] for k in KS] for m, v in by.items()} for sp, by in top1.items()})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
