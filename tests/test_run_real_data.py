"""Slow: ``ebv-cl run`` on real data from $EBV_CL_DATA (the example configs, shortened), with resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import NO_DATA_REASON, data_root
from ebv_cl.run import load_config, run_config

REPO = Path(__file__).resolve().parents[1]
DATA = data_root()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(DATA is None, reason=NO_DATA_REASON),
]

SHORT = ["epochs=1", "seeds=[0]", "progress=false", "threads=1", "device=cpu", "bank.time_budget=2.0",
         "scenario.subsample.max_per_class_train=200", "scenario.subsample.max_per_class_test=100",
         *([f"data_root={DATA}"] if DATA else [])]


@pytest.mark.parametrize(
    "config, strategies, n_exp",
    [
        ("split-fashion-mnist.yaml", "[fc+replay, ebv+replay, fc+der]", 5),
        ("split-cifar10.yaml", "[fc+replay, ebv+der]", 5),
        ("emnist-longtail.yaml", "[ncm+replay, ebv+replay]", 6),
        ("omniglot-fscil.yaml", "[ebv+replay, tau_norm+replay]", 11),
    ],
)
def test_example_config_runs_on_real_data(tmp_path, config, strategies, n_exp):
    extra = [] if "omniglot" not in config else ["scenario.subsample.max_per_class_train=null"]
    cfg = load_config(REPO / "examples" / "configs" / config, overrides=[*SHORT, *extra, f"strategies={strategies}"])
    run_config(cfg, out_dir=tmp_path, log=lambda m: None)
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert len(runs) == len(cfg.strategies)
    for run in runs:
        assert len(run["accuracy_matrix"]) == n_exp and 0 <= run["final_accuracy"] <= 1
        assert run["avg_incremental_accuracy"] > 1.0 / sum(len(c) for c in run["classes_per_experience"])
