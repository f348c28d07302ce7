"""The ``loradex`` CLI end to end on the bundled samples (in-process and as a console script)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ui.cli import main

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "adapters"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_home(tmp_path: Path, db_url: str) -> list[str]:
    return ["--home", str(tmp_path / "home"), "--db", db_url]


def test_ingest_list_show_export_remove(capsys, cli_home: list[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, *cli_home, "ingest", str(SAMPLES), "--json", "-q")
    assert code == 0
    report = json.loads(out)
    assert report["ingested"] == 6 and report["refused"] == 0
    code, out, _ = run(capsys, *cli_home, "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert {r["family"] for r in rows.values()} == {"sd1", "sdxl", "sd2", "flux", "gpt2", "llama"}
    water = rows["watercolor_sd15"]
    assert water["format"] == "kohya" and water["ranks"] == [4] and water["module_count"] == 6
    assert "watercolor" in (water["description"] or "").lower()
    code, out, _ = run(capsys, *cli_home, "list", "--json", "--family", "gpt2")
    assert [r["name"] for r in json.loads(out)] == ["Shakespeare GPT-2"]  # the README title wins over the folder name
    code, out, _ = run(capsys, *cli_home, "list", "--json", "--tag", "style")
    assert {r["name"] for r in json.loads(out)} >= {"watercolor_sd15", "Pixel Art XL"}
    code, out, _ = run(capsys, *cli_home, "show", str(water["id"]), "--json")
    shown = json.loads(out)
    assert "watercolor" in shown["trigger_words"] and shown["sha256"] == water["sha256"]
    code, out, _ = run(capsys, *cli_home, "show", water["sha256"][:10])
    assert code == 0 and "watercolor_sd15" in out
    code, out, _ = run(
        capsys, *cli_home, "export", str(water["id"]), "--format", "diffusers", "--out", str(tmp_path / "x")
    )
    assert code == 0 and Path(out.split()[0]).is_file()
    # Duplicates are reported, not re-added.
    code, out, _ = run(capsys, *cli_home, "ingest", str(SAMPLES / "watercolor_sd15.safetensors"), "--json", "-q")
    dup = json.loads(out)
    assert dup["duplicate"] == 1 and dup["results"][0]["adapter_id"] == water["id"]
    code, out, _ = run(capsys, *cli_home, "remove", str(water["id"]))
    assert code == 0
    code, _, err = run(capsys, *cli_home, "show", str(water["id"]))
    assert code == 2 and "no adapter" in err


def test_show_says_when_the_stored_files_are_gone(capsys, cli_home: list[str], tmp_path: Path) -> None:
    """A row whose blob was lost (disk fault, hand-deleted) is not shown as healthy: ``show`` names
    the missing file and exits 2; ingesting the same file again restores it."""
    src = SAMPLES / "watercolor_sd15.safetensors"
    code, out, _ = run(capsys, *cli_home, "ingest", str(src), "--json", "-q")
    aid = json.loads(out)["results"][0]["adapter_id"]
    code, out, err = run(capsys, *cli_home, "show", str(aid), "--json")
    assert code == 0 and json.loads(out)["missing_files"] == [] and err == ""
    blobs = [p for p in (tmp_path / "home" / "blobs").rglob("*.safetensors")]
    assert len(blobs) == 1
    blobs[0].unlink()
    code, out, err = run(capsys, *cli_home, "show", str(aid), "--json")
    assert code == 2 and json.loads(out)["missing_files"] == [blobs[0].name]
    assert "missing" in err and blobs[0].name in err and "\n" not in err.strip()
    code, out, err = run(capsys, *cli_home, "show", str(aid))
    assert code == 2 and "watercolor_sd15" in out
    run(capsys, *cli_home, "ingest", str(src), "-q")
    code, out, _ = run(capsys, *cli_home, "show", str(aid), "--json")
    assert code == 0 and json.loads(out)["missing_files"] == []


def test_ingest_of_a_folder_without_adapters_says_so(capsys, cli_home: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "readme.md").write_text("not an adapter")
    code, out, err = run(capsys, *cli_home, "ingest", str(folder), "-q")
    assert code == 1 and "no adapter files" in err and "readme.md" in err and "adapter_config.json" in err
    code, out, err = run(capsys, *cli_home, "ingest", str(tmp_path / "empty_dir_that_exists_not"), "-q")
    assert code == 1 and "no such file" in out  # a missing path stays a refused row


def test_refused_exit_status_and_table(capsys, cli_home: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    shutil.copy(SAMPLES / "neon_glow_flux.safetensors", tmp_path / "ok.safetensors")
    code, out, _ = run(capsys, *cli_home, "ingest", str(bad), str(tmp_path / "ok.safetensors"), "-q")
    assert code == 1
    assert "refused" in out and "broken.safetensors" in out and "ingested 1, duplicate 0, refused 1" in out


def test_console_script_json(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("loradex")
    assert exe.exists(), "console script not installed"
    home = tmp_path / "h"
    r = subprocess.run([str(exe), "--home", str(home), "ingest", str(SAMPLES / "shakespeare_gpt2"), "--json"],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ingested"] == 1
    assert (home / "loradex.db").is_file()


def test_bench_runs_the_harness_in_its_own_process() -> None:
    """``loradex bench`` starts ``python -m benchmarks.run``; the CLI itself never imports the benchmarks."""
    code = ("import sys; from ui.cli import main; rc = main(['bench', 'no-such-suite', '--repeats', '1']); "
            "print(rc, any(m.startswith('benchmarks') for m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    rc, imported = out.stdout.split()[-2:]
    assert rc != "0" and imported == "False"
    assert "no-such-suite" in out.stderr  # the harness's own refusal, from the child process
