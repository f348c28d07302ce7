"""Composite adapters read with their parts (``loradex.composites``, ``Searcher._with_parts``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from loradex.composites import description_parts, with_parts
from loradex.service import LocalService
from tests.conftest import service_with

ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo"


@pytest.mark.parametrize(
    ("description", "parts"),
    [
        ("A sepia tint combined with vertical stripes.", ["A sepia tint", "vertical stripes"]),
        ("Terminal greens together with polka dots", ["Terminal greens", "polka dots"]),
        ("Replace every vowel with 'x', then shift each letter forward by 2.",
         ["Replace every vowel with 'x'", "shift each letter forward by 2"]),
        ("Gives images a warm brown sepia tone like an old photograph.", None),
        ("A polka-dot pattern over the whole image.", None),
        ("plus", None),  # no part with a word in it
        ("", None),
    ],
)  # fmt: skip
def test_the_parts_a_description_names(description: str, parts: list[str] | None) -> None:
    assert description_parts(description) == (parts or [description.strip()])


def test_the_score_is_the_cosine_with_the_sum() -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((3, 8))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    q = rng.standard_normal(8)
    q /= np.linalg.norm(q)
    total = vecs.sum(axis=0)
    got = with_parts(float(q @ vecs[0]), [float(q @ v) for v in vecs[1:]], float(np.linalg.norm(total)))
    assert got == pytest.approx(float(q @ total / np.linalg.norm(total)))
    assert with_parts(0.3, [], 1.0) == 0.3 and with_parts(0.3, [0.5], 0.0) == 0.3


NAMES = ("sepia", "vstripes", "sepia_vstripes", "dots", "grayscale", "grayscale_dots")


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    with service_with(
        tmp_path_factory.mktemp("composites") / "home", [ZOO / "image" / "adapters" / n for n in NAMES]
    ) as s:
        yield s


def _ids(svc: LocalService) -> dict[str, int]:
    return {r["name"]: int(r["id"]) for r in svc.list()}


def test_a_composite_is_matched_to_its_parts(svc: LocalService) -> None:
    ids = _ids(svc)
    found = svc.searcher.parts_of(ids.values())
    assert found == {ids["sepia_vstripes"]: [ids["sepia"], ids["vstripes"]],
                     ids["grayscale_dots"]: [ids["grayscale"], ids["dots"]]}  # fmt: skip


def test_its_text_similarity_is_read_with_its_parts(svc: LocalService) -> None:
    ids = _ids(svc)
    prompt = "Old-photo sepia brown, with thin vertical stripes running top to bottom."
    hits = {h.adapter["name"]: h for h in svc.search(prompt, len(NAMES), mode="text")}
    index = svc.registry.indexes["text"]
    q = svc.searcher.text_query(prompt, svc.text_encoder.encode([prompt])[0])
    alone = index.score_ids(q, [ids[n] for n in ("sepia", "vstripes", "sepia_vstripes")])
    vecs = [svc.registry.embeddings_of(ids[n])["text"] for n in ("sepia_vstripes", "sepia", "vstripes")]
    total = np.sum(vecs, axis=0)
    want = float(q @ total / np.linalg.norm(total))
    assert hits["sepia_vstripes"].scores["text"] == pytest.approx(want, abs=1e-4)
    assert want > alone[ids["sepia_vstripes"]] + 0.02  # the request's words are the parts' words
    assert hits["sepia"].scores["text"] == pytest.approx(alone[ids["sepia"]], abs=1e-4)  # a single: as it was
    assert f"#{ids['sepia']}, #{ids['vstripes']}" in hits["sepia_vstripes"].why


def test_a_request_for_one_part_keeps_the_single_first(svc: LocalService) -> None:
    assert svc.search("old sepia photograph look", 3, mode="text")[0].adapter["name"] == "sepia"
    assert svc.search("polka dots", 3, mode="text")[0].adapter["name"] == "dots"


def test_a_part_no_adapter_does_leaves_the_composite_alone(tmp_path: Path) -> None:
    folders = [ZOO / "image" / "adapters" / n for n in ("sepia", "sepia_vstripes", "grayscale")]
    if not all(f.is_dir() for f in folders):
        pytest.skip("the zoos are not built")
    s = LocalService.open(tmp_path / "home")
    try:
        s.ingest(folders)
        assert s.searcher.parts_of(r["id"] for r in s.list()) == {}  # no stripes adapter: nothing to add
        s.ingest([ZOO / "image" / "adapters" / "vstripes"])  # the part arrives: matched from now on
        ids = _ids(s)
        assert s.searcher.parts_of(ids.values()) == {ids["sepia_vstripes"]: [ids["sepia"], ids["vstripes"]]}
        s.remove(ids["vstripes"])
        assert s.searcher.parts_of(_ids(s).values()) == {}
    finally:
        s.close()


def test_roles_and_the_combinations_a_registry_lacks() -> None:
    from loradex.composites import made_of, missing_combination, roles

    concept = {1: "sepia", 2: "stripes", 3: "gray", 4: "dots", 5: "sepia"}  # 5: a second seed of sepia
    parts_of = {10: [1, 2], 11: [3, 4], 12: [5, 4]}  # sepia+stripes, gray+dots, sepia+dots
    taken = roles(parts_of, concept)
    assert taken == {"sepia": {0}, "stripes": {1}, "gray": {0}, "dots": {1}}
    assert made_of(["dots", "sepia"], parts_of, concept) == [12]  # in any order
    assert made_of(["gray", "stripes"], parts_of, concept) == []
    assert missing_combination(["gray", "stripes"], taken, []) is True  # a palette and a texture, not held
    assert missing_combination(["sepia", "gray"], taken, []) is False  # two of one role: not a combination
    assert missing_combination(["sepia", "dots"], taken, [12]) is False  # held
    assert missing_combination(["gray", "stripes", "dots"], taken, []) is False  # three things
    chains = roles({20: [1, 2], 21: [2, 1]}, concept)  # steps in either order: no fixed roles
    assert missing_combination(["sepia", "stripes"], chains, []) is False


def test_the_composite_made_of_the_parts_asked_comes_first(svc: LocalService) -> None:
    ids = _ids(svc)
    prompt = "Old-photo sepia brown, with thin vertical stripes running top to bottom."
    searcher = svc.searcher
    read = prompt
    ranked = [(2.0, ids["sepia"], {}), (1.0, ids["vstripes"], {}), (0.5, ids["sepia_vstripes"], {})]
    moved, missing = searcher._by_concepts(read, ranked)
    assert [i for _, i, _ in moved] == [ids["sepia_vstripes"], ids["sepia"], ids["vstripes"]] and not missing
    assert moved[0][0] == 2.0  # it takes the lead's score
    assert svc.search(prompt, 3)[0].adapter["name"] == "sepia_vstripes"
    # one thing asked: nothing moves
    assert searcher._by_concepts("an old sepia photograph", ranked) == (ranked, [])


def test_a_palette_and_texture_the_registry_does_not_combine_fit_nothing(svc: LocalService) -> None:
    hits = svc.search("sepia tone with polka dots over it", 5)
    assert hits.nothing_fits is True  # sepia is a first part, dots a second, no sepia_dots
    assert hits.reason and "sepia (#" in hits.reason and "dots (#" in hits.reason and "compose" in hits.reason
    held = svc.search("grayscale tones with polka dots over it", 5)
    assert held[0].adapter["name"] == "grayscale_dots" and held.nothing_fits is not True
    ids = _ids(svc)
    two_textures = [(1.0, ids["vstripes"], {}), (0.5, ids["dots"], {})]
    assert svc.searcher._by_concepts("vertical stripes and polka dots", two_textures) == (two_textures, [])


def test_a_part_is_named_when_it_matches_closely_or_clearly_best() -> None:
    from loradex.composites import PART_FLOOR, clear_match

    concept = {1: "green terminal", 2: "green terminal", 3: "red", 4: "dots"}  # 2: a seed copy of 1
    assert clear_match([(4, 0.8), (3, 0.7)], concept) == 4  # close: named, whatever the rest
    assert clear_match([(1, 0.42), (2, 0.41), (3, 0.19)], concept) == 1  # twice as close as another concept
    assert clear_match([(1, 0.42), (3, 0.3)], concept) is None  # a rival about as close: not clear
    assert clear_match([(1, PART_FLOOR - 0.01)], concept) is None  # too far whatever the rest
    assert clear_match([(1, 0.4), (2, 0.39)], concept) == 1  # only copies of itself near
    assert clear_match([], concept) is None


@pytest.mark.parametrize(
    ("request_", "parts"),
    [
        ("cyanotype + checkerboard", ["cyanotype", "checkerboard"]),  # a spaced plus or & divides
        ("black&white & grid lines", ["black&white", "grid lines"]),  # an & inside a word does not
        ("shift letters +1", ["shift letters +1"]),
        ("Cyanotype toning combined with a checkerboard", ["Cyanotype toning", "a checkerboard"]),
    ],
)  # fmt: skip
def test_the_parts_a_request_names(request_: str, parts: list[str]) -> None:
    from loradex.composites import request_parts

    assert request_parts(request_) == parts


def test_a_concept_held_only_alone_takes_the_role_of_the_concepts_it_lies_near() -> None:
    from loradex.composites import inferred_roles, missing_combination

    axes = np.eye(4)
    palette, texture = axes[0], axes[1]
    vec = {"sepia": palette, "gray": 0.9 * palette + 0.1 * axes[2], "stripes": texture, "dots": 0.8 * texture + 0.2 * axes[3],
           "pastel": 0.8 * palette + 0.6 * axes[2], "shape": axes[3]}  # fmt: skip
    vec = {c: v / np.linalg.norm(v) for c, v in vec.items()}
    taken = {"sepia": {0}, "gray": {0}, "stripes": {1}, "dots": {1}}
    placed = inferred_roles(taken, ["pastel", "shape", "unknown"], vec)
    assert placed == {"pastel": {0}}  # near the palettes; the shape lies as near (or far) to both
    flipped = {c: {1 - next(iter(w))} for c, w in taken.items()}
    assert inferred_roles(flipped, ["pastel"], vec) == {"pastel": {1}}
    assert missing_combination(["pastel", "dots"], {**taken, **placed}, []) is True
    assert inferred_roles({"sepia": {0}, "stripes": {1}, "dots": {1}}, ["pastel"], vec) == {}  # one palette: no group
    either = {"sepia": {0, 1}, "gray": {0, 1}, "stripes": {1}, "dots": {1}, "x": {0}, "y": {0}}
    assert inferred_roles(either, ["pastel"], vec) == {}  # most parts take either role (chain steps)


def test_a_palette_held_only_alone_with_a_texture_fits_nothing(svc: LocalService) -> None:
    folder = ZOO / "image" / "adapters" / "pastel"
    if not folder.is_dir():
        pytest.skip("the zoos are not built")
    ids = _ids(svc)
    ranked = [(1.0, ids["dots"], {}), (0.9, ids["grayscale_dots"], {}), (0.8, ids["sepia_vstripes"], {})]
    assert svc.searcher._by_concepts("soft pastel colours with polka dots", ranked)[1] == []  # no pastel yet
    assert svc.ingest([folder]).count("ingested") == 1
    try:
        ranked.append((0.7, _ids(svc)["pastel"], {}))
        pastel = _ids(svc)["pastel"]
        assert svc.searcher._by_concepts("soft pastel colours with polka dots", ranked)[1] == [pastel, ids["dots"]]
        apart = svc.search("soft pastel colours with polka dots", 5)
        assert apart.nothing_fits is True
        assert f"loradex compose --adapters {pastel} {ids['dots']}" in apart.verdict(), apart.verdict()
        assert svc.search("soft pastel colours", 5)[0].adapter["name"] == "pastel"
    finally:
        svc.remove(_ids(svc)["pastel"])


def test_only_combinations_give_their_parts_roles() -> None:
    from loradex.composites import is_combination

    assert is_combination("Terminal greens combined with polka dots.")
    assert not is_combination(
        "Replace every vowel with 'x', then shift each letter forward by 2."
    )  # steps run in order
    assert not is_combination("A polka-dot pattern over the whole image.")
