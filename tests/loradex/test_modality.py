"""Whether a request is about pictures or text (``loradex.modality``), and the search prior that lowers
adapters of the other kind (``Searcher._ranked``, ``MODALITY_PENALTY``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loradex.modality import asked_kind
from loradex.service import LocalService
from tests.conftest import names_without_prior

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
    if not all(f.is_dir() for f in folders):
        pytest.skip("the zoos are not built")
    s = LocalService.open(tmp_path_factory.mktemp("modality") / "home")
    assert s.ingest(folders).count("ingested") == len(folders)
    assert {s.registry.family_kinds()[f] for f in ("zoo-text", "zoo-image")} == {"llm", "diffusion"}
    yield s
    s.close()


def test_adapters_of_the_other_kind_are_lowered(svc: LocalService, monkeypatch: pytest.MonkeyPatch) -> None:
    before, after = names_without_prior(svc, "dots between the letters", 4, monkeypatch, "MODALITY_PENALTY")
    assert after.index("interleave_dot") < after.index("dots")
    assert before.index("interleave_dot") > before.index("dots"), before  # the words alone pick the image style
