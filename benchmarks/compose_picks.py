"""Suite ``compose_picks``: which adapters ``compose --auto K`` picks for a request of several things.

The image zoo is ingested into a fresh registry and its text map fitted on the zoo's training
texts, as a fresh start does. For every combo task (a palette and a texture: ``sepia_dots``) its
own adapters are left out of the candidates, so the request has to be met by composing others;
each of its texts (canonical description and every paraphrase) asks for K = 2 adapters. A pick
**covers** the combo when the picked adapters' task parameters include both the palette and the
texture, and is **clean** when it also brings no other palette or texture (a ``grayscale_dots``
picked for sepia + dots brings grayscale); **distinct** counts picks of two different tasks (not
two seeds of one). Pickers: the nearest K, ``loradex.composition.diverse_picks`` at several
redundancy weights (the picker before ``part_picks``; its weight ``PICK_REDUNDANCY`` was chosen on
the training combos' rows), and ``parts``: ``loradex.composition.part_picks`` (what ``compose --auto``
does now: each part of the request searched alone, the rest filled by ``diverse_picks``), in the same run.
``two_step_rows``: the same pickers on the text zoo's two-step requests ("X, then Y").
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.retrieval import ZOO_IMAGE, ZOO_TEXT

K = 2
POOL = 20
REDUNDANCIES = (1.0, 2.0, 4.0, 8.0)


def judge(picked: list[dict[str, Any]], want: dict[str, str]) -> tuple[bool, bool, bool]:
    """(covers, clean, distinct) of the picked tasks' parameters against the combo's."""
    got: dict[str, set[str]] = {}
    for p in picked:
        for key, value in p.items():
            got.setdefault(key, set()).add(value)
    covers = all(v in got.get(key, ()) for key, v in want.items())
    clean = covers and all(got.get(key, set()) <= {v} for key, v in want.items())
    distinct = len({json.dumps(p, sort_keys=True) for p in picked}) == len(picked)
    return covers, clean, distinct


def suite_compose_picks(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.zoo import training_texts
    from loradex.composition import PICK_REDUNDANCY, diverse_picks, part_picks
    from loradex.service import LocalService

    manifest = json.loads((ZOO_IMAGE / "manifest.json").read_text())
    params = {Path(a["path"]).name: t["params"] for t in manifest["tasks"] for a in t["adapters"]}
    combos = [t for t in manifest["tasks"] if t["family"] == "combo"]
    if getattr(args, "quick", False):
        combos = combos[::3]
    pickers: dict[str, float | str | None] = {"nearest": None, **{f"diverse {r:g}": r for r in REDUNDANCIES},
                                               "parts": "parts"}  # fmt: skip
    counts = {(name, split): [0, 0, 0, 0] for name in pickers for split in ("train", "heldout")}
    t_pick: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        svc = LocalService.open(Path(d) / "home")
        svc.ingest([ZOO_IMAGE / "adapters"])
        svc.train_text_map(training_texts(manifest))
        names = {r["id"]: r["name"] for r in svc.registry.list()}
        ids = {name: i for i, name in names.items()}
        for t in combos:
            own = {Path(a["path"]).name for a in t["adapters"]}
            for text in [t["canonical"]] + [p["text"] for p in t["paraphrases"]]:
                found = svc.search(text, k=POOL + len(own), family="zoo-image")
                hits = [h for h in found if names[h.adapter["id"]] not in own][:POOL]
                for name, redundancy in pickers.items():
                    t0 = time.perf_counter()
                    if redundancy == "parts":
                        left_out = frozenset(ids[n] for n in own if n in ids)
                        picked = part_picks(svc, text, hits, K, "zoo-image", exclude=left_out)
                        t_pick.append(time.perf_counter() - t0)
                    elif redundancy is None:
                        picked = hits[:K]
                    else:
                        picked = diverse_picks(svc, hits, K, float(redundancy))
                    verdict = judge([params[names[h.adapter["id"]]] for h in picked], t["params"])
                    c = counts[(name, t["split"])]
                    for i, ok in enumerate(verdict):
                        c[i] += ok
                    c[3] += 1
        svc.close()
    rows = []
    for (name, split), (covers, clean, distinct, n) in counts.items():
        rows.append({"picker": name, "combos": "training" if split == "train" else "held-out", "requests": n,
                     "covers": covers / n, "clean": clean / n, "distinct": distinct / n})  # fmt: skip
    t_pick.sort()
    return {"rows": rows, "k": K, "pool": POOL, "product": "parts", "fill_redundancy": PICK_REDUNDANCY,
            "pick_ms_p50": 1000 * t_pick[len(t_pick) // 2] if t_pick else None,
            "two_step_rows": two_step_rows(bool(getattr(args, "quick", False)))}  # fmt: skip


@dataclass
class TwoStepRequest:
    """One text of a text-zoo two-step task, asked of ``two_step_requests``' registry."""

    svc: Any  # the registry's LocalService
    task: dict[int, str]  # adapter id → its task id
    record: dict[str, Any]  # the two-step task's manifest record
    own: frozenset[int]  # the task's own adapters, left out
    text: str  # its canonical description or a paraphrase
    hits: list[Any]  # the search for ``text`` without ``own``, top ``POOL``

    @property
    def steps(self) -> list[str]:
        return str(self.record["id"]).split("__then__")


