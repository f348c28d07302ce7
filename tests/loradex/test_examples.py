"""``loradex.examples``: the one parser of input → output examples every surface uses."""

from __future__ import annotations

import pytest

from loradex.errors import SearchError
from loradex.examples import parse_example, parse_examples


@pytest.mark.parametrize(("text", "pair"), [
    ("hello=>olleh", ("hello", "olleh")),
    ("hello => olleh", ("hello", "olleh")),  # spaces around the separator are not part of the pair
    ("hello -> olleh", ("hello", "olleh")),
    ("abc → ABC", ("abc", "ABC")),
    ("abc⇒ABC", ("abc", "ABC")),
    ("abc\tABC", ("abc", "ABC")),
    ('"two words" => "sdrow owt"', ("two words", "sdrow owt")),  # quotes keep inner spaces
    ("' lead' => 'lead '", (" lead", "lead ")),
    ("“curly” → “ylruc”", ("curly", "ylruc")),
    ("a->b => c", ("a->b", "c")),  # => is tried first: an arrow inside the input stays
    ("aaa => ''", ("aaa", "")),  # an empty output, quoted
    ("x=>y=>z", ("x", "y=>z")),  # the first separator splits
    ('"unbalanced => x', ('"unbalanced', "x")),
])  # fmt: skip
def test_the_ways_people_write_an_example(text: str, pair: tuple[str, str]) -> None:
    assert parse_example(text) == pair


def test_what_is_not_an_example_is_refused_with_the_line() -> None:
    with pytest.raises(SearchError, match="hello olleh.*INPUT=>OUTPUT"):
        parse_example("hello olleh")
    with pytest.raises(SearchError, match="the input .* is empty"):
        parse_example(" => olleh")
    assert parse_examples("hello=>olleh\n\n  abc -> cba  \n") == [("hello", "olleh"), ("abc", "cba")]
    assert parse_examples(None) == [] == parse_examples("")
    with pytest.raises(SearchError, match="example line 2: .*'nope'"):
        parse_examples("hello=>olleh\nnope")
