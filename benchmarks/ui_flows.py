"""Click-to-result times of the web UI in a real headless Chromium: ``python -m benchmarks.run ui_flows``.

One server (the REST API with the UI at /ui, as ``loradex serve`` runs it) over the bundled
registry (samples and the built zoos) in a fresh data dir. Each flow opens a fresh page, waits for
the page's load event (the registry map drawn), fills the form as a person would, and times the
click until the result is on screen: the first hit's card (search), the generated adapter's card
with its try-it run (generate, zoo-text, then discarded so the next repeat generates again), the
side-by-side gallery and gate plot (compose: two image-zoo adapters, UI defaults, 20 steps), the
adapter-vs-base table or image (try it, text zoo and image zoo). One unmeasured warm-up per flow
(model loads, caches; reported as first_s), then ``--repeats`` measured runs (2 with ``--quick``); p50 is reported
with the ratio to search's p50. Writes ``benchmarks/results/ui_flows.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
LOADED = "#ldx-map .js-plotly-plot .main-svg"  # the page's load event is done: it cannot undo our clicks
TOKEN = "bench"  # admin token of the served app (Generate registers an adapter: it takes the token)


def _open(page: Any, url: str, tab: str | None = None) -> None:
    page.goto(url)
    page.locator(LOADED).first.wait_for()
    if tab:
        page.get_by_role("tab", name=tab).click()


def _choose(page: Any, box: str, option: str) -> None:
    page.locator(f"{box} input").first.click()
    page.locator(f"{box} input").first.fill(option)
    page.locator(f'{box} [role=option][aria-label="{option}"]').click()


def _timed(click: Callable[[], None], done: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    click()
    done()
    return time.perf_counter() - t0


def flows(svc: Any, url: str) -> dict[str, tuple[str, Callable[[Any], float]]]:
    """name → (what is measured, page → seconds from the click to the result)."""
    ui = f"{url}/ui/"

    def search(page: Any) -> float:
        _open(page, ui)
        page.locator("#ldx-prompt textarea").fill("a soft watercolor painting of a lake")
        return _timed(lambda: page.locator("#ldx-search").click(),
                      lambda: page.locator("#ldx-results .ldx-card").first.wait_for())  # fmt: skip

    def generate(page: Any) -> float:
        _open(page, ui, "Generate")
        _choose(page, "#ldx-gen-family", "zoo-text")
        page.locator("#ldx-gen-desc textarea").fill("write the string backwards")
        page.locator("#ldx-gen-token input").fill(TOKEN)
        tried = page.locator("#ldx-gen-try textarea")

        def done() -> None:
            page.locator("#ldx-gen-card .ldx-gen").wait_for()
            page.wait_for_function("el => el.value.length > 0", arg=tried.element_handle())

        took = _timed(lambda: page.locator("#ldx-generate").click(), done)
        if page.locator("#ldx-gen-discard").is_visible():  # the next repeat generates anew
            page.locator("#ldx-gen-discard").click()
            page.locator("#ldx-gen-card", has_text="discarded").wait_for()
        return took

    zoo = {a["name"]: a["id"] for a in svc.list(family="zoo-image", origin="ingested")}

    def compose(page: Any) -> float:
        _open(page, ui, "Compose")
        page.locator("#ldx-comp-prompt textarea").fill("a circle in grayscale with polka dots")
        for n in ("grayscale", "dots"):
            _choose(page, "#ldx-comp-ids", f"{zoo[n]} · {n}")

        def done() -> None:
            page.locator("#ldx-comp-images img").nth(4).wait_for()
            page.locator("#ldx-comp-gate img").wait_for()

        return _timed(lambda: page.locator("#ldx-compose").click(), done)

    def try_it(family: str, name: str, text: str, result: str) -> Callable[[Any], float]:
        (ref,) = [a["id"] for a in svc.list(family=family, origin="ingested") if a["name"] == name]

        def run(page: Any) -> float:
            page.goto(f"{ui}?adapter={ref}")
            page.locator(f'#ldx-detail .ldx-detail[data-name="{name}"]').wait_for()
            page.locator("#ldx-try-in textarea").fill(text)
            return _timed(lambda: page.locator("#ldx-try").click(), lambda: page.locator(result).first.wait_for())

        return run

    return {
        "search": ("first hit's card for a prompt (hybrid, k=8)", search),
        "generate": ("zoo-text card + try-it run, best available method", generate),
        "compose": ("2 image-zoo adapters side by side (2 alone, linear, merge, gate; 20 steps) + gate plot", compose),
        "try_it_text": ("zoo-text 'reverse' on one input, adapter vs base",
                        try_it("zoo-text", "reverse", "hello", "#ldx-try-out table.ldx-try tr >> nth=1")),
        "try_it_image": ("zoo-image 'grayscale' on one prompt, base row + adapter row",
                         try_it("zoo-image", "grayscale", "a red circle", "#ldx-try-img img")),
    }  # fmt: skip


def suite_ui_flows(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from loradex.service import LocalService
    from ui.api import create_app
    from ui.server import BackgroundServer, bundled_adapters, mount_ui

    repeats = 2 if args.quick else max(1, min(args.repeats, 5))
    rows: list[dict[str, Any]] = []
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as d:
        home = Path(d)
        svc = LocalService.open(home, f"sqlite:///{home / 'loradex.db'}")
        try:
            t0 = time.perf_counter()
            report = svc.ingest(bundled_adapters())
            ingest_s = time.perf_counter() - t0
            app = mount_ui(create_app(svc, admin_token=TOKEN), svc, TOKEN)
            with BackgroundServer(app) as server, sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for name, (what, flow) in flows(svc, server.url).items():
                    times = []
                    for _ in range(repeats + 1):  # the first run warms models and caches
                        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
                        page = ctx.new_page()
                        page.set_default_timeout(180_000)
                        times.append(flow(page))
                        ctx.close()
                    first, times = times[0], times[1:]
                    runs[name] = times
                    rows.append({"flow": name, "what": what, "p50_s": statistics.median(times), "min_s": min(times),
                                 "max_s": max(times), "first_s": first})  # fmt: skip
                browser.close()
        finally:
            svc.close()
    base = rows[0]["p50_s"]
    for r in rows:
        r["ratio_to_search"] = r["p50_s"] / base
    return {"adapters": report.count("ingested"), "ingest_s": round(ingest_s, 1), "repeats": repeats,
            "viewport": "1440x1000", "browser": "Debian chromium, headless", "rows": rows, "runs": runs}  # fmt: skip
