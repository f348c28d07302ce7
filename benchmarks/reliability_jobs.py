"""Crash trials of ``merge`` and ``generate`` jobs (part of the ``reliability`` suite).

A child process runs a plan of jobs through the job code a server or worker runs
(``JobRunner.run_task`` with the jobs saved in the database): merges of registered adapters and
generations from the bundled text-zoo generator. It is killed with SIGKILL at a random moment.
Then, as a restarting server does, the registry is opened (index sync) and the job runner made
(interrupted jobs failed, killed writers' staging folders removed), and checked: rows = blobs =
index entries (``fsck``), no job left queued or running, no staging folder left. The same plan is
then rerun with the same job ids, which must complete it: every job done, every made adapter
registered once with its lineage, ``fsck`` clean.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.reliability import REPO, WeightsDigestEmbedder, make_adapters

PARENTS = 6  # adapters ingested before the jobs run
GEN_FAMILY, GEN_METHOD = "zoo-text", "mean_all"


def plan(merges: int = 4, generations: int = 2) -> list[dict[str, Any]]:
    """The jobs of a trial: ``merges`` merges of distinct pairs of the parents (ids 1…PARENTS, in
    ingestion order) and ``generations`` generations of distinct descriptions."""
    pairs = [(a, b) for a in range(1, PARENTS + 1) for b in range(a + 1, PARENTS + 1)][:merges]
    jobs: list[dict[str, Any]] = [
        {"id": f"merge-{i}", "kind": "merge",
         "payload": {"adapters": [a, b], "weights": [0.5, 0.5], "strategy": "cat", "name": f"merged-{a}-{b}"}}
        for i, (a, b) in enumerate(pairs)
    ]  # fmt: skip
    descriptions = ["shift every letter by three", "reverse the word", "upper case every letter",
                    "repeat each letter twice"]  # fmt: skip
    jobs += [
        {"id": f"generate-{i}", "kind": "generate",
         "payload": {"description": descriptions[i % len(descriptions)], "family": GEN_FAMILY, "method": GEN_METHOD,
                     "seed": i}}
        for i in range(generations)
    ]  # fmt: skip
    return jobs


def open_service(home: Path, db_url: str | None) -> Any:
    """The service a trial's processes use: the registry with the cheap digest embedder (the index is
    part of every check), no text or weight encoders loaded for ingestion."""
    from loradex.service import LocalService
    from registry.store import Registry

    reg = Registry(home, db_url, embedders=[WeightsDigestEmbedder()])
    return LocalService.open(home, db_url, embed=False, registry=reg)


def run_plan(svc: Any, jobs: list[dict[str, Any]]) -> list[Any]:
    """Each job through ``JobRunner.run_task`` (saved in the jobs table as it moves); the finished jobs."""
    runner = svc.job_runner()
    return [runner.run_task(svc, j["kind"], j["payload"], j["id"]) for j in jobs]


CHILD_JOBS = """
import json, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from benchmarks.reliability_jobs import open_service, run_plan
svc = open_service(Path({home!r}), {db!r})
jobs = json.loads({jobs!r})
print("ready", flush=True)
done = run_plan(svc, jobs)
print(json.dumps([j.status for j in done]), flush=True)
"""


def check_after(svc: Any, jobs: list[dict[str, Any]]) -> dict[str, int]:
    """What a restart finds: dangling rows/blobs/index entries, jobs still live, staging folders left."""
    svc.job_runner()  # what a restarting server does first: fail interrupted jobs, clean staging
    rep = svc.fsck()
    dangling = len(rep.missing_blobs) + len(rep.broken_blobs)
    dangling += sum(len(v["extra"]) + len(v["missing"]) for v in rep.index_drift.values())
    store = svc.job_store()
    live = sum(1 for j in jobs if (job := store.load(j["id"])) is not None and job.status in ("queued", "running"))
    staging = svc.home / "staging"
    left = len(list(staging.iterdir())) if staging.is_dir() else 0
    return {"dangling": dangling, "orphans": len(rep.orphan_blobs), "live_jobs": live, "staging_left": left}


def check_complete(svc: Any, jobs: list[dict[str, Any]], finished: list[Any]) -> dict[str, int]:
    """After the rerun: jobs not done, made adapters missing / wrong lineage / registered twice, fsck problems."""
    not_done = sum(j.status != "done" for j in finished)
    made = svc.registry.list(limit=None)
    wrong = 0
    for j, job in zip(jobs, finished, strict=True):
        out = (job.output or {}).get("adapter") or {}
        if job.status != "done" or not out.get("id"):
            continue
        row = svc.get(int(out["id"]))
        if j["kind"] == "merge":
            parents = sorted(e["id"] for e in row["parents"])
            wrong += parents != sorted(j["payload"]["adapters"]) or row["origin"] != "merged"
        else:
            wrong += row["origin"] != "generated"
    want = PARENTS + len(jobs)
    return {"incomplete": not_done + (len(made) != want), "wrong_lineage": wrong, "problems": svc.fsck().problems}


def job_crash_trials(n: int, db_factory: Any, *, merges: int = 4, generations: int = 2) -> dict[str, Any]:
    """``n`` trials (the first one runs to the end to time a full plan); totals over all trials."""
    rng = random.Random(1)
    jobs = plan(merges, generations)
    totals = {"dangling": 0, "orphans": 0, "live_jobs": 0, "staging_left": 0, "incomplete": 0, "wrong_lineage": 0,
              "problems": 0}  # fmt: skip
    killed_mid = 0
    interrupted: dict[str, int] = {}
    t_full: float | None = None
    for trial in range(n):
        with tempfile.TemporaryDirectory() as d:
            home = Path(d) / "home"
            db = db_factory(Path(d))
            svc = open_service(home, db)
            svc.ingest(make_adapters(Path(d) / "in", PARENTS, seed=trial))
            svc.close()
            script = CHILD_JOBS.format(repo=str(REPO), home=str(home), db=db, jobs=json.dumps(jobs))
            p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            t0 = time.perf_counter()
            if t_full is None:
                p.wait()
                t_full = time.perf_counter() - t0
            else:
                time.sleep(rng.uniform(0, t_full))
                killed_mid += p.poll() is None
                p.send_signal(signal.SIGKILL)
                p.wait()
            svc = open_service(home, db)
            for j in svc.job_store().recent():
                if j.status in ("queued", "running"):  # the job the kill landed in
                    interrupted[j.kind] = interrupted.get(j.kind, 0) + 1
            for k, v in check_after(svc, jobs).items():
                totals[k] += v
            finished = run_plan(svc, jobs)  # the rerun, same job ids
            for k, v in check_complete(svc, jobs, finished).items():
                totals[k] += v
            svc.close()
    return {"trials": n, "jobs_per_trial": len(jobs), "killed_mid_plan": killed_mid,
            "jobs_interrupted": dict(sorted(interrupted.items())), "full_plan_s": round(t_full or 0.0, 2),
            "orphan_blobs_after_kill": totals.pop("orphans"), "dangling_after_kill": totals.pop("dangling"),
            "live_jobs_after_restart": totals.pop("live_jobs"), "staging_left_after_restart": totals.pop("staging_left"),
            "incomplete_after_rerun": totals.pop("incomplete"), "wrong_lineage_after_rerun": totals.pop("wrong_lineage"),
            "problems_after_rerun": totals.pop("problems")}  # fmt: skip
