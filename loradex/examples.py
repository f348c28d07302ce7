"""Input → output examples as people type them: ``hello=>olleh``, ``hello -> olleh``, ``hello → olleh``,
``"two words" => "sdrow owt"``. One parser for every surface (CLI ``--example``, the web UI's example
boxes), so the same line means the same pair everywhere. Importing it imports nothing heavy."""

from __future__ import annotations

import re

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


# Examples written inside a request ("reverse it, like hello -> olleh", "so do becomes undo").
_SIDE = r"(\"[^\"]+\"|'[^']+'|`[^`]+`|“[^”]+”|‘[^’]+’|[^\s,;:()\[\]{}]+)"
_ARROW = re.compile(_SIDE + r"\s*(?:=>|⇒|→|⟶|->)\s*" + _SIDE)
_QUOTED = r"(\"[^\"]+\"|'[^']+'|“[^”]+”|‘[^’]+’)"
_SAID = re.compile(_QUOTED + r"\s+(?:becomes|turns into|gives|yields|should (?:come out as|become|give|be)|into|to)\s+"
                   + _QUOTED)  # fmt: skip
_WORDS = re.compile(r"\b(?:turn(?:s|ing)?\s+([A-Za-z]+)\s+into\s+([A-Za-z]+)"
                    r"|([A-Za-z]+)\s+(?:becomes|turns into|gives)\s+([A-Za-z]+))\b")  # fmt: skip
# words that name what a request acts on, not a sample of it ("each letter becomes …", "turn it into …")
GENERIC = frozenset(
    "it this that these those them they everything something anything text string strings word words letter "
    "letters character characters char chars input output result sentence line lines each every all one the "
    "an its my your our their whole case uppercase lowercase capitals number numbers".split()
)


def examples_in(text: str) -> list[tuple[str, str]]:
    """Input → output pairs written inside a request, in order, each once: ``IN -> OUT`` with any of
    ``SEPARATORS``' arrows; quoted sides joined by words ("'banana' should come out as 'bnn'");
    unquoted single words after "turn X into Y" or around "X becomes / turns into / gives Y" unless
    a side is a word naming what is acted on (``GENERIC``: "each letter becomes its capital")."""
    found: list[tuple[int, tuple[str, str]]] = []
    for m in _ARROW.finditer(text):
        found.append((m.start(), (_unquote(m.group(1)), _unquote(m.group(2).rstrip(".!?")))))
    for m in _SAID.finditer(text):
        found.append((m.start(), (_unquote(m.group(1)), _unquote(m.group(2)))))
    for m in _WORDS.finditer(text):
        a, b = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if a.lower() not in GENERIC and b.lower() not in GENERIC:
            found.append((m.start(), (a, b)))
    out: list[tuple[str, str]] = []
    for _, pair in sorted(found):
        if pair[0] and pair not in out:
            out.append(pair)
    return out
