"""Search by example (``loradex.verify``) on real text-zoo adapters in a real registry (SQLite):
stopping early gives the exhaustive top hits, a reproducing candidate the ordinary search ranks
low is still found, the one-pass check is what greedy decoding writes, the base is left as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from loradex import verify
from loradex.errors import SearchError
from loradex.service import LocalService
from loradex.types import Filters

REPO = Path(__file__).resolve().parents[2]
TEXT = REPO / "benchmarks" / "zoo" / "text" / "adapters"
FOLDERS = ("reverse", "reverse_s1", "reverse_s2", "upper", "upper_s1", "lower", "swapcase", "caesar_1", "caesar_2",
           "append_ing", "sortdesc", "dedupe", "rotl_2", "squeeze__then__upper")  # fmt: skip
FAMILY = Filters(family="zoo-text")
REVERSE = [("hello", "olleh"), ("abc", "cba"), ("zoo", "ooz")]
UPPER = [("hello", "HELLO"), ("abc", "ABC"), ("Hi", "HI")]


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> LocalService:
    if not (TEXT / "reverse").is_dir():
        pytest.skip("the text zoo is not built")
    s = LocalService.open(tmp_path_factory.mktemp("by-example") / "home")
    assert s.ingest([TEXT / f for f in FOLDERS]).count("ingested") == len(FOLDERS)
    return s


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two candidates per chunk, so that a registry of 14 can stop early."""
    monkeypatch.setattr(verify, "CHUNK", 2)


def names(res: list) -> list[str]:
    return [h.adapter["name"] for h in res]


def search_order(svc: LocalService, query: str) -> list[str]:
    return [h.adapter["name"] for h in svc.search(query, len(FOLDERS), filters=FAMILY)]


@pytest.mark.parametrize(("prompt", "examples", "k"), [
    ("", REVERSE, 1), ("", REVERSE, 2), ("spell it backwards", REVERSE, 3), ("", UPPER, 1),
    ("make it lowercase", UPPER, 2), ("", [("hello", "ifmmp"), ("xyz", "yza")], 1),
])  # fmt: skip
def test_early_stop_gives_the_exhaustive_top_hits(svc: LocalService, small_chunks: None, prompt: str,
                                                   examples: list[tuple[str, str]], k: int) -> None:  # fmt: skip
    early = verify.search_by_example(svc, prompt, examples, k, FAMILY)
    full = verify.search_by_example(svc, prompt, examples, k, FAMILY, exhaustive=True)
    assert names(early) == names(full) and [h.score for h in early] == [h.score for h in full]
    assert early[0].score == 1.0 and early.nothing_fits is False is full.nothing_fits
    assert f"all {len(FOLDERS)} candidates run" in full[0].why


def test_stops_once_k_candidates_reproduce_every_example(svc: LocalService, small_chunks: None) -> None:
    order = search_order(svc, "spell it backwards")
    first = min(order.index(n) for n in ("reverse", "reverse_s1", "reverse_s2"))
    res = verify.search_by_example(svc, "spell it backwards", REVERSE, 1, FAMILY)
    assert names(res)[0] == order[first]
    ran = first // 2 * 2 + 2  # through the chunk holding the first reverse adapter
    assert f"({ran} of {len(FOLDERS)} candidates run" in res[0].why
    # three adapters reproduce every example: k = 3 finds all of them, k = 4 has to run everything
    three = verify.search_by_example(svc, "spell it backwards", REVERSE, 3, FAMILY)
    assert sorted(names(three)) == ["reverse", "reverse_s1", "reverse_s2"]
    four = verify.search_by_example(svc, "spell it backwards", REVERSE, 4, FAMILY)
    assert names(four)[:3] == names(three) and four[3].score < 1.0
    assert f"all {len(FOLDERS)} candidates run" in four[0].why


def test_a_candidate_the_search_ranks_low_is_still_found(svc: LocalService, small_chunks: None) -> None:
    prompt = "shift each letter one place later in the alphabet"  # what caesar_1 does, not reverse
    order = search_order(svc, prompt)
    low = max(order.index(n) for n in ("reverse", "reverse_s1", "reverse_s2"))
    assert low >= 6, order  # the last reverse adapter is past the first three chunks of two
    res = verify.search_by_example(svc, prompt, REVERSE, 3, FAMILY)
    assert sorted(names(res)) == ["reverse", "reverse_s1", "reverse_s2"] and {h.score for h in res} == {1.0}
    assert names(res) == [n for n in order if n.startswith("reverse")]  # ties keep the search order


