"""Web UI (ui.web, ui.web.charts) through ``gradio_client`` against the real server: the REST API with
the Gradio app mounted at /ui, served by uvicorn on a free 127.0.0.1 port (SQLite registry of the
bundled samples). Plus the chart helpers on their own."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.ui.test_api import variant

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "adapters"
TOKEN = "web-admin-token"
SEARCH_DEFAULTS = ("any", "any", "any", "", "hybrid")


def by_name(svc: object, name: str) -> dict:
    (info,) = [svc.get(a["id"]) for a in svc.list() if a["name"] == name]  # type: ignore[attr-defined]
    return info


def card_names(cards: str) -> list[str]:
    return re.findall(r'class="ldx-card" data-name="([^"]*)"', cards)


@contextmanager
def web_server(home: Path) -> Iterator[SimpleNamespace]:
    """The bundled registry (samples + built zoos, as ``loradex serve`` starts) in ``home``,
    served as API + UI (at /ui) on a free 127.0.0.1 port."""
    from loradex.service import LocalService
    from ui.api import create_app
    from ui.server import BackgroundServer, bundled_adapters, mount_ui

    svc = LocalService.open(home, f"sqlite:///{home / 'loradex.db'}")
    try:
        svc.ingest(bundled_adapters())
        app = mount_ui(create_app(svc, admin_token=TOKEN), svc, TOKEN, max_upload_bytes=16 << 20)
        with BackgroundServer(app) as server:
            yield SimpleNamespace(svc=svc, url=server.url, home=home)
    finally:
        svc.registry.close()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    from gradio_client import Client

    home = tmp_path_factory.mktemp("web")
    with web_server(home) as env:
        env.client = Client(f"{env.url}/ui/", verbose=False, analytics_enabled=False,
                            download_files=str(home / "downloads"))  # fmt: skip
        try:
            yield env
        finally:
            env.client.close()


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [("a soft watercolor painting of a lake", "watercolor_sd15"), ("speak like Shakespeare", "Shakespeare GPT-2")],
)
def test_search_finds_the_sample(web: SimpleNamespace, prompt: str, expected: str) -> None:
    cards, regmap = web.client.predict(prompt, *SEARCH_DEFAULTS, 5, api_name="/search")
    names = card_names(cards)
    assert names and names[0] == expected, names
    assert 'class="ldx-svg"' in cards  # a fingerprint per card
    assert "weights similarity" in cards or "text similarity" in cards  # the why line
    assert "/download?format=" in cards
    assert "your prompt" in str(regmap) and f"1. {expected}" in str(regmap)  # the plotly figure's JSON


def test_search_says_when_nothing_fits(web: SimpleNamespace) -> None:
    """A request no bundled adapter does gets the verdict above the closest cards and the button to
    generate one; a request one does gets neither."""
    from ui.web.app import WebUI

    ui = WebUI(web.svc, TOKEN)
    for prompt, fits in (("translate legal contracts into Japanese", False), ("a soft watercolor painting", True)):
        cards, *_ = web.client.predict(prompt, *SEARCH_DEFAULTS, 5, api_name="/search")
        assert card_names(cards) and "relevance" in cards
        assert ("Nothing in the registry" in cards) is not fits, cards[:500]
        _, _, button = ui.search(prompt, *SEARCH_DEFAULTS, 5)
        assert button.visible is not fits


def test_search_says_what_it_searched_for(web: SimpleNamespace) -> None:
    """A prompt with a spelling slip is searched as put right, and the page says so (not otherwise)."""
    slipped, *_ = web.client.predict("a soft watrecolor painting", *SEARCH_DEFAULTS, 5, api_name="/search")
    assert "Searched for: a soft watercolor painting" in slipped and card_names(slipped)[0] == "watercolor_sd15"
    clean, *_ = web.client.predict("a soft watercolor painting", *SEARCH_DEFAULTS, 5, api_name="/search")
    assert "Searched for" not in clean


def test_search_filters(web: SimpleNamespace) -> None:
    cards, *_ = web.client.predict("a painting", "gpt2", "any", "any", "", "hybrid", 10, api_name="/search")
    assert card_names(cards) == ["Shakespeare GPT-2"]
    cards, *_ = web.client.predict("a painting", "gpt2", "kohya", "any", "", "text", 10, api_name="/search")
    assert card_names(cards) == [] and "No adapter matches" in cards  # both exist, no adapter has both
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="unknown format 'nope'; the registry has: .*kohya"):  # a typed-in value
        web.client.predict("a painting", "any", "nope", "any", "", "text", 10, api_name="/search")


def test_card_download_link_is_served(web: SimpleNamespace) -> None:
    cards, *_ = web.client.predict("a soft watercolor painting of a lake", *SEARCH_DEFAULTS, 1, api_name="/search")
    href = re.search(r'href="\.\./(adapters/\d+/download\?format=kohya)"', cards)
    assert href, cards
    r = httpx.get(f"{web.url}/{href.group(1)}", timeout=60)  # ".." from /ui/ is the API root
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"


def test_adapter_page_and_export(web: SimpleNamespace) -> None:
    info = by_name(web.svc, "watercolor_sd15")
    detail, modules, fmts, usage = web.client.predict(f"{info['id']} · {info['name']}", api_name="/adapter")
    assert "pipe.load_lora_weights('watercolor_sd15-diffusers', adapter_name='watercolor_sd15')" in usage
    kohya = web.client.predict(str(info["id"]), "kohya", api_name="/usage")
    assert "<lora:watercolor_sd15:0.8>" in kohya and "watercolor," in kohya  # the trigger word in the prompt
    assert 'data-name="watercolor_sd15"' in detail and info["sha256"] in detail and "<svg" in detail
    assert len(modules["data"]) == info["module_count"]
    assert all(isinstance(row[-1], float) and row[-1] > 0 for row in modules["data"])  # ‖ΔW‖ per module
    similar = [int(i) for i in re.findall(r'<tr data-id="(\d+)">', detail)]
    assert len(similar) == min(8, web.svc.registry.count() - 1) and info["id"] not in similar
    by_typed_name, _, _, _ = web.client.predict("watercolor_sd15", api_name="/adapter")
    assert by_typed_name == detail
    path = web.client.predict(str(info["id"]), "kohya", api_name="/download")
    with zipfile.ZipFile(path) as z:
        assert any(n.endswith(".safetensors") for n in z.namelist())


def test_admin_refuses_a_wrong_token(web: SimpleNamespace, tmp_path: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    before = web.svc.registry.count()
    new = variant("web_wrong_token", tmp_path)
    with pytest.raises(AppError, match="wrong admin token"):
        web.client.predict("not-the-token", [handle_file(str(new))], "", api_name="/ingest_files")
    with pytest.raises(AppError, match="wrong admin token"):
        web.client.predict("", str(new), api_name="/ingest_folder")
    with pytest.raises(AppError, match="wrong admin token"):
        web.client.predict("not-the-token", "watercolor_sd15", api_name="/remove")
    # Generate, Keep a merge and Discard register or remove adapters: the token, as the API asks.
    fam = (sorted(web.svc.generators()) or [None])[0]
    with pytest.raises(AppError, match="wrong admin token"):
        web.client.predict("", "write it backwards", fam, "(best available)", "", 0, "", api_name="/generate")
    with pytest.raises(AppError, match="wrong admin token"):
        web.client.predict("nope", "shift letters", [], 2, "", "merge:cat", "", api_name="/keep_merge")
    with pytest.raises(AppError, match="wrong admin token"):
        web.client.predict("nope", api_name="/discard")
    assert web.svc.registry.count() == before


def test_admin_ingests_refuses_and_removes(web: SimpleNamespace, tmp_path: Path) -> None:
    from gradio_client import handle_file

    new = variant("web_uploaded", tmp_path)
    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"not an adapter")
    summary, table, _, header = web.client.predict(
        TOKEN, [handle_file(str(new)), handle_file(str(bad))], "", api_name="/ingest_files"
    )
    status = {row[1]: row[0] for row in table["data"]}
    assert status == {"web_uploaded.safetensors": "ingested", "junk.safetensors": "refused"}, table
    assert "1 ingested" in summary and "1 refused" in summary and str(web.svc.registry.home) not in str(table)
    assert "web_uploaded" in {a["name"] for a in web.svc.list()}
    _, table, _, _ = web.client.predict(TOKEN, str(new), api_name="/ingest_folder")  # same bytes again
    assert [row[0] for row in table["data"]] == ["duplicate"]
    msg, _, _ = web.client.predict(TOKEN, "web_uploaded", api_name="/remove")
    assert "removed" in msg and "web_uploaded" not in {a["name"] for a in web.svc.list()}


def test_admin_upload_is_ingested_by_the_api_job(web: SimpleNamespace, tmp_path: Path) -> None:
    """The upload runs as the ingest job ``POST /ingest`` submits, on the API's runner: recorded in the
    jobs table and listed by ``GET /jobs``, its staged folder removed once it has run."""
    from gradio_client import handle_file

    new = variant("web_job", tmp_path)
    summary, table, _, _ = web.client.predict(TOKEN, [handle_file(str(new))], "", api_name="/ingest_files")
    (job_id,) = re.findall(r"job `([0-9a-f]{32})`", summary)
    job = web.svc.job_store().load(job_id)
    assert job is not None and (job.kind, job.status) == ("ingest", "done")
    assert [(r.path, r.status) for r in job.result.results] == [("web_job.safetensors", "ingested")]
    assert [row[:2] for row in table["data"]] == [["ingested", "web_job.safetensors"]]
    listed = httpx.get(f"{web.url}/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert job_id in {j["id"] for j in listed}
    info = by_name(web.svc, "web_job")
    assert info["id"] == job.result.results[0].adapter_id and not (web.svc.uploads / job_id).exists()
    web.svc.remove(info["id"])


def test_admin_upload_queued_behind_a_busy_runner(web: SimpleNamespace, tmp_path: Path) -> None:
    """A busy runner (one job at a time): the page stops waiting for a job still queued, and the job
    ingests the upload once the runner gets to it."""
    import threading

    from loradex.jobs import JobRunner
    from ui.web import WebUI

    runner, release = JobRunner(store=web.svc.job_store()), threading.Event()
    runner.submit("hold", lambda h: release.wait(60) and None)
    ui = WebUI(web.svc, TOKEN, jobs=runner)
    ui.queued_wait = 0.5
    new = variant("web_queued", tmp_path)
    try:
        summary, table, _, _ = ui.ingest_files(TOKEN, [str(new)], "", progress=lambda *a, **k: None)
        (job_id,) = re.findall(r"job `([0-9a-f]{32})` is queued", summary)
        assert table == [] and "web_queued" not in {a["name"] for a in web.svc.list()}
    finally:
        release.set()
    job = ui._wait(job_id, lambda *a, **k: None)
    assert job.status == "done" and by_name(web.svc, "web_queued")["id"] == job.result.results[0].adapter_id
    runner.shutdown()
    web.svc.remove("web_queued")


def test_admin_upload_of_an_unsafe_zip_is_refused(web: SimpleNamespace, tmp_path: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../escape.safetensors", b"x")
    with pytest.raises(AppError, match=r"climbs out"):
        web.client.predict(TOKEN, [handle_file(str(evil))], "", api_name="/ingest_files")
    assert not any(web.svc.uploads.glob("*"))  # nothing staged is left behind


def test_admin_upload_without_adapters_says_what_it_held(web: SimpleNamespace, tmp_path: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    notes = tmp_path / "notes.txt"
    notes.write_text("my favourite loras")
    with pytest.raises(AppError, match=r"no adapter files: found only notes\.txt"):
        web.client.predict(TOKEN, [handle_file(str(notes))], "", api_name="/ingest_files")
    assert not any(web.svc.uploads.glob("*"))  # nothing staged is left behind


def test_api_routes_still_work_beside_the_ui(web: SimpleNamespace) -> None:
    assert httpx.get(f"{web.url}/health").json()["status"] == "ok"
    r = httpx.get(f"{web.url}/")
    assert r.status_code in (302, 307) and r.headers["location"] == "/ui/"
    assert "loradex" in httpx.get(f"{web.url}/ui/", follow_redirects=True).text
    assert httpx.get(f"{web.url}/nope").json()["error"]["code"] == "not_found"


# -- charts ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "block"),
    [
        ("unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q", "unet down_blocks.1"),
        ("unet.mid_block.attentions.0.proj_in", "unet mid_block"),
        ("model.model.layers.7.self_attn.q_proj", "layers.7"),
        ("model.transformer.h.0.attn.c_attn", "h.0"),
        ("text_encoder.text_model.encoder.layers.0.self_attn.q_proj", "te1 layers.0"),
        ("transformer.single_transformer_blocks.12.proj_out", "dit single_transformer_blocks.12"),
        ("unet.conv_in", "unet"),
    ],
)
def test_block_of(name: str, block: str) -> None:
    from ui.web.charts import block_of

    assert block_of(name) == block


def test_module_norm_is_the_frobenius_norm_of_delta() -> None:
    import torch

    from registry.formats.canonical import LoraModule
    from ui.web.charts import module_norm

    g = torch.Generator().manual_seed(0)
    lin = LoraModule("unet.a", torch.randn(4, 32, generator=g), torch.randn(16, 4, generator=g), scale=0.5)
    conv = LoraModule("unet.b", torch.randn(4, 8, 3, 3, generator=g), torch.randn(6, 4, 1, 1, generator=g),
                      scale=-2.0, kind="conv")  # fmt: skip
    for m in (lin, conv):
        assert module_norm(m) == pytest.approx(float(torch.linalg.norm(m.delta())), rel=1e-4)


def test_fingerprint_and_map_figure() -> None:
    import numpy as np

    from ui.web.charts import MapData, fingerprint_svg, map_figure, pca_2d

    fp = [("unet.down_blocks.0.x", "unet down_blocks.0", 1.0), ("unet.up_blocks.0.x", "unet up_blocks.0", 0.5)]
    svg = fingerprint_svg(fp, labels=True)
    assert svg.count("<rect") == 2 and "unet up_blocks.0" in svg and "2 modules in 2 blocks" in svg
    assert "no modules" in fingerprint_svg([])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 16)).astype(np.float32)
    x[:, 0] *= 10  # one dominant direction
    mean, basis, shares = pca_2d(x)
    assert basis.shape == (16, 2) and shares[0] > shares[1] > 0
    assert abs(basis[0, 0]) > 0.9
    data = MapData([1, 1, 2, 2, 3, 3], ["text", "weights"] * 3, {1: "a<b", 2: "b", 3: "c"}, {1: "sd1", 2: "sd1", 3: "gpt2"},
                   (x - mean) @ basis, mean, basis, shares)  # fmt: skip
    fig = map_figure(data, x[0], [1]).to_dict()
    assert [a["text"] for a in fig["layout"]["annotations"]] == ["1. a<b"]  # labels for the hits only
    traces = {t["name"]: t for t in fig["data"] if t.get("name")}
    assert set(traces) == {"sd1", "gpt2", "search hits", "your prompt"}
    assert list(traces["search hits"]["customdata"]) == [1, 1]  # a click opens adapter 1
    assert any("c (gpt2) · weights embedding" == h for h in traces["gpt2"]["hovertext"])
    assert list(traces["gpt2"]["marker"]["symbol"]) == ["circle", "diamond"]
    empty = map_figure(None).to_dict()
    assert empty["layout"]["annotations"][0]["text"] == "nothing embedded yet"
    # a prompt vector of another dim (a tuned text map stores 2 × the encoder's dim): the map, no star
    other = {t["name"] for t in map_figure(data, x[0, :8], [1]).to_dict()["data"] if t.get("name")}
    assert other == {"sd1", "gpt2", "search hits"}


def test_map_labels_never_overlap() -> None:
    """Fifty hits, most in one tight cluster (what a search gives): every placed label box is
    inside the plot, clear of the others and of every hit's marker; the best hits get a label."""
    import numpy as np

    from ui.web.charts import MARKER_PX, place_labels

    rng = np.random.default_rng(1)
    pts = [(float(x), float(y)) for x, y in rng.normal((150, 120), 12, size=(40, 2))]
    pts += [(float(x), float(y)) for x, y in rng.uniform((0, 0), (440, 340), size=(10, 2))]
    texts = [f"{i + 1}. {'adapter_name_' * (1 + i % 2)}{i}"[:27] for i in range(len(pts))]
    boxes = place_labels(pts, texts, 440.0, 340.0)
    placed = [b for b in boxes if b is not None]
    assert all(b is not None for b in boxes[:10]) and len(placed) >= 20
    for i, a in enumerate(placed):
        assert 0 <= a.x0 < a.x1 <= 440 and 0 <= a.y0 < a.y1 <= 340
        assert not any(a.hits(b) for b in placed[i + 1 :]), a
        assert not any(a.hits((x - MARKER_PX, y - MARKER_PX, x + MARKER_PX, y + MARKER_PX)) for x, y in pts)
    for (x, y), b in zip(pts, boxes, strict=True):  # each label sits where its point is plus its offset
        if b is not None:
            assert (b.x0 + b.x1) / 2 == pytest.approx(x + b.dx) and (b.y0 + b.y1) / 2 == pytest.approx(y + b.dy)


