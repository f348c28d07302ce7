"""Bad input is refused with the file and the problem named; the registry is left as it was."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from registry.formats.safe_io import MAX_METADATA_VALUE_CHARS

MOD = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"


def kohya_tensors(rank: int = 4, in_f: int = 32, out_f: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        f"{MOD}.lora_down.weight": torch.randn(rank, in_f, generator=g),
        f"{MOD}.lora_up.weight": torch.randn(out_f, rank, generator=g),
        f"{MOD}.alpha": torch.tensor(float(rank)),
    }


def write_kohya(path: Path, metadata: dict[str, str] | None = None, **kw) -> Path:
    save_file(kohya_tensors(**kw), str(path), metadata=metadata)
    return path


def snapshot(reg) -> tuple[int, list[str], list[str]]:
    """Row count, blob listing and every file under the data dir except the database."""
    files = sorted(
        str(p.relative_to(reg.home)) for p in reg.home.rglob("*") if p.is_file() and "loradex.db" not in p.name
    )
    return reg.count(), reg.blobs.listing(), files


def raw_safetensors(path: Path, header: bytes, data: bytes = b"", length: int | None = None) -> Path:
    n = len(header) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + header + data)
    return path


class _Evil:
    def __reduce__(self):  # runs os.system on unpickling if anything ever unpickles it unsafely
        import os

        return (os.system, (f"touch {_Evil.marker}",))


def make_cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name → (path, a phrase the error must contain)."""
    tmp.mkdir(parents=True, exist_ok=True)
    cases: dict[str, tuple[Path, str]] = {}
    good = write_kohya(tmp / "good.safetensors")
    trunc = tmp / "truncated.safetensors"
    trunc.write_bytes(good.read_bytes()[:-100])
    cases["truncated"] = (trunc, "outside the file")
    (tmp / "empty.safetensors").write_bytes(b"")
    cases["empty"] = (tmp / "empty.safetensors", "empty file")
    cases["header_len_vs_file"] = (
        raw_safetensors(tmp / "hl.safetensors", b"{}", length=10_000),
        "larger than the file",
    )
    cases["header_len_cap"] = (raw_safetensors(tmp / "cap.safetensors", b"{}", length=2**40), "exceeds the cap")
    cases["header_not_json"] = (raw_safetensors(tmp / "nj.safetensors", b"{not json!"), "not valid JSON")
    hdr = json.dumps({f"{MOD}.lora_down.weight": {"dtype": "F32", "shape": [4, 32], "data_offsets": [0, 512]}})
    cases["offsets"] = (raw_safetensors(tmp / "off.safetensors", hdr.encode(), b"\0" * 64), "outside the file")
    t = kohya_tensors()
    t[f"{MOD}.lora_up.weight"][0, 0] = float("nan")
    save_file(t, str(tmp / "nan.safetensors"))
    cases["nan"] = (tmp / "nan.safetensors", "NaN or Inf")
    t = kohya_tensors()
    t[f"{MOD}.lora_up.weight"] = torch.full((32, 3), float("inf"))
    save_file(t, str(tmp / "inf.safetensors"))
    cases["inf"] = (tmp / "inf.safetensors", "NaN or Inf")
    t = kohya_tensors()
    t[f"{MOD}.lora_up.weight"] = torch.randn(32, 3)
    save_file(t, str(tmp / "rank.safetensors"))
    cases["rank_mismatch"] = (tmp / "rank.safetensors", "rank")
    save_file({"conv_in.weight": torch.randn(4, 4), "conv_in.bias": torch.randn(4)}, str(tmp / "nolora.safetensors"))
    cases["no_lora_keys"] = (tmp / "nolora.safetensors", "no LoRA keys")
    save_file(
        {"blocks.0.lora_left": torch.randn(4, 4), "blocks.0.lora_right": torch.randn(4, 4)},
        str(tmp / "unk.safetensors"),
    )
    cases["unknown_naming"] = (tmp / "unk.safetensors", "unknown tensor naming")
    _Evil.marker = str(tmp / "PWNED")
    (tmp / "evil.bin").write_bytes(pickle.dumps({"x": _Evil()}))
    cases["evil_pickle_raw"] = (tmp / "evil.bin", "refused to unpickle")
    torch.save({"x": _Evil()}, str(tmp / "evil.pt"))
    cases["evil_pickle_torch"] = (tmp / "evil.pt", "refused to unpickle")
    for name, cfg_text in {
        "cfg_json": "{r: 8,",
        "cfg_r": json.dumps({"peft_type": "LORA", "r": "eight", "lora_alpha": 16}),
    }.items():
        d = tmp / name
        d.mkdir()
        (d / "adapter_config.json").write_text(cfg_text)
        save_file({"base_model.model.layers.0.q.lora_A.weight": torch.randn(8, 16),
                   "base_model.model.layers.0.q.lora_B.weight": torch.randn(16, 8)}, str(d / "adapter_model.safetensors"))  # fmt: skip
    cases["peft_config_not_json"] = (tmp / "cfg_json", "not valid JSON")
    cases["peft_r_not_numeric"] = (tmp / "cfg_r", "'r'")
    (tmp / "photo.safetensors").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    cases["png_named_safetensors"] = (tmp / "photo.safetensors", "not a safetensors file (it looks like a PNG image")
    (tmp / "notes.bin").write_text("just some text, not a torch file\n" * 10)
    cases["text_named_bin"] = (tmp / "notes.bin", "not a readable torch file")
    return cases


CASE_IDS = ["truncated", "empty", "header_len_vs_file", "header_len_cap", "header_not_json", "offsets", "nan", "inf",
            "rank_mismatch", "no_lora_keys", "unknown_naming", "evil_pickle_raw", "evil_pickle_torch",
            "peft_config_not_json", "peft_r_not_numeric", "png_named_safetensors", "text_named_bin"]  # fmt: skip


@pytest.mark.parametrize("case", CASE_IDS)
def test_bad_input_refused_registry_unchanged(registry, tmp_path: Path, case: str) -> None:
    cases = make_cases(tmp_path / "in")
    assert set(cases) == set(CASE_IDS)
    registry.ingest([tmp_path / "in" / "good.safetensors"])  # something already there must stay
    before = snapshot(registry)
    path, phrase = cases[case]
    report = registry.ingest([path])
    assert [r.status for r in report.results] == ["refused"], report.results
    reason = report.results[0].reason or ""
    assert path.name in reason, reason
    assert phrase in reason, reason
    assert snapshot(registry) == before
    assert not (tmp_path / "in" / "PWNED").exists(), "the pickle ran code"


def test_huge_metadata_is_capped(registry, tmp_path: Path) -> None:
    p = write_kohya(
        tmp_path / "big.safetensors",
        metadata={"ss_training_comment": "x" * 12_000_000, "ss_output_name": "big"},  # under the header cap
    )
    report = registry.ingest([p])
    assert [r.status for r in report.results] == ["ingested"]
    info = registry.get(report.results[0].adapter_id)
    assert len(info["metadata"]["ss_training_comment"]) <= MAX_METADATA_VALUE_CHARS
    assert any("capped" in w for w in info["warnings"])


def test_refusal_in_a_batch_keeps_the_rest(registry, tmp_path: Path) -> None:
    cases = make_cases(tmp_path / "in")
    report = registry.ingest([tmp_path / "in"])
    statuses = {Path(r.path).name: r.status for r in report.results}
    assert statuses["good.safetensors"] == "ingested"
    assert registry.count() == 1
    for case in CASE_IDS:
        assert statuses[cases[case][0].name] == "refused", case
    assert not (tmp_path / "in" / "PWNED").exists()
