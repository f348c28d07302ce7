"""Preview images (loradex.previews) on a tiny image zoo built from nothing: the two rows are exactly the
base pipeline without and with the adapter (as diffusers loads the original file), rendering leaves
the base weights pristine, previews are cached, and families without a pipeline get a clear refusal
through the service, the REST API, the client and the web UI."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from benchmarks.zoo.plugins import zoo_image_pipeline
from loradex import previews
from loradex.errors import PreviewUnavailableError
from loradex.previews import grid_png, register_preview_pipeline

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"
STEPS = 4  # enough to exercise the pipeline; the tiny base is untrained anyway


@pytest.fixture(scope="module")
def zoo(tiny_image_zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    from loradex.service import LocalService

    previews.preview_families()  # the entry points are read before the snapshot that is restored
    saved = dict(previews._PIPELINES)
    spec = dataclasses.replace(zoo_image_pipeline(tiny_image_zoo / "base"), steps=STEPS, cell=32)
    register_preview_pipeline(spec, replace=True)
    home = tmp_path_factory.mktemp("previews")
    svc = LocalService.open(home, f"sqlite:///{home / 'loradex.db'}")
    try:
        svc.ingest([tiny_image_zoo / "adapters", SAMPLES / "watercolor_sd15.safetensors"])
        by = {a["name"]: a for a in svc.list()}
        yield SimpleNamespace(svc=svc, spec=spec, zoo=tiny_image_zoo, by=by, home=home)
    finally:
        svc.registry.close()
        previews._PIPELINES.clear()
        previews._PIPELINES.update(saved)


def direct(zoo_dir: Path, prompts: list[str], adapter: str | None) -> torch.Tensor:
    """What diffusers itself draws from the zoo's own files: (n, 3, H, W) in [0, 1]."""
    from benchmarks.zoo.image.model import load_base

    pipe = load_base(zoo_dir / "base")
    if adapter:
        pipe.load_lora_weights(str(zoo_dir / "adapters" / adapter), adapter_name=adapter)
    gens = [torch.Generator().manual_seed(i) for i in range(len(prompts))]
    return pipe(prompts, num_inference_steps=STEPS, guidance_scale=4.0, generator=gens, output_type="pt").images


def test_rows_are_the_base_without_and_with_the_adapter(zoo: SimpleNamespace) -> None:
    from benchmarks.zoo.image.captions import preview_prompts

    info = zoo.svc.get(zoo.by["hstripes"]["id"])
    base, styled = zoo.svc.previews.images(zoo.svc.registry, info)
    prompts = preview_prompts(info)
    assert base.shape == styled.shape == (len(prompts), 3, 32, 32)
    torch.testing.assert_close(base, direct(zoo.zoo, prompts, None), atol=1e-4, rtol=0)
    torch.testing.assert_close(styled, direct(zoo.zoo, prompts, "hstripes"), atol=1e-3, rtol=0)
    assert (styled - base).abs().max() > 1e-4  # the adapter changes the picture


def test_new_shape_adapters_are_asked_for_their_shape(zoo: SimpleNamespace) -> None:
    from benchmarks.zoo.image.captions import preview_prompts

    assert all(" heart " in p for p in preview_prompts(zoo.by["heart"]))
    assert not any(" heart " in p for p in preview_prompts(zoo.by["hstripes"]))


def test_rendering_keeps_the_base_pristine(zoo: SimpleNamespace) -> None:
    zoo.svc.previews.images(zoo.svc.registry, zoo.svc.get(zoo.by["grayscale"]["id"]))
    pipe = zoo.svc.previews._pipes["zoo-image"][1]
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    zoo.svc.previews.images(zoo.svc.registry, zoo.svc.get(zoo.by["sepia_dots"]["id"]))
    after = pipe.unet.state_dict()
    assert before.keys() == after.keys()  # no LoRA layers left behind
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not getattr(pipe.unet, "peft_config", None)


