"""``LORADEX_TEXT_INT8``: the service embeds text with the int8 encoder, its vectors carry the int8
version, and switching back re-embeds them with the float encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from loradex.service import LocalService
from loradex.settings import env_flag

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("TRUE", True), ("on", True), ("0", False),
                                                 ("", False), ("no", False)])  # fmt: skip
def test_env_flag_reads_on_and_off(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("LORADEX_TEXT_INT8", value)
    assert env_flag("LORADEX_TEXT_INT8") is expected
    assert LocalService("unused").text_int8 is expected  # what the service opens its text encoder with


def test_env_flag_refuses_other_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORADEX_TEXT_INT8", "fast")
    with pytest.raises(ValueError, match="LORADEX_TEXT_INT8='fast' is not on/off"):
        LocalService("unused")


def _text_versions(svc: LocalService) -> set[str]:
    from registry.models import AdapterEmbedding

    with svc.registry.sessions() as s:
        return {v for (v,) in s.query(AdapterEmbedding.encoder_version).filter(AdapterEmbedding.kind == "text")}


def test_int8_setting_embeds_with_int8_and_switching_back_re_embeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, url = tmp_path / "home", f"sqlite:///{tmp_path}/r.db"
    monkeypatch.setenv("LORADEX_TEXT_INT8", "1")
    svc = LocalService.open(home, url)
    assert svc.text_encoder.config.quantize
    int8_version = svc.registry.embedders["text"].version  # the encoder's version + the metadata recipe
    assert svc.text_encoder.version in int8_version and "int8" in int8_version
    svc.ingest([SAMPLES])
    assert _text_versions(svc) == {int8_version}
    assert svc.search("a soft watercolor painting of a lake", k=1)[0].adapter["name"] == "watercolor_sd15"
    svc.close()

    monkeypatch.delenv("LORADEX_TEXT_INT8")
    svc = LocalService.open(home, url)  # float encoder: the int8 vectors are stale and re-embedded on open
    assert not svc.text_encoder.config.quantize and svc.registry.embedders["text"].version != int8_version
    assert _text_versions(svc) == {svc.registry.embedders["text"].version}
    assert svc.search("a soft watercolor painting of a lake", k=1)[0].adapter["name"] == "watercolor_sd15"
    svc.close()
