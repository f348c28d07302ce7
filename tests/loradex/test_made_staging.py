"""A merged / generated adapter is staged in a folder its writer flocks: a kill -9 mid-write leaves
the folder, which the next job runner (server start, worker start) removes; a live one is kept."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from loradex.job_store import clean_staging, staging_folder
from loradex.service import LocalService

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import sys, time
from pathlib import Path
from loradex.job_store import staging_folder
with staging_folder(Path(sys.argv[1]), ".merged-") as d:
    (d / "adapter.safetensors").write_bytes(b"x" * 100)
    print(d, flush=True)
    time.sleep(600)
"""


def _killed_mid_write(parent: Path) -> Path:
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(parent)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert p.stdout is not None
    folder = Path(p.stdout.readline().strip())
    assert folder.is_dir()
    p.send_signal(signal.SIGKILL)
    p.wait()
    return folder


def test_a_killed_writers_staging_folder_is_removed_a_live_one_kept(tmp_path: Path) -> None:
    parent = tmp_path / "staging"
    dead = _killed_mid_write(parent)
    assert dead.is_dir()  # the kill left it
    with staging_folder(parent, ".generated-") as live:
        assert clean_staging(parent) == [dead]
        assert live.is_dir() and not dead.exists()
    assert not live.exists() and list(parent.iterdir()) == []


def test_the_job_runner_cleans_staging_at_start(tmp_path: Path) -> None:
    svc = LocalService.open(tmp_path / "home", embed=False)
    dead = _killed_mid_write(svc.home / "staging")
    svc.job_runner()
    assert not dead.exists()
    svc.close()