def test_png_is_cached_by_sha_and_pipeline(zoo: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    info = zoo.svc.get(zoo.by["heart"]["id"])
    png = zoo.svc.preview(info["id"])
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size == (4 * 32 + 3 * 2, 2 * 32 + 2)
    cached = list((zoo.home / "cache" / "previews").glob(f"{info['sha256']}-{zoo.spec.key()}.png"))
    assert len(cached) == 1

    def boom(*_: object) -> None:
        raise AssertionError("rendered again instead of reading the cache")

    monkeypatch.setattr(zoo.svc.previews, "_images", boom)
    assert zoo.svc.preview(info["id"]) == png


def test_grid_png_layout() -> None:
    from PIL import Image

    top, bottom = torch.zeros(3, 3, 8, 8), torch.ones(3, 3, 8, 8)
    img = Image.open(io.BytesIO(grid_png(top, bottom, 16))).convert("RGB")
    assert img.size == (3 * 16 + 2 * 2, 2 * 16 + 2)
    assert img.getpixel((5, 5)) == (0, 0, 0) and img.getpixel((5, 16 + 2 + 5)) == (255, 255, 255)


def test_family_without_a_pipeline_is_refused_clearly(zoo: SimpleNamespace) -> None:
    with pytest.raises(PreviewUnavailableError, match=r"no preview pipeline for family 'sd1'.*zoo-image"):
        zoo.svc.preview(zoo.by["watercolor_sd15"]["id"])
    assert not zoo.svc.previews.available("sd1") and zoo.svc.previews.available("zoo-image")


def test_registration_rejects_duplicates_and_bad_specs(zoo: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_preview_pipeline(zoo.spec)
    with pytest.raises(ValueError, match="module:function"):
        dataclasses.replace(zoo.spec, loader="not-a-reference")
    with pytest.raises(ValueError, match="at least one prompt"):
        dataclasses.replace(zoo.spec, prompts=())


def test_preview_over_the_api_and_the_client(zoo: SimpleNamespace) -> None:
    from fastapi.testclient import TestClient

    from loradex import Client
    from registry.errors import AdapterNotFoundError
    from ui.api import create_app

    with TestClient(create_app(zoo.svc)) as http:
        ok = http.get(f"/adapters/{zoo.by['hstripes']['id']}/preview.png")
        assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
        assert ok.content == zoo.svc.preview(zoo.by["hstripes"]["id"])
        no = http.get(f"/adapters/{zoo.by['watercolor_sd15']['id']}/preview.png")
        assert no.status_code == 404 and no.json()["error"]["code"] == "no_preview"
        assert "sd1" in no.json()["error"]["message"]
        client = Client("http://testserver", http=http)
        assert client.preview(zoo.by["hstripes"]["id"]) == ok.content
        with pytest.raises(PreviewUnavailableError, match="sd1"):
            client.preview(zoo.by["watercolor_sd15"]["id"])
        with pytest.raises(AdapterNotFoundError):
            client.preview(99999)


def test_web_cards_show_previews_where_a_pipeline_exists(zoo: SimpleNamespace) -> None:
    from loradex.types import SearchHit
    from ui.web import WebUI

    ui = WebUI(zoo.svc, admin_token=None)
    zoo_card = ui.card(SearchHit(zoo.svc.get(zoo.by["hstripes"]["id"]), 1.0, {"text": 0.5}), 1)
    assert f'src="../adapters/{zoo.by["hstripes"]["id"]}/preview.png"' in zoo_card and "ldx-svg" not in zoo_card
    sd_card = ui.card(SearchHit(zoo.svc.get(zoo.by["watercolor_sd15"]["id"]), 1.0, {"text": 0.5}), 1)
    assert "ldx-preview" not in sd_card and 'class="ldx-svg"' in sd_card  # the fingerprint instead
    assert "preview.png" in ui.detail_html(zoo.svc.get(zoo.by["heart"]["id"]))


def test_render_many_draws_what_each_preview_draws(zoo: SimpleNamespace, tmp_path: Path) -> None:
    """Several adapters per pipeline call (rows routed, each with its column's seed) give the pictures
    one call per adapter gives, skip what is cached, say how far they are, and leave the base as it was."""
    import numpy as np
    from PIL import Image

    infos = [zoo.svc.get(zoo.by[n]["id"]) for n in ("hstripes", "grayscale", "sepia_dots", "heart")]
    many = previews.Previewer(tmp_path / "many")
    pipe = zoo.svc.previews._pipe(zoo.spec, zoo.spec.key())
    many._pipes["zoo-image"] = (zoo.spec.key(), pipe)  # the same loaded pipeline
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    seen: list[tuple[int, int]] = []
    many.render_many(zoo.svc.registry, infos, batch=3, progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, 4) and seen[-1] == (4, 4) and all(many.cached(i) for i in infos)
    after = pipe.unet.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    for info in infos:
        a = np.asarray(Image.open(io.BytesIO(many.png(zoo.svc.registry, info))), dtype=np.int16)
        b = np.asarray(Image.open(io.BytesIO(zoo.svc.preview(info["id"]))), dtype=np.int16)
        assert np.abs(a - b).max() <= 1, info["name"]  # to float rounding
    seen.clear()
    many.render_many(zoo.svc.registry, infos, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(4, 4)]  # all cached: nothing rendered
