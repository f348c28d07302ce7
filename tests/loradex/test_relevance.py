"""Calibrated relevance and "nothing fits" (``loradex.relevance``), from the fit rules to a real
registry of zoo adapters searched through the service, the REST API, the client and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from encoders.weight import BUNDLED
from loradex.relevance import TEXT_CALIBRATION, Calibration
from loradex.service import LocalService

REPO = Path(__file__).resolve().parents[2]
TEXT = REPO / "benchmarks" / "zoo" / "text" / "adapters"
IMAGE = REPO / "benchmarks" / "zoo" / "image" / "adapters"
TEXT_TASKS = ("reverse", "upper", "lower", "caesar_1", "caesar_3", "append_ing", "delete_e", "sort")
IMAGE_TASKS = ("sepia", "grayscale", "dots", "star", "hstripes")


def test_relevance_uses_the_fit_of_the_signals_a_hit_has() -> None:
    cal = Calibration(text=[10.0, -5.0], families={"f": {"weights": [8.0, -4.0], "both": [6.0, 4.0, -6.0]}},
                      nothing_fits_below=0.4)  # fmt: skip
    both = cal.relevance("f", {"weights": 0.9, "text": 0.6})
    assert both == pytest.approx(1 / (1 + 2.718281828 ** -(6 * 0.9 + 4 * 0.6 - 6)), rel=1e-6)
    assert cal.relevance("f", {"weights": 0.9, "text": None}) == pytest.approx(1 / (1 + 2.718281828**-3.2))
    assert cal.relevance("g", {"weights": 0.9, "text": 0.6}) == pytest.approx(1 / (1 + 2.718281828**-1.0))
    assert cal.relevance("g", {"weights": 0.9, "text": None}) is None  # an encoder without a fit
    assert cal.nothing_fits([0.1, 0.2]) is True
    assert cal.nothing_fits([0.1, 0.5]) is False
    assert cal.nothing_fits([0.5, None]) is False
    assert cal.nothing_fits([0.1, None]) is None  # the unknown one might fit
    assert cal.nothing_fits([]) is None
    cal.nothing_fits_text_below = 0.45  # both signals must agree that nothing fits
    assert cal.nothing_fits([0.1, 0.2], best_text=0.3) is True
    assert cal.nothing_fits([0.1, 0.2], best_text=0.5) is False  # a description reads like the request
    assert cal.nothing_fits([0.1, 0.2], best_text=None) is True  # no text signal: relevance alone


def test_bundled_fits_rise_with_similarity() -> None:
    """The committed fits (``python -m benchmarks.relevance fit … --write``) are there for both zoo
    encoders and the text side, and more similar means more relevant."""
    text = json.loads(TEXT_CALIBRATION.read_text())
    assert text["text"][0] > 0 and 0.01 < text["nothing_fits_below"] < 0.95
    assert 0.1 < text["nothing_fits_text_below"] < 0.9
    for family in ("zoo-text", "zoo-image"):
        fit = json.loads((BUNDLED / family / "calibration.json").read_text())
        assert fit["weights"][0] > 0 and fit["both"][0] > 0 and fit["both"][1] > 0
    cal = Calibration.load(
        {f: json.loads((BUNDLED / f / "calibration.json").read_text()) for f in ("zoo-text", "zoo-image")}
    )
    for family in ("zoo-text", "zoo-image"):
        low, high = (cal.relevance(family, {"weights": w, "text": t}) for w, t in ((0.1, 0.1), (0.9, 0.7)))
        assert low is not None and high is not None and low < 0.2 < 0.8 < high


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> LocalService:
    if not (TEXT / "reverse").is_dir() or not (IMAGE / "sepia").is_dir():
        pytest.skip("the zoos are not built")
    s = LocalService.open(tmp_path_factory.mktemp("relevance") / "home")
    report = s.ingest([TEXT / t for t in TEXT_TASKS] + [IMAGE / t for t in IMAGE_TASKS])
    assert report.count("ingested") == len(TEXT_TASKS) + len(IMAGE_TASKS)
    return s


@pytest.mark.parametrize(
    ("prompt", "name"),
    [("write the word backwards", "reverse"), ("ALL CAPS please", "upper"), ("old brownish photo tint", "sepia")],
)
def test_a_request_an_adapter_does_is_answered_with_confidence(svc: LocalService, prompt: str, name: str) -> None:
    hits = svc.search(prompt, 5)
    assert hits.nothing_fits is False
    best = max(hits, key=lambda h: h.relevance or 0.0)
    assert best.adapter["name"] == name and best.relevance is not None and best.relevance >= hits.threshold
    assert hits.verdict() == ""


@pytest.mark.parametrize("prompt", ["translate this paragraph into Japanese", "is this restaurant review positive?",
                                    "photorealistic portrait of a golden retriever"])  # fmt: skip
def test_a_request_no_adapter_does_says_so(svc: LocalService, prompt: str) -> None:
    hits = svc.search(prompt, 5)
    assert len(hits) == 5  # the closest are still listed
    assert hits.nothing_fits is True, [(h.adapter["name"], h.relevance) for h in hits]
    assert all(h.relevance is not None and h.relevance < hits.threshold for h in hits)
    assert "Nothing in the registry" in hits.verdict()


def test_relevance_and_verdict_do_not_depend_on_k(svc: LocalService) -> None:
    for prompt in ("shift each letter by three", "translate into French"):
        by_k = {k: svc.search(prompt, k) for k in (1, 3, 13)}
        rel = {h.adapter["id"]: h.relevance for h in by_k[13]}
        assert len({hits.nothing_fits for hits in by_k.values()}) == 1
        for hits in by_k.values():
            assert all(h.relevance == rel[h.adapter["id"]] for h in hits)


def test_text_only_search_is_calibrated_too(svc: LocalService) -> None:
    hits = svc.search("sepia toned old photograph", 3, mode="text")
    assert all(h.scores.get("weights") is None and h.relevance is not None for h in hits)


def test_cli_prints_the_verdict_and_json_carries_it(svc: LocalService) -> None:
    home = str(svc.registry.home)
    base = [sys.executable, "-m", "ui.cli", "--home", home, "search"]
    out = subprocess.run([*base, "translate into German", "-k", "3", "--json"], capture_output=True, text=True,
                         timeout=300, cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["nothing_fits"] is True and 0 < data["relevance_threshold"] < 1
    assert all(0 <= h["relevance"] < data["relevance_threshold"] for h in data["hits"])
    shown = subprocess.run([*base, "translate into German", "-k", "3"], capture_output=True, text=True, timeout=300,
                           cwd=REPO, env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "Nothing in the registry" in shown.stdout and "loradex generate" in shown.stdout


def test_rest_api_and_client_carry_relevance_and_verdict(svc: LocalService) -> None:
    from loradex.client import Client
    from ui.api import create_app
    from ui.server import BackgroundServer

    with BackgroundServer(create_app(svc, admin_token="t")) as server, Client(server.url) as client:
        for prompt in ("write the word backwards", "summarize a news article"):
            local, remote = svc.search(prompt, 4), client.search(prompt, 4)
            assert remote == local and remote.nothing_fits == local.nothing_fits
            assert [h.relevance for h in remote] == [h.relevance for h in local]
            assert remote.threshold == local.threshold
        assert client.search("summarize a news article", 4).nothing_fits is True


def test_a_mapped_text_fit_replaces_the_text_side_only() -> None:
    plain = Calibration(text=[5.0, -5.0], nothing_fits_below=0.05, nothing_fits_text_below=0.4,
                        families={"f": {"weights": [8.0, -4.0], "both": [6.0, 4.0, -6.0]},
                                  "g": {"weights": [9.0, -4.0], "both": [7.0, 1.0, -6.0]}})  # fmt: skip
    mapped = plain.for_mapped_text({"text": [9.0, -7.0], "families": {"f": {"both": [5.0, 3.0, -7.0]}},
                                    "nothing_fits_below": 0.1, "nothing_fits_text_below": 0.6})  # fmt: skip
    assert mapped.text == [9.0, -7.0] and (mapped.nothing_fits_below, mapped.nothing_fits_text_below) == (0.1, 0.6)
    assert mapped.families == {"f": {"weights": [8.0, -4.0], "both": [5.0, 3.0, -7.0]}, "g": {"weights": [9.0, -4.0]}}
    # g's joint fit was made on plain text cosines: its hits are judged by their weights alone
    assert mapped.relevance("g", {"weights": 0.5, "text": 0.9}) == plain.relevance("g", {"weights": 0.5, "text": None})
    assert plain.families["g"]["both"] == [7.0, 1.0, -6.0]  # the plain calibration is unchanged
