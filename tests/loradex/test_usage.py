"""Usage snippets: what each export format is loaded with, and that the snippets really run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loradex.usage import export_formats, usage_snippet, usage_snippets

REPO = Path(__file__).resolve().parents[2]


def test_snippets_per_format() -> None:
    sd = {"name": "Water Color", "family": "sd1", "trigger_words": ["wc style"], "modules": [{"name": "unet.a"}]}
    snips = usage_snippets(sd)
    assert list(snips) == export_formats(sd["modules"]) == ["diffusers", "peft", "kohya"]
    assert "from_pretrained('stable-diffusion-v1-5/stable-diffusion-v1-5')" in snips["diffusers"]
    assert "set_adapters(['water_color']" in snips["diffusers"] and "'wc style, a lake at dawn'" in snips["diffusers"]
    assert "<lora:Water Color:0.8>" in snips["kohya"] and 'weight_name="adapter.safetensors"' in snips["kohya"]
    assert "pipe.unet = PeftModel.from_pretrained(pipe.unet" in snips["peft"]
    llm = {"name": "sql", "family": "llama", "base_model": "meta-llama/Llama-3.2-1B",
           "modules": [{"name": "model.layers.0.q_proj"}]}  # fmt: skip
    (only,) = usage_snippets(llm).values()
    assert "AutoModelForCausalLM.from_pretrained('meta-llama/Llama-3.2-1B')" in only and "PeftModel" in only
    for code in [*snips.values(), only]:
        compile(code, "<snippet>", "exec")  # valid Python


def test_zoo_snippets_run_on_the_exported_files(tmp_path: Path) -> None:
    """The diffusers snippet of an image-zoo adapter and the PEFT snippet of a text-zoo adapter,
    run as written (in a fresh process: they change the base they load) next to the exports."""
    from loradex.service import LocalService

    zoo = REPO / "benchmarks" / "zoo"
    if not (zoo / "image" / "manifest.json").is_file() or not (zoo / "text" / "manifest.json").is_file():
        pytest.skip("the zoos are not built")
    svc = LocalService.open(tmp_path / "home", embed=False)
    img = next(p for p in sorted((zoo / "image" / "adapters").iterdir()) if p.is_dir() or p.suffix == ".safetensors")
    txt = next(p for p in sorted((zoo / "text" / "adapters").iterdir()) if p.is_dir())
    ids = [r.adapter_id for r in svc.ingest([img, txt]).results]
    script = ["import numpy"]
    for aid, fmt in zip(ids, ["diffusers", "peft"], strict=True):
        info = svc.get(aid)
        svc.export(aid, fmt, tmp_path / f"{info['name']}-{fmt}")
        script.append(usage_snippet(info, fmt))
    script.append("assert numpy.asarray(image).std() > 0 and isinstance(model, PeftModel)\nprint('ran')")
    code = "\n".join(script).replace("pipe(", "pipe(num_inference_steps=2, prompt=", 1)
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert run.returncode == 0 and run.stdout.strip().endswith("ran"), run.stderr[-2000:]
