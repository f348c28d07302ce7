"""Generated adapters load in the libraries their format belongs to and act as their ΔW says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from generators import load_generator, train_generator
from registry.formats import write_adapter
from tests.generators.conftest import IMAGE_ZOO, TEXT_ZOO


def test_generated_peft_folder_loads_over_the_text_zoo_base(text_items: list, text_encoder: Any,
                                                            tmp_path: Path) -> None:  # fmt: skip
    from peft import PeftModel

    from benchmarks.zoo.text.model import load_base

    train_generator("topk_mean", "zoo-text", text_items, tmp_path / "g", text_encoder=text_encoder)
    out = load_generator(tmp_path / "g", text_encoder=text_encoder).generate("reverse it and shift letters")
    write_adapter(out.adapter, "peft", tmp_path / "a")
    base, tok = load_base(TEXT_ZOO / "base")
    ids = torch.tensor([tok.prompt("helloworld")])
    with torch.no_grad():
        plain = base(input_ids=ids).logits
        model = PeftModel.from_pretrained(base, str(tmp_path / "a")).eval()
        got = model(input_ids=ids).logits
        # the same ΔW merged by hand into a fresh base
        ref, _ = load_base(TEXT_ZOO / "base")
        for name, m in out.adapter.modules.items():
            lin = ref.get_submodule(name.split(".", 1)[1])
            lin.weight += m.delta()
        want = ref(input_ids=ids).logits
    assert not torch.allclose(got, plain, atol=1e-4)
    assert torch.allclose(got, want, atol=1e-3)


def test_generated_diffusers_file_loads_into_the_image_zoo_pipeline(image_items: list, text_encoder: Any,
                                                                    tmp_path: Path) -> None:  # fmt: skip
    from benchmarks.zoo.image.model import load_base

    train_generator("nearest", "zoo-image", image_items, tmp_path / "g", text_encoder=text_encoder)
    out = load_generator(tmp_path / "g", text_encoder=text_encoder).generate("sepia tones")
    assert out.lineage["experts"][0]["name"] == "sepia"
    write_adapter(out.adapter, "diffusers", tmp_path / "a")
    pipe = load_base(IMAGE_ZOO / "base")
    pipe.load_lora_weights(str(tmp_path / "a"), adapter_name="gen")
    name = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    layer = pipe.unet.get_submodule(name)
    x = torch.randn(2, layer.in_features)
    with torch.no_grad():
        delta = layer(x) - layer.base_layer(x)
    want = x @ out.adapter.modules["unet." + name].delta().T
    assert torch.allclose(delta, want, atol=1e-4)
