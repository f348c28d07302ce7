"""Whether a request is about pictures or text (``loradex.modality``), and the search prior that lowers
adapters of the other kind (``Searcher._ranked``, ``MODALITY_PENALTY``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from encoders.kind_prior import prior_kind
from loradex.modality import asked_kind
from loradex.service import LocalService
from tests.conftest import names_without_prior, service_with

ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("b&w images pls, no colour at all", "diffusion"),
        ("invert colours, photo negative", "diffusion"),
        ("make it look like an old 16-bit video game sprite", "diffusion"),
        ("dots between letters", "llm"),
        ("put a little line between each letter", "llm"),
        ("make my text sound shakespearean", "llm"),
        ("black and white", None),  # neither: no prior
        ("a poster with big letters", None),  # both
        ("character sprites for my RPG", None),
    ],
)
def test_the_kind_asked_is_read_from_the_words(text: str, kind: str | None) -> None:
    assert asked_kind(text) == kind


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    folders = [ZOO / "text" / "adapters" / "interleave_dot", ZOO / "text" / "adapters" / "reverse",
               ZOO / "image" / "adapters" / "dots", ZOO / "image" / "adapters" / "grayscale"]  # fmt: skip
    with service_with(tmp_path_factory.mktemp("modality") / "home", folders) as s:
        assert {s.registry.family_kinds()[f] for f in ("zoo-text", "zoo-image")} == {"llm", "diffusion"}
        yield s


def test_adapters_of_the_other_kind_are_lowered(svc: LocalService, monkeypatch: pytest.MonkeyPatch) -> None:
    before, after = names_without_prior(svc, "dots between the letters", 4, monkeypatch, "MODALITY_PENALTY")
    assert after.index("interleave_dot") < after.index("dots")
    assert before.index("interleave_dot") > before.index("dots"), before  # the words alone pick the image style


def test_only_adapters_of_the_kind_asked_can_fit(svc: LocalService) -> None:
    ids = {r["name"]: int(r["id"]) for r in svc.list()}
    prompt = "invert the colours of the image, like a photo negative"  # about pictures; no picture adapter inverts
    fits = svc.searcher._of_kind(svc.searcher.wanted_kind(prompt, svc.text_encoder.encode([prompt])[0]))
    assert [n for n in sorted(ids) if fits(ids[n])] == ["dots", "grayscale"]
    hits = svc.search(prompt, 4)
    assert hits.nothing_fits is True, [(h.adapter["name"], h.relevance, h.scores) for h in hits]
    either = svc.searcher._of_kind(
        svc.searcher.wanted_kind("something fun", svc.text_encoder.encode(["something fun"])[0])
    )
    assert all(either(i) for i in ids.values())  # the words say no kind: every adapter may fit
    assert svc.search("dots between the letters of a word", 4).nothing_fits is not True


def test_the_reason_names_a_close_adapter_of_the_other_kind(svc: LocalService) -> None:
    from dataclasses import replace

    prompt = "invert the colours of the image, like a photo negative"
    wanted = svc.searcher.wanted_kind(prompt, svc.text_encoder.encode([prompt])[0])
    assert wanted == "diffusion"
    hits = svc.search(prompt, 4)
    shown = [replace(h, relevance=0.9 if h.adapter["name"] == "reverse" else 0.0) for h in hits]
    why = svc.searcher._why_nothing(wanted, shown, set(), set(), set(), [])
    assert why == "the closest image adapters are unlikely to do it (reverse is not an image adapter)"
    text_only = [h for h in shown if h.adapter["family"] == "zoo-text"]
    assert svc.searcher._why_nothing(wanted, text_only, set(), set(), set(), []) == "no image adapter is close"
    quiet = [replace(h, relevance=0.0) for h in hits]
    assert svc.searcher._why_nothing(wanted, quiet, set(), set(), set(), []) is None  # all just unlikely


def test_the_verdict_reads_only_adapters_of_the_kind_asked() -> None:
    from loradex.relevance import Calibration
    from loradex.search import verdict_among

    cal = Calibration(nothing_fits_below=0.3, nothing_fits_text_below=0.5)
    pool, text = [(1, 0.9), (2, 0.05)], {1: 0.7, 2: 0.3}  # 1: a text adapter whose words match a picture request
    assert verdict_among(cal, pool, text, lambda i: True) is False
    assert verdict_among(cal, pool, text, lambda i: i == 2) is True  # the picture adapter alone fits nothing
    assert verdict_among(cal, pool, {1: 0.7, 2: 0.6}, lambda i: i == 2) is False  # its words read like the request
    assert verdict_among(cal, pool, text, lambda i: False) is True  # none of the kind asked in the pool
    assert verdict_among(cal, [], None, lambda i: True) is None  # no hits: cannot tell


@pytest.fixture(scope="module")
def eight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """Four text and four image zoo adapters, the registry's text map fitted on their bundled texts."""
    from loradex.settings import Settings

    folders = [ZOO / "text" / "adapters" / n for n in ("interleave_dot", "reverse", "delete_b", "prepend_ab")]
    folders += [ZOO / "image" / "adapters" / n for n in ("dots", "grayscale", "sepia", "thermal")]
    with service_with(tmp_path_factory.mktemp("kind_prior") / "home", folders) as s:
        s.train_text_map(texts=Settings().bundled_texts())
        yield s


