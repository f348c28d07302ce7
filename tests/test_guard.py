"""Layout guards: packages resolve inside this repo; light imports stay light."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["registry", "encoders", "generators", "fusion", "ui", "migrations", "benchmarks", "loradex", "tests"]
HEAVY = ["torch", "faiss", "diffusers", "transformers", "peft", "sentence_transformers", "gradio"]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_resolves_inside_repo(name: str) -> None:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None, f"{name} is not importable"
    assert Path(spec.origin).resolve().is_relative_to(REPO), f"{name} resolves to {spec.origin}, outside {REPO}"


@pytest.mark.parametrize("module", ["registry", "registry.store", "registry.formats", "ui.cli", "loradex"])
def test_import_is_cheap(module: str) -> None:
    code = f"import sys, json, {module}; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert json.loads(out.stdout) == [], f"import {module} pulled in heavy modules: {out.stdout}"
