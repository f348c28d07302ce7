"""The learned merge ``zip`` on the surfaces besides ``LocalService.merge``: the web UI's Compose tab
(its strategy list, the merge options box, Keep a merge) through ``gradio_client`` against the real
server, and ``loradex compose --strategy merge:zip`` on the image zoo (fitted on the family's base,
then rendered); the fit's progress on each surface (CLI bar on stderr, the job's done / total, the
web handlers' progress). Fits are kept to one optimizer step on one drawn latent per adapter."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "benchmarks" / "zoo" / "image" / "adapters"
TOKEN = "zip-admin-token"
OPTS = {"steps": 1, "batch": 1, "samples": 1, "sample_steps": 1, "prompts": ["a red circle"]}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """Two image-zoo adapters in a fresh SQLite registry, served as API + UI (at /ui)."""
    from gradio_client import Client

    from loradex.service import LocalService
    from ui.api import create_app
    from ui.server import BackgroundServer, mount_ui

    if not (IMAGE / "grayscale").is_dir():
        pytest.skip("the image zoo is not built")
    home = tmp_path_factory.mktemp("zip") / "home"
    svc = LocalService.open(home)
    try:
        svc.ingest([IMAGE / "grayscale", IMAGE / "dots"])
        ids = [svc.get(n)["id"] for n in ("grayscale", "dots")]
        app = mount_ui(create_app(svc, admin_token=TOKEN), svc, TOKEN)
        with BackgroundServer(app) as server:
            client = Client(f"{server.url}/ui/", verbose=False, analytics_enabled=False,
                            download_files=str(home.parent / "downloads"))  # fmt: skip
            try:
                yield SimpleNamespace(svc=svc, url=server.url, client=client, ids=ids,
                                      picks=[f"{i} · {n}" for i, n in zip(ids, ("grayscale", "dots"), strict=True)])  # fmt: skip
            finally:
                client.close()
    finally:
        svc.registry.close()


def test_the_compose_tab_offers_every_registered_merge_strategy(site: SimpleNamespace) -> None:
    from loradex.composition import strategies

    config = httpx.get(f"{site.url}/ui/config", timeout=30).json()
    (props,) = [c["props"] for c in config["components"] if c.get("props", {}).get("elem_id") == "ldx-comp-strategy"]
    offered = [c[0] if isinstance(c, list) else c for c in props["choices"]]
    ways = strategies()
    assert offered == ways["compose"] and {"merge:zip", "merge:lego", "merge:dare_ties"} <= set(offered)
    assert [s for s in offered if s.startswith("merge:")] == [f"merge:{m}" for m in ways["merge"]]
    assert any(c.get("props", {}).get("elem_id") == "ldx-comp-options" for c in config["components"])


def test_a_zip_merge_kept_from_the_web_ui_is_registered_with_its_lineage(site: SimpleNamespace) -> None:
    from gradio_client.exceptions import AppError

    svc, client = site.svc, site.client
    before = svc.registry.count()
    for text, match in [
        ('{"steps": 1,', "merge options is not JSON"),
        ("[1, 2]", "merge options must be a JSON object"),
        ('{"density": 0.5}', "strategy 'zip' takes no option density; its options: steps, batch"),
        ('{"steps": "many"}', "zip option steps must be an integer, got 'many'"),
    ]:
        with pytest.raises(AppError, match=match):
            client.predict(TOKEN, "", site.picks, 2, "", "merge:zip", text, api_name="/keep_merge")
    with pytest.raises(AppError, match="wrong admin token"):  # the token is checked before the options
        client.predict("nope", "", site.picks, 2, "", "merge:zip", json.dumps(OPTS), api_name="/keep_merge")
    with pytest.raises(AppError, match="takes no option density"):  # Compose checks them before rendering too
        client.predict("a circle", site.picks, 2, "", "merge:zip", "", 2, False, '{"density": 0.5}',
                       api_name="/compose")  # fmt: skip
    assert svc.registry.count() == before

    line = client.predict(TOKEN, "", site.picks, 2, "", "merge:zip", json.dumps(OPTS), api_name="/keep_merge")
    assert "merge (zip) of grayscale, dots kept in the registry as adapter" in line
    new_id = int(line.split("adapter **", 1)[1].split(" ", 1)[0])
    info = svc.get(new_id)
    assert info["origin"] == "merged" and info["family"] == "zoo-image" and svc.registry.count() == before + 1
    assert sorted((p["id"], p["weight"], p["method"]) for p in info["parents"]) == sorted(
        (i, 1.0, "merge:zip") for i in site.ids
    )
    record = json.loads(info["metadata"]["loradex.merge"])
    assert record["strategy"] == "zip" and record["options"] == OPTS and record["zip"]["config"]["steps"] == 1


def test_cli_compose_merge_zip_fits_on_the_base_then_renders(
    site: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The composed image is the one the registered zip merge (same options, same seed) renders alone:
    compose fitted the same coefficients on the family's base before rendering."""
    from ui.cli import main

    svc = site.svc
    argv = ["--home", str(svc.home), "compose", "--prompt", "a red circle", "--adapters", *map(str, site.ids),
            "--steps", "2", "--out", str(tmp_path / "out"), "--json", "-q", "--strategy", "merge:zip"]  # fmt: skip
    assert main([*argv, "--options", '{"steps": 1,']) != 0
    assert "--options is not JSON" in capsys.readouterr().err
    assert main([*argv, "--options", json.dumps(OPTS)]) == 0
    doc = json.loads(capsys.readouterr().out)
    fit = doc["info"]["merge"]
    assert doc["strategy"] == "merge:zip" and fit["strategy"] == "zip" and fit["exact"] is True
    assert fit["zip"]["config"]["steps"] == 1 and "coefficients" not in fit
    kept = svc.merge(site.ids, strategy="zip", options=OPTS).adapter  # registered here or by the web test
    alone = svc.compose("a red circle", adapters=[kept["id"]], strategy="linear", steps=2)
    composed = np.asarray(Image.open(doc["images"][0]).convert("RGB"), dtype=np.int16)
    registered = np.asarray(Image.open(io.BytesIO(alone.images[0])).convert("RGB"), dtype=np.int16)
    assert composed.shape == registered.shape and int(np.abs(composed - registered).max()) <= 1
    cat = svc.compose("a red circle", adapters=site.ids, strategy="merge:cat", steps=2)
    plain = np.asarray(Image.open(io.BytesIO(cat.images[0])).convert("RGB"), dtype=np.int16)
    assert int(np.abs(composed - plain).max()) > 1  # the fitted coefficients are not the plain sum's


