"""Search by example picture: an image family's candidates rendered on its base and ranked by how much
their pictures look like the user's example, through the service, the CLI, the REST API and the client,
on real image zoo adapters in a real registry."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loradex.client import Client
from loradex.errors import SearchError
from loradex.service import LocalService

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "benchmarks" / "zoo" / "image" / "adapters"
TEXT = REPO / "benchmarks" / "zoo" / "text" / "adapters"
LOOKS = ("grayscale", "sepia", "night", "dots", "hstripes", "checker", "star", "sepia_dots")
OWN_PROMPT = "a purple ring on a black background"  # none of the previews draws it


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> LocalService:
    if not (IMAGE / "grayscale").is_dir() or not (TEXT / "reverse").is_dir():
        pytest.skip("the zoos are not built")
    s = LocalService.open(tmp_path_factory.mktemp("by_image") / "home")
    report = s.ingest([IMAGE / name for name in LOOKS] + [TEXT / "reverse"])
    assert report.count("ingested") == len(LOOKS) + 1
    return s


def _png(image: Any) -> bytes:
    """One rendered picture (3, H, W) in [0, 1] as PNG bytes."""
    from PIL import Image

    arr = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _example(svc: LocalService, name: str, prompt: str = OWN_PROMPT) -> tuple[bytes, bytes]:
    """(the bare base's picture, the adapter's picture) of ``prompt``: a user's example."""
    base, styled = svc.previews.images(svc.registry, svc.get(name), [prompt])
    return _png(base[0]), _png(styled[0])


@pytest.mark.parametrize("name", ["grayscale", "night", "dots", "star", "sepia_dots"])
def test_a_picture_finds_the_adapter_that_drew_it(svc: LocalService, name: str) -> None:
    _, picture = _example(svc, name)
    hits = svc.search("", 3, images=[picture], family="zoo-image")
    assert hits[0].adapter["name"] == name, [(h.adapter["name"], h.score) for h in hits]
    assert hits.nothing_fits is False and hits[0].scores["over_base"] > 0
    assert "zoo's classifier" in hits[0].why and f"{len(LOOKS)} candidates" in hits[0].why
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_the_bare_base_picture_fits_nothing(svc: LocalService) -> None:
    plain, _ = _example(svc, "grayscale")
    hits = svc.search("", 3, images=[plain])  # the one family with an image pipeline is found alone
    assert hits.nothing_fits is True and all(h.scores["over_base"] < 0.01 for h in hits)
    assert hits.verdict().startswith("Nothing in the registry is likely to do this; the closest")


def test_the_default_judge_reads_colours_without_a_registered_one(svc: LocalService,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from loradex import judges

    monkeypatch.setitem(judges._JUDGES, "zoo-image", judges.STYLE)
    prompts = [OWN_PROMPT, "an orange cross on a teal background", "a pink ring on a navy background"]
    pictures = [_example(svc, "sepia", p)[1] for p in prompts]  # one alone is often too little for colours
    hits = svc.search("", 3, images=pictures, family="zoo-image")
    assert hits[0].adapter["name"] == "sepia" and "style (colours and texture)" in hits[0].why
    assert hits.nothing_fits is None  # closer than the base, but colours alone cannot say it does the look


def test_style_features_tell_looks_apart() -> None:
    from loradex.judges import style_features

    rng = np.random.default_rng(0)
    colour = rng.random((1, 32, 32, 3))
    grey = np.repeat(colour.mean(axis=3, keepdims=True), 3, axis=3)
    stripes = np.zeros((1, 32, 32, 3))
    stripes[:, ::4] = 1.0  # horizontal lines
    f = style_features(np.concatenate([colour, grey, stripes, stripes.transpose(0, 2, 1, 3)]))
    assert f.shape[0] == 4 and np.allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    assert f[0] @ f[1] < 0.9 and f[2] @ f[3] < 0.9  # grey is not colour; vertical lines are not horizontal
    assert np.allclose(f[2], style_features(stripes)[0], atol=1e-6)  # a row's features depend on it alone


def test_bad_example_pictures_are_refused_by_name(svc: LocalService, tmp_path: Path) -> None:
    _, picture = _example(svc, "grayscale")
    with pytest.raises(SearchError, match=r"example picture 2: not a picture"):
        svc.search("", 3, images=[picture, b"not an image"], family="zoo-image")
    missing = tmp_path / "nope.png"
    with pytest.raises(SearchError, match=rf"example picture 1 \({missing}\): cannot be read"):
        svc.search("", 3, images=[missing], family="zoo-image")
    with pytest.raises(SearchError, match=r"example picture 1: empty \(0 bytes\)"):
        svc.search("", 3, images=[b""], family="zoo-image")
    with pytest.raises(
        SearchError, match=r"example picture 1: not a picture .* that can be read: image file is truncated"
    ):
        svc.search("", 3, images=[picture[:60]], family="zoo-image")
    with pytest.raises(SearchError, match="give 1 … 8 example pictures, got 9"):
        svc.search("", 3, images=[picture] * 9, family="zoo-image")
    with pytest.raises(SearchError, match="family 'zoo-text' has no registered image pipeline"):
        svc.search("", 3, images=[picture], family="zoo-text")
    with pytest.raises(SearchError, match="not both"):
        svc.search("", 3, images=[picture], examples=[("a", "b")], family="zoo-image")


def test_by_picture_through_the_cli_the_api_and_the_client(svc: LocalService, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from ui.api import create_app
    from ui.server import BackgroundServer

    _, picture = _example(svc, "night")
    path = tmp_path / "night.png"
    path.write_bytes(picture)
    out = subprocess.run(
        [sys.executable, "-m", "ui.cli", "--home", str(svc.home), "search", "--example-image", str(path),
         "--family", "zoo-image", "-k", "2", "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["hits"][0]["adapter"]["name"] == "night"
    with TestClient(create_app(svc)) as http:
        r = http.post("/search", json={"prompt": "", "k": 2, "images": [base64.b64encode(picture).decode()]})
        assert r.status_code == 200 and r.json()["hits"][0]["adapter"]["name"] == "night"
        bad = http.post("/search", json={"prompt": "", "images": ["@@not base64@@"]})
        assert bad.status_code == 400 and "base64" in bad.json()["error"]["message"]
        from ui.api.schemas import PICTURE_B64_CHARS

        big = http.post("/search", json={"prompt": "", "images": ["A" * (PICTURE_B64_CHARS + 4)]})
        assert big.status_code == 400 and "images.0" in big.json()["error"]["message"]  # refused before decoding
    with BackgroundServer(create_app(svc)) as server, Client(server.url) as client:
        assert client.search("", 2, images=[path])[0].adapter["name"] == "night"
        with pytest.raises(SearchError, match="example picture 1: not a picture"):
            client.search("", 2, images=[b"junk"])


def test_by_picture_in_the_web_ui(svc: LocalService, tmp_path: Path) -> None:
    from ui.web import WebUI
    from ui.web.app import ANY

    _, picture = _example(svc, "dots")
    path = tmp_path / "dots.png"
    path.write_bytes(picture)
    steps: list[float] = []
    cards, _, button = WebUI(svc, admin_token=None).search("", ANY, ANY, ANY, "", "hybrid", 3, "", str(path),
                                                          progress=lambda share, desc="": steps.append(share))  # fmt: skip
    assert re.findall(r'class="ldx-card" data-name="([^"]*)"', cards)[0] == "dots" and button.visible is False
    assert steps and steps[-1] == 1.0  # the candidates' renders are reported as they go
