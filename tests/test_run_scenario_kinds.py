"""Every head under replay runs through the real runner on every scenario kind (tiny digits streams): few-shot
sessions and long-tailed streams produce well-formed results, and fixed heads keep a constant size."""

from __future__ import annotations

import json

import pytest

from ebv_cl.run import config_from_dict, run_config

HEADS = ["fc", "ncm", "tau_norm", "ebv", "hadamard", "angular"]

SCENARIOS = {
    "class_incremental": ({"n_experiences": 5}, 5),
    "few_shot": ({"base_classes": 4, "ways": 2, "shots": 5, "n_sessions": 3}, 4),
    "long_tailed": ({"imbalance_ratio": 10, "n_experiences": 5}, 5),
}


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_every_head_runs_on_every_scenario_kind(tmp_path, kind):
    options, n_experiences = SCENARIOS[kind]
    config = config_from_dict(
        {
            "name": f"kinds-{kind}",
            "scenario": {"dataset": "digits", "kind": kind, **options},
            "backbone": {"name": "mlp", "options": {"hidden_sizes": [32]}},
            "strategies": [f"{head}+replay" for head in HEADS],
            "seeds": [0],
            "epochs": 1,
            "batch_size": 32,
            "optimizer": "adam",
            "lr": 0.002,
            "buffer_size": 40,
            "bank": {"dim": 16, "time_budget": 1.0},
            "threads": 1,
            "progress": False,
        }
    )
    run_config(config, out_dir=tmp_path, log=lambda message: None)
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert sorted(run["head"] for run in runs) == sorted(HEADS)
    for run in runs:
        matrix = run["accuracy_matrix"]
        assert len(matrix) == n_experiences and len(run["trainable_head_params"]) == n_experiences
        assert all(0.0 <= matrix[i][j] <= 1.0 for i in range(n_experiences) for j in range(i + 1))
        assert 0.0 <= run["final_accuracy"] <= 1.0
        if run["head"] in ("ebv", "hadamard", "ncm"):
            assert len(set(run["trainable_head_params"])) == 1, run["strategy"]
        else:
            assert run["trainable_head_params"] == sorted(run["trainable_head_params"]), run["strategy"]
    # the heads learn something on the first experience (chance is at most 1/2 there)
    assert max(run["accuracy_matrix"][0][0] for run in runs) > 0.6
