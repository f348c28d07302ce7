"""Plug-ins: base pipelines per family (loradex.bases), bundled adapter sets and settings
(loradex.settings). The zoos come in through the entry points declared in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from loradex import bases
from loradex.errors import UnknownBaseError
from loradex.settings import Settings, adapter_sets, register_adapter_set

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_bases() -> object:
    bases.base_families()  # the entry points are read before the snapshot
    saved, loaded = dict(bases._BASES), dict(bases._LOADED)
    yield None
    bases._BASES.clear()
    bases._BASES.update(saved)
    bases._LOADED.clear()
    bases._LOADED.update(loaded)


def test_registered_base_loads_once_per_family_and_device(clean_bases: object, tmp_path: Path) -> None:
    calls: list[str] = []

    def loader(device: str) -> tuple[str, str]:
        calls.append(device)
        return ("model", device)

    bases.register_base("my-family", loader, kind="text")
    assert "my-family" in bases.base_families()
    assert bases.load_base("my-family") is bases.load_base("my-family", "cpu") and calls == ["cpu"]
    assert bases.load_base("my-family", "meta") == ("model", "meta") and calls == ["cpu", "meta"]
    with pytest.raises(ValueError, match="already registered"):
        bases.register_base("my-family", loader, kind="text")
    with pytest.raises(ValueError, match="known: image, text, unknown"):
        bases.register_base("other", loader, kind="video")
    bases.register_base("gone", loader, kind="image", folder=tmp_path / "missing")
    assert "gone" not in bases.base_families()
    with pytest.raises(UnknownBaseError, match="missing"):
        bases.load_base("gone")
    with pytest.raises(UnknownBaseError, match="no base pipeline for family 'nope'.*my-family"):
        bases.load_base("nope")


def test_zoo_bases_come_from_entry_points() -> None:
    assert {"zoo-image", "zoo-text"} <= set(bases.base_families())
    assert bases.get_base("zoo-image").kind == "image" and bases.get_base("zoo-text").kind == "text"
    model, tokenizer = bases.load_base("zoo-text")
    assert type(model).__name__ == "LlamaForCausalLM" and hasattr(tokenizer, "encode")


def test_settings_bundle_adapter_sets_and_extra_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "mine"
    extra.mkdir()
    assert list(adapter_sets())[0] == "samples"
    monkeypatch.setenv("LORADEX_ADAPTER_SETS", "samples")
    monkeypatch.setenv("LORADEX_ADAPTER_DIRS", f"{extra}{':'}{tmp_path / 'absent'}")
    s = Settings.from_env()
    assert s.bundled_adapters() == [REPO / "samples" / "adapters", extra]
    register_adapter_set("test-set", lambda: [extra], replace=True)
    assert Settings(adapter_sets=("test-set",)).bundled_adapters() == [extra]
    with pytest.raises(ValueError, match="unknown adapter sets \\['nope'\\]; known: samples"):
        Settings(adapter_sets=("nope",)).bundled_adapters()
    with pytest.raises(ValueError, match="index_type 'ivfpq'; known: flat, fp16, hnsw, ivf, ivf_sq8"):
        Settings(index_type="ivfpq")
    assert Settings(index_type="ivf_sq8").index_type == "ivf_sq8"
