"""Training a generator from a registry: described adapters, extra texts, tasks and examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from generators import GeneratorTrainingError, load_generator
from generators.registry_training import items_from_registry, load_texts_file, train_from_registry
from tests.generators.conftest import TEXT_ZOO


@pytest.fixture()
def registry(tmp_path: Path) -> Any:
    from registry.store import Registry

    reg = Registry(home=tmp_path / "home", db_url=f"sqlite:///{tmp_path}/r.db")
    reg.init()
    reg.ingest([TEXT_ZOO / "adapters" / n for n in ("caesar_1", "reverse", "upper")])
    yield reg
    reg.close()


def test_items_take_descriptions_extra_texts_and_examples(registry: Any, tmp_path: Path) -> None:
    doc = {"caesar_1": {"texts": ["move letters one on"], "task": "caesar_1", "examples": [["ab", "bc"]]}}
    (tmp_path / "t.json").write_text(json.dumps(doc))
    texts = load_texts_file(tmp_path / "t.json")
    items = {it.name: it for it in items_from_registry(registry, "zoo-text", texts=texts)}
    assert set(items) == {"caesar_1", "reverse", "upper"}
    assert items["caesar_1"].descriptions[1] == "move letters one on"
    assert items["caesar_1"].examples == [("ab", "bc")] and items["caesar_1"].task == "caesar_1"
    assert items["reverse"].descriptions[0].startswith("Reverse")
    with pytest.raises(GeneratorTrainingError, match="at least"):
        items_from_registry(registry, "zoo-text", texts=texts, only_listed=True)
    with pytest.raises(GeneratorTrainingError, match="zoo-image"):
        items_from_registry(registry, "zoo-image")


def test_train_from_registry_writes_a_versioned_checkpoint(registry: Any, text_encoder: Any) -> None:
    res = train_from_registry(registry, "zoo-text", "nearest", text_encoder)
    path = Path(res["path"])
    assert path.parent == Path(registry.home) / "generators" / "zoo-text" / "nearest"
    assert path.name == res["version"] and sorted(res["items"]) == ["caesar_1", "reverse", "upper"]
    gen = load_generator(path, text_encoder=text_encoder)
    out = gen.generate("write the string backwards")
    assert out.lineage["experts"][0]["name"] == "reverse"
