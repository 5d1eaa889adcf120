"""Reliability of the command line and configs (issue 15, items 8, 11 and 12): reproducible banks, and every bad
input below is one ``ebv-cl: error:`` line (exit 2) naming the file or value, never a traceback."""

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
from ebv_cl.run import config_from_dict, run_config

from test_reliability_run import SMALL

_REPO = str(Path(__file__).resolve().parents[1])


def _quiet(message: str) -> None:
    pass


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


# ----------------------------------------------------------------------------------- 8. reproducible banks
def _bank_run(tmp_path, name, extra=()):
    config = config_from_dict({**SMALL, "strategies": ["ebv+naive"],
                               "bank": {"n": 40, "dim": 8, "method": "sparse", "time_budget": 0.3}},
                              overrides=list(extra))
    run_config(config, out_dir=tmp_path / name, log=_quiet)
    data = json.loads((tmp_path / name / "results.json").read_text())
    run = data["runs"][0]
    run.pop("wall_time_s")
    return data["bank"]["sha256"], run


@pytest.mark.slow
def test_a_time_budgeted_bank_is_reused_so_runs_repeat(tmp_path, monkeypatch):
    monkeypatch.setenv("EBV_CL_CACHE", str(tmp_path / "cache"))
    assert _bank_run(tmp_path, "a") == _bank_run(tmp_path, "b")


def test_a_step_budgeted_bank_is_the_same_without_any_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EBV_CL_CACHE", str(tmp_path / "cache1"))
    first = _bank_run(tmp_path, "a", ["bank.max_steps=30"])
    monkeypatch.setenv("EBV_CL_CACHE", str(tmp_path / "cache2"))
    assert _bank_run(tmp_path, "b", ["bank.max_steps=30"]) == first
    assert not (tmp_path / "cache1" / "banks").exists()


# ------------------------------------------------------------------------------ 11. remaining tracebacks
def _config(tmp_path, data=None) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data or SMALL))
    return str(path)


def test_out_that_is_a_file_or_under_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["run", _config(tmp_path), "--out", str(f)]) == 2
    assert "is a file, expected a folder" in _error_line(capsys)
    assert main(["run", _config(tmp_path), "--out", str(f / "sub")]) == 2
    assert "a parent of it is a file" in _error_line(capsys)


def test_a_strategy_name_over_255_characters_runs(tmp_path):
    config = config_from_dict({**SMALL, "strategies": [{"head": "fc", "method": "naive", "name": "n" * 300}]})
    run_config(config, out_dir=tmp_path, log=_quiet)
    assert json.loads((tmp_path / "results.json").read_text())["runs"][0]["strategy"] == "n" * 300


def test_yaml_nested_1000_deep(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 1000 + "]" * 1000 + "\n")
    assert main(["run", str(path)]) == 2
    assert "nests too deeply" in _error_line(capsys)


