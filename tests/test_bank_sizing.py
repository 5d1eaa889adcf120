"""The bank dimension chosen when none is given: one dimension per class up to a cap, never below the features."""

from __future__ import annotations

import json

import pytest
import yaml

from ebv_cl.bank import DEFAULT_DIM_CAP, default_bank_dim
from ebv_cl.cli import main


@pytest.mark.parametrize(
    "n, feature_dim, expected",
    [
        (10, 128, 128),  # few classes: the feature size (the bank is orthogonal anyway)
        (964, 128, 964),  # Omniglot's background characters: one dimension per class
        (DEFAULT_DIM_CAP, 128, DEFAULT_DIM_CAP),
        (1623, 128, DEFAULT_DIM_CAP),  # beyond the cap: packed into the cap
        (10**6, 512, DEFAULT_DIM_CAP),
        (10**6, 2048, 2048),  # never below the features
    ],
)
def test_default_dim_is_one_per_class_up_to_the_cap(n, feature_dim, expected):
    assert default_bank_dim(n, feature_dim) == expected


def test_the_cap_can_be_moved():
    assert default_bank_dim(5000, 128, cap=4096) == 4096
    assert default_bank_dim(300, 128, cap=256) == 256


@pytest.mark.parametrize("arg, value", [("n", 0), ("feature_dim", -1), ("cap", 2.5), ("n", True)])
def test_bad_sizes_name_the_argument(arg, value):
    kwargs = {"n": 10, "feature_dim": 8, "cap": 1024, arg: value}
    with pytest.raises(ValueError, match=rf"{arg} must be a positive int, got {value!r}"):
        default_bank_dim(kwargs.pop("n"), kwargs.pop("feature_dim"), **kwargs)


def test_a_run_without_bank_dim_gets_one_dimension_per_class(tmp_path):
    """Digits has 10 classes; an MLP ending in 6 features gets a 10-dimensional (orthogonal) bank."""
    config = {"scenario": "digits", "strategies": ["ebv+naive"], "epochs": 1, "seeds": [0],
              "backbone": {"name": "mlp", "options": {"hidden_sizes": [6]}}, "bank": {"time_budget": 0.2}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    bank = json.loads((tmp_path / "out" / "results.json").read_text())["bank"]
    assert (bank["n"], bank["dim"]) == (10, 10)
    assert bank["coherence"] < 1e-5
