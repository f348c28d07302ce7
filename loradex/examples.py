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


# Examples written inside a request ("reverse it, like hello -> olleh", "so do becomes undo",
# "if I type dog I want god back"). A side is a quoted span or one run of characters without spaces.
_SIDE = r"(\"[^\"]+\"|'[^']+'|`[^`]+`|“[^”]+”|‘[^’]+’|[^\s,;:()\[\]{}=<>]+)"
_ARROWS = r"(?:==>|-->|=>|⇒|→|⟶|↦|⟹|➔|➜|➝|⇨|<->|↔|->)"
_ARROW = re.compile(_SIDE + r"\s*" + _ARROWS + r"\s*" + _SIDE)
# "f('pirate') == 'pzrztz'", "so cat = ccaatt": a double equals sign, or a spaced single one at the start
# or after "so / like / say / e.g." or a comma, joins two sides of two characters or more ("reverse=True",
# "style hit = judge sees …" name settings and terms, not samples)
_EQUALS = re.compile(r"(?:\b[A-Za-z_]\w*\(\s*" + _SIDE + r"\s*\)|" + _SIDE + r")\s*==\s*" + _SIDE
                     + r"|(?:^|(?<=[,;:(])|(?<=\bso\s)|(?<=\blike\s)|(?<=\bsay\s)|(?<=\be\.g\.\s)|(?<=\bi\.e\.\s))\s*"
                     + _SIDE + r"\s+=\s+" + _SIDE, re.IGNORECASE)  # fmt: skip
_QUOTED = r"(\"[^\"]+\"|'[^']+'|“[^”]+”|‘[^’]+’)"
# "'cat' to 'dbu'", "'WhIsPer' to just be 'whisper'" (quoted: "the model to be able" is no example)
_SAID = re.compile(_QUOTED + r"\s+(?:into|to|(?:to|should|would|must|will|can)\s+(?:just\s+|simply\s+|only\s+)?be)\s+"
                   + _QUOTED)  # fmt: skip


def _alternation(phrases: str) -> str:
    """``a|b c|…`` (``|``-separated phrases, spaces meaning any run of spaces), longest first."""
    words = sorted({p.strip() for p in phrases.split("|") if p.strip()}, key=len, reverse=True)
    return "(?:" + "|".join(r"\s+".join(map(re.escape, w.split())) for w in words) + ")"


# how people join an example's input to its output: "X becomes Y", "X should come out as Y", "X gives me Y"
_MODAL = _alternation("should|would|will|must|shall|could|can|might|may|ought to|needs to|need to|has to|"
                      "have to|is to|is supposed to|to|then")  # fmt: skip
_LINK = _alternation(
    "becomes|become|became|becoming|turns into|turn into|turned into|turning into|turns to|turn to|"
    "turns out as|turn out as|turned out as|comes out as|come out as|came out as|comes out|come out|"
    "comes back as|come back as|came back as|comes back|come back|gives back|give back|gave back|gives me|"
    "give me|gave me|gives you|give you|gives|give|gave|returns|return|returned|yields|yield|produces|"
    "produce|produced|outputs|output|results in|result in|resulted in|maps to|map to|mapped to|maps onto|"
    "changes to|change to|changed to|changes into|change into|changed into|goes to|go to|went to|"
    "ends up as|end up as|ended up as|ends up|end up|ended up|reads as|read as|reads|read|spits out|"
    "spit out|prints|print|is turned into|be turned into|gets turned into|get turned into|is changed to|"
    "be changed to|is converted to|be converted to|is converted into|be converted into|is written as|"
    "be written as|is output as|be output as|is shown as|be shown as|is rendered as|be rendered as|"
    "is transformed into|be transformed into|is mapped to|be mapped to|should be|would be|must be|will be"
)
_ADVERB = r"(?:(?:just|simply|only|exactly|now|then|instead|always|become|be)\s+)?"
_LINKED = re.compile(r"(?<![\w'’])" + _SIDE + r"\s+(?:" + _MODAL + r"\s+" + _ADVERB + r")?" + _LINK + r"\s+"
                     + _ADVERB + _SIDE, re.IGNORECASE)  # fmt: skip
