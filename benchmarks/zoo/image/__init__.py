"""The image benchmark zoo: a tiny diffusers StableDiffusionPipeline and one LoRA per style or concept.

``python -m benchmarks.zoo build image`` (see ``build.py``) writes ``base/``, ``classifiers/``,
``adapters/``, ``manifest.json``, ``RESULTS.md`` and ``samples.png`` into this folder; ``README.md``
explains the layout and how to load them. Importing this package is cheap: numpy, torch and
diffusers load with the submodules that need them.
"""
