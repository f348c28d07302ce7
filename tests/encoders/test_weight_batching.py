"""``WeightEmbedder.embed_many``: adapters embedded together get the vectors each gets on its own
(one batch per family and layout: no padding), to float rounding (~1e-7: the matmuls' shapes
follow the batch), on one torch thread as ingestion runs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from encoders.weight.embedder import WeightEmbedder
from registry.formats import read_adapter

ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo" / "text" / "adapters"


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    from registry.formats.safe_io import one_torch_thread

    with one_torch_thread():
        yield


def test_embed_many_is_embed(one_thread: None) -> None:
    emb = WeightEmbedder()
    folders = sorted(p for p in ZOO.iterdir() if p.is_dir())[:10]
    assert folders, f"no text zoo adapters under {ZOO}"
    adapters = [read_adapter(p) for p in folders]
    # a second layout: the same adapters with one module left out, and one family with no encoder
    partial = read_adapter(folders[0])
    partial.modules.pop(sorted(partial.modules)[0])
    unknown = read_adapter(folders[1])
    unknown.family = "no-such-family"
    adapters += [partial, unknown]
    infos = [{"family": a.family} for a in adapters]
    many = emb.embed_many(infos, [lambda a=a: a for a in adapters])
    alone = [emb.embed(i, lambda a=a: a) for i, a in zip(infos, adapters, strict=True)]
    assert many[-1] is None and alone[-1] is None
    assert all(v is not None for v in many[:-1])
    for got, want in zip(many, alone, strict=True):
        if want is not None:
            np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.array_equal(many[0], many[-2])  # the partial adapter is embedded as itself
