"""Weight encoders: LoRA weights → the text encoder's space (AutoLoRA), one per base family.

``config.py`` (architecture + module vocabulary), ``features.py`` (factors per slot),
``model.py`` (the network and its checkpoints), ``train.py`` (InfoNCE training),
``embedder.py`` (the registry ``Embedder`` of kind ``weights``). Checkpoints bundled with the
code live in ``checkpoints/<family>/``; checkpoints trained by ``loradex train-encoder`` are
recorded in the database and override bundled ones of the same family. Importing this
package does not import torch.
"""

from __future__ import annotations

from pathlib import Path

BUNDLED = Path(__file__).resolve().parent / "checkpoints"


def bundled_checkpoints() -> list[Path]:
    """Checkpoint folders shipped with the code (one per family), sorted by family."""
    if not BUNDLED.is_dir():
        return []
    return sorted(p for p in BUNDLED.iterdir() if (p / "config.json").is_file() and (p / "model.safetensors").is_file())
