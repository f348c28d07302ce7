"""Letter shifts asked backwards are embedded as the forward shift that does the same
(``loradex.shift_words``, in ``readable_for``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loradex.number_words import digits_for_number_words
from loradex.service import LocalService
from loradex.shift_words import forward_shifts
from tests.conftest import fit_zoo_text_map, text_zoo_service


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("shift every letter back by two", "shift every letter forward by 24"),
        ("move each letter 3 places earlier in the alphabet", "move each letter forward by 23 in the alphabet"),
        ("each letter becomes the one just before it", "each letter becomes forward by 25"),
        ("swap every letter for the previous letter", "swap every letter for the forward by 25"),
        ("caesar cipher, 4 steps back toward a", "caesar cipher, forward by 22 toward a"),
        ("uppercase it, then move each letter back one", "uppercase it, then move each letter forward by 25"),
        ("letters minus 10", "letters forward by 16"),
        ("caesar shift of -8", "caesar shift forward by 18"),
        ("shift each letter left in the alphabet by six", "shift each letter forward by 20"),
        ("decode a Caesar cipher with a shift of 3", "decode a Caesar cipher with a forward by 23"),
    ],
)
def test_a_backward_shift_is_read_forward(text: str, read: str) -> None:
    assert forward_shifts(digits_for_number_words(text)) == read


@pytest.mark.parametrize(
    "text",
    [
        "shift letters forward by 3",  # already forward
        "take the last 2 letters and put them back at the front",  # a rotation
        "move each letter two spots down the alphabet",  # down the alphabet is towards z
        "put the letters back in order",  # no count
        "go back 2 spaces in the picture",  # not about letters
        "every letter 26 places back",  # a whole turn: nothing to say
        "encrypt the letters with a shift of 3",  # no undoing: the shift as asked
        "move the first 2 letters back to the end",  # a rotation (loradex.directions)
    ],
)
def test_other_texts_stay(text: str) -> None:
    assert forward_shifts(digits_for_number_words(text)) == digits_for_number_words(text)


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    tasks = ("caesar_2", "caesar_24", "caesar_1", "caesar_25", "reverse")
    with text_zoo_service(tmp_path_factory.mktemp("shifts") / "home", tasks) as s:
        fit_zoo_text_map(s, tasks)
        yield s


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("shift every letter back by two", "caesar_24"),
        ("each letter becomes the one just before it in the alphabet", "caesar_25"),
    ],
)
def test_search_finds_the_shift_asked_backwards(svc: LocalService, prompt: str, task: str) -> None:
    assert svc.search(prompt, k=3)[0].adapter["name"] == task
