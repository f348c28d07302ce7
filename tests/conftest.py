"""Shared pytest fixtures: real adapter fixtures, temporary registries."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_ADAPTERS = Path(os.environ.get("LORADEX_FIXTURES", REPO.parent / "shared" / "fixtures" / "real_adapters"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEXT_ZOO = REPO / "benchmarks" / "zoo" / "text"
# A first serve fine-tunes the text encoder in a second job (``ui.server.start_text_tune``): a minute
# or more of CPU under every test that serves bundled sets. Off here; the tests of that job turn it on.
os.environ.setdefault("LORADEX_TEXT_TUNE", "0")


@contextmanager
def service_with(home: Path, folders: Sequence[Path]) -> Iterator[Any]:
    """A ``LocalService`` at ``home`` holding the adapters in ``folders``, each ingested (skips when one
    is not built, e.g. a zoo's); closed on exit."""
    from loradex.service import LocalService

    missing = [f for f in folders if not f.is_dir()]
    if missing:
        pytest.skip(f"not built: {missing[0]}")
    s = LocalService.open(home)
    try:
        assert s.ingest(list(folders)).count("ingested") == len(folders)
        yield s
    finally:
        s.close()


@contextmanager
def text_zoo_service(home: Path, tasks: Sequence[str]) -> Iterator[Any]:
    """A ``LocalService`` at ``home`` holding the text zoo's adapters of ``tasks`` (``service_with``)."""
    with service_with(home, [TEXT_ZOO / "adapters" / t for t in tasks]) as s:
        yield s


def names_without_prior(svc: Any, prompt: str, k: int, monkeypatch: pytest.MonkeyPatch,
                        penalty: str) -> tuple[list[str], list[str]]:  # fmt: skip
    """The names of ``svc.search(prompt, k)``'s hits with the search prior ``penalty`` (a constant of
    ``loradex.search``: ``DIRECTION_PENALTY`` …) at 0, then at its shipped value: (without, with)."""
    import loradex.search

    shipped = getattr(loradex.search, penalty)
    monkeypatch.setattr(loradex.search, penalty, 0.0)
    without = [h.adapter["name"] for h in svc.search(prompt, k=k)]
    monkeypatch.setattr(loradex.search, penalty, shipped)
    return without, [h.adapter["name"] for h in svc.search(prompt, k=k)]


def fit_zoo_text_map(svc: Any, tasks: Sequence[str], config: Any = None) -> dict[str, Any]:
    """Fit ``svc``'s text map as a first start fits it: the text zoo's training texts (canonical +
    training paraphrases) of ``tasks`` (held-out tasks have none and are left out)."""
    import json

    from benchmarks.zoo import training_texts

    texts = training_texts(json.loads((TEXT_ZOO / "manifest.json").read_text()))
    return dict(svc.train_text_map({t: texts[t] for t in tasks if t in texts}, config))


@pytest.fixture(scope="session")
def real_adapters() -> Path:
    """Folder of the 12 real third-party adapters (beside the repo, never inside it)."""
    if not REAL_ADAPTERS.is_dir():
        if IN_CI:
            pytest.fail(f"CI=true but the real adapter fixtures are missing at {REAL_ADAPTERS}")
        pytest.skip(f"real adapter fixtures not found at {REAL_ADAPTERS} (they live in ../shared/fixtures)")
    return REAL_ADAPTERS


PG_URL = os.environ.get("LORADEX_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_schema_url(request: pytest.FixtureRequest, *, required: bool = False) -> str:
    """A fresh schema in the PostgreSQL test database; dropped after the test. Unreachable: a
    failure under CI or when ``required`` (shared-mode tests exist for PostgreSQL), else a skip."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            schema = f"loradex_t_{uuid.uuid4().hex[:10]}"
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as e:
        admin.dispose()
        msg = f"PostgreSQL unreachable at {PG_URL}: {str(e).splitlines()[0]}"
        if IN_CI or required:
            pytest.fail(msg)
        pytest.skip(msg)

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    request.addfinalizer(drop)
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every registry test runs on the embedded SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'loradex.db'}"
    return _pg_schema_url(request)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database several replicas share: a SQLite file, or PostgreSQL (which must be reachable:
    shared mode is what it is for, so these tests fail rather than skip without it)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return _pg_schema_url(request, required=True)


@pytest.fixture
def registry(db_url: str, tmp_path: Path):
    """A fresh, migrated registry (blobs under tmp_path) on each database."""
    from registry.store import Registry

    reg = Registry(home=tmp_path / "home", db_url=db_url)
    reg.init()
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def tiny_text_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny text zoo built from nothing (seconds): base, adapters, manifest."""
    import torch

    from benchmarks.zoo.text.build import build

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny-text-zoo")
    build(out, tiny=True, device="cpu")
    return out


@pytest.fixture(scope="session")
def tiny_image_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny image zoo built from nothing by the CLI (seconds): base, judge, adapters, manifest."""
    import torch

    from benchmarks.zoo.__main__ import main

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny-image-zoo")
    assert main(["build", "image", "--tiny", "--out", str(out), "--device", "cpu", "--threads", "1"]) == 0
    return out
