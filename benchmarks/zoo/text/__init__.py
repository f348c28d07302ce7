"""The text benchmark zoo: a small character-level Llama and one PEFT LoRA per string-transform task.

``python -m benchmarks.zoo build text`` (see ``build.py``) writes ``base/``, ``adapters/`` and
``manifest.json`` into this folder; ``README.md`` explains the layout and how to load them.
Importing this package is cheap: torch and transformers load with the submodules that need them.
"""
