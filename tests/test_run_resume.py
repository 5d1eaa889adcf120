"""End to end: the default digits run writes every result file; a run killed with SIGKILL resumes to the same
figures as an uninterrupted run; a crash mid-run loses only the run in progress."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ebv_cl.cli import main
from ebv_cl.run import config_from_dict, default_config, load_config, run_config
from ebv_cl.run.checkpoints import CheckpointError, load_checkpoint

TINY = {
    "name": "tiny",
    "scenario": {"dataset": "digits", "kind": "class_incremental", "n_experiences": 5},
    "backbone": {"name": "mlp", "options": {"hidden_sizes": [64]}},
    "strategies": ["fc+der", "ebv+replay"],
    "seeds": [0],
    "epochs": 1,
    "batch_size": 32,
    "lr": 0.05,
    "buffer_size": 50,
    "bank": {"dim": 16, "time_budget": 1.0},
    "threads": 1,
    "progress": False,
}


def _figures(path: Path) -> list[dict]:
    runs = json.loads((path / "results.json").read_text())["runs"]
    for run in runs:
        run.pop("wall_time_s")
    return runs


def test_default_run_writes_every_result_file(tmp_path):
    config = config_from_dict(default_config(), overrides=["epochs=1", "seeds=[0]", "progress=false"])
    assert {s.head for s in config.strategies} == {"fc", "ncm", "tau_norm", "ebv", "hadamard", "angular"}
    run_config(config, out_dir=tmp_path, log=lambda m: None)
    assert {p.name for p in tmp_path.iterdir()} >= {"resolved_config.yaml", "results.json", "results.md", "accuracy.png"}
    assert not list((tmp_path / "checkpoints").glob("*.ckpt"))  # finished runs leave no checkpoint
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["runs"]) == 6
    for run in data["runs"]:
        assert {"strategy", "head", "method", "seed", "accuracy_matrix", "avg_incremental_accuracy", "final_accuracy",
                "forgetting", "trainable_head_params", "wall_time_s"} <= set(run)
        m = run["accuracy_matrix"]
        assert len(m) == 5 and all(m[i][j] is None for i in range(5) for j in range(i + 1, 5))
        assert all(0.0 <= m[i][j] <= 1.0 for i in range(5) for j in range(i + 1))
        assert len(run["trainable_head_params"]) == 5 and 0 <= run["final_accuracy"] <= 1
    ebv = next(r for r in data["runs"] if r["head"] == "ebv")
    assert len(set(ebv["trainable_head_params"])) == 1  # the EBV head does not grow
    assert (tmp_path / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert load_config(tmp_path / "resolved_config.yaml") == config  # the resolved config repeats the run
    assert "| ebv+replay | ebv | replay | 1 |" in (tmp_path / "results.md").read_text()
    assert data["bank"]["n"] == 10 and len(data["bank"]["sha256"]) == 64 and data["environment"]["threads"] == 1


class _Crash(Exception):
    pass


def test_crash_loses_only_the_running_strategy_and_resume_matches(tmp_path):
    config = config_from_dict(TINY)
    run_config(config, out_dir=tmp_path / "full", log=lambda m: None)

    def crash(message: str) -> None:
        if message.startswith("[ebv+replay seed 0] experience 3/5"):
            raise _Crash(message)

    with pytest.raises(_Crash):
        run_config(config, out_dir=tmp_path / "cut", log=crash)
    assert [r["strategy"] for r in _figures(tmp_path / "cut")] == ["fc+der"]  # written as soon as it finished
    ckpt = tmp_path / "cut" / "checkpoints" / "ebv_replay-seed0.ckpt"
    assert ckpt.exists()
    # The replay buffer refers to the stream's training set by name (ebv_cl.data.sharing), not by copy: read
    # without that set, the checkpoint says what it misses.
    with pytest.raises(CheckpointError, match="refers to the 'train' dataset of its run"):
        load_checkpoint(ckpt)
    logs: list[str] = []
    run_config(config, out_dir=tmp_path / "cut", resume=True, log=logs.append)
    assert any("already finished, skipped" in m for m in logs)
    assert any("resuming after experience 2" in m for m in logs)
    assert _figures(tmp_path / "cut") == _figures(tmp_path / "full")


def test_sigkill_then_resume_gives_the_same_results(tmp_path, capsys):
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "ebv_cl", "run", str(config_path), "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    target = out / "checkpoints" / "ebv_replay-seed0.ckpt"  # the second strategy is mid-stream
    deadline = time.monotonic() + 240
    while not target.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.exists(), f"no checkpoint appeared; stderr: {proc.stderr.read()[-2000:]}"
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert [r["strategy"] for r in _figures(out)] == ["fc+der"]

    assert main(["run", str(config_path), "--out", str(out), "--resume", "--no-progress"]) == 0  # CLI, in-process
    assert "[ebv+replay seed 0] resuming after experience" in capsys.readouterr().err
    run_config(load_config(config_path), out_dir=tmp_path / "full", log=lambda m: None)
    assert _figures(out) == _figures(tmp_path / "full")


def test_a_checkpoint_that_cannot_be_written_does_not_stop_the_run(tmp_path, monkeypatch):
    import pickle

    import ebv_cl.run.runner as runner

    def refuse(*args, **kwargs):
        raise pickle.PicklingError("cannot pickle a test object")

    monkeypatch.setattr(runner, "save_checkpoint", refuse)
    logs: list[str] = []
    config = config_from_dict({**TINY, "strategies": ["fc+naive"]})
    run_config(config, out_dir=tmp_path, log=logs.append)
    assert any("checkpoint not saved (PicklingError: cannot pickle a test object)" in m for m in logs)
    assert len(_figures(tmp_path)) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy",
    ["ncm+replay", "tau_norm+replay", "fc+icarl", "ebv+icarl", "ebv+lwf", "ebv+gdumb", "hadamard+der", "angular+replay"],
)
def test_every_method_resumes_to_the_same_figures(tmp_path, strategy):
    config = config_from_dict({**TINY, "strategies": [strategy]})
    run_config(config, out_dir=tmp_path / "full", log=lambda m: None)

    def crash(message: str) -> None:
        if message.startswith(f"[{strategy} seed 0] experience 3/5"):
            raise _Crash(message)

    with pytest.raises(_Crash):
        run_config(config, out_dir=tmp_path / "cut", log=crash)
    run_config(config, out_dir=tmp_path / "cut", resume=True, log=lambda m: None)
    assert _figures(tmp_path / "cut") == _figures(tmp_path / "full")
