"""End to end in a real headless Chromium (Debian ``chromium`` driven by Playwright's sync API,
never ``playwright install``): search from the page, open an adapter page, ingest a real
fixture through the admin tab. Screenshots go to ``tests/artifacts/`` (ignored by git).

Under ``CI=true`` a missing chromium or playwright fails these tests; elsewhere they skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.ui.test_web import TOKEN, by_name, web_server

CHROMIUM = Path(os.environ.get("LORADEX_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TIMEOUT_MS = 30_000
# The page's load event has drawn the registry map (a plotly figure: Gradio shows only a placeholder
# while that event is pending); only then can that event not overwrite what a test does.
MAP_READY = "#ldx-map .js-plotly-plot .main-svg"


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.is_file():
        return f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run does it)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but the browser tests cannot run: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def site(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with web_server(tmp_path_factory.mktemp("browser")) as env:
        yield env


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # assertions wait as long as actions do (5 s failed on a loaded machine)
    try:
        yield pg
    finally:
        ctx.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_search_in_the_browser(site: SimpleNamespace, page: Any) -> None:
    page.goto(f"{site.url}/")  # redirects to the UI at /ui/
    page.locator(MAP_READY).first.wait_for()
    page.locator("#ldx-prompt textarea").fill("a soft watercolor painting of a lake")
    page.locator("#ldx-search").click()
    first = page.locator("#ldx-results .ldx-card").first
    first.wait_for()
    assert first.get_attribute("data-name") == "watercolor_sd15"
    assert page.locator("#ldx-results .ldx-card .ldx-svg").count() >= 1  # fingerprints drawn
    # the map is a second output of the same event: Gradio may paint it after the cards. Read the
    # map's markup rather than asking Playwright for an SVG text node (after other modules' servers
    # ran in this process, it judged the drawn label absent): on failure, say what the map held.
    labels: list[str] = []
    for _ in range(120):
        labels = page.locator("#ldx-map").evaluate(
            "el => Array.from(el.querySelectorAll('g.annotation text')).map(t => t.textContent)"
        )
        if "1. watercolor_sd15" in labels:
            break
        page.wait_for_timeout(500)
    else:
        html = page.locator("#ldx-map").inner_html()
        pytest.fail(f"the map never labelled the first hit; labels {labels}; map markup {html[-400:]!r}")
    href = first.locator("a.ldx-dl").first.get_attribute("href")
    assert href and "/download?format=" in href
    with page.expect_download() as dl:
        first.locator("a.ldx-dl", has_text="kohya").click()
    assert dl.value.suggested_filename == "watercolor_sd15-kohya.zip"
    page.wait_for_timeout(300)
    shot(page, "search.png")


def test_the_map_hovers_zooms_and_opens(site: SimpleNamespace, page: Any) -> None:
    """The registry map after a search: the hits' labels do not overlap on screen, hovering a hit
    names it, clicking it opens its adapter page, and (Back) a drag zooms in."""
    import re

    page.goto(f"{site.url}/ui/?q=a+soft+watercolor+painting+of+a+lake")
    plot = page.locator("#ldx-map")
    labels = plot.locator("g.annotation rect.bg")  # each label's box, without its arrow
    labels.first.wait_for()
    boxes = [b for b in (labels.nth(i).bounding_box() for i in range(labels.count())) if b]
    assert len(boxes) >= 3
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (a["x"] + a["width"] <= b["x"] + 1 or b["x"] + b["width"] <= a["x"] + 1
                     or a["y"] + a["height"] <= b["y"] + 1 or b["y"] + b["height"] <= a["y"] + 1)  # fmt: skip
            assert apart, (a, b)
    x, y, text = plot.evaluate(MAP_POINT_JS, 0)
    assert text == "1. watercolor_sd15"
    page.mouse.move(x, y)
    plot.locator(".hoverlayer .hovertext", has_text="watercolor_sd15 (sd1)").first.wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    plot.screenshot(path=str(ARTIFACTS / "map_hover.png"))  # not a full-page shot: that resizes, and redraws the plot
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(rf"adapter={by_name(site.svc, 'watercolor_sd15')['id']}"))
    page.locator('#ldx-detail .ldx-detail[data-name="watercolor_sd15"]').wait_for()
    page.go_back()  # the search again, and its map: drag a box to zoom in
    labels.first.wait_for()
    before = plot.evaluate("el => el.querySelector('.js-plotly-plot')._fullLayout.xaxis.range.slice()")
    box = plot.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    assert box
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 140, box["y"] + 120, steps=6)
    page.mouse.up()
    page.wait_for_function(
        "r => { const g = document.querySelector('#ldx-map .js-plotly-plot'), x = g && g._fullLayout.xaxis.range;"
        " return !!x && x[0] > r[0] && x[1] < r[1]; }",
        arg=before,
    )


def test_a_search_lives_in_the_url(site: SimpleNamespace, page: Any) -> None:
    """The search goes into the address bar (?q=): opening that URL runs it, and Back returns to
    the previous search."""
    import re
    from urllib.parse import quote_plus

    page.goto(f"{site.url}/ui/?q={quote_plus('retro 16-bit game sprites')}")
    first = page.locator("#ldx-results .ldx-card").first
    first.wait_for()
    assert first.get_attribute("data-name") == "Pixel Art XL"
    assert page.locator("#ldx-prompt textarea").input_value() == "retro 16-bit game sprites"
    page.locator("#ldx-prompt textarea").fill("a soft watercolor painting of a lake")
    page.locator("#ldx-search").click()
    page.wait_for_url(re.compile(r"q=a\+soft\+watercolor"))
    page.locator('#ldx-results .ldx-card[data-name="watercolor_sd15"]').first.wait_for()
    page.go_back()
    page.wait_for_url(re.compile(r"q=retro"))
    page.locator('#ldx-results .ldx-card[data-name="Pixel Art XL"]').first.wait_for()
    assert page.locator("#ldx-results .ldx-card").first.get_attribute("data-name") == "Pixel Art XL"


CONTRAST_JS = """el => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => { const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                     return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const st = getComputedStyle(el);
  const [a, b] = [lum(rgb(st.color)), lum(rgb(st.backgroundColor))];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


LUMINANCE_JS = """el => {
  const [r, g, b] = getComputedStyle(el).backgroundColor.match(/[\\d.]+/g).slice(0, 3).map(v => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}"""

# Where a registry-map annotation points (its hit), in page pixels: [x, y, text].
MAP_POINT_JS = """(el, i) => {
  const gd = el.querySelector(".js-plotly-plot"), L = gd._fullLayout, a = L.annotations[i];
  const box = gd.getBoundingClientRect();
  return [box.left + L.xaxis._offset + L.xaxis.l2p(a.x), box.top + L.yaxis._offset + L.yaxis.l2p(a.y), a.text];
}"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_phone_width_and_both_themes(site: SimpleNamespace, browser: Any, theme: str) -> None:
    """At 390×844: the map comes before the results, a card's picture never covers its title, and
    descriptions get the card's width; trigger-word chips are readable (contrast ≥ 4.5) and the
    map panel follows the theme. Screenshots: phone_<theme>.png."""
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme=theme)
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(f"{site.url}/ui/?__theme={theme}")
        page.locator(MAP_READY).first.wait_for()
        page.locator("#ldx-prompt textarea").fill("a soft watercolor painting of a lake")
        page.locator("#ldx-search").click()
        card = page.locator('#ldx-results .ldx-card[data-name="watercolor_sd15"]').first
        card.wait_for()
        title, picture = card.locator(".ldx-title").bounding_box(), card.locator(".ldx-fp").bounding_box()
        assert title and picture and picture["y"] >= title["y"] + title["height"] - 1  # below the title, not over it
        desc = card.locator(".ldx-desc").bounding_box()
        assert desc and desc["width"] >= 0.7 * (card.bounding_box() or {"width": 390})["width"]
        map_box = page.locator("#ldx-map").bounding_box()
        assert map_box and map_box["y"] < (card.bounding_box() or {"y": 0})["y"]  # the map is not 7000 px down
        chip = card.locator(".ldx-trig code").first
        assert chip.evaluate(CONTRAST_JS) >= 4.5
        # the map's own background is transparent: the panel behind it follows the theme
        plot_bg = page.locator("#ldx-map .js-plotly-plot .main-svg").first.evaluate(
            "el => getComputedStyle(el).backgroundColor"
        )
        assert plot_bg.replace(" ", "") in ("rgba(0,0,0,0)", "transparent"), plot_bg
        panel = page.locator("#ldx-map").evaluate(LUMINANCE_JS)
        assert (panel < 0.2) == (theme == "dark"), panel
        shot(page, f"phone_{theme}.png")
    finally:
        ctx.close()


def test_finds_a_zoo_adapter_by_its_weights(site: SimpleNamespace, page: Any) -> None:
    """The bundled text zoo has a weight encoder: the hit shows its weights score, and downloads as PEFT."""
    if not site.svc.list(family="zoo-text"):
        pytest.skip("the text zoo is not built (python -m benchmarks.zoo build text)")
    page.goto(f"{site.url}/ui/")
    page.locator(MAP_READY).first.wait_for()  # the load event is done: it cannot undo our clicks
    page.locator("#ldx-prompt textarea").fill("write the string backwards")
    page.locator("#ldx-search").click()
    first = page.locator("#ldx-results .ldx-card").first
    first.wait_for()
    assert first.get_attribute("data-name") == "reverse"
    assert "weights similarity" in first.inner_text()
    with page.expect_download() as dl:
        first.locator("a.ldx-dl", has_text="peft").click()
    assert dl.value.suggested_filename == "reverse-peft.zip"
    shot(page, "search_zoo.png")


def test_image_zoo_adapters_show_their_preview(site: SimpleNamespace, page: Any) -> None:
    """Image-zoo hits carry a preview rendered by the zoo's base pipeline (base row, adapter row)."""
    import json

    zoo = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "image"
    if not site.svc.list(family="zoo-image") or not (zoo / "manifest.json").is_file():
        pytest.skip("the image zoo is not built (python -m benchmarks.zoo build image)")
    (task,) = [t for t in json.loads((zoo / "manifest.json").read_text())["tasks"] if t["id"] == "hstripes"]
    page.goto(f"{site.url}/ui/")
    page.locator(MAP_READY).first.wait_for()  # the load event is done: it cannot undo our clicks
    page.locator("#ldx-prompt textarea").fill(task["canonical"])
    page.locator("#ldx-search").click()
    first = page.locator("#ldx-results .ldx-card").first
    first.wait_for()
    assert first.get_attribute("data-name") == "hstripes"
    img = first.locator("img.ldx-preview")
    img.wait_for()
    page.wait_for_function(
        "el => el.complete && el.naturalWidth > 0", arg=img.element_handle(), timeout=120_000
    )  # rendered on first request (CPU), then cached
    assert img.evaluate("el => [el.naturalWidth, el.naturalHeight]") == [4 * 64 + 3 * 2, 2 * 64 + 2]
    page.wait_for_timeout(300)
    shot(page, "search_image_zoo.png")


def test_adapter_page_in_the_browser(site: SimpleNamespace, page: Any) -> None:
    from playwright.sync_api import expect

    info = by_name(site.svc, "Pixel Art XL")
    page.goto(f"{site.url}/ui/?adapter={info['id']}")
    detail = page.locator(f'#ldx-detail .ldx-detail[data-name="{info["name"]}"]')
    detail.wait_for()
    assert info["sha256"] in detail.inner_text()
    assert page.locator("#ldx-detail .ldx-fp-big svg rect").count() == info["module_count"]
    expect(page.locator("#ldx-modules")).to_contain_text("attn2.to_k")  # modules table filled
    expect(page.locator("#ldx-detail .ldx-similar")).to_contain_text("watercolor_sd15")  # nearest by description
    page.locator("#ldx-export").click()
    page.locator('#ldx-download td.filename[aria-label="Pixel_Art_XL-diffusers.zip"]').wait_for()
    page.wait_for_timeout(300)
    shot(page, "adapter.png")


def test_admin_ingests_a_real_fixture(site: SimpleNamespace, page: Any, real_adapters: Path) -> None:
    from playwright.sync_api import expect

    folder = real_adapters / "peft_gpt2_emotion"
    files = [str(folder / n) for n in ("adapter_config.json", "adapter_model.safetensors", "description.txt")]
    page.goto(f"{site.url}/ui/")
    page.locator(MAP_READY).first.wait_for()  # the load event is done: it cannot undo our clicks
    page.get_by_role("tab", name="Admin").click()
    page.locator("#ldx-files input[type=file]").set_input_files(files)
    expect(page.locator("#ldx-files td.filename")).to_have_count(len(files))  # uploaded
    page.get_by_label("name for loose PEFT files").fill("peft_gpt2_emotion")

    page.locator("#ldx-token input").fill("wrong token")
    page.locator("#ldx-ingest").click()
    toast = page.locator("[data-testid=toast-body]", has_text="wrong admin token")
    toast.wait_for()
    page.wait_for_timeout(400)  # let the toast finish sliding in
    shot(page, "admin_refused.png")
    toast.locator("[data-testid=toast-close]").click()
    assert "peft_gpt2_emotion" not in {a["name"] for a in site.svc.list()}

    page.locator("#ldx-token input").fill(TOKEN)
    page.locator("#ldx-ingest").click()
    page.locator("#ldx-summary", has_text="1 ingested").wait_for()
    report = page.locator("#ldx-report")
    expect(report).to_contain_text("peft_gpt2_emotion")
    assert "ingested" in report.inner_text()
    expect(page.locator("#ldx-ingest")).to_be_enabled()
    page.wait_for_timeout(400)  # outputs fade in
    shot(page, "admin_ingested.png")
    added = by_name(site.svc, "peft_gpt2_emotion")
    assert (added["family"], added["format"], added["module_count"]) == ("gpt2", "peft", 12)


def _open_tab(page: Any, url: str, name: str) -> None:
    page.goto(f"{url}/ui/")
    page.locator(MAP_READY).first.wait_for()  # the load event is done: it cannot undo our clicks
    page.get_by_role("tab", name=name).click()


def _choose(page: Any, box: str, option: str) -> None:
    """Pick ``option`` in the Gradio dropdown ``box`` (an elem_id): type to filter, click the entry."""
    page.locator(f"{box} input").first.click()
    page.locator(f"{box} input").first.fill(option)
    page.locator(f'{box} [role=option][aria-label="{option}"]').click()


def test_generate_in_the_browser(site: SimpleNamespace, page: Any) -> None:
    """Generate tab: a description → the new adapter's card (lineage, download), its try-it run
    (the generated adapter does the task), and Discard takes it out of the registry again."""
    if not site.svc.list(family="zoo-text"):
        pytest.skip("the text zoo is not built (python -m benchmarks.zoo build text)")
    _open_tab(page, site.url, "Generate")
    _choose(page, "#ldx-gen-family", "zoo-text")
    page.locator("#ldx-gen-desc textarea").fill("write the string backwards")
    page.locator("#ldx-gen-token input").fill(TOKEN)  # it registers an adapter: admin, as POST /generate
    page.locator("#ldx-generate").click()
    card = page.locator("#ldx-gen-card .ldx-gen")
    card.wait_for()
    name, new_id = card.get_attribute("data-name"), int(card.get_attribute("data-id") or 0)
    assert name and name.startswith("gen-write-the-string-backwards")
    assert "kept in the registry as adapter" in card.inner_text() and "generator zoo-text/" in card.inner_text()
    assert site.svc.get(new_id)["origin"] == "generated"
    tried = page.locator("#ldx-gen-try textarea")
    page.wait_for_function("el => el.value.length > 0", arg=tried.element_handle())
    assert tried.input_value().startswith("hello → olleh"), tried.input_value()
    with page.expect_download() as dl:
        card.locator("a.ldx-dl", has_text="peft").click()
    assert dl.value.suggested_filename == f"{name}-peft.zip"
    shot(page, "generate.png")
    page.locator("#ldx-gen-discard").click()
    page.locator("#ldx-gen-card", has_text="discarded").wait_for()
    assert name not in {a["name"] for a in site.svc.list(family="zoo-text")}


def test_compose_in_the_browser(site: SimpleNamespace, page: Any) -> None:
    """Compose tab: two picked image-zoo adapters → side by side (each alone, linear, merge, gate)
    at the same seed, and the gate plot."""
    zoo = {a["name"]: a["id"] for a in site.svc.list(family="zoo-image", origin="ingested")}
    if not {"grayscale", "dots"} <= set(zoo):
        pytest.skip("the image zoo is not built (python -m benchmarks.zoo build image)")
    _open_tab(page, site.url, "Compose")
    page.locator("#ldx-comp-prompt textarea").fill("a circle in grayscale with polka dots")
    for n in ("grayscale", "dots"):
        _choose(page, "#ldx-comp-ids", f"{zoo[n]} · {n}")
    steps = page.locator("#ldx-comp-steps input[type=number]")
    steps.fill("2")
    steps.press("Enter")
    page.locator("#ldx-compose").click()
    gallery = page.locator("#ldx-comp-images")
    from playwright.sync_api import expect

    expect(gallery.locator("img")).to_have_count(5, timeout=120_000)  # 2 alone + linear, merge, gate
    page.locator("#ldx-comp-gate img").wait_for()
    summary = page.locator("#ldx-comp-summary")
    expect(summary).to_contain_text("gate over 2 adapters of zoo-image")
    expect(summary).to_contain_text("5 run(s)")
    expect(summary).to_contain_text("calibrated for composing (per layer and channel): ")
    expect(summary).not_to_contain_text("turned down")  # the prompt asks for both
    page.wait_for_timeout(300)
    shot(page, "compose.png")


def test_try_it_in_the_browser(site: SimpleNamespace, page: Any) -> None:
    """An adapter page's Try it: your input through the bare base and with the adapter, side by side."""
    if not site.svc.list(family="zoo-text"):
        pytest.skip("the text zoo is not built (python -m benchmarks.zoo build text)")
    (rid,) = [a["id"] for a in site.svc.list(family="zoo-text", origin="ingested") if a["name"] == "reverse"]
    page.goto(f"{site.url}/ui/?adapter={rid}")
    page.locator('#ldx-detail .ldx-detail[data-name="reverse"]').wait_for()
    page.locator("#ldx-try-in textarea").fill("hello")
    page.locator("#ldx-try").click()
    row = page.locator("#ldx-try-out table.ldx-try tr").nth(1)
    row.wait_for()
    assert [c.strip() for c in row.locator("td").all_inner_texts()] == ["hello", "hello", "olleh"]
    shot(page, "try_it.png")


def test_browse_pages_sorts_filters_and_back(site: SimpleNamespace, page: Any) -> None:
    """Browse tab: a filter, a sort and the next page each land in the URL; a row opens its adapter
    page, and Back returns to the same page of the same view."""
    import re

    from playwright.sync_api import expect

    if not site.svc.list(family="zoo-text"):
        pytest.skip("the text zoo is not built (python -m benchmarks.zoo build text)")
    _open_tab(page, site.url, "Browse")
    pos, rows = page.locator("#ldx-b-pos"), page.locator("#ldx-browse table.ldx-browse tr[data-id]")
    total = site.svc.count()
    expect(pos).to_contain_text(f"page 1 of {-(-total // 25)} · adapters 1–25 of {total}")
    _choose(page, "#ldx-b-family", "zoo-text")
    n = site.svc.count(family="zoo-text")
    expect(pos).to_contain_text(f"page 1 of {-(-n // 25)} · adapters 1–25 of {n}")
    page.wait_for_url(re.compile(r"browse=1.*family=zoo-text"))
    _choose(page, "#ldx-b-sort", "file size ↓")
    want = site.svc.list(family="zoo-text", sort="-size", limit=25, offset=25)
    page.wait_for_url(re.compile(r"sort=-size"))
    page.locator("#ldx-b-next").click()
    expect(pos).to_contain_text(f"page 2 of {-(-n // 25)} · adapters 26–50 of {n}")
    page.wait_for_url(re.compile(r"pg=2"))
    expect(rows.first).to_have_attribute("data-id", str(want[0]["id"]))
    assert [int(r) for r in rows.evaluate_all("rs => rs.map(r => r.dataset.id)")] == [a["id"] for a in want]
    shot(page, "browse.png")
    rows.nth(3).locator("td").nth(2).click()  # the family cell: the whole row is a link
    page.wait_for_url(re.compile(rf"adapter={want[3]['id']}"))
    page.locator(f'#ldx-detail .ldx-detail[data-name="{want[3]["name"]}"]').wait_for()
    page.go_back()
    page.wait_for_url(re.compile(r"browse=1.*pg=2"))
    expect(pos).to_contain_text(f"page 2 of {-(-n // 25)}")
    expect(rows.first).to_have_attribute("data-id", str(want[0]["id"]))