def test_export_formats() -> None:
    from ui.web import export_formats

    assert export_formats([{"name": "unet.a"}, {"name": "text_encoder.b"}]) == ["diffusers", "kohya"]
    assert export_formats([{"name": "unet.a"}]) == ["diffusers", "peft", "kohya"]
    assert export_formats([{"name": "model.transformer.h.0.attn.c_attn"}]) == ["peft"]


@pytest.mark.parametrize(
    ("total", "page", "size", "want"),
    [
        (0, 1, 25, (1, 1, 0)),  # empty: one empty page
        (25, 1, 25, (1, 1, 0)),
        (26, 2, 25, (2, 2, 25)),  # the last page holds one row
        (26, 9, 25, (2, 2, 25)),  # past the end: the last page
        (26, 0, 25, (1, 2, 0)),  # before the start: the first
        (26, "junk", 25, (1, 2, 0)),
        (317, "3", "100", (3, 4, 200)),  # strings from the URL
        (5, 1, 0, (1, 5, 0)),  # size 0 → one row a page, never a division by zero
    ],
)
def test_browse_paging(total: int, page: object, size: object, want: tuple[int, int, int]) -> None:
    from ui.web.browse import paging

    pg = paging(total, page, size)
    assert (pg.page, pg.pages, pg.offset) == want
    assert pg.has_prev == (pg.page > 1) and pg.has_next == (pg.page < pg.pages)
    rows_on_page = max(0, min(pg.size, total - pg.offset))
    assert rows_on_page == (0 if total == 0 else min(pg.size, total - (pg.page - 1) * pg.size))
    label = pg.label()
    assert label.startswith(f"page {pg.page} of {pg.pages}")
    if total:
        assert f"{pg.offset + 1}–{pg.offset + rows_on_page} of {total}" in label


def test_browse_sorts_are_the_api_sorts() -> None:
    from registry.crud import SORT_KEYS
    from ui.web.browse import sort_choices

    values = [v for _, v in sort_choices()]
    assert sorted(values) == sorted([*SORT_KEYS, *(f"-{k}" for k in SORT_KEYS)])
    assert len({label for label, _ in sort_choices()}) == len(values)  # every entry reads differently
