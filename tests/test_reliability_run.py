"""Reliability of ``ebv-cl run`` (issue 15): one owner per run folder, checkpoints that cannot be mixed up,
divergence recorded as a failure, write failures as one error line, failed starts that leave nothing behind."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from ebv_cl.cli import main
from ebv_cl.errors import CheckpointError, ConfigError, DivergenceError, RunFolderBusyError
from ebv_cl.run import config_from_dict, run_config
from ebv_cl.run.checkpoints import checkpoint_path, load_checkpoint, save_checkpoint
from ebv_cl.run.results import ResultsFolder

SMALL = {
    "name": "small",
    "scenario": {"dataset": "digits", "kind": "class_incremental", "n_experiences": 2},
    "backbone": {"name": "mlp", "options": {"hidden_sizes": [32]}},
    "strategies": ["fc+naive"],
    "seeds": [0],
    "epochs": 1,
    "batch_size": 64,
    "lr": 0.05,
    "buffer_size": 0,
    "bank": {"dim": 16, "time_budget": 0.2},
    "threads": 1,
    "progress": False,
}


def _quiet(message: str) -> None:
    pass


# ---------------------------------------------------------------------------------------- 1. one owner
def test_a_locked_folder_is_refused_and_released_on_close(tmp_path):
    first = ResultsFolder(tmp_path / "out", config_text="a: 1\n")
    first.start(resume=False)
    second = ResultsFolder(tmp_path / "out", config_text="a: 2\n")
    with pytest.raises(RunFolderBusyError, match=f"in use by another ebv-cl run \\(process {os.getpid()}\\)"):
        second.start(resume=False)
    first.close()
    second.start(resume=False)  # nothing finished yet: the folder holds no run, so it may be reused
    second.close()


def test_the_lock_is_released_when_its_process_dies(tmp_path):
    out = tmp_path / "out"
    code = ("import sys, time; from ebv_cl.run.results import ResultsFolder; "
            f"f = ResultsFolder({str(out)!r}, config_text='a: 1\\n'); f.start(resume=False); print('locked', flush=True); "
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(RunFolderBusyError, match=f"process {proc.pid}"):
        ResultsFolder(out, config_text="a: 1\n").start(resume=False)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    folder = ResultsFolder(out, config_text="a: 1\n")
    folder.start(resume=False)
    folder.close()


@pytest.mark.slow
def test_two_runs_into_one_folder_one_is_refused(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "ebv_cl", "run", str(config), "--out", str(out), "--no-progress"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stderr.close()
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    refused = next(err for rc, err in results if rc == 2)
    assert "in use by another ebv-cl run" in refused or "already holds a run" in refused
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["strategy"] for r in runs] == ["fc+naive"]


def test_default_folder_names_never_collide(tmp_path, monkeypatch):
    from ebv_cl.cli.run_cmd import _default_out

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt: "20260101-000000")
    names = {_default_out("x") for _ in range(3)}
    assert len(names) == 3 and all(p.is_dir() for p in names)
    assert sorted(p.name for p in names) == ["20260101-000000-x", "20260101-000000-x-2", "20260101-000000-x-3"]


# ------------------------------------------------------------------------------------- 2. checkpoint identity
def test_checkpoint_names_of_look_alike_strategies_differ_and_long_names_fit():
    a = checkpoint_path("c", strategy="fc+der", seed=0)
    b = checkpoint_path("c", strategy="fc der", seed=0)
    assert a != b
    assert len(checkpoint_path("c", strategy="x" * 400, seed=0).name) < 100


def test_a_checkpoint_of_another_strategy_is_refused_on_resume(tmp_path):
    model = torch.nn.Linear(2, 2)
    holder = type("Holder", (), {})()
    holder.model = model
    mine = {"strategy": "fc der", "seed": 0, "config_sha256": "c1"}
    path = tmp_path / "x.ckpt"
    save_checkpoint(path, strategy=holder, state={}, identity={**mine, "strategy": "fc+der"})
    with pytest.raises(CheckpointError, match="belongs to .*fc\\+der.*not to .*fc der"):
        load_checkpoint(path, expect=mine)
    save_checkpoint(path, strategy=holder, state={}, identity={**mine, "config_sha256": "c2"})
    with pytest.raises(CheckpointError, match="belongs to"):
        load_checkpoint(path, expect=mine)
    save_checkpoint(path, strategy=holder, state={"ok": 1}, identity=mine)
    assert load_checkpoint(path, expect=mine)["state"] == {"ok": 1}


def test_resume_refuses_a_checkpoint_written_for_another_strategy(tmp_path):
    """The issue's case: ``fc+der``'s checkpoint under ``fc der``'s file name is never continued silently."""
    config = config_from_dict({**SMALL, "strategies": [{"head": "fc", "method": "naive", "name": "fc der"}],
                               "scenario": {**SMALL["scenario"], "n_experiences": 5}})

    class Stop(Exception):
        pass

    def stop(message: str) -> None:
        if "experience 2/5" in message:
            raise Stop

    with pytest.raises(Stop):
        run_config(config, out_dir=tmp_path, log=stop)
    ckpt = checkpoint_path(tmp_path / "checkpoints", strategy="fc der", seed=0)
    payload = torch.load(ckpt, weights_only=False)
    payload["identity"]["strategy"] = "fc+der"
    torch.save(payload, ckpt)
    with pytest.raises(CheckpointError, match="belongs to"):
        run_config(config, out_dir=tmp_path, resume=True, log=_quiet)


