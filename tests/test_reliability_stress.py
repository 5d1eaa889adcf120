"""Stress (slow): ``ebv-cl run`` of the embedded digits default with tiny settings under 20 random SIGKILLs, two
concurrent runs per folder, a full disk and a read-only folder. After every event, every record in results.json
must equal the record of an uninterrupted run (no finished record lost or wrong), and the run must end with
figures equal to the uninterrupted run's.

The full disk and the read-only folder are a real tmpfs (mounted here when the test runs as root and may
mount; otherwise those two parts skip, and ``test_reliability_run.py`` covers them by simulating ENOSPC).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

_REPO = str(Path(__file__).resolve().parents[1])
TINY = ["epochs=1", "seeds=[0]", "bank.time_budget=0.5", "buffer_size=50"]  # one seed: 6 records per run


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": _REPO, "EBV_CL_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}


def _cmd(out: Path, *, resume: bool) -> list[str]:
    return [sys.executable, "-m", "ebv_cl", "run", *TINY, "--out", str(out), "--no-progress",
            *(["--resume"] if resume else [])]


def _records(out: Path) -> dict[tuple[str, int], dict]:
    path = out / "results.json"
    if not path.exists():
        return {}
    runs = json.loads(path.read_text())["runs"]
    out_records = {}
    for run in runs:
        run = dict(run)
        run.pop("wall_time_s", None)
        out_records[(run["strategy"], run["seed"])] = run
    return out_records


def _check_subset(out: Path, reference: dict) -> int:
    """Every record present equals the reference one; returns how many there are."""
    records = _records(out)
    for key, record in records.items():
        assert record == reference[key], f"record {key} differs from the uninterrupted run"
    return len(records)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp("stress")
    cache = base / "cache"
    out = base / "reference"
    done = subprocess.run(_cmd(out, resume=False), env=_env(cache), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    records = _records(out)
    assert len(records) == 6
    return base, cache, records


def test_twenty_random_sigkills_lose_nothing(reference):
    base, cache, ref = reference
    out = base / "killed"
    rng = random.Random(15)
    kills = 0
    while kills < 20:
        resume = (out / "resolved_config.yaml").exists()
        proc = subprocess.Popen(_cmd(out, resume=resume), env=_env(cache), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.5, 12.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, -signal.SIGKILL), err[-3000:]
        _check_subset(out, ref)
        if proc.returncode == 0:  # finished before the kill: start over in a fresh folder
            assert _records(out) == ref
            shutil.rmtree(out)
    final = subprocess.run(_cmd(out, resume=(out / "resolved_config.yaml").exists()), env=_env(cache),
                           capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stderr[-3000:]
    assert _records(out) == ref
    assert not list(out.rglob("*.tmp")) and not list((out / "checkpoints").glob("*.ckpt"))


def test_two_concurrent_runs_per_folder(reference):
    base, cache, ref = reference
    for trial in range(2):
        out = base / f"concurrent{trial}"
        procs = [subprocess.Popen(_cmd(out, resume=False), env=_env(cache), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(timeout=900), p.communicate()[1]) for p in procs]
        assert sorted(rc for rc, _ in results) == [0, 2], results
        loser = next(err for rc, err in results if rc == 2)
        assert "Traceback" not in loser and loser.strip().splitlines()[-1].startswith("ebv-cl: error:")
        assert _records(out) == ref
    # no --out: two runs started in the same second get different folders
    work = base / "cwd"
    work.mkdir()
    cmd = [sys.executable, "-m", "ebv_cl", "run", *TINY, "strategies=[fc+replay]", "--no-progress"]
    procs = [subprocess.Popen(cmd, cwd=work, env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    assert [p.wait(timeout=900) for p in procs] == [0, 0], [p.communicate()[1] for p in procs]
    for p in procs:
        p.communicate()
    folders = sorted((work / "runs").iterdir())
    assert len(folders) == 2 and all(len(_records(f)) == 1 for f in folders)


def _mount(path: Path, options: str) -> bool:
    path.mkdir(exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_disk_then_a_read_only_folder_then_space_again(reference):
    base, cache, ref = reference
    mnt = base / "tmpfs"
    if os.geteuid() != 0 or not _mount(mnt, "size=400k"):
        pytest.skip("cannot mount a tmpfs here (needs root); ENOSPC is simulated in test_reliability_run.py")
    try:
        out = mnt / "run"
        full = subprocess.run(_cmd(out, resume=False), env=_env(cache), capture_output=True, text=True, timeout=900)
        assert full.returncode == 2, full.stderr[-3000:]
        line = full.stderr.strip().splitlines()[-1]
        assert "Traceback" not in full.stderr and line.startswith("ebv-cl: error: cannot write")
        assert "No space left on device" in line, line
        finished = _check_subset(out, ref)
        assert finished < 6

        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        ro = subprocess.run(_cmd(out, resume=True), env=_env(cache), capture_output=True, text=True, timeout=900)
        assert ro.returncode == 2 and "Traceback" not in ro.stderr, ro.stderr[-3000:]
        assert ro.stderr.strip().splitlines()[-1].startswith("ebv-cl: error:")
        assert "Read-only file system" in ro.stderr
        assert _check_subset(out, ref) == finished

        subprocess.run(["mount", "-o", "remount,rw,size=64m", str(mnt)], check=True)
        again = subprocess.run(_cmd(out, resume=(out / "resolved_config.yaml").exists()), env=_env(cache),
                               capture_output=True, text=True, timeout=900)
        assert again.returncode == 0, again.stderr[-3000:]
        assert _records(out) == ref
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
