"""The ``compose_picks`` suite's verdict on a pick of adapters for a palette + texture request."""

from __future__ import annotations

from benchmarks.compose_picks import judge

WANT = {"palette": "sepia", "texture": "dots"}


def test_a_pick_of_the_two_parts_covers_cleanly() -> None:
    assert judge([{"palette": "sepia"}, {"texture": "dots"}], WANT) == (True, True, True)


def test_a_pick_that_brings_another_palette_covers_but_is_not_clean() -> None:
    assert judge([{"palette": "grayscale", "texture": "dots"}, {"palette": "sepia", "texture": "waves"}], WANT) == (
        True,
        False,
        True,
    )


def test_two_seeds_of_one_task_are_not_distinct_and_do_not_cover() -> None:
    assert judge([{"palette": "sepia"}, {"palette": "sepia"}], WANT) == (False, False, False)
    assert judge([{"shape": "star"}, {"palette": "sepia", "texture": "dots"}], WANT) == (True, True, True)
