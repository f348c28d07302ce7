"""LocalService: ingestion embeds metadata text with the bundled MiniLM; search finds adapters."""

from __future__ import annotations

from pathlib import Path

import pytest

from loradex.errors import SearchError
from loradex.service import LocalService

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"


@pytest.fixture
def service(tmp_path: Path, db_url: str) -> LocalService:
    svc = LocalService.open(tmp_path / "home", db_url)
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
    with pytest.raises(SearchError, match="unknown family 'no-such-family'; the registry has: flux, gpt2"):
        service.search("anything", k=10, family="no-such-family")  # a typo is not an empty result
    assert service.search("anything", k=10, family="gpt2", format="kohya") == []  # both exist, no adapter has both
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


def test_fuse_keeps_a_flat_signal_from_reordering() -> None:
    from loradex.search import fuse

    weights = {1: 0.9, 2: 0.5, 3: 0.1}
    flat_text = {1: 0.30, 2: 0.31, 3: 0.32}  # boilerplate text: every adapter alike
    order = sorted(fuse({"weights": weights, "text": flat_text}).items(), key=lambda t: -t[1])
    assert [i for i, _ in order] == [1, 2, 3]
    # a text signal that singles out adapter 3 overrides weights that find 1 and 3 alike
    peaked_text = {1: 0.1, 2: 0.1, 3: 0.8}
    near = {1: 0.62, 2: 0.2, 3: 0.6}
    fused = fuse({"weights": near, "text": peaked_text})
    assert max(fused, key=fused.__getitem__) == 3
    # an adapter with one signal only is scored on that one
    assert set(fuse({"weights": {1: 0.5, 2: 0.4}, "text": {1: 0.2}})) == {1, 2}
    # signals that disagree as strongly: the heavier one decides (weights by default)
    w_says_1, t_says_2 = {1: 0.9, 2: 0.1, 3: 0.5}, {1: 0.1, 2: 0.9, 3: 0.5}
    fused = fuse({"weights": w_says_1, "text": t_says_2})
    assert max(fused, key=fused.__getitem__) == 1
    fused = fuse({"weights": w_says_1, "text": t_says_2}, {"weights": 0.3, "text": 0.7})
    assert max(fused, key=fused.__getitem__) == 2


def test_real_fixtures_are_found_by_their_descriptions(real_adapters: Path, tmp_path: Path) -> None:
    svc = LocalService.open(tmp_path / "home")
    report = svc.ingest([real_adapters])
    assert report.count("ingested") == 12
    described = [a for a in svc.list() if (a["description"] or "").strip()]
    assert len(described) >= 4
    for a in described:
        hits = svc.search(a["description"][:300], k=3)
        assert a["id"] in [h.adapter["id"] for h in hits], (a["name"], [h.adapter["name"] for h in hits])
        mine = next(h for h in hits if h.adapter["id"] == a["id"])
        assert mine.scores["text"] is not None and "metadata text only" in mine.why  # no encoder for these families


def test_an_adapter_with_only_boilerplate_text_is_found_by_its_weights(tmp_path: Path) -> None:
    """A generic folder name and a format-derived tag say nothing about an adapter: it gets no text
    embedding (its similarity would be noise), keeps the tag as a filter, and is found by its weights."""
    import shutil

    zoo = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "text" / "adapters"
    src = tmp_path / "adapters"
    shutil.copytree(zoo / "append_abc", src / "adapter_0001", ignore=shutil.ignore_patterns("description.txt"))
    shutil.copytree(zoo / "reverse", src / "reverse")
    svc = LocalService.open(tmp_path / "home")
    try:
        assert svc.ingest([src]).count("ingested") == 2
        rows = {r["name"]: r for r in svc.list()}
        opaque, described = rows["adapter_0001"], rows["reverse"]
        assert opaque["tags"] == ["causal-lm"] and not opaque["description"]
        text_ids = svc.registry.indexes["text"].ids
        assert opaque["id"] not in text_ids and described["id"] in text_ids
        assert {opaque["id"], described["id"]} <= svc.registry.indexes["weights"].ids
        hits = svc.search("add abc at the end of the text", 2, tags=["causal-lm"])
        assert hits[0].adapter["id"] == opaque["id"]
        assert hits[0].scores["text"] is None and "no description: matched by its weights" in hits[0].why
    finally:
        svc.registry.close()


def test_constructing_is_cheap_and_opening_is_explicit(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    svc = LocalService(tmp_path / "home")
    with pytest.raises(RuntimeError, match="not open"):
        svc.list()
    assert not (tmp_path / "home").exists()  # nothing created, nothing migrated
    code = ("import sys, json; from loradex import LocalService; "
            f"s = LocalService.open({str(tmp_path / 'bare')!r}, embed=False); "
            "print(json.dumps([len(s.list()), 'torch' in sys.modules]))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [0, False]  # the bare registry: migrated, no encoder loaded


def test_ingest_passes_origin_and_lineage(service: LocalService) -> None:
    import tempfile

    parent = next(r for r in service.list() if r["name"] == "watercolor_sd15")
    with tempfile.TemporaryDirectory() as d:
        service.export(parent["id"], "diffusers", d)  # other bytes: a new adapter
        lineage = [{"parent": parent["id"], "weight": 1.0, "method": "copy"}]
        (res,) = service.ingest([d], origin="generated", lineage=lineage).results
    info = service.get(res.adapter_id)
    assert res.status == "ingested" and info["origin"] == "generated"
    assert info["parents"] == [{"id": parent["id"], "weight": 1.0, "method": "copy"}]
    assert service.list(origin="generated")[0]["id"] == res.adapter_id
