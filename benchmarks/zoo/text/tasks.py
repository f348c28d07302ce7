"""String-transform tasks of the text zoo: ops, tasks (one or two steps), input samplers, the task list.

A *task* is a short chain of *steps*; a step is an op with its argument (``caesar`` with ``k=3``).
The base model is pre-trained with each task's steps spelled as code tokens before the input
(``<bos><f:caesar><n:3><;>abc=def\\n``) and with plain identity copy when no code is given
(``<bos>abc=abc\\n``). Adapters are trained and evaluated with no code, so the base alone copies
and scores 0 on every task: inputs are sampled so that every step changes its string.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
VOWELS = "aeiou"
CONSONANTS = "".join(c for c in LOWER if c not in VOWELS)
SYMBOLS = "-._*#+~"  # output-only characters (interleave, vowel replacement)
SYMBOL_NAMES = {"-": "dash", ".": "dot", "_": "underscore", "*": "star", "#": "hash", "+": "plus", "~": "tilde"}
MIN_LEN, MAX_LEN = 3, 8  # input string lengths
MAX_OUT = 24  # longest output of any task (repeat/interleave/append cap the input length)
MAX_INT = 25  # integer arguments are code tokens <n:1> … <n:25>


def _caesar(s: str, k: int) -> str:
    out = []
    for c in s:
        if c in LOWER:
            out.append(LOWER[(LOWER.index(c) + k) % 26])
        elif c in UPPER:
            out.append(UPPER[(UPPER.index(c) + k) % 26])
        else:
            out.append(c)
    return "".join(out)


def _dedupe(s: str) -> str:
    seen: set[str] = set()
    return "".join(c for c in s if not (c in seen or seen.add(c)))  # type: ignore[func-returns-value]


def _squeeze(s: str) -> str:
    return "".join(c for i, c in enumerate(s) if i == 0 or s[i - 1] != c)


def _rotl(s: str, n: int) -> str:
    n %= max(len(s), 1)
    return s[n:] + s[:n]


@dataclass(frozen=True)
class Op:
    """One parametric string transform."""

    name: str  # code-token and id stem, e.g. "caesar"
    family: str  # report family, e.g. "rotate" for rotl/rotr
    fn: Callable[..., str]  # fn(s) or fn(s, arg)
    arg: str | None = None  # argument name in params: "k", "n", "char", "word"; None = no argument


OPS: dict[str, Op] = {
    op.name: op
    for op in [
        Op("caesar", "caesar", _caesar, "k"),
        Op("reverse", "reverse", lambda s: s[::-1]),
        Op("upper", "case", str.upper),
        Op("lower", "case", str.lower),
        Op("swapcase", "case", str.swapcase),
        Op("repeat", "repeat", lambda s, n: "".join(c * n for c in s), "n"),
        Op("rotl", "rotate", _rotl, "n"),
        Op("rotr", "rotate", lambda s, n: _rotl(s, -n), "n"),
        Op("vowels", "vowels", lambda s, c: "".join(c if ch.lower() in VOWELS else ch for ch in s), "char"),
        Op("delete", "delete", lambda s, c: s.replace(c, ""), "char"),
        Op("keep", "keep", lambda s, n: s[::n], "n"),
        Op("keepfrom", "keep", lambda s, n: s[n - 1 :: n], "n"),
        Op("sort", "sort", lambda s: "".join(sorted(s))),
        Op("sortdesc", "sort", lambda s: "".join(sorted(s, reverse=True))),
        Op("dedupe", "dedupe", _dedupe),
        Op("squeeze", "dedupe", _squeeze),
        Op("append", "append", lambda s, w: s + w, "word"),
        Op("prepend", "prepend", lambda s, w: w + s, "word"),
        Op("interleave", "interleave", lambda s, c: c.join(s), "char"),
    ]
}
CASE_OPS = {"upper", "lower", "swapcase"}


def _slug(arg: int | str | None) -> str:
    if arg is None:
        return ""
    if isinstance(arg, str) and len(arg) == 1 and arg in SYMBOL_NAMES:
        return "_" + SYMBOL_NAMES[arg]
    return f"_{arg}"


@dataclass(frozen=True)
class Step:
    """An op with its argument."""

    op: str  # key of OPS
    arg: int | str | None = None  # int for k/n, one character for char, a word for word

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown op {self.op!r}; known: {', '.join(OPS)}")
        if (OPS[self.op].arg is None) != (self.arg is None):
            raise ValueError(f"op {self.op!r} takes argument {OPS[self.op].arg!r}, got {self.arg!r}")

    def apply(self, s: str) -> str:
        fn = OPS[self.op].fn
        return fn(s) if self.arg is None else fn(s, self.arg)

    @property
    def slug(self) -> str:
        return self.op + _slug(self.arg)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op}
        if self.arg is not None:
            out[OPS[self.op].arg] = self.arg  # type: ignore[index]
        return out

    def codes(self) -> list[str]:
        """Code tokens: ``<f:op>``, the argument (``<n:k>`` or its characters), ``<;>``."""
        arg = [] if self.arg is None else [f"<n:{self.arg}>"] if isinstance(self.arg, int) else list(self.arg)
        return [f"<f:{self.op}>", *arg, "<;>"]


@dataclass(frozen=True)
class Task:
    """A chain of one or two steps applied left to right, with its split."""

    steps: tuple[Step, ...]  # applied in order
    split: str = "train"  # "train" or "heldout" (held-out tasks: unseen by encoders/generators)

    @property
    def id(self) -> str:
        return "__then__".join(s.slug for s in self.steps)

    @property
    def family(self) -> str:
        return OPS[self.steps[0].op].family if len(self.steps) == 1 else "compose"

    @property
    def params(self) -> dict[str, Any]:
        return self.steps[0].params() if len(self.steps) == 1 else {"steps": [s.params() for s in self.steps]}

    @property
    def mixed_case(self) -> bool:
        """Inputs mix upper and lower case when a case op is involved; otherwise they are lowercase."""
        return any(s.op in CASE_OPS for s in self.steps)

    def apply(self, s: str) -> str:
        for step in self.steps:
            s = step.apply(s)
        return s

    def codes(self) -> list[str]:
        return [tok for step in self.steps for tok in step.codes()]

    def length_range(self) -> tuple[int, int]:
        """Input lengths such that every step can act and the output fits in MAX_OUT."""
        first = self.steps[0]
        lo = max(MIN_LEN, first.arg + 1) if first.op in {"rotl", "rotr", "keep", "keepfrom"} else MIN_LEN  # type: ignore[operator]
        hi = max(L for L in range(lo, MAX_LEN + 1) if L == lo or len(self.apply(LOWER[:L])) <= MAX_OUT)
        return lo, hi

    def _active(self, s: str) -> bool:
        if self.apply(s) == s:
            return False
        for step in self.steps:
            t = step.apply(s)
            if t == s:
                return False
            s = t
        return True

    def sample_input(self, rng: random.Random, exclude: set[str] | frozenset[str] = frozenset()) -> str:
        """A random input on which every step changes its string (so copying scores 0)."""
        lo, hi = self.length_range()
        first = self.steps[0]
        for _ in range(1000):
            chars = [rng.choice(LOWER) for _ in range(rng.randint(lo, hi))]
            n = len(chars)
            if first.op in {"delete"}:  # make sure the deleted letter occurs (once or twice)
                for i in rng.sample(range(n), rng.randint(1, 2)):
                    chars[i] = first.arg  # type: ignore[call-overload]
            elif first.op == "vowels" and not any(c in VOWELS for c in chars):
                chars[rng.randrange(n)] = rng.choice(VOWELS)
            elif first.op == "dedupe":
                i, j = sorted(rng.sample(range(n), 2))
                chars[j] = chars[i]
            elif first.op == "squeeze":
                i = rng.randrange(n - 1)
                chars[i + 1] = chars[i]
            if self.mixed_case:
                chars = [c.upper() if rng.random() < 0.5 else c for c in chars]
            s = "".join(chars)
            if s not in exclude and self._active(s):
                return s
        raise RuntimeError(f"could not sample an input for task {self.id}")


# -- the task list ---------------------------------------------------------------------------
APPEND_WORDS = ["ing", "ed", "er", "ly", "xyz", "dog", "cat", "ok", "zz", "pro", "end", "abc"]
PREPEND_WORDS = ["re", "un", "pre", "xyz", "the", "my", "zz", "go", "ab", "sub", "non", "dis"]
VOWEL_CHARS = list("bdfghkmprtxz") + ["*", "#"]
INTERLEAVE_CHARS = list("-._*#+~") + ["x", "z"]
HELDOUT_SINGLE = {
    "caesar": [3, 8, 12, 18, 22],
    "rotl": [4],
    "rotr": [2],
    "vowels": ["k", "x", "#"],
    "delete": ["e", "j", "q", "w"],
    "keepfrom": [3],
    "append": ["cat", "end"],
    "prepend": ["go", "dis"],
    "interleave": [".", "z"],
}
# Steps that compositions are drawn from (the first step may also be one that needs a hint).
COMPOSE_POOL = [
    Step("reverse"), Step("upper"), Step("swapcase"), Step("caesar", 1), Step("caesar", 2), Step("caesar", 13),
    Step("caesar", 25), Step("repeat", 2), Step("rotl", 1), Step("rotr", 1), Step("sort"), Step("sortdesc"),
    Step("interleave", "-"), Step("interleave", "."), Step("append", "ing"), Step("prepend", "re"), Step("keep", 2),
    Step("vowels", "*"),
]  # fmt: skip
COMPOSE_FIRST_ONLY = [Step("dedupe"), Step("squeeze"), Step("delete", "a"), Step("vowels", "x")]
N_COMPOSE, N_COMPOSE_HELDOUT = 70, 14


def single_tasks() -> list[Task]:
    args: dict[str, list[Any]] = {
        "caesar": list(range(1, 26)),
        "reverse": [None], "upper": [None], "lower": [None], "swapcase": [None],
        "repeat": [2, 3, 4],
        "rotl": [1, 2, 3, 4, 5], "rotr": [1, 2, 3, 4, 5],
        "vowels": VOWEL_CHARS,
        "delete": list(LOWER),
        "keep": [2, 3, 4], "keepfrom": [2, 3, 4],
        "sort": [None], "sortdesc": [None], "dedupe": [None], "squeeze": [None],
        "append": APPEND_WORDS, "prepend": PREPEND_WORDS,
        "interleave": INTERLEAVE_CHARS,
    }  # fmt: skip
    tasks = []
    for op, values in args.items():
        for v in values:
            split = "heldout" if v in HELDOUT_SINGLE.get(op, []) else "train"
            tasks.append(Task((Step(op, v),), split))
    return tasks


def _signature(task: Task, probes: list[str]) -> tuple[str, ...]:
    return tuple(task.apply(s) for s in probes)


def compose_tasks(existing: list[Task], seed: int = 0) -> list[Task]:
    """N_COMPOSE two-step tasks, each a different function from every other task on probe strings."""
    rng = random.Random(f"compose-{seed}")
    pairs = [
        (a, b) for a in COMPOSE_POOL + COMPOSE_FIRST_ONLY for b in COMPOSE_POOL if OPS[a.op].family != OPS[b.op].family
    ]
    rng.shuffle(pairs)
    probe_rng = random.Random(f"probes-{seed}")
    probes = ["".join(probe_rng.choice(LOWER + UPPER) for _ in range(probe_rng.randint(3, 8))) for _ in range(64)]
    probes += ["".join(probe_rng.choice(LOWER) for _ in range(probe_rng.randint(3, 8))) for _ in range(64)]
    seen = {_signature(t, probes) for t in existing} | {tuple(probes)}  # no task may equal identity
    chosen: list[Task] = []
    for a, b in pairs:
        task = Task((a, b))
        lo, hi = task.length_range()
        if hi < 5:  # too long an output for reasonable inputs
            continue
        try:
            task.sample_input(random.Random(0))
        except RuntimeError:
            continue
        sig = _signature(task, probes)
        if sig in seen:
            continue
        seen.add(sig)
        chosen.append(task)
        if len(chosen) == N_COMPOSE:
            break
    held = set(rng.sample(range(len(chosen)), N_COMPOSE_HELDOUT))
    return [Task(t.steps, "heldout" if i in held else "train") for i, t in enumerate(chosen)]


def all_tasks(seed: int = 0) -> list[Task]:
    """The full zoo: single-op tasks then compositions, in a fixed order."""
    singles = single_tasks()
    return singles + compose_tasks(singles, seed)


def tiny_tasks() -> list[Task]:
    """A handful of tasks for the ``--tiny`` smoke build."""
    return [
        Task((Step("reverse"),)),
        Task((Step("caesar", 1),)),
        Task((Step("upper"),)),
        Task((Step("append", "ing"),)),
        Task((Step("reverse"), Step("upper"))),
        Task((Step("caesar", 2),), "heldout"),
    ]


def code_vocab() -> list[str]:
    """Every code token the tokenizer needs besides plain characters."""
    return [f"<f:{op}>" for op in OPS] + [f"<n:{i}>" for i in range(1, MAX_INT + 1)] + ["<;>"]
