"""Exceptions of the generators package (subclasses of ``registry.errors.RegistryError``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from registry.errors import RegistryError

MAX_DESCRIPTION_CHARS = 2000  # longest description a generator accepts


class GeneratorError(RegistryError):
    """Base class of every error raised by ``generators``."""


class UnknownGeneratorError(GeneratorError):
    """No generator method of that name is registered."""

    def __init__(self, method: str, known: list[str]) -> None:
        self.method = method
        self.known = known
        super().__init__(f"unknown generator method {method!r}; known: {', '.join(known) or 'none'}")


class DescriptionError(GeneratorError):
    """A description (or an example) the generator cannot use: empty or too long."""


class UntrainedFamilyError(GeneratorError):
    """The family has no trained generator (for the method asked)."""

    def __init__(self, family: str, method: str | None, trained: list[str]) -> None:
        self.family = family
        self.method = method
        self.trained = trained
        what = f"no trained {method!r} generator" if method else "no trained generator"
        super().__init__(f"family {family!r} has {what}; trained: {', '.join(trained) or 'none'}")


class GeneratorTrainingError(GeneratorError):
    """Not enough (or unusable) training adapters."""


class GeneratorCheckpointError(GeneratorError):
    """A checkpoint folder that is missing files or does not match its method."""


def check_description(description: object) -> str:
    """The stripped description, or a ``DescriptionError`` naming the problem."""
    if not isinstance(description, str) or not description.strip():
        raise DescriptionError("the description is empty: describe the task in a sentence or a few words")
    text = description.strip()
    if not any(ch.isalnum() for ch in text):  # "?", "🙂🙂": nothing a generator can read a task from
        raise DescriptionError(
            f"the description {text[:40]!r} has no words: describe the task in a sentence or a few words"
        )
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise DescriptionError(
            f"the description has {len(text)} characters; at most {MAX_DESCRIPTION_CHARS} are accepted"
        )
    return text


def check_examples(examples: Iterable[Any] | None) -> list[tuple[str, str]]:
    """Examples as a list of (input, output) string pairs, or a ``DescriptionError``."""
    if examples is None:
        return []
    out = []
    for i, ex in enumerate(examples):
        if not isinstance(ex, (tuple, list)) or len(ex) != 2 or not all(isinstance(s, str) for s in ex):
            raise DescriptionError(f"example {i} is {ex!r}; an example is an (input, output) pair of strings")
        if len(ex[0]) + len(ex[1]) > MAX_DESCRIPTION_CHARS:
            raise DescriptionError(f"example {i} has more than {MAX_DESCRIPTION_CHARS} characters")
        out.append((ex[0], ex[1]))
    return out
