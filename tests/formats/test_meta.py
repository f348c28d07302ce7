"""Descriptions, trigger words, tags and licenses from file metadata and sidecar files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from registry.formats.canonical import LoraAdapter, LoraModule
from registry.formats.meta import MAX_DESCRIPTION, MAX_ITEM_CHARS, MAX_ITEMS, extract_metadata
from registry.formats.sidecars import MAX_SIDECAR_BYTES
from tests.formats.test_detect import EXPECTED, fixture_path

HF_TEMPLATE = """---
library_name: peft
base_model: gpt2
---

# Model Card for Model ID

<!-- Provide a quick summary of what the model is/does. -->

## Model Details

### Model Description

- **Developed by:** [More Information Needed]
- **License:** [More Information Needed]

## How to Get Started with the Model

Use the code below to get started with the model.

[More Information Needed]

## Citation [optional]

**BibTeX:**

### Framework versions

- PEFT 0.10.0
"""


def make(tmp_path: Path, name: str = "style.safetensors", **meta: object) -> tuple[LoraAdapter, Path]:
    a = LoraAdapter({}, metadata=dict(meta))
    return a, tmp_path / name


def civitai_info(**fields: object) -> str:
    base = {"name": "v1", "baseModel": "SD 1.5", "trainedWords": ["yew tree", "gnarled, bark"],
            "description": "<p>Paints <b>yew</b> trees &amp; hedges.</p><p>Use at 0.8.</p>",
            "model": {"name": "Yew Style", "tags": [{"name": "style"}, "trees"]}}  # fmt: skip
    return json.dumps(base | fields)


# ---------------------------------------------------------------- single sources
def test_description_txt_wins_over_every_other_source(tmp_path: Path) -> None:
    a, src = make(tmp_path, **{"modelspec.description": "from modelspec"})
    (tmp_path / "description.txt").write_text("  from description.txt\n")
    (tmp_path / "style.civitai.info").write_text(civitai_info())
    (tmp_path / "README.md").write_text("# Title\n\nfrom the README body\n")
    extract_metadata(a, src)
    assert a.description == "from description.txt"


def test_precedence_civitai_then_modelspec_then_readme(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# Title\n\nfrom the README body\n")
    a, src = make(tmp_path, **{"modelspec.description": "from modelspec"})
    extract_metadata(a, src)
    assert a.description == "from modelspec"
    (tmp_path / "style.civitai.info").write_text(civitai_info())
    a, src = make(tmp_path, **{"modelspec.description": "from modelspec"})
    extract_metadata(a, src)
    assert a.description == "Paints yew trees & hedges.\nUse at 0.8."
    a, src = make(tmp_path, name="other.safetensors")
    extract_metadata(a, src)
    assert a.description == "Title\n\nfrom the README body"


def test_civitai_info_fields(tmp_path: Path) -> None:
    (tmp_path / "style.civitai.info").write_text(civitai_info())
    a, src = make(tmp_path)
    extract_metadata(a, src)
    assert a.trigger_words == ["yew tree", "gnarled", "bark"]
    assert a.tags == ["style", "trees"]
    assert a.metadata["title"] == "Yew Style"
    assert a.metadata["civitai.baseModel"] == "SD 1.5" and a.base_model == "SD 1.5"
    assert a.family == "sd1"  # detection re-run with the sidecar's base model


def test_a1111_user_metadata_json(tmp_path: Path) -> None:
    (tmp_path / "style.json").write_text(json.dumps({"description": "A1111 notes", "activation text": "yew, tree",
                                                     "sd version": "SDXL"}))  # fmt: skip
    a, src = make(tmp_path)
    extract_metadata(a, src)
    assert (a.description, a.trigger_words, a.family) == ("A1111 notes", ["yew", "tree"], "sdxl")


@pytest.mark.parametrize("content", ['{"description": "cut off', "[1, 2]", ""])
def test_broken_civitai_json_is_a_warning(tmp_path: Path, content: str) -> None:
    (tmp_path / "style.civitai.info").write_text(content)
    (tmp_path / "description.txt").write_text("still described")
    a, src = make(tmp_path)
    extract_metadata(a, src)
    assert a.description == "still described"
    assert any("style.civitai.info" in w for w in a.warnings)


def test_model_card_front_matter_and_body(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(
        "---\nlicense: creativeml-openrail-m\nbase_model: runwayml/stable-diffusion-v1-5\n"
        "instance_prompt: a photo of sks dog\ntags:\n- lora\n- base_model:adapter:x\n- dogs\n---\n\n"
        "# DreamBooth LoRA - sks dog\n\n<!-- comment -->\nThese are LoRA weights for **sks** dogs. "
        "See [the blog](https://x.y).\n\n![img](a.png)\n\n```python\nprint('code')\n```\n\n## Empty\n\n## Notes\n\nok\n"
    )
    a, src = make(tmp_path)
    extract_metadata(a, src)
    assert a.license == "creativeml-openrail-m"
    assert a.tags == ["dogs"]
    assert a.trigger_words == ["a photo of sks dog"]
    assert a.base_model == "runwayml/stable-diffusion-v1-5" and a.family == "sd1"
    assert a.metadata["title"] == "DreamBooth LoRA - sks dog"
    assert (
        a.description
        == "DreamBooth LoRA - sks dog\n\nThese are LoRA weights for sks dogs. See the blog.\n\nNotes\n\nok"
    )


def test_hf_template_card_gives_no_description(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(HF_TEMPLATE)
    a, src = make(tmp_path, "adapter_model.safetensors")
    extract_metadata(a, src)
    assert a.description is None and "title" not in a.metadata
    assert a.base_model == "gpt2"


def test_invalid_front_matter_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("---\ntags: [unclosed\n---\n\nBody text.\n")
    a, src = make(tmp_path)
    extract_metadata(a, src)
    assert a.description == "Body text."
    assert any("README.md" in w and "YAML" in w for w in a.warnings)


# ---------------------------------------------------------------- kohya / modelspec / PEFT metadata
def test_kohya_tag_frequency_dataset_dirs_and_comment(tmp_path: Path) -> None:
    freq = {"16_smf girl": {"smart falcon \\(umamusume\\)": 40, "hair bow": 39, "smile": 20},
            "4_smf girl": {"smart falcon \\(umamusume\\)": 10, "hair bow": 10, "blush": 9}}  # fmt: skip
    dirs = {"16_smf girl": {"n_repeats": 16, "img_count": 40}, "4_smf girl": {"n_repeats": 4, "img_count": 10}}
    a, src = make(tmp_path, ss_tag_frequency=json.dumps(freq), ss_dataset_dirs=json.dumps(dirs),
                  ss_training_comment="trigger word is smf", ss_output_name="smf_v1")  # fmt: skip
    extract_metadata(a, src)
    assert a.trigger_words == ["smf", "smf girl", "smart falcon (umamusume)", "hair bow"]
    assert a.description == "trigger word is smf"  # the comment is the last-resort description
    assert a.metadata["title"] == "smf_v1"


def test_modelspec_fields(tmp_path: Path) -> None:
    a, src = make(tmp_path, **{"modelspec.description": "d", "modelspec.trigger_phrase": "yew, tree",
                               "modelspec.tags": "style, nature", "modelspec.license": "MIT",
                               "modelspec.title": "Yew"})  # fmt: skip
    extract_metadata(a, src)
    assert (a.description, a.trigger_words, a.tags, a.license) == ("d", ["yew", "tree"], ["style", "nature"], "MIT")
    assert a.metadata["title"] == "Yew"


def test_peft_folder_sidecars_and_task_type(tmp_path: Path) -> None:
    folder = tmp_path / "peft"
    folder.mkdir()
    (folder / "description.txt").write_text("emotion classifier")
    a = LoraAdapter({}, metadata={"peft_config": {"task_type": "SEQ_CLS"}})
    extract_metadata(a, folder / "adapter_model.safetensors")
    assert (a.description, a.tags) == ("emotion classifier", ["sequence-classification"])
    b = LoraAdapter({}, metadata={"peft_config": {"task_type": "CAUSAL_LM"}})
    extract_metadata(b, folder)  # the folder itself works too
    assert (b.description, b.tags) == ("emotion classifier", ["causal-lm"])


def test_reader_values_are_kept_and_deduplicated(tmp_path: Path) -> None:
    (tmp_path / "style.civitai.info").write_text(civitai_info(trainedWords=["<S1>", "yew"]))
    a, src = make(tmp_path)
    a.trigger_words, a.license = ["<s1>"], "openrail"
    extract_metadata(a, src)
    extract_metadata(a, src)
    assert a.trigger_words == ["<s1>", "yew"] and a.license == "openrail"


# ---------------------------------------------------------------- caps and bad files
def test_caps(tmp_path: Path) -> None:
    (tmp_path / "description.txt").write_text("x" * (MAX_DESCRIPTION + 500))
    words = [f"word{i}" for i in range(MAX_ITEMS + 8)] + ["y" * 150]
    (tmp_path / "style.civitai.info").write_text(civitai_info(trainedWords=["t" * 150] + words, tags=words))
    a, src = make(tmp_path)
    extract_metadata(a, src)
    assert len(a.description or "") == MAX_DESCRIPTION
    assert len(a.trigger_words) == MAX_ITEMS and len(a.tags) == MAX_ITEMS
    assert all(len(w) <= MAX_ITEM_CHARS for w in a.trigger_words + a.tags)
    assert a.trigger_words[0] == "t" * MAX_ITEM_CHARS
    assert any(w.startswith("metadata capped") and "description" in w for w in a.warnings)


def test_oversized_sidecars_are_read_only_in_part(tmp_path: Path) -> None:
    (tmp_path / "description.txt").write_text("big " * (MAX_SIDECAR_BYTES // 2))
    (tmp_path / "style.civitai.info").write_text(civitai_info(description="z" * (MAX_SIDECAR_BYTES + 10)))
    a, src = make(tmp_path)
    extract_metadata(a, src)
    assert (a.description or "").startswith("big big")
    assert any("description.txt" in w and "larger than" in w for w in a.warnings)
    assert any("style.civitai.info" in w and "not valid JSON" in w for w in a.warnings)


def test_binary_non_utf8_and_unreadable_sidecars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "description.txt").write_bytes(b"caf\xe9 style")
    (tmp_path / "style.json").write_bytes(b"\x00\x01\x02")
    (tmp_path / "README.md").mkdir()  # not a file: ignored
    a, src = make(tmp_path)
    extract_metadata(a, src)
    assert a.description == "caf\ufffd style"
    assert any("not valid UTF-8" in w for w in a.warnings) and any("binary" in w for w in a.warnings)

    def deny(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", deny)
    b, src = make(tmp_path)
    extract_metadata(b, src)
    assert b.description is None and any("could not be read" in w for w in b.warnings)


def test_no_sidecars_no_metadata(tmp_path: Path) -> None:
    m = LoraModule("model.foo", torch.zeros(1, 4), torch.zeros(4, 1), 1.0)
    a = LoraAdapter({m.name: m})
    extract_metadata(a, tmp_path / "x.safetensors")
    assert (a.description, a.trigger_words, a.tags, a.license, a.warnings) == (None, [], [], None, [])


# ---------------------------------------------------------------- real fixtures
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_fixture_descriptions_come_from_description_txt(real_adapters: Path, name: str) -> None:
    from registry.formats import read_adapter, resolve_source

    path = fixture_path(real_adapters / name)
    a = read_adapter(path)
    extract_metadata(a, resolve_source(path).weights)
    assert a.description == (real_adapters / name / "description.txt").read_text(encoding="utf-8").strip()
    assert a.family == EXPECTED[name]
    assert not [w for w in a.warnings if "sidecar" in w]
    if name == "flux_aitoolkit_yew":
        assert a.trigger_words == ["YEW"]
    if name == "lycoris_lokr_smart_falcon8":
        assert "smf girl" in a.trigger_words and "smart falcon (umamusume)" in a.trigger_words
    if name == "clos_disney_st":
        assert a.trigger_words == ["<s1>", "<s2>"]


def test_real_model_cards(real_adapters: Path) -> None:
    from registry.formats.sidecars import CardInfo, model_card

    def card(name: str) -> CardInfo:
        return model_card(real_adapters / name, "adapter_model", lambda w: pytest.fail(w))

    gpt2 = card("peft_gpt2_emotion")
    assert (gpt2.description, gpt2.title, gpt2.base_model) == (None, None, "gpt2")  # unfilled HF template
    assert card("peft_rugpt3small_nested_prefix").base_model == "ai-forever/rugpt3small_based_on_gpt2"
    distil = card("peft_distilbert_imdb")
    assert distil.title == "LoRA Fine-Tuning Practice on IMDB with DistilBERT"
    assert distil.description and "practice project" in distil.description


# ---------------------------------------------------------------- export keeps dtype and metadata
@pytest.mark.parametrize(
    ("rel", "fmts"),
    [
        ("flux_aitoolkit_yew/lora.safetensors", ["diffusers"]),  # fp16 diffusers with modelspec.* entries
        ("lycoris_lokr_smart_falcon8/smart_falcon_8_lokr.safetensors", ["diffusers", "kohya"]),  # fp16, ss_* entries
    ],
)
def test_export_keeps_the_dtype_and_what_the_header_said(real_adapters: Path, tmp_path: Path, rel: str,
                                                           fmts: list[str]) -> None:  # fmt: skip
    """An fp16 adapter comes back fp16 (not twice the size in fp32), with its ss_* / modelspec.*
    entries, and the card (description, trigger words) survives a format change."""
    from safetensors import safe_open

    from registry.formats import read_adapter, write_adapter
    from registry.formats.meta import SOURCE_ONLY

    src = read_adapter(real_adapters / rel)
    assert src.dtype == "float16"
    src.description, src.trigger_words = "A yew-tree style, exported and read back.", ["yewstyle"]
    kept = {k: v for k, v in src.metadata.items() if isinstance(v, str) and k.startswith(("ss_", "modelspec."))
            and not k.startswith(SOURCE_ONLY)}  # fmt: skip
    assert kept
    for fmt in fmts:
        (out,) = [p for p in write_adapter(src, fmt, tmp_path / fmt) if p.suffix == ".safetensors"]
        with safe_open(str(out), "pt") as f:
            header = f.metadata()
            assert {f.get_slice(k).get_dtype() for k in f.keys() if not k.endswith(".alpha")} == {"F16"}
        again = read_adapter(out)
        assert again.dtype == "float16" and all(m.down.dtype == torch.float32 for m in again.modules.values())
        if fmt == "kohya":  # kohya rewrites the network fields for the plain LoRA it writes
            kept = {k: v for k, v in kept.items() if not k.startswith(("modelspec.architecture", "ss_base_model"))}
        assert {k: header[k] for k in kept} == kept, fmt
        assert header["modelspec.description"] == src.description and header["modelspec.trigger_phrase"] == "yewstyle"
        assert again.modules.keys() == src.modules.keys()
        for name in list(src.modules)[::7]:  # the weights: fp16 rounding of the factors, nothing more
            d, d2 = src.modules[name].delta(), again.modules[name].delta()  # (every 7th: 350 LoKr deltas take long)
            assert float((d - d2).norm()) <= 5e-3 * float(d.norm()), name