def test_nothing_fits_when_no_candidate_reproduces_an_example(svc: LocalService, small_chunks: None) -> None:
    res = verify.search_by_example(svc, "", [("abc", "zzzz"), ("hello", "qqq")], 3, FAMILY)
    assert res.nothing_fits is True and len(res) == 3 and {h.score for h in res} == {0.0}
    assert "reproduces 0/2 examples" in res[0].why and f"all {len(FOLDERS)} candidates run" in res[0].why
    # an output with a character the base cannot write: no candidate reproduces it, nothing fails
    res = verify.search_by_example(svc, "", [("abc", "a b")], 1, FAMILY)
    assert res.nothing_fits is True and res[0].score == 0.0
    # one example of two reproduced: something fits, at half
    res = verify.search_by_example(svc, "", [("abc", "cba"), ("hello", "qqq")], 1, FAMILY)
    assert res.nothing_fits is False and res[0].score == 0.5 and res[0].adapter["name"].startswith("reverse")
    # one of three: no fit, though the partial reproducer is still shown first
    res = verify.search_by_example(svc, "", [("abc", "cba"), ("hello", "qqq"), ("dog", "zzz")], 1, FAMILY)
    assert (
        res.nothing_fits is True
        and res[0].score == pytest.approx(1 / 3)
        and res[0].adapter["name"].startswith("reverse")
    )
    with pytest.raises(SearchError, match="input 'a b' has characters .* does not know: ' '"):
        verify.search_by_example(svc, "", [("abc", "cba"), ("a b", "b a")], 1, FAMILY)


def test_the_one_pass_check_is_what_greedy_decoding_writes(svc: LocalService) -> None:
    from fusion.runtime import FusedLayer, install
    from loradex.bases import load_base

    model, tok = load_base("zoo-text")
    rows = sorted(svc.list(family="zoo-text"), key=lambda r: r["id"])
    adapters = [svc.load(r["id"]) for r in rows]
    inputs = ["hello", "abc", "Hi", "zoo", "xyzzy", "ab"]
    outs = verify.run_chunk(model, tok, adapters, inputs)  # greedy decoding, row i → adapter i
    # per input: what each adapter wrote, what one adapter wrote, something none wrote
    expected = [(x, y) for j, x in enumerate(inputs) for y in {o[j] for o in outs} | {x + "q"}]
    with install(model, adapters, [f"c{i}" for i in range(len(adapters))]) as handle:
        got = verify.teacher_forced(model, tok, handle, list(range(len(adapters))), expected)
        again = verify.decoded(model, tok, handle, list(range(len(adapters))), expected)
    want = [[outs[i][inputs.index(x)] == y for x, y in expected] for i in range(len(adapters))]
    assert got == want == again
    assert sum(map(sum, want)) >= len(inputs) and not all(map(all, want))
    assert not any(isinstance(m, FusedLayer) for m in model.modules())


def test_the_stack_is_kept_between_searches_and_the_base_left_as_it_was(svc: LocalService) -> None:
    import torch

    from fusion.runtime import FusedLayer
    from loradex.bases import load_base

    model, _ = load_base("zoo-text")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        verify.search_by_example(svc, "", REVERSE, 1, FAMILY)
        assert torch.get_num_threads() == 2  # the small base ran on one thread; the caller's setting is back
    finally:
        torch.set_num_threads(threads)
    key, handle = verify._STACKS["zoo-text"]
    assert handle.removed and handle.k == len(FOLDERS)
    assert names(verify.search_by_example(svc, "", UPPER, 1, FAMILY))[0].startswith("upper")
    assert verify._STACKS["zoo-text"][1] is handle  # reused, not restacked
    assert not any(isinstance(m, FusedLayer) for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # another registry's adapters (other ids): a new stack
    other = LocalService.open(svc.home.parent / "other")
    other.ingest([TEXT / "lower", TEXT / "upper"])
    assert names(verify.search_by_example(other, "", UPPER, 1, FAMILY)) == ["upper"]
    assert verify._STACKS["zoo-text"][1] is not handle and verify._STACKS["zoo-text"][1].k == 2
    other.close()


def test_too_large_to_keep_stacked_installs_each_chunk(svc: LocalService, monkeypatch: pytest.MonkeyPatch) -> None:
    from fusion.runtime import FusedLayer
    from loradex.bases import load_base

    kept = verify.search_by_example(svc, "", UPPER, 4, FAMILY)
    monkeypatch.setattr(verify, "STACK_BYTES", 0)
    monkeypatch.setattr(verify, "CHUNK", 3)
    chunked = verify.search_by_example(svc, "", UPPER, 4, FAMILY)
    assert names(chunked) == names(kept) and [h.score for h in chunked] == [h.score for h in kept]
    assert "zoo-text" not in verify._STACKS  # nothing kept
    assert not any(isinstance(m, FusedLayer) for m in load_base("zoo-text")[0].modules())


def test_web_search_by_example(svc: LocalService) -> None:
    """The web UI's search box with examples (one per line, in the ways people write them)."""
    import gradio as gr

    from ui.web.app import WebUI

    ui = WebUI(svc, admin_token=None)
    cards, _, button = ui.search("", "zoo-text", "any", "any", "", "hybrid", 3, "hello -> olleh\n\nabc => cba\nzoo→ooz")
    import re

    shown = re.findall(r"reproduces (\d)/3 examples", cards)
    assert len(shown) == 3 and shown[:3] == ["3", "3", "3"]  # reverse and its two seeds reproduce all three
    assert cards.index("reverse") < cards.index("reproduces 3/3")
    assert "upper" not in cards and "caesar" not in cards
    assert button.visible is False
    with pytest.raises(gr.Error, match="example line 2"):
        ui.search("", "any", "any", "any", "", "hybrid", 3, "hello=>olleh\nno separator here")
    note, _, _ = ui.search("", "any", "any", "any", "", "hybrid", 3, "")
    assert "Type what the adapter should do" in note