# "turn X into Y", "map X to Y", "turn a word like X into Y", "make X into Y", "rewrite X as Y"
_SAMPLE = r"(?:(?:[A-Za-z]+\s+){0,3}?(?:like|such\s+as|say|e\.g\.)\s+)?"
_VERB_FIRST = re.compile(
    r"\b(?:turns?|turned|turning|changes?|changed|changing|converts?|converted|converting|transforms?|"
    r"transformed|transforming|maps?|mapped|mapping)\s+" + _SAMPLE + _SIDE + r"\s+(?:into|to|onto)\s+" + _SIDE
    + r"|\b(?:makes?|made|making)\s+" + _SAMPLE + _SIDE + r"\s+into\s+" + _SIDE  # "make sure to …" is no example
    + r"|\b(?:rewrites?|rewrote|rewriting|spells?|spelled|spelling)\s+" + _SAMPLE + _SIDE + r"\s+as\s+" + _SIDE,
    re.IGNORECASE)  # fmt: skip
# "if I type dog I want god back", "feed it cat, get CAT", "typing hello gives me ifmmp"
_GIVEN = _alternation("type|typed|types|typing|enter|entered|enters|entering|input|inputs|feed|fed|feeds|"
                      "feeding|put in|puts in|putting in|pass|passed|passes|passing|send|sent|sending|"
                      "write|wrote|writes|writing|give it|gave it|giving it|paste|pasted|pasting|"
                      "provide|provided|supply|supplied|start with|starting with|start from")  # fmt: skip
_GOT = _alternation("get|gets|got|getting|receive|receives|see|want|wants|expect|expects|need|needs|"
                    "return|returns|should return|should get|should give|should give back|gives|give|gives back|"
                    "give back|gives me|give me|out comes|comes out|come out|produces|yields|spits out|"
                    "outputs|prints|would like|'d like|want to see|want to get")  # fmt: skip
_IN_OUT = re.compile(r"\b" + _GIVEN + r"(?:\s+(?:in|it))?\s+" + _SIDE + r"(?:\s*[,;]?\s+(?!" + _GOT + r"\b)\S+){0,4}?"
                     + r"\s*[,;]?\s+" + _GOT + r"(?:\s+(?:back|out))?\s+" + _SIDE, re.IGNORECASE)  # fmt: skip
# "for 'keyboard' I'd expect 'dkeyboar'", "for "abc", I want "cba"" (the input quoted: "for each letter I
# want" is no example)
_FOR = re.compile(r"\bfor\s+" + _QUOTED + r"(?:\s*[,;]?\s+(?!" + _GOT + r"\b)\S+){0,4}?\s*[,;]?\s+" + _GOT
                  + r"(?:\s+(?:back|out))?\s+" + _SIDE, re.IGNORECASE)  # fmt: skip
# "in: zebra out: afcsb", "input planets, expected output lanetsp", "if the input is letter, the output
# should be letring", "'wild' in, 'wildcat' out": sides labelled as input and output (taken as written)
_IS = _alternation("is|was|would be|should be|will be|must be|has to be|needs to be|becomes|of")
_LABELLED = re.compile(
    r"\b(?:in\s*[:=]|input(?:\s*[:=]|\s+string)?(?:\s+" + _IS + r")?)\s*" + _SIDE
    + r"\s*[,;.]?\s*(?:and\s+|then\s+|so\s+)?(?:the\s+|an?\s+|my\s+)?(?:expected\s+|desired\s+|wanted\s+|correct\s+)?"
    + r"(?:out(?:put)?|result|answer)\s*(?:[:=]|" + _IS + r")?\s*" + _SIDE
    + r"|" + _SIDE + r"\s+in\s*[,;/]\s*(?:and\s+)?" + _SIDE + r"\s+out\b",
    re.IGNORECASE)  # fmt: skip
