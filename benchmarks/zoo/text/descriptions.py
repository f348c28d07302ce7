"""Natural-language descriptions of the text zoo's tasks: one canonical sentence and varied paraphrases.

Paraphrases are written by hand per op with different sentence structures (imperatives, statements
about the output, analogies such as ``s[::2]``), and with the argument written in different
forms (digits, number words, ordinals, names of symbols). Two-step tasks combine short verb
phrases of each step with several connective structures. Per training task, two paraphrases are
held out (split ``heldout``); every paraphrase of a held-out task is held out.
"""

from __future__ import annotations

import random
from typing import Any

from benchmarks.zoo.text.tasks import Step, Task

N_HELDOUT_PARAPHRASES = 2  # held-out paraphrases per training task

_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
_ORD = {2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth"}
_SYM = {
    "-": "a dash",
    ".": "a dot",
    "_": "an underscore",
    "*": "an asterisk",
    "#": "a hash sign",
    "+": "a plus sign",
    "~": "a tilde",
}


def word(n: int) -> str:
    return _WORDS[n] if n < len(_WORDS) else str(n)


def pl(n: int, noun: str) -> str:
    return noun if n == 1 else noun + "s"


def times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{word(n)} times")


def cname(c: str) -> str:
    return _SYM.get(c, f"the letter {c}")


def _templates(step: Step) -> tuple[list[str], list[str]]:
    """(sentences, verb phrases): sentences[0] is canonical; verb phrases are used in compositions."""
    op, a = step.op, step.arg
    if op == "caesar":
        k, kw = a, word(a)  # type: ignore[arg-type]
        return [
            f"Shift each letter forward by {k} in the alphabet, wrapping around from z to a.",
            f"Apply a Caesar cipher with a shift of {k}.",
            f"Move every letter {kw} {pl(k, 'place')} later in the alphabet; after z, start again at a.",
            f"Encode the text by replacing each letter with the one that comes {k} {pl(k, 'position')} after it alphabetically.",
            f"Each character should become the letter {kw} {pl(k, 'step')} further along the alphabet (wrapping past z).",
            f"Caesar-encrypt the input using a key of {kw}.",
            f"Rotate the alphabet by {k} and substitute every letter accordingly, keeping upper and lower case as they are.",
            f"What you get if every letter is advanced {kw} {pl(k, 'place')} through the alphabet, cycling back to the start after z.",
        ], [f"shift each letter forward by {k}", f"apply a Caesar shift of {kw}", f"move every letter {k} {pl(k, 'place')} along the alphabet"]  # fmt: skip
    if op == "reverse":
        return [
            "Reverse the string.", "Write the characters in the opposite order.", "Spell the input backwards.",
            "Flip the text so the last character comes first and the first comes last.",
            "Output the same letters, read from right to left.", "Mirror the order of the characters.",
            "The result is the input string turned back to front.",
        ], ["reverse the string", "write it backwards", "flip the order of the characters"]  # fmt: skip
    if op == "upper":
        return [
            "Convert every letter to uppercase.", "Make the whole string capital letters.", "Capitalize all characters.",
            "Rewrite the text in upper case.", "Every lowercase letter should be turned into its capital form.",
            "SHOUT the input: all caps.",
            "Change each letter to its uppercase version, leaving letters that are already capitals alone.",
        ], ["convert everything to uppercase", "capitalize every letter", "rewrite it in all caps"]  # fmt: skip
    if op == "lower":
        return [
            "Convert every letter to lowercase.", "Make the whole string small letters.",
            "Turn all capitals into lowercase.", "Rewrite the text in lower case.",
            "Every uppercase letter should become its lowercase form.", "Remove all capitalization from the input.",
            "Change each letter to lowercase; letters that are already small stay the same.",
        ], ["convert everything to lowercase", "make every letter lowercase", "remove all capitalization"]  # fmt: skip
    if op == "swapcase":
        return [
            "Swap the case of every letter.",
            "Turn uppercase letters into lowercase and lowercase letters into uppercase.",
            "Invert the capitalization of the text.",
            "Every capital becomes small and every small letter becomes a capital.", "Flip each letter's case.",
            "Toggle upper/lower case for all characters.",
            "Rewrite the input with its capitalization reversed, letter by letter.",
        ], ["swap the case of every letter", "invert the capitalization", "toggle each letter between upper and lower case"]  # fmt: skip
    if op == "repeat":
        n = a
        return [
            f"Repeat each character {n} times.", f"Write every letter {times(n)}.",  # type: ignore[arg-type]
            f"Duplicate each character so that it appears {word(n)} times in a row.",  # type: ignore[arg-type]
            f"Stutter the string: each symbol is repeated {times(n)} before moving on.",  # type: ignore[arg-type]
            f"Replace every character c by {n} copies of c.",
            f"Each letter of the input should show up {times(n)} consecutively in the output.",  # type: ignore[arg-type]
            f"Expand the text by emitting each character {n}-fold.",
        ], [f"repeat each character {n} times", f"write every letter {times(n)}", f"duplicate each character {n}-fold"]  # type: ignore[arg-type]  # fmt: skip
    if op in ("rotl", "rotr"):
        n, nw = a, word(a)  # type: ignore[arg-type]
        ch, them = pl(n, "character"), ("it" if n == 1 else "them")  # type: ignore[arg-type]
        if op == "rotl":
            return [
                f"Rotate the string left by {n}.", f"Move the first {n} {ch} to the end of the string.",
                f"Cyclically shift the text {nw} {pl(n, 'position')} to the left.",  # type: ignore[arg-type]
                f"Take the leading {nw} {ch} off the front and append {them} at the back.",
                f"Start reading from character number {n + 1} and wrap around to the beginning.",  # type: ignore[operator]
                f"Left-rotate the input by {nw}.",
                f"The output begins at the {_ORD.get(n + 1, str(n + 1) + 'th')} character and continues cyclically through the input.",  # type: ignore[operator]
            ], [f"rotate the string left by {n}", f"move the first {n} {ch} to the end", f"cyclically shift it {nw} to the left"]  # fmt: skip
        return [
            f"Rotate the string right by {n}.", f"Move the last {n} {ch} to the front of the string.",
            f"Cyclically shift the text {nw} {pl(n, 'position')} to the right.",  # type: ignore[arg-type]
            f"Take the final {nw} {ch} off the end and put {them} at the start.", f"Right-rotate the input by {nw}.",
            f"Wrap the trailing {nw} {ch} around to the beginning.",
            f"The output starts with the last {n} {ch} of the input, followed by everything else in order.",
        ], [f"rotate the string right by {n}", f"move the last {n} {ch} to the front", f"cyclically shift it {nw} to the right"]  # fmt: skip
    if op == "vowels":
        c = a
        return [
            f"Replace every vowel with '{c}'.", f"Swap each of a, e, i, o and u for the character '{c}'.",
            f"All vowels in the text should be turned into '{c}'.",
            f"Mask the vowels using '{c}' while leaving consonants untouched.",
            f"Wherever a vowel appears, write '{c}' instead.", f"Substitute '{c}' for the letters a, e, i, o, u.",
            f"Keep the consonants as they are but change every vowel to {cname(c)}.",  # type: ignore[arg-type]
        ], [f"replace every vowel with '{c}'", f"change each vowel to '{c}'", f"mask the vowels with '{c}'"]  # fmt: skip
    if op == "delete":
        c = a
        return [
            f"Delete every '{c}'.", f"Remove all occurrences of the letter {c}.",
            f"Drop each '{c}' from the string and keep everything else in order.",
            f"Strip out the character '{c}' wherever it appears.",
            f"The output is the input with all of its {c}'s erased.", f"Filter the text so that no '{c}' remains.",
            f"Cut the letter '{c}' out of the input, closing the gaps.",
        ], [f"delete every '{c}'", f"remove all occurrences of '{c}'", f"strip out the letter {c}"]  # fmt: skip
    if op in ("keep", "keepfrom"):
        n, nw, o = a, word(a), _ORD[a]  # type: ignore[arg-type,index]
        skip = f"{n - 1} {pl(n - 1, 'character')}"  # type: ignore[operator]
        if op == "keep":
            return [
                f"Keep every {o} character, starting with the first.",
                f"Take the characters at positions 1, {1 + n}, {1 + 2 * n}, and so on.",  # type: ignore[operator]
                f"Sample the string with a stride of {n}, beginning at the first character.",
                f"Keep the first character, then skip {skip}, keep the next one, and repeat.",
                f"Output only every {o} letter of the input, counting from the first.",
                f"Downsample the text by {nw}: the first character stays, the following {skip} are dropped, and so on.",
                f"Like Python's s[::{n}]: one character out of every {nw}, starting at the beginning.",
            ], [f"keep every {o} character starting with the first", f"take one character out of every {nw}, beginning at the first", f"sample it with a stride of {n}"]  # fmt: skip
        return [
            f"Keep every {o} character, starting with the {o}.",
            f"Take the characters at positions {n}, {2 * n}, {3 * n}, and so on.",  # type: ignore[operator]
            f"Output only the characters whose position is a multiple of {n}.",
            f"Drop {skip}, keep the next one, and repeat until the end.",
            f"Keep just every {o} letter, counting from the start (the {o} one is the first kept).",
            f"Sample the string with stride {nw}, beginning at character number {n}.",
            f"Like Python's s[{n - 1}::{n}]: the {o} character, then each {o} one after it.",  # type: ignore[operator]
        ], [f"keep every {o} character starting with the {o}", f"keep only the positions that are multiples of {n}", f"drop {skip}, keep one, and repeat"]  # fmt: skip
    if op == "sort":
        return [
            "Sort the characters in alphabetical order.", "Arrange the letters from a to z.",
            "Rearrange the string so its characters are in ascending order.",
            "Order all characters alphabetically, keeping duplicates.", "Put the letters of the input into sorted order.",
            "The output contains the same characters, sorted from smallest to largest.", "Alphabetize the string.",
        ], ["sort the characters alphabetically", "arrange the letters in ascending order", "alphabetize the string"]  # fmt: skip
    if op == "sortdesc":
        return [
            "Sort the characters in reverse alphabetical order.", "Arrange the letters from z down to a.",
            "Rearrange the string so its characters are in descending order.",
            "Order all characters alphabetically but backwards, largest first, keeping duplicates.",
            "Put the letters into sorted order, starting from the end of the alphabet.",
            "The output has the same characters sorted from largest to smallest.", "Reverse-alphabetize the string.",
        ], ["sort the characters in descending order", "arrange the letters from z to a", "reverse-alphabetize the string"]  # fmt: skip
    if op == "dedupe":
        return [
            "Remove repeated characters, keeping only the first occurrence of each.",
            "Delete every character that already appeared earlier in the string.",
            "Keep each distinct letter once, in order of first appearance.",
            "Deduplicate the text: later copies of a letter are dropped.",
            "Each character may appear at most once; discard any repeats after the first.",
            "Strip out duplicates while preserving the original order.",
            "Output the unique characters of the input in the order they first show up.",
        ], ["remove repeated characters", "keep only the first occurrence of each letter", "deduplicate the characters"]  # fmt: skip
    if op == "squeeze":
        return [
            "Collapse runs of the same character into one.",
            "Whenever a character is immediately repeated, keep only a single copy.",
            "Merge adjacent duplicate letters.", "Squeeze consecutive identical characters down to one.",
            "Remove a letter if it is the same as the letter right before it.",
            "Replace each block of repeated neighbouring characters with one character.",
            "No two neighbouring characters in the output should be equal: shrink every run to length one.",
        ], ["collapse runs of the same character", "merge adjacent duplicate letters", "squeeze consecutive repeats down to one"]  # fmt: skip
    if op in ("append", "prepend"):
        w, spaced = a, ", ".join(a)  # type: ignore[arg-type]
        if op == "append":
            return [
                f"Append '{w}' to the end.", f"Add the suffix '{w}' after the string.",
                f"Write the input followed by '{w}'.", f"Tack '{w}' onto the end of the text.",
                f"Concatenate '{w}' after the last character.",
                f"The output is the original string with '{w}' attached at the back.",
                f"Finish the string with the letters {spaced}.",
            ], [f"append '{w}'", f"add the suffix '{w}'", f"attach '{w}' at the end"]  # fmt: skip
        return [
            f"Prepend '{w}' to the start.", f"Add the prefix '{w}' before the string.",
            f"Write '{w}' followed by the input.", f"Put '{w}' in front of the text.",
            f"Concatenate '{w}' before the first character.",
            f"The output is the original string with '{w}' attached at the front.",
            f"Begin the string with the letters {spaced}.",
        ], [f"prepend '{w}'", f"add the prefix '{w}'", f"put '{w}' in front"]  # fmt: skip
    if op == "interleave":
        c = a
        return [
            f"Insert '{c}' between every pair of adjacent characters.", f"Separate the characters with '{c}'.",
            f"Join the letters using '{c}' as the separator.", f"Put {cname(c)} between each character and the next.",  # type: ignore[arg-type]
            f"Space the string out with '{c}' between neighbouring letters (none at the ends).",
            f"Interleave '{c}' into the text so that consecutive characters are divided by it.",
            f"Every gap between two characters should be filled with '{c}'.",
        ], [f"insert '{c}' between the characters", f"separate the letters with '{c}'", f"join the characters with '{c}'"]  # fmt: skip
    raise ValueError(f"no description for op {op!r}")


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


_COMPOSE = [
    lambda a, b: f"{_cap(a)}, then {b}.",
    lambda a, b: f"First {a}; after that, {b}.",
    lambda a, b: f"Do two things in order: {a}, and then {b}.",
    lambda a, b: f"{_cap(b)}, but only after you {a}.",
    lambda a, b: f"Start by making sure to {a}. Once that is done, {b}.",
    lambda a, b: f"Two steps: {a}; then take the result and {b}.",
    lambda a, b: f"Take the input, {a}, and finally {b}.",
    lambda a, b: f"Before you {b}, {a}.",
]


def describe(task: Task) -> list[str]:
    """Canonical description first, then at least six distinct paraphrases."""
    if len(task.steps) == 1:
        texts = _templates(task.steps[0])[0]
    else:
        (_, va), (_, vb) = (_templates(s) for s in task.steps)
        texts = [tpl(va[i % len(va)], vb[(i + i // len(vb)) % len(vb)]) for i, tpl in enumerate(_COMPOSE)]
    assert len(set(texts)) == len(texts) >= 7, f"descriptions of {task.id} are not distinct"
    return texts


def description_record(task: Task) -> dict[str, Any]:
    """``canonical`` and ``paraphrases`` (each with its split) for the manifest."""
    canonical, *paras = describe(task)
    held = set(random.Random(f"paraphrase-split-{task.id}").sample(range(len(paras)), N_HELDOUT_PARAPHRASES))
    return {
        "canonical": canonical,
        "paraphrases": [
            {"text": p, "split": "heldout" if task.split == "heldout" or i in held else "train"}
            for i, p in enumerate(paras)
        ],
    }