# ------------------------------------------------------------------------------------------- 3. divergence
def test_divergence_is_recorded_as_a_failure_and_the_others_go_on(tmp_path):
    config = config_from_dict({**SMALL, "strategies": [{"head": "fc", "method": "naive", "lr": 1e9, "name": "hot"},
                                                        "fc+naive"], "momentum": 0.0})
    logs: list[str] = []
    folder = run_config(config, out_dir=tmp_path, log=logs.append)
    runs = {r["strategy"]: r for r in json.loads((tmp_path / "results.json").read_text())["runs"]}
    assert "diverged" in runs["hot"]["failed"] and "final_accuracy" not in runs["hot"]
    failed = [r for r in folder.runs if r.get("failed")]
    ok = [r for r in folder.runs if not r.get("failed")]
    assert len(failed) == 1 and "final_accuracy" not in failed[0] and "diverged" in failed[0]["failed"]
    assert len(ok) == 1 and ok[0]["final_accuracy"] is not None and ok[0]["accuracy_matrix"][0][0] > 0.3
    md = (tmp_path / "results.md").read_text()
    assert "## Failed runs (no figures)" in md and "diverged" in md
    assert any("failed:" in m for m in logs)


def test_divergence_makes_the_cli_exit_1_with_a_message(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "lr": 1e9, "momentum": 0.0}))
    assert main(["run", str(config), "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    assert "ebv-cl: error: fc+naive seed 0 failed" in capsys.readouterr().err


def test_check_finite_catches_nan_parameters_and_loss():
    from ebv_cl.run.runner import _check_finite

    model = torch.nn.Linear(2, 2)
    _check_finite(object(), model, where="w")
    holder = type("H", (), {"loss": torch.tensor(float("nan"))})()
    with pytest.raises(DivergenceError, match="loss is nan"):
        _check_finite(holder, model, where="w")
    with torch.no_grad():
        model.weight[0, 0] = math.inf
    with pytest.raises(DivergenceError, match="parameter 'weight'"):
        _check_finite(object(), model, where="w")


@pytest.mark.parametrize("override", ["lr=.inf", "lr=.nan", "momentum=2", "weight_decay=.inf", "seeds=[-1]",
                                      "seeds=[18446744073709551616]"])
def test_non_finite_or_out_of_range_numbers_fail_validation(override):
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        config_from_dict(SMALL, overrides=[override])


# ------------------------------------------------------------------------------------------ 5. write failures
def test_a_failed_results_write_is_one_error_and_resume_works_after(tmp_path, monkeypatch, capsys):
    import ebv_cl.run.results as results

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "strategies": ["fc+naive", "ncm+naive"]}))
    out = tmp_path / "o"
    real = results.atomic_write_json
    calls = {"n": 0}

    def full(path, obj):
        calls["n"] += 1
        if calls["n"] == 2:  # the first record is written, the second hits a full disk
            raise OSError(28, "No space left on device")
        return real(path, obj)

    monkeypatch.setattr(results, "atomic_write_json", full)
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ebv-cl: error: cannot write") and "results.json" in err[-1]
    assert "No space left on device" in err[-1]
    assert [r["strategy"] for r in json.loads((out / "results.json").read_text())["runs"]] == ["fc+naive"]
    monkeypatch.setattr(results, "atomic_write_json", real)
    assert main(["run", str(config), "--out", str(out), "--no-progress", "--resume"]) == 0
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 2


def test_a_checkpoint_write_failure_from_torch_is_one_error(tmp_path, monkeypatch, capsys):
    import ebv_cl.run.runner as runner

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:595] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(runner, "save_checkpoint", full)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    assert main(["run", str(config), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("ebv-cl: error: cannot write the checkpoint") and "PytorchStreamWriter" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_folder_is_one_error(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    try:
        assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 2
    finally:
        out.chmod(0o700)
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("ebv-cl: error:")


# ---------------------------------------------------------------------------------- 6. failed starts
@pytest.mark.parametrize(
    "bad",
    [
        ["device=cuda:7"] if not torch.cuda.is_available() else ["device=potato"],
        ["bank.n=3", "strategies=[ebv+naive]"],
        ["scenario.dataset=fashion_mnist", "data_root=/nonexistent/ebv"],
        ["strategies=[{head: ebv, method: naive, head_options: {temperature: 0}}]"],
        ["scenario.classes_per_experience=[3, 3]"],
        ["bank.method=nosuch", "strategies=[ebv+naive]"],
    ],
    ids=["device", "bank-too-small", "data-root", "temperature-0", "classes-per-experience", "bank-method"],
)
def test_a_failed_start_does_not_lock_the_folder(tmp_path, capsys, bad):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "o"
    assert main(["run", str(config), *bad, "--out", str(out), "--no-progress"]) == 2
    assert "ebv-cl: error:" in capsys.readouterr().err
    assert main(["run", str(config), "--out", str(out), "--no-progress"]) == 0  # the fixed command
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 1


def test_jobs_on_an_executor_record_divergence_and_release_the_folder(tmp_path):
    from ebv_cl.run.executors import InProcessExecutor, run_jobs

    config = config_from_dict({**SMALL, "strategies": [{"head": "fc", "method": "naive", "lr": 1e9, "name": "hot"},
                                                        "fc+naive"], "momentum": 0.0})
    folder = run_jobs(config, out_dir=tmp_path, executor=InProcessExecutor(log=_quiet), log=_quiet, progress=False)
    runs = {r["strategy"]: r for r in folder.runs}
    assert "diverged" in runs["hot"]["failed"] and runs["fc+naive"]["final_accuracy"] is not None
    again = ResultsFolder(tmp_path, config_text="x: 1\n")  # the lock was released: only "holds a run" is left
    with pytest.raises(ConfigError, match="already holds a run"):
        again.start(resume=False)
