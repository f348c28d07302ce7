"""Every registered generator: trains on a few zoo adapters in seconds, generates a real adapter
of the family's module set, deterministically, and fails clearly on bad input."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from generators import (
    MAX_DESCRIPTION_CHARS,
    DescriptionError,
    UnknownGeneratorError,
    generator_methods,
    load_generator,
    train_generator,
)
from registry.formats import read_adapter, write_adapter
from tests.generators.conftest import FAST

METHODS = generator_methods()
_TRAINED: dict[tuple[str, str], Path] = {}


def trained(method: str, family: str, items: list, text_encoder: Any, tmp_root: Path) -> Path:
    key = (method, family)
    if key not in _TRAINED:
        out = tmp_root / f"{family}-{method}"
        res = train_generator(method, family, items, out, config=FAST, text_encoder=text_encoder)
        assert res["path"] == str(out) and len(res["version"]) == 16 and res["seconds"] >= 0
        _TRAINED[key] = out
    return _TRAINED[key]


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generators")


def sha_of(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.read_bytes())
    return h.hexdigest()


def test_the_four_core_methods_are_registered() -> None:
    assert {"nearest", "topk_mean", "mean_all", "hypernet"} <= set(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_text_generator_writes_a_peft_folder_of_the_family(method: str, text_items: list, text_encoder: Any,
                                                           tmp_root: Path, tmp_path: Path) -> None:  # fmt: skip
    gen = load_generator(trained(method, "zoo-text", text_items, text_encoder, tmp_root), text_encoder=text_encoder)
    assert gen.family == "zoo-text" and gen.method == method and gen.version
    out = gen.generate("Shift every letter forward by three places.", seed=7)
    tmpl = text_items[0].adapter
    assert set(out.adapter.modules) == set(tmpl.modules)
    for name, m in out.adapter.modules.items():
        assert m.down.shape == tmpl.modules[name].down.shape and m.up.shape == tmpl.modules[name].up.shape
    assert out.lineage["method"] == method and out.lineage["seed"] == 7 and out.lineage["version"] == gen.version
    files = write_adapter(out.adapter, out.adapter.format, tmp_path / "a")
    back = read_adapter(tmp_path / "a")
    assert back.format == "peft" and set(back.modules) == set(tmpl.modules)
    for name, m in back.modules.items():
        assert m.delta().allclose(out.adapter.modules[name].delta(), atol=1e-5)
    # same seed, same bytes (also from a freshly loaded checkpoint)
    again = load_generator(trained(method, "zoo-text", text_items, text_encoder, tmp_root), text_encoder=text_encoder)
    files2 = write_adapter(again.generate("Shift every letter forward by three places.", seed=7).adapter, "peft",
                           tmp_path / "b")  # fmt: skip
    assert sha_of(files) == sha_of(files2)


@pytest.mark.parametrize("method", METHODS)
def test_image_generator_writes_a_diffusers_file(method: str, image_items: list, text_encoder: Any,
                                                 tmp_root: Path, tmp_path: Path) -> None:  # fmt: skip
    gen = load_generator(trained(method, "zoo-image", image_items, text_encoder, tmp_root), text_encoder=text_encoder)
    out = gen.generate("grayscale with polka dots", seed=1, rank=2)
    assert out.adapter.format == "diffusers" and out.lineage["rank"] == 2
    assert set(out.adapter.modules) == set(image_items[0].adapter.modules)
    (path,) = write_adapter(out.adapter, "diffusers", tmp_path)
    back = read_adapter(path)
    assert back.family == "zoo-image" and back.ranks == [2]
    conv = [m for m in back.modules.values() if m.kind == "conv"]
    assert conv and conv[0].down.dim() == 4


@pytest.mark.parametrize("method", METHODS)
def test_bad_descriptions_are_refused(method: str, text_items: list, text_encoder: Any, tmp_root: Path) -> None:
    gen = load_generator(trained(method, "zoo-text", text_items, text_encoder, tmp_root), text_encoder=text_encoder)
    for bad in ["", "   \n"]:
        with pytest.raises(DescriptionError, match="empty"):
            gen.generate(bad)
    for wordless in ["?", "🙂🙂", "\x00", "-> =>"]:
        with pytest.raises(DescriptionError, match="has no words"):
            gen.generate(wordless)
    with pytest.raises(DescriptionError, match=str(MAX_DESCRIPTION_CHARS)):
        gen.generate("x" * (MAX_DESCRIPTION_CHARS + 1))
    with pytest.raises(DescriptionError, match="pair"):
        gen.generate("reverse it", examples=[("abc",)])  # type: ignore[list-item]


def test_unknown_method_lists_the_known_ones(text_items: list, text_encoder: Any, tmp_path: Path) -> None:
    with pytest.raises(UnknownGeneratorError, match="nearest"):
        train_generator("nope", "zoo-text", text_items, tmp_path, text_encoder=text_encoder)
