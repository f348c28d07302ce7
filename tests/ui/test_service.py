"""LocalService: ingestion embeds metadata text with the bundled MiniLM; search finds adapters."""

from __future__ import annotations

from pathlib import Path

import pytest

from ui.service import LocalService, SearchError

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"


@pytest.fixture
def service(tmp_path: Path, db_url: str) -> LocalService:
    svc = LocalService(tmp_path / "home", db_url)
    svc.ingest([SAMPLES])
    return svc


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a soft watercolor painting of a lake", "watercolor_sd15"),
        ("retro 16-bit game sprites", "Pixel Art XL"),
        ("write sql for my database table", "sql_helper_llama"),
        ("talk like Shakespeare, thee and thou", "Shakespeare GPT-2"),
        ("black pen drawing with hatching", "ink_sketch_sd2"),
        ("glowing neon lights at night", "neon_glow_flux"),
    ],
)
def test_text_search_finds_the_adapter(service: LocalService, prompt: str, expected: str) -> None:
    hits = service.search(prompt, k=3)
    assert hits[0].adapter["name"] == expected, [(h.adapter["name"], h.score) for h in hits]
    assert hits[0].scores["text"] == pytest.approx(hits[0].score)
    assert "text similarity" in hits[0].why and "metadata text only" in hits[0].why


def test_search_filters_and_errors(service: LocalService) -> None:
    hits = service.search("painting style", k=10, family="sd1")
    assert [h.adapter["family"] for h in hits] == ["sd1"]
    assert {h.adapter["name"] for h in service.search("anything", k=10, tags=["style"])} == {
        "watercolor_sd15",
        "Pixel Art XL",
    }
    assert service.search("anything", k=10, family="no-such-family") == []
    with pytest.raises(SearchError, match="unknown search mode"):
        service.search("x", mode="magic")
    with pytest.raises(SearchError, match="no weight encoder"):
        service.search("x", mode="weights")
    with pytest.raises(SearchError, match="empty prompt"):
        service.search("  ")


def test_removed_adapter_leaves_search(service: LocalService) -> None:
    top = service.search("watercolor", k=1)[0].adapter
    service.remove(top["id"])
    assert all(h.adapter["id"] != top["id"] for h in service.search("watercolor", k=10))
