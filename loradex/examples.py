"""Input → output examples as people type them: ``hello=>olleh``, ``hello -> olleh``, ``hello → olleh``,
``"two words" => "sdrow owt"``. One parser for every surface (CLI ``--example``, the web UI's example
boxes), so the same line means the same pair everywhere. Importing it imports nothing heavy."""

from __future__ import annotations

from loradex.errors import SearchError

# tried in this order: the first separator that occurs splits the line at its first occurrence
SEPARATORS = ("=>", "⇒", "→", "⟶", "->", "\t")
QUOTES = ('"', "'", "`", "“”", "‘’")


def _unquote(text: str) -> str:
    """Strip surrounding spaces, then one pair of matching quotes (which may keep spaces inside)."""
    text = text.strip()
    for q in QUOTES:
        left, right = (q[0], q[-1])
        if len(text) >= 2 and text[0] == left and text[-1] == right:
            return text[1:-1]
    return text


def parse_example(text: str) -> tuple[str, str]:
    """``IN=>OUT`` (or ``->``, ``→``, ``⇒``, a tab) → (IN, OUT), each side stripped of surrounding
    spaces and of one pair of matching quotes; the output may be empty (quote it: ``abc => ""``)."""
    for sep in SEPARATORS:
        if sep in text:
            left, right = text.split(sep, 1)
            pair = _unquote(left), _unquote(right)
            if not pair[0]:
                raise SearchError(f"example {text!r}: the input (left of {sep.strip() or 'the tab'}) is empty")
            return pair
    raise SearchError(f"example {text!r}: write it as INPUT=>OUTPUT (or INPUT -> OUTPUT), e.g. 'hello=>olleh'")


def parse_examples(text: str | None) -> list[tuple[str, str]]:
    """One example per line (``parse_example``); blank lines are skipped. An error names the line."""
    out = []
    for n, line in enumerate((text or "").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(parse_example(line))
        except SearchError as e:
            raise SearchError(f"example line {n}: {e}") from None
    return out
