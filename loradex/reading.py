"""What search, the text map's query point and generation embed of a prompt (``readable_for``).

Importing this module does not import torch.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from loradex.contrasts import without_contrasts
from loradex.directions import plain_orders
from loradex.number_words import digits_for_number_words
from loradex.params import quote_affixes
from loradex.shift_words import forward_shifts
from loradex.spelling import Speller
from loradex.symbol_words import symbols_for_names

# characters the text encoder's tokenizer reads as unknown: pictographs and other symbols (emoji),
# their variation selectors and joiners, private-use and unassigned code points
DROPPED_CATEGORIES = frozenset({"So", "Co", "Cn", "Cs"})
DROPPED_CHARS = frozenset({"\u200d", *map(chr, range(0xFE00, 0xFE10)), *map(chr, range(0x1F3FB, 0x1F400))})


def readable_prompt(prompt: str, knows: Callable[[str], bool] | None = None) -> str:
    """The prompt as the text encoder should read it: symbols (emoji, pictographs) its tokenizer does
    not know are dropped (``knows(char)``, the encoder's ``TextEncoder.knows``; None: drop them all),
    as are joiners, variation selectors and skin tones; spaces collapsed. An unknown symbol would be
    an unknown token, and one glued to a word (``glowing✨``) makes the whole word unknown, which
    pulls the query away from every description. A prompt of nothing but such characters is kept."""
    kept = []
    for c in prompt:
        if c in DROPPED_CHARS:
            continue
        unknown = unicodedata.category(c) in DROPPED_CATEGORIES and not (knows is not None and knows(c))
        kept.append(" " if unknown else c)
    text = " ".join("".join(kept).split())
    return text or prompt


def readable_for(encoder: Any, prompt: str, speller: Speller | None = None) -> str:
    """What search, the map's query point and generation embed: ``readable_prompt`` with ``encoder``'s
    own tokenizer deciding which symbols it knows (when it can tell: ``TextEncoder.knows``), spelling
    slips put right (``speller``, ``Searcher.speller``: the encoder's and the registry's words), number
    words as digits (``digits_for_number_words``: descriptions say "by 8", people "by eight", and the
    encoder embeds the two apart), symbol names with their symbol (``symbols_for_names``: descriptions
    say "'-'", people "a hyphen"), a letter shift asked backwards as the forward one (``forward_shifts``:
    "back by 2" is "forward by 24"), affixes named without quotes quoted (``quote_affixes``: "the
    prefix anti-" is "the prefix 'anti'"), "abc order" as "alphabetical order" (``plain_orders``), and
    without the alternatives it turns down (``without_contrasts``: "horizontal stripes, not vertical").
    Only for embedding: what is stored and shown keeps the words."""
    read = readable_prompt(without_contrasts(prompt), getattr(encoder, "knows", None))
    digits = digits_for_number_words(speller.correct(read) if speller is not None else read)
    return symbols_for_names(quote_affixes(plain_orders(forward_shifts(digits))))
