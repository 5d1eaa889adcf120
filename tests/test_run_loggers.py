"""Avalanche's loggers selected in the run config: files appear, figures do not change, missing packages are named."""

from __future__ import annotations

import json

import pytest

from ebv_cl.errors import ConfigError
from ebv_cl.run import config_from_dict, run_config

_BASE = {"scenario": {"include": "digits", "n_experiences": 2}, "strategies": ["fc+replay"], "seeds": [0],
         "epochs": 1, "buffer_size": 50, "progress": False, "threads": 1}


def _runs(folder):
    runs = json.loads((folder / "results.json").read_text())["runs"]
    for r in runs:
        r.pop("wall_time_s")
    return runs


def test_loggers_write_their_files_and_leave_the_figures_alone(tmp_path):
    pytest.importorskip("tensorboard")
    plain = config_from_dict(_BASE)
    logged = config_from_dict({**_BASE, "loggers": ["text", "csv", "tensorboard"]})
    run_config(plain, out_dir=tmp_path / "plain", log=lambda m: None)
    messages: list[str] = []
    run_config(logged, out_dir=tmp_path / "logged", log=messages.append)
    assert not [m for m in messages if "checkpoint not saved" in m]  # loggers are detached while checkpointing
    logs = tmp_path / "logged" / "logs" / "fc+replay-seed0"
    text = (logs / "log.txt").read_text(encoding="utf-8")
    assert "Top1_Acc_Stream/eval_phase/test_stream" in text
    assert (logs / "csv" / "eval_results.csv").stat().st_size > 0
    assert list((logs / "tensorboard").glob("events.out.tfevents.*"))
    assert _runs(tmp_path / "logged") == _runs(tmp_path / "plain")


def test_unknown_logger_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown logger 'tensorbord'; expected some of: text, csv, tensorboard"):
        config_from_dict({**_BASE, "loggers": ["tensorbord"]})


@pytest.mark.parametrize("name, install", [("tensorboard", "pip install tensorboard"), ("wandb", "pip install wandb")])
def test_logger_without_its_package_names_what_to_install(monkeypatch, name, install):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda mod, *a: None if mod == name else real(mod, *a))
    with pytest.raises(ConfigError, match=rf"logger '{name}' needs the {name} package.*{install}"):
        config_from_dict({**_BASE, "loggers": [name]})