def two_step_requests(quick: bool = False) -> Iterator[TwoStepRequest]:
    """Every text of the text zoo's two-step tasks (``quick``: every 4th task), asked of a fresh
    registry with the zoo's adapters and a text map fitted on its training texts, as a fresh start
    does; each task's own adapters left out of the hits. The registry lives while the caller iterates."""
    from benchmarks.zoo import training_texts
    from loradex.service import LocalService

    manifest = json.loads((ZOO_TEXT / "manifest.json").read_text())
    task_of = {Path(a["path"]).name: t["id"] for t in manifest["tasks"] for a in t["adapters"]}
    two = [t for t in manifest["tasks"] if "__then__" in t["id"]]
    if quick:
        two = two[::4]
    with tempfile.TemporaryDirectory() as d:
        svc = LocalService.open(Path(d) / "home")
        try:
            svc.ingest([ZOO_TEXT / "adapters"])
            svc.train_text_map(training_texts(manifest))
            task = {r["id"]: task_of.get(r["name"], r["name"]) for r in svc.registry.list()}
            for t in two:
                own = frozenset(i for i, tid in task.items() if tid == t["id"])
                for text in [t["canonical"]] + [p["text"] for p in t["paraphrases"]]:
                    found = svc.search(text, k=POOL + len(own), family="zoo-text")
                    hits = [h for h in found if h.adapter["id"] not in own][:POOL]
                    yield TwoStepRequest(svc, task, t, own, text, hits)
        finally:
            svc.close()


def two_step_rows(quick: bool = False) -> list[dict[str, Any]]:
    """The text zoo's two-step tasks ("X, then Y") asked of a registry with the zoo's adapters (text map
    fitted on its training texts), each two-step task's own adapters left out: how often K = 2 picks
    are its two one-step tasks (``pair``), and in the order the steps run (``in order``: what a
    ``chain`` over the picks needs). Pickers: nearest, ``diverse_picks`` at ``PICK_REDUNDANCY`` over the
    whole request, ``part_picks`` (the product)."""
    from loradex.composition import diverse_picks, part_picks

    counts: dict[tuple[str, str], list[int]] = {}
    for r in two_step_requests(quick):
        for name, picked in (("nearest", r.hits[:K]), ("diverse 4", diverse_picks(r.svc, r.hits, K)),
                             ("parts", part_picks(r.svc, r.text, r.hits, K, "zoo-text", exclude=r.own))):  # fmt: skip
            got = [r.task[h.adapter["id"]] for h in picked]
            c = counts.setdefault((name, r.record["split"]), [0, 0, 0])
            c[0] += sorted(got) == sorted(r.steps)
            c[1] += got == r.steps
            c[2] += 1
    return [{"picker": name, "tasks": "training" if split == "train" else "held-out", "requests": n,
             "pair": pair / n, "in order": order / n} for (name, split), (pair, order, n) in counts.items()]  # fmt: skip
