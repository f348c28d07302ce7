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


CHEAP = ["registry", "registry.store", "registry.formats", "ui.cli", "ui.api", "ui.server", "loradex",
         "loradex.client", "loradex.service", "loradex.types", "loradex.errors", "loradex.jobs", "loradex.bases",
         "loradex.settings", "loradex.previews", "loradex.protocol", "loradex.search"]  # fmt: skip


def heavy_after(code: str) -> list[str]:
    probe = f"import sys, json; {code}; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    return list(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", CHEAP)
def test_import_is_cheap(module: str) -> None:
    assert heavy_after(f"import {module}") == [], f"import {module} pulled in heavy modules"


@pytest.mark.parametrize("name", ["Client", "LocalService", "Filters", "Service", "Settings"])
def test_loradex_names_are_cheap(name: str) -> None:
    """``from loradex import Client`` (and the service class, before it is opened) loads no torch."""
    assert heavy_after(f"from loradex import {name}") == []


def test_plugins_are_listed_without_loading_them() -> None:
    """Listing the bases and adapter sets the entry points declare imports no torch either."""
    assert heavy_after("import loradex.bases as b, loradex.settings as s; b.base_families(); s.adapter_sets()") == []