# "from elephant I want epn", "for math the answer is m+a+t+h": an unquoted input, then who wants what
_FROM = re.compile(
    r"\b(?:for|from|given|with)\s+" + _SIDE + r"\s*,?\s+(?:(?:I|we|you)(?:'d|’d|\s+would|\s+should|\s+will)?\s+"
    + r"(?:want|like|expect|need|get|see)(?:\s+to\s+(?:get|see))?(?:\s+back)?"
    + r"|the\s+(?:answer|output|result)\s+" + _IS + r")\s+" + _SIDE,
    re.IGNORECASE)  # fmt: skip
# a second sample said after the first with its verb left out: "orange should come out as aegnor, cabbage as
# aabbceg"
_ELIDED = re.compile(r"\s*[,;]\s*(?:and\s+)?" + _SIDE + r"\s+(?:as|into|to)\s+" + _SIDE)
# words that name what a request acts on, or say how, not a sample of it ("each letter becomes …",
# "turn it into …", "capitals become small")
GENERIC = frozenset(
    "it this that these those them they everything something anything nothing text string strings word words "
    "letter letters character characters char chars input output result results sentence line lines each every "
    "all one the an its my your our their whole case uppercase lowercase upper lower capital capitals small big "
    "number numbers vowel vowels consonant consonants space spaces digit digits symbol symbols name names "
    "first last start end front back beginning copy copies same other way round around reverse reversed backwards "
    "forwards caps i you me we us he she him her and or so then is are was be to of in on at as by for "
    "with if when what which who how not no yes too also just only but from into onto than like such "
    "colour colours color colors tone tones shade shades hue pixel pixels image images picture pictures "
    "photo photos brightness background highlight highlights shadow shadows example examples instance expected "
    "desired wanted".split()
)
_ENDS = ".!?…,;:"  # sentence punctuation after an unquoted output is not part of it
_ARTICLE = re.compile(r"(?:a|an)\s+(?!(?:and|or|so|then|but|while)\b)[A-Za-z]", re.IGNORECASE)


def _generic(word: str) -> bool:
    """A word naming what is acted on (``GENERIC``), in any case, plural or possessive."""
    return word.lower() in GENERIC or word.lower().rstrip("s'’") in GENERIC


def _side(text: str, *, output: bool) -> str | None:
    """A matched side as the example's input or output: unquoted, sentence punctuation after an
    unquoted output dropped; None when it is a word naming what is acted on (``GENERIC``)."""
    quoted = _unquote(text)
    if quoted != text.strip():  # it was quoted: taken as written
        return quoted
    word = text.rstrip(_ENDS) if output else text
    word = word.strip("'’")
    if not word or _generic(word):
        return None
    return word


_VERB = re.compile(_LINK + "|" + _GOT + "|" + _MODAL + "|" + _GIVEN, re.IGNORECASE)  # no side of an elided sample


def _elided(text: str, found: list[tuple[int, int, tuple[str, str]]]) -> list[tuple[int, int, tuple[str, str]]]:
    """Samples said right after one of ``found`` with the verb left out ("…, cabbage as aabbceg")."""
    out = []
    for _, end, _ in found:
        m = _ELIDED.match(text, end)
        if m is None or _ARTICLE.match(text, m.start(2)):
            continue
        if any(start < m.end(2) and m.start(1) < stop for start, stop, _ in found):  # read another way
            continue
        a, b = _side(m.group(1), output=False), _side(m.group(2), output=True)
        if a and b and a != b and not any(_VERB.fullmatch(w) for w in (a, b)):
            out.append((m.start(1), m.end(2), (a, b)))
    return out