FIT_UNITS = 2 * OPTS["sample_steps"] + OPTS["steps"]  # two adapters' draws, then the optimizer steps


def _rising(pairs: list[tuple[int, int]]) -> int:
    """The one total every update reported; done never falls and ends there."""
    (total,) = {t for _, t in pairs}
    done = [d for d, _ in pairs]
    assert done == sorted(done) and done[-1] == total
    return total


def test_cli_merge_and_compose_show_the_zip_fit_on_stderr_never_in_json(
    site: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ui.cli import main

    home = ["--home", str(site.svc.home)]
    merge = [*home, "merge", *map(str, site.ids), "--strategy", "zip", "--options", json.dumps(OPTS)]
    assert main(merge) == 0
    out, err = capsys.readouterr()
    assert "zip fit" in err and f"{FIT_UNITS}/{FIT_UNITS}" in err and "zip fit" not in out
    assert main([*merge, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["info"]["strategy"] == "zip" and "zip fit" not in err and "it/s" not in err
    assert main([*home, "merge", *map(str, site.ids), "--strategy", "cat"]) == 0  # seconds of algebra: no bar
    assert "cat fit" not in capsys.readouterr().err

    compose = [*home, "compose", "--prompt", "a red circle", "--adapters", *map(str, site.ids), "--steps", "2",
               "--out", str(tmp_path / "out"), "--strategy", "merge:zip", "--options", json.dumps(OPTS)]  # fmt: skip
    assert main(compose) == 0
    err = capsys.readouterr().err
    assert "compose: 100%" in err and f"{FIT_UNITS + 2}/{FIT_UNITS + 2}" in err  # the fit, then 2 steps
    assert main([*compose, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["strategy"] == "merge:zip" and "compose:" not in err


def test_a_zip_merge_job_counts_the_fit(site: SimpleNamespace) -> None:
    """What the API's POST /merge runs: the job's done rises to its total, the fit's units."""
    import time

    runner = site.svc.job_runner()
    try:
        job = runner.submit_task(site.svc, "merge", {"adapters": [str(i) for i in site.ids], "strategy": "zip",
                                                     "options": {**OPTS, "lr": 0.03}})  # fmt: skip
        seen = []
        deadline = time.monotonic() + 300
        while not (job := runner.get(job.id)).finished and time.monotonic() < deadline:
            if job.total is not None:
                seen.append((job.done, job.total))
            time.sleep(0.005)
        assert job.status == "done", job.error
        assert (job.done, job.total) == (FIT_UNITS, FIT_UNITS) and job.output["info"]["strategy"] == "zip"
        assert _rising([*seen, (job.done, job.total)]) == FIT_UNITS
        assert runner.store.load(job.id).done == FIT_UNITS  # saved as it finished: a restart keeps it
    finally:
        runner.shutdown()


def test_the_python_client_passes_the_jobs_progress_on(site: SimpleNamespace) -> None:
    """``Client.merge`` / ``Client.compose`` against the real server: ``progress(done, total)`` sees
    the job's counts change, never falling, ending at the fit's units (merge) or the fit and the
    rendering steps (compose)."""
    from loradex.client import Client

    client = Client(site.url, token=TOKEN)
    seen: list[tuple[int, int]] = []
    out = client.merge(site.ids, strategy="zip", options={**OPTS, "lr": 0.02}, poll=0.01,
                       progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert out.info["strategy"] == "zip" and _rising(seen) == FIT_UNITS
    seen.clear()
    res = client.compose("a red circle", adapters=site.ids, strategy="merge:zip", options=OPTS, steps=2, poll=0.01,
                         progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert res.strategy == "merge:zip" and _rising(seen) == FIT_UNITS + 2


def test_the_web_handlers_show_the_zip_fit_on_their_progress(site: SimpleNamespace) -> None:
    """Keep a merge and Compose hand the service's progress to the handler's ``gr.Progress`` (here a
    callable with its signature, as Gradio passes one)."""
    from ui.web import WebUI
    from ui.web.make import MakeUI

    ui = MakeUI(site.svc, WebUI(site.svc, admin_token=TOKEN).check_token)
    calls: list[tuple[Any, dict[str, Any]]] = []

    def progress(*a: Any, **k: Any) -> None:
        calls.append((a[0], k))

    line = ui.keep_merge(TOKEN, "", site.picks, 2, "", "merge:zip", json.dumps(OPTS), progress=progress)
    assert "merge (zip) of grayscale, dots" in line
    fit = [p for p, k in calls if k.get("desc") == "zip fit"]
    assert _rising(fit) == FIT_UNITS and len(fit) > FIT_UNITS  # every unit, and the start of each phase

    calls.clear()
    ui.compose("a red circle", site.picks, 2, "", "merge:zip", "", 2, False, json.dumps(OPTS), progress=progress)
    run = [p for p, k in calls if k.get("desc") == "merge:zip" and k.get("unit") == "steps"]
    assert _rising(run) == FIT_UNITS + 2 and {d for d, _ in run} == set(range(FIT_UNITS + 3))
