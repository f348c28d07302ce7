"""A wheel carries the data files the product reads: each file beside the code in the product's
packages (bundled checkpoints, search settings, templates) is named by ``[tool.setuptools.package-data]``."""

from __future__ import annotations

import glob
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("registry", "encoders", "generators", "fusion", "ui", "migrations", "loradex")


def _packages_of(path: Path) -> list[Path]:
    """The packages a file sits in, nearest first (setuptools globs each one's patterns from its folder)."""
    return [d for d in path.parents if d.is_relative_to(REPO) and d != REPO and (d / "__init__.py").is_file()]


def test_every_data_file_of_the_product_is_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    missing = []
    for top in PRODUCT:
        for path in sorted((REPO / top).rglob("*")):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            covered = {Path(f) for pkg in _packages_of(path)
                       for pattern in config.get(".".join(pkg.relative_to(REPO).parts), [])
                       for f in glob.glob(str(pkg / pattern))}  # fmt: skip
            if path not in covered:
                missing.append(str(path.relative_to(REPO)))
    assert missing == [], f"not in [tool.setuptools.package-data]: {missing}"