def _found(text: str) -> list[tuple[int, int, tuple[str, str]]]:
    """(start, end, pair) of every example written in ``text``, by start; each input once."""
    found: list[tuple[int, int, tuple[str, str]]] = []
    for m in _ARROW.finditer(text):
        found.append((m.start(), m.end(), (_unquote(m.group(1)), _unquote(m.group(2).rstrip(".!?")))))
    for m in _SAID.finditer(text):
        found.append((m.start(), m.end(), (_unquote(m.group(1)), _unquote(m.group(2)))))
    for m in _EQUALS.finditer(text):
        sides = [g for g in m.groups() if g is not None]  # (input, output)
        given, want = _unquote(sides[0]), _unquote(sides[-1].rstrip(_ENDS))
        if len(given) > 1 and len(want) > 1:
            found.append((m.start(), m.end(), (given, want)))
    for m in _LABELLED.finditer(text):
        at = 1 if m.group(1) is not None else 3
        given, want = _unquote(m.group(at)), _unquote(m.group(at + 1).rstrip(_ENDS))
        if given and given != want and not (_generic(given) and _generic(want)):  # "input is lowercase, …"
            found.append((m.start(at), m.end(at + 1), (given, want)))
    for pattern in (_LINKED, _VERB_FIRST, _IN_OUT, _FOR, _FROM):
        for m in pattern.finditer(text):
            at = next(g for g in range(1, len(m.groups()), 2) if m.group(g) is not None)  # one way's two sides
            if _ARTICLE.match(text, m.start(at + 1)):  # "becomes a shade of green": an article, not the letter a
                continue
            a, b = _side(m.group(at), output=False), _side(m.group(at + 1), output=True)
            if a and b is not None and a != b:
                found.append((m.start(at), m.end(at + 1), (a, b)))
    found += _elided(text, found)
    out: list[tuple[int, int, tuple[str, str]]] = []
    inputs: set[str] = set()
    for start, end, pair in sorted(found):
        if pair[0] and pair[0] not in inputs:  # one output per input: the first way of reading it
            inputs.add(pair[0])
            out.append((start, end, pair))
    return out


def examples_in(text: str) -> list[tuple[str, str]]:
    """Input → output pairs written inside a request, in order, each once: ``IN -> OUT`` with any of
    ``SEPARATORS``' arrows; sides joined by words — "X becomes / turns into / should come out as /
    gives me / results in / ends up (as) / reads Y", "turn / map / change X into Y", "make X into Y",
    "type (feed, enter …) X … get (want, see …) Y" — quoted, or one word each unless a side is a word
    naming what is acted on or a plain word of the request (``GENERIC``: "each letter becomes its
    capital"). Pairs whose output is the input are dropped (no example shows nothing done)."""
    return [pair for _, _, pair in _found(text)]


LETTER_RUN = 4  # how many times a one-letter example is repeated to be checked (``as_checked``)


def as_checked(examples: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs candidates are run on: a one-letter example ("so a becomes b", ``x=>y``) stands for
    what happens to that letter wherever it occurs, so it is checked on a run of it ("aaaa" → "bbbb"):
    an adapter learned on words need not handle a string of one character. Other pairs as given."""
    return [(i * LETTER_RUN, o * LETTER_RUN) if len(i) == 1 and len(o) == 1 and i.isalpha() else (i, o)
            for i, o in examples]  # fmt: skip


def examples_set_apart(text: str) -> bool:
    """Whether every example written in ``text`` is set apart from its words: an arrow between its
    sides, or its input quoted (``'Hello there' -> 'HELLO THERE'``, ``"abc" becomes "cba"``), so its
    sides are samples and not words of the request ("turn a verb like jump into jumping" is not)."""
    spans = _found(text)
    return bool(spans) and all(
        _ARROW.fullmatch(text[start:end]) or text[start:end].lstrip()[:1] in {q[0] for q in QUOTES}
        for start, end, _ in spans
    )


def words_without_examples(text: str) -> str:
    """``text`` less the examples written in it (``examples_in``): what the request says in words,
    for ranking the candidates the examples are checked on ("bright should turn into right" says
    nothing about which adapter; "chop off the first letter" does). ``text`` when nothing is left."""
    kept, last = [], 0
    for start, end, _ in _found(text):
        if start >= last:
            kept.append(text[last:start])
            last = end
    kept.append(text[last:])
    words = " ".join(" ".join(kept).split()).strip(" ,;:")
    return words if re.search(r"[A-Za-z]{3}", words) else text
