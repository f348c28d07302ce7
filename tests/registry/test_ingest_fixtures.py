"""The 12 real third-party adapters ingest with the right family, format, ranks and module counts."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "adapters"

# name → (family, format, ranks, module count)
EXPECTED = {
    "clos_disney_st": ("sd1", "cloneofsimo", [1], 192),
    "clos_illust_pt": ("sd2", "cloneofsimo", [4], 128),
    "diff_anime_unet_peft": ("sd1", "peft", [4], 96),
    "diff_attnproc_rick_morty": ("sd1", "diffusers", [4], 128),
    "diff_unetprefix_flower_sd14": ("sd1", "diffusers", [4], 128),
    "flux_aitoolkit_yew": ("flux", "diffusers", [16], 4),
    "lycoris_lokr_smart_falcon8": ("sd1", "lycoris", None, 350),
    "peft_bloom560m_alpaca_oldpeft_bin": ("bloom", "peft", [16], 24),
    "peft_distilbert_imdb": ("distilbert", "peft", [8], 12),
    "peft_gpt2_emotion": ("gpt2", "peft", [8], 12),
    "peft_qwen25_05b_inference_engine": ("qwen2", "peft", [8], 48),
    "peft_rugpt3small_nested_prefix": ("gpt2", "peft", [4, 8], 48),
}


def test_all_real_fixtures_ingest(real_adapters: Path, db_url: str, tmp_path: Path) -> None:
    from registry.store import Registry

    reg = Registry(home=tmp_path / "home", db_url=db_url)
    reg.init()
    report = reg.ingest([real_adapters])
    by_folder = {Path(r.path).relative_to(real_adapters).parts[0]: r for r in report.results}
    assert set(by_folder) == set(EXPECTED)
    for name, (family, fmt, ranks, n_modules) in EXPECTED.items():
        r = by_folder[name]
        assert r.status == "ingested", (name, r.reason)
        info = reg.get(r.adapter_id)
        assert (info["family"], info["format"]) == (family, fmt), name
        assert info["module_count"] == n_modules, name
        if ranks is not None:
            assert info["ranks"] == ranks, name
        assert info["description"] or name in {"flux_aitoolkit_yew", "lycoris_lokr_smart_falcon8"}, name
    assert len(reg.blobs.listing()) == len(EXPECTED)
    # LyCORIS: low-rank approximation recorded per module, original file kept.
    lokr = reg.get(by_folder["lycoris_lokr_smart_falcon8"].adapter_id)
    assert all("approx_error" in m and m["source_type"] == "lokr" for m in lokr["modules"])
    assert (reg.blob_path(lokr["id"])).read_bytes() == (
        real_adapters / "lycoris_lokr_smart_falcon8" / "smart_falcon_8_lokr.safetensors"
    ).read_bytes()
    # Flux metadata says SD 1.5: shapes win and the disagreement is recorded.
    flux = reg.get(by_folder["flux_aitoolkit_yew"].adapter_id)
    assert any("sd" in w.lower() and "flux" in w.lower() for w in flux["warnings"]), flux["warnings"]
    # Re-ingesting is idempotent: every file is a duplicate naming the existing adapter.
    again = reg.ingest([real_adapters])
    assert {r.status for r in again.results} == {"duplicate"}
    assert all(
        r.adapter_id == by_folder[Path(r.path).relative_to(real_adapters).parts[0]].adapter_id for r in again.results
    )
    assert reg.count() == len(EXPECTED)
    reg.close()


@pytest.mark.parametrize("fmt", ["diffusers", "kohya"])
def test_export_real_diffusion_fixture(real_adapters: Path, tmp_path: Path, fmt: str) -> None:
    import torch

    from registry.formats import read_adapter
    from registry.store import Registry

    reg = Registry(home=tmp_path / "home", db_url=f"sqlite:///{tmp_path / 'r.db'}")
    reg.init()
    res = reg.ingest([real_adapters / "diff_unetprefix_flower_sd14"]).results[0]
    files = reg.export(res.adapter_id, fmt, tmp_path / "out")
    back = read_adapter(files[0])
    orig = reg.load(res.adapter_id)
    assert back.modules.keys() == orig.modules.keys()
    for name, m in orig.modules.items():
        torch.testing.assert_close(back.modules[name].delta(), m.delta(), rtol=1e-5, atol=1e-6)


def test_first_reads_from_many_threads_see_every_reader(tmp_path: Path) -> None:
    """The readers register on first use; concurrent first reads must not see a partial set."""
    import subprocess
    import sys

    code = (
        "import torch, safetensors.torch, registry.formats.safe_io, registry.formats.detect  # as in a service\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from pathlib import Path\n"
        "from registry.formats import read_adapter\n"
        f"paths = [Path({str(SAMPLES)!r}) / n for n in ('shakespeare_gpt2', 'sql_helper_llama')] * 4\n"
        "with ThreadPoolExecutor(8) as ex:\n"
        "    print(sorted({a.format for a in ex.map(read_adapter, paths)}))\n"
    )
    for _ in range(3):  # a fresh interpreter each time: the race is in the first import
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.strip() == "['peft']"