@pytest.mark.parametrize("payload, match", [
    ([1, 2], "is not an ebv-cl results file"),
    ({"format": 1, "runs": [{"seed": 0}]}, "runs\\[0\\] is not a run record"),
    ("truncated", "is not valid JSON"),
])
def test_malformed_results_json_on_resume_and_report(tmp_path, capsys, payload, match):
    out = tmp_path / "o"
    assert main(["run", _config(tmp_path), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    text = json.dumps(payload) if payload != "truncated" else (out / "results.json").read_text()[:40]
    (out / "results.json").write_text(text)
    assert main(["run", _config(tmp_path), "--out", str(out), "--resume"]) == 2
    line = _error_line(capsys)
    assert "results.json" in line and __import__("re").search(match, line)
    assert main(["report", str(out)]) == 2
    assert "results.json" in _error_line(capsys)


def test_bank_generate_device_seed_and_out_are_checked_first(tmp_path, capsys):
    base = ["bank", "generate", "--n", "4", "--dim", "4"]
    assert main([*base, "--device", "potato", "--out", str(tmp_path / "b.ebv")]) == 2
    assert "potato" in _error_line(capsys)
    if not __import__("torch").cuda.is_available():
        assert main([*base, "--device", "cuda", "--out", str(tmp_path / "b.ebv")]) == 2
        assert "CUDA is not available" in _error_line(capsys)
    assert main([*base, "--out", str(tmp_path)]) == 2
    assert "is a directory" in _error_line(capsys)
    with pytest.raises(SystemExit):
        main([*base, "--seed", "-1", "--out", str(tmp_path / "b.ebv")])
    assert "expected an integer >= 0" in capsys.readouterr().err
    assert main(["bank", "generate", "--n", str(10**9), "--dim", "512", "--out", str(tmp_path / "big.ebv")]) == 2
    line = _error_line(capsys)
    assert "2,048,000,000,000 bytes" in line and not (tmp_path / "big.ebv").exists()


def test_formula_stored_code_banks_are_not_refused_by_the_dense_size_check():
    from ebv_cl.validation import check_dense_bank_size

    check_dense_bank_size(10**7, 512, method="gold", limit_bytes=10**6)
    check_dense_bank_size(10**6, 512, method="auto", limit_bytes=10**6)  # auto picks a code bank (kasami) here
    with pytest.raises(ValueError, match="'sparse' stores its rows densely"):
        check_dense_bank_size(10**7, 512, method="sparse", limit_bytes=10**6)


def test_report_out_that_is_a_directory(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", _config(tmp_path), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--out", str(tmp_path)]) == 2
    assert "is a directory" in _error_line(capsys)


def test_a_declared_bank_size_that_cannot_fit_is_refused_before_generating(tmp_path, capsys):
    config = _config(tmp_path, {**SMALL, "strategies": ["ebv+naive"], "bank": {"n": 10**9, "dim": 512}})
    assert main(["run", config, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "bank.n/bank.dim = 1000000000 x 512" in _error_line(capsys)


# --------------------------------------------------------------------------------- 12. unclear messages
def test_config_that_is_a_directory_device_or_not_utf8(tmp_path, capsys):
    assert main(["run", str(tmp_path)]) == 2
    assert "is a directory" in _error_line(capsys)
    assert main(["run", "/dev/null"]) == 2
    assert "not a regular file" in _error_line(capsys)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert main(["run", str(bad)]) == 2
    line = _error_line(capsys)
    assert "latin1.yaml" in line and "not UTF-8" in line


def test_duplicate_yaml_keys_are_an_error(tmp_path, capsys):
    path = tmp_path / "dup.yaml"
    path.write_text("epochs: 1\nepochs: 2\n")
    assert main(["run", str(path)]) == 2
    assert "duplicate key 'epochs'" in _error_line(capsys)


@pytest.mark.slow
def test_sigterm_exits_143_with_a_message_and_resume_works(tmp_path):
    out = tmp_path / "o"
    config = _config(tmp_path, {**SMALL, "strategies": ["fc+naive", "ncm+naive", "tau_norm+naive"]})
    env = {**os.environ, "PYTHONPATH": _REPO}
    proc = subprocess.Popen([sys.executable, "-m", "ebv_cl", "run", config, "--out", str(out), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (out / "results.json").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before SIGTERM arrived")
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("ebv-cl: terminated (SIGTERM)")
    assert main(["run", config, "--out", str(out), "--no-progress", "--resume"]) == 0
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 3


def test_temporaries_and_checkpoints_of_finished_runs_are_cleaned_on_resume(tmp_path):
    from ebv_cl.run.checkpoints import checkpoint_path

    config = config_from_dict(SMALL)
    run_config(config, out_dir=tmp_path, log=_quiet)
    (tmp_path / ".results.json.abc.tmp").write_text("half")
    stale = checkpoint_path(tmp_path / "checkpoints", strategy="fc+naive", seed=0)
    stale.parent.mkdir(exist_ok=True)
    stale.write_bytes(b"left by a kill between writing results and deleting the checkpoint")
    run_config(config, out_dir=tmp_path, resume=True, log=_quiet)
    assert not list(tmp_path.glob(".*.tmp")) and not stale.exists()
