"""The int8 text path: normalized, close to the float reference, own version; the prompt cache."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.text import TextEncoder, TextEncoderConfig

SENTENCES = [
    "pixel art style for retro game sprites",
    "watercolor landscapes with soft morning light",
    "a text adapter that answers like a pirate",
    "anime",
    "knight in golden armor, dark fantasy concept art, highly detailed",
]


@pytest.fixture(scope="module")
def float_encoder() -> TextEncoder:
    return TextEncoder(TextEncoderConfig(device="cpu"))


@pytest.fixture(scope="module")
def int8_encoder() -> TextEncoder:
    return TextEncoder(TextEncoderConfig(quantize=True))


def test_int8_is_normalized_and_close_to_float(float_encoder: TextEncoder, int8_encoder: TextEncoder) -> None:
    ref = float_encoder.encode(SENTENCES)  # (n, dim)
    fast = int8_encoder.encode(SENTENCES)  # (n, dim)
    assert fast.shape == ref.shape and fast.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    cos = (fast * ref).sum(axis=1)  # (n,)
    assert cos.min() > 0.98, cos
    assert not np.allclose(fast, ref, atol=1e-6), "int8 path returned the float vectors"


def test_int8_has_its_own_version(float_encoder: TextEncoder, int8_encoder: TextEncoder) -> None:
    assert int8_encoder.version.startswith(float_encoder.version) and int8_encoder.version != float_encoder.version


def test_int8_rejects_a_gpu_device() -> None:
    with pytest.raises(ValueError, match="CPU only"):
        TextEncoderConfig(quantize=True, device="cuda")


@pytest.mark.parametrize("quantize", [False, True])
def test_cache_returns_identical_vectors(quantize: bool, float_encoder: TextEncoder, int8_encoder: TextEncoder) -> None:
    enc = int8_encoder if quantize else float_encoder
    enc.clear_cache()
    first = enc.encode(SENTENCES[:3])
    assert len(enc._cache) == 3
    again = enc.encode([SENTENCES[2], SENTENCES[0], SENTENCES[1]])  # all hits, another order
    np.testing.assert_array_equal(again, first[[2, 0, 1]])
    enc.clear_cache()
    np.testing.assert_allclose(enc.encode(SENTENCES[:1])[0], first[0], atol=1e-6)  # recomputed after clearing


def test_disabled_cache_still_encodes_each_text_once(float_encoder: TextEncoder) -> None:
    enc = TextEncoder(TextEncoderConfig(device="cpu", cache_size=0))
    enc._model = float_encoder.model  # share the loaded model
    calls: list[int] = []
    real = enc._model.encode

    def counting(texts, **kw):  # type: ignore[no-untyped-def]
        calls.append(len(texts))
        return real(texts, **kw)

    enc._model = type("Counting", (), {"encode": staticmethod(counting), "preprocess": enc._model.preprocess})()
    out = enc.encode(SENTENCES[:2] + SENTENCES[:1])
    assert sum(calls) == 2 and out.shape[0] == 3 and len(enc._cache) == 0  # (a pass per token length)
    np.testing.assert_array_equal(out[0], out[2])
