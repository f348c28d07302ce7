"""Dependency direction, read from the imports of every module (AST, lazy imports included):
``ui → loradex → {generators, fusion, encoders} → registry``; nothing in the product imports
``benchmarks``; and ``ui`` only adapts: it neither opens database sessions nor touches indexes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ["registry", "encoders", "generators", "fusion", "loradex", "ui"]
# package → top-level packages it must never import
FORBIDDEN = {
    "registry": {"encoders", "generators", "fusion", "loradex", "ui", "benchmarks"},
    "encoders": {"generators", "fusion", "loradex", "ui", "benchmarks"},
    "generators": {"loradex", "ui", "benchmarks"},
    "fusion": {"loradex", "ui", "benchmarks"},
    "loradex": {"ui", "benchmarks"},
    "ui": {"benchmarks"},
}
# what a surface reaches only through the service
UI_FORBIDDEN_MODULES = ("registry.db", "registry.models", "registry.index", "registry.store", "registry.crud",
                        "sqlalchemy.orm", "faiss")  # fmt: skip
UI_FORBIDDEN_ATTRIBUTES = {"registry", "sessions", "engine"}


def modules(package: str) -> list[Path]:
    return sorted(p for p in (REPO / package).rglob("*.py"))


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, absolute names (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = list(path.relative_to(REPO).with_suffix("").parts)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level] if node.level else []
            out.append((node.lineno, ".".join([*base, *([node.module] if node.module else [])])))
    return out


@pytest.mark.parametrize("package", PRODUCT)
def test_imports_follow_the_dependency_direction(package: str) -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in modules(package)
        for line, name in imported(path)
        if name.split(".")[0] in FORBIDDEN[package]
    ]
    assert not bad, "\n".join(bad)


def test_product_never_names_benchmarks_as_a_module() -> None:
    """No ``benchmarks.module:function`` reference hidden in a string either (loaders plug in by entry
    points); ``loradex bench`` may still start ``python -m benchmarks.run`` as a separate process."""
    ref = re.compile(r"\bbenchmarks(\.\w+)+:\w+")
    bad = []
    for package in PRODUCT:
        for path in modules(package):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and ref.search(node.value):
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value[:80]!r}")
    assert not bad, "\n".join(bad)


def test_ui_reaches_the_data_only_through_the_service() -> None:
    bad = []
    for path in modules("ui"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bad += [f"{path.relative_to(REPO)}:{line} imports {name}" for line, name in imported(path)
                if name.startswith(UI_FORBIDDEN_MODULES)]  # fmt: skip
        bad += [f"{path.relative_to(REPO)}:{node.lineno} uses .{node.attr}" for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and node.attr in UI_FORBIDDEN_ATTRIBUTES]  # fmt: skip
    assert not bad, "\n".join(bad)


def test_the_checks_see_a_violation(tmp_path: Path) -> None:
    """The AST walk finds lazy imports inside functions and relative imports."""
    probe = REPO / "ui" / "cli.py"
    names = {n for _, n in imported(probe)}
    assert "loradex.service" in names and "ui.server" in names  # ui.server is imported inside cmd_serve
