"""``torchrun --nproc_per_node=2 -m ebv_cl run``: every job trained with DistributedDataParallel (gloo on the
CPU); the ranks agree record for record, and the accuracy stays within 3 points of the single-process run with
the same global batch. Strategies that cannot train data-parallel are refused with the reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ebv_cl.cli import main
from ebv_cl.errors import ConfigError
from ebv_cl.run import config_from_dict, run_config
from ebv_cl.run.data_parallel import check_data_parallel, world_size

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {
    "name": "ddp",
    "scenario": {"dataset": "digits", "kind": "class_incremental", "n_experiences": 2},
    "backbone": {"name": "mlp", "options": {"hidden_sizes": [64]}},
    # The MLP projection (the default from 200 classes on) has batch norm, whose running statistics the ranks
    # must share: pinned here, since these 10 classes would get the linear head.
    "strategies": ["fc+replay", {"head": "ebv", "method": "replay", "head_options": {"projection": "mlp"}}],
    "seeds": [0],
    "epochs": 4,
    "batch_size": 16,  # per process: 2 x 16 = the single-process run's 32
    "lr": 0.02,
    "buffer_size": 50,
    "bank": {"dim": 16, "time_budget": 1.0},
    "threads": 1,
    "progress": False,
}
TOLERANCE = 0.03  # measured: the two runs differed by at most 1.1 points on this config


def _figures(path: Path) -> list[dict]:
    runs = json.loads((path / "results.json").read_text())["runs"]
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in runs]


@pytest.mark.parametrize(("strategy", "reason"), [
    ("fc+der", "method 'der': Avalanche 0.6's DER template"),
    ("ebv+lwf", "method 'lwf': Avalanche 0.6's LwFPlugin is not marked supports_distributed"),
    ("ncm+replay", "head 'ncm': the NCM head's class means"),
])
def test_unsupported_strategies_are_refused_with_the_reason(strategy, reason):
    config = config_from_dict({**CONFIG, "strategies": ["fc+naive", strategy]})
    with pytest.raises(ConfigError, match=re.escape(f"cannot train data-parallel under torchrun yet: {strategy}: {reason}")):
        check_data_parallel(config)
    check_data_parallel(config_from_dict(CONFIG))  # naive and replay with fc and ebv are fine


def test_replay_with_its_balanced_fine_tune_is_refused_but_plain_replay_and_logit_adjustment_are_not():
    tuned = {"head": "ebv", "method": "replay", "method_options": {"finetune_epochs": 1}}
    config = config_from_dict({**CONFIG, "strategies": [tuned]})
    with pytest.raises(ConfigError, match=r"ebv\+replay: method 'replay': its balanced fine-tune \(finetune_epochs > 0\)"):
        check_data_parallel(config)
    adjusted = {"head": "ebv", "method": "replay", "method_options": {"logit_adjustment": 1.0}}
    check_data_parallel(config_from_dict({**CONFIG, "strategies": ["fc+replay", adjusted]}))


def test_world_size_reads_torchrun_s_environment(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world_size() == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert world_size() == 2
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE = 'two'"):
        world_size()


def test_workers_under_torchrun_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    assert main(["run", str(config), "--workers", "2", "--out", str(tmp_path / "o")]) == 2
    assert "under torchrun each job already trains data-parallel" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_agree_and_match_the_single_process_run(tmp_path):
    config_file = tmp_path / "ddp.yaml"
    config_file.write_text(yaml.safe_dump(CONFIG))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
           "-m", "ebv_cl", "run", str(config_file), "--out", str(tmp_path / "ddp"), "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "not compatible" not in done.stderr  # every plugin is marked supports_distributed
    rank0, rank1 = _figures(tmp_path / "ddp"), _figures(tmp_path / "ddp" / "ranks" / "1")
    assert rank0 == rank1  # every rank ends with the same model, so the same figures
    single = run_config(config_from_dict({**CONFIG, "batch_size": 32}), out_dir=tmp_path / "single",
                        log=lambda m: None)
    for ddp, one in zip(rank0, single.runs):
        assert ddp["strategy"] == one["strategy"]
        for a, b in zip(ddp["seen_accuracy"], one["seen_accuracy"]):
            assert abs(a - b) <= TOLERANCE, (ddp["strategy"], ddp["seen_accuracy"], one["seen_accuracy"])
