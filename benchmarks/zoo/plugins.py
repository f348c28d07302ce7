"""The zoos as plug-ins of loradex, declared as entry points in pyproject.toml, the way a user's
own base pipelines and adapter folders plug in (the product never names ``benchmarks``):

* ``loradex.bases``: ``zoo-image`` (the 32×32 diffusers pipeline) and ``zoo-text`` (the char Llama
  and its tokenizer), loaded from the committed ``base/`` folders;
* ``loradex.adapter_sets``: each zoo's ``adapters/`` once its build wrote ``manifest.json``;
* ``loradex.adapter_texts``: each zoo's training-task paraphrases (``training_texts``: canonical
  description and training-split paraphrases; held-out tasks and paraphrases left out), which a
  fresh data dir fits its text map on;
* ``loradex.previews``: the ``zoo-image`` preview pipeline (content prompts per adapter);
* ``loradex.image_judges``: the ``zoo-image`` judge (its classifier's palette, texture and shape
  heads), which search by example picture compares pictures with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loradex.bases import Base
from loradex.judges import ImageJudge
from loradex.previews import PreviewPipeline

ZOO = Path(__file__).resolve().parent
IMAGE_BASE = ZOO / "image" / "base"
TEXT_BASE = ZOO / "text" / "base"


def load_zoo_image(device: str = "cpu") -> Any:
    """The image zoo's ``StableDiffusionPipeline``."""
    from benchmarks.zoo.image.model import load_base

    return load_base(IMAGE_BASE, device)


def load_zoo_text(device: str = "cpu") -> Any:
    """The text zoo's ``(LlamaForCausalLM, CharTokenizer)``."""
    from benchmarks.zoo.text.model import load_base

    return load_base(TEXT_BASE, device)


ZOO_IMAGE = Base("zoo-image", load_zoo_image, kind="image", folder=IMAGE_BASE / "model_index.json")
ZOO_TEXT = Base("zoo-text", load_zoo_text, kind="text", folder=TEXT_BASE)


def _built(kind: str) -> list[Path]:
    """A zoo's adapters, once its build is finished (it wrote ``manifest.json``)."""
    zoo = ZOO / kind
    return [zoo / "adapters"] if (zoo / "manifest.json").is_file() else []


def text_adapters() -> list[Path]:
    return _built("text")


def image_adapters() -> list[Path]:
    return _built("image")


def _texts(kind: str) -> dict[str, dict[str, Any]]:
    """A built zoo's training texts as a texts document (``benchmarks.zoo.training_texts``)."""
    import json

    from benchmarks.zoo import training_texts

    manifest = ZOO / kind / "manifest.json"
    return training_texts(json.loads(manifest.read_text())) if manifest.is_file() else {}


def text_texts() -> dict[str, dict[str, Any]]:
    return _texts("text")


def image_texts() -> dict[str, dict[str, Any]]:
    return _texts("image")


def zoo_image_pipeline(folder: Path) -> PreviewPipeline:
    """The image zoo's base in ``folder`` as the ``zoo-image`` preview pipeline."""
    return PreviewPipeline(
        family="zoo-image",
        folder=Path(folder),
        loader="benchmarks.zoo.image.model:load_base",
        prompts=(
            "a red circle on a navy background",
            "a yellow square on a black background",
            "a green triangle on a brown background",
            "a cyan diamond on a teal background",
        ),  # fmt: skip
        prompt_fn="benchmarks.zoo.image.captions:preview_prompts",
        steps=20,
        guidance=4.0,
        cell=64,
    )


def zoo_image_preview() -> PreviewPipeline | None:
    """The committed image zoo's preview pipeline, or None while its base is not built."""
    return zoo_image_pipeline(IMAGE_BASE) if (IMAGE_BASE / "model_index.json").is_file() else None


JUDGE_HEADS = ("palette", "texture", "shape")  # the looks adapters give; not the content's colour


class _ZooJudgeFeatures:
    """Pictures (n, 32, 32, 3) in [0, 1] → the classifier's √softmax of each of ``JUDGE_HEADS``, side
    by side (n, Σ classes), unit rows; the classifier loads on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.model = folder, None

    def __call__(self, images: Any) -> Any:
        import numpy as np
        import torch

        from benchmarks.zoo.image.classifiers import load_classifier

        if self.model is None:
            self.model = load_classifier(self.folder)
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2)  # (n, 3, 32, 32)
        with torch.no_grad():
            heads = self.model(x)
        parts = [heads[h].softmax(dim=1).sqrt() for h in JUDGE_HEADS]  # each a unit row
        return (torch.cat(parts, dim=1) / len(parts) ** 0.5).numpy()


def zoo_image_judge() -> ImageJudge | None:
    """The image zoo's judge, or None while its classifier is not built."""
    folder = ZOO / "image" / "classifiers"
    if not (folder / "classifier.safetensors").is_file():
        return None
    return ImageJudge("the image zoo's classifier (palette, texture, shape)", _ZooJudgeFeatures(folder))