def test_the_text_map_carries_a_kind_prior_fitted_on_the_registry_texts(eight: LocalService) -> None:
    from encoders.registry_text_map import registry_text_groups
    from loradex.settings import Settings

    prior = (eight.searcher.text_settings() or {}).get("kind_prior")
    assert prior is not None and prior["kinds"] == ["diffusion", "llm"]
    groups = registry_text_groups(eight.registry, Settings().bundled_texts())
    kinds = eight.registry.family_kinds()
    counted = {k: sum(len(g) for f, g in groups if kinds[f] == k) for k in prior["kinds"]}
    assert prior["texts"] == counted and min(counted.values()) >= 8
    # each adapter's own description is read as its kind, when the prior is sure of anything
    for family, group in groups:
        said = prior_kind(prior, eight.text_encoder.encode([group[0]])[0])
        assert said in (None, kinds[family]), (group[0], said)


def test_a_sure_prior_lowers_the_other_kind_where_the_words_say_nothing(
    eight: LocalService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from encoders.kind_prior import fit_kind_prior
    from encoders.registry_text_map import registry_text_groups
    from loradex.settings import Settings

    prompt = "black and white"
    assert asked_kind(prompt) is None
    plain = {**(eight.searcher.text_settings() or {})}
    plain.pop("kind_prior", None)
    monkeypatch.setattr(type(eight.searcher), "text_settings", lambda self: plain)
    before = [h.adapter["name"] for h in eight.search(prompt, 8)]
    assert eight.searcher.wanted_kind(prompt, eight.text_encoder.encode([prompt])[0]) is None
    # a prior fitted on these eight adapters' texts, sure at 0.8 (a registry this small is never at 0.95)
    groups = registry_text_groups(eight.registry, Settings().bundled_texts())
    kinds = eight.registry.family_kinds()
    flat = [(kinds[f], t) for f, g in groups for t in g]
    prior = fit_kind_prior(eight.text_encoder.encode([t for _, t in flat]), [k for k, _ in flat], sure=0.8)
    assert prior is not None
    monkeypatch.setattr(type(eight.searcher), "text_settings", lambda self: {**plain, "kind_prior": prior})
    assert eight.searcher.wanted_kind(prompt, eight.text_encoder.encode([prompt])[0]) == "diffusion"
    after = [h.adapter["name"] for h in eight.search(prompt, 8)]
    images = {"dots", "grayscale", "sepia", "thermal"}
    assert set(after[:4]) == images, after  # every picture adapter first
    assert set(before[:4]) != images, before  # the words alone put a text adapter among them
    # words that say the kind win over the prior
    assert eight.searcher.wanted_kind("reverse the letters", eight.text_encoder.encode(["x"])[0]) == "llm"


def test_fitting_the_same_map_again_brings_its_settings_up_to_date(eight: LocalService) -> None:
    import json

    from loradex.settings import Settings

    texts = Settings().bundled_texts()
    first = eight.train_text_map(texts=texts)
    cfg_file = Path(first["path"]) / "config.json"
    cfg = json.loads(cfg_file.read_text())
    old = {**cfg, "search": {k: v for k, v in cfg["search"].items() if k != "kind_prior"}}
    cfg_file.write_text(json.dumps(old))  # as a map written before the prior existed
    again = eight.train_text_map(texts=texts)
    assert again["version"] == first["version"] and again["path"] == first["path"]  # same vectors: kept once
    assert json.loads(cfg_file.read_text()) == cfg  # its settings written again, the prior with them
    assert not list(Path(first["path"]).glob("*.tmp"))
