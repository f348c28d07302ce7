"""Texts encoded together get exactly the vectors each gets on its own (one text per forward pass:
batching texts of one token length stopped being bit for bit with transformers 5.25), on one torch
thread as ingestion runs the encoder: an adapter's stored text vector never depends on what it was
ingested with."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from encoders.text import MetadataTextEmbedder, TextEncoder, TextEncoderConfig

TEXTS = [
    "pixel art style for retro game sprites",
    "watercolor landscapes with soft morning light",
    "a text adapter that answers like a pirate",
    "anime",
    "knight in golden armor, dark fantasy concept art, highly detailed",
    "oil painting",
    "a text adapter that answers like a parrot",  # as many tokens as the pirate one: one batch
    "summaries of legal contracts in plain english " * 40,  # past the model's maximum length
]


@pytest.fixture(scope="module")
def encoder() -> Iterator[TextEncoder]:
    from registry.formats.safe_io import one_torch_thread

    with one_torch_thread():
        yield TextEncoder(TextEncoderConfig(device="cpu", cache_size=0))


def test_batch_equals_one_text_at_a_time_bit_for_bit(encoder: TextEncoder) -> None:
    together = encoder.encode(TEXTS)  # (n, dim)
    alone = np.stack([encoder.encode([t])[0] for t in TEXTS])  # (n, dim)
    assert together.shape == (len(TEXTS), encoder.dim)
    np.testing.assert_array_equal(together, alone)
    reordered = encoder.encode(TEXTS[::-1])
    np.testing.assert_array_equal(reordered, alone[::-1])


def test_padded_batches_would_differ(encoder: TextEncoder) -> None:
    """The property above is not vacuous: the model's own padded batching changes vectors."""
    padded = encoder.model.encode(TEXTS, batch_size=len(TEXTS), normalize_embeddings=True)
    alone = np.stack([encoder.encode([t])[0] for t in TEXTS])
    assert not np.array_equal(padded, alone)
    np.testing.assert_allclose(padded, alone, atol=1e-5)


def test_embed_many_matches_embed(encoder: TextEncoder) -> None:
    emb = MetadataTextEmbedder(encoder)
    infos = [{"name": "adapter_0001"}, {"name": "pixel_art", "description": "retro sprites"},
             {"name": "x", "tags": ["watercolor"]}, {"name": "pixel_art", "description": "retro sprites"}]  # fmt: skip
    many = emb.embed_many(infos)
    one = [emb.embed(i) for i in infos]
    assert many[0] is None and one[0] is None  # a generic name alone: no text, no vector
    for a, b in zip(many[1:], one[1:], strict=True):
        assert a is not None and b is not None
        np.testing.assert_array_equal(a, b)
