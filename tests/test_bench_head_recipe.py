"""``benchmarks/bench_head_recipe.py``: recipe names with optimiser and bank knobs, and one real run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_head_recipe.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_head_recipe", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_knobs_parse(bench):
    assert bench._split_recipe("fc") == ("fc", {})
    assert bench._split_recipe("ebv_mlp1024_bn@d1024@lr0.1@wd1e-4") == (
        "ebv_mlp1024_bn", {"bank_dim": 1024.0, "head_lr_scale": 0.1, "head_weight_decay": 1e-4})


def test_unknown_knobs_and_recipes_are_refused(bench, tmp_path):
    with pytest.raises(SystemExit, match=r"unknown knob 'x3' in 'fc@x3'; expected lr<x>, wd<x> or d<n>"):
        bench._split_recipe("fc@x3")
    with pytest.raises(SystemExit, match=r"--recipes: unknown \['nope'\]"):
        bench.main(["--recipes", "nope", "--out", str(tmp_path)])


@pytest.mark.slow
def test_one_emnist_epoch_with_a_wider_bank_and_a_slower_head(bench, real_data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the bench caches its banks there
    args = ["--dataset", "emnist", "--data-root", str(real_data_root), "--recipes", "ebv_t07@d256@lr0.5,fc",
            "--epochs", "1", "--emnist-train", "600", "--bank-seconds", "1", "--out", str(tmp_path / "out")]
    assert bench.main(args) == 0
    run = json.loads((tmp_path / "out" / "emnist-e1-ebv_t07@d256@lr0.5-s0.json").read_text())
    assert run["bank_dim"] == 256 and run["optimiser"] == {"bank_dim": 256.0, "head_lr_scale": 0.5}
    assert len(run["train_acc"]) == 1 and 0.0 <= run["heldout_acc"][0] <= 1.0
    fc = json.loads((tmp_path / "out" / "emnist-e1-fc-s0.json").read_text())
    assert fc["bank_dim"] == 128 and fc["optimiser"] == {}


def test_the_head_alone_gets_the_scaled_rate_and_the_weight_decay(bench):
    import torch

    backbone, head = torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)
    plain, head_group = bench._optimiser(backbone, head, 1e-3, {"head_lr_scale": 0.1, "head_weight_decay": 1e-4}).param_groups
    assert plain["lr"] == 1e-3 and plain["weight_decay"] == 0.0 and len(plain["params"]) == 2
    assert head_group["lr"] == pytest.approx(1e-4) and head_group["weight_decay"] == 1e-4
    assert [p.shape for p in head_group["params"]] == [torch.Size([2, 3]), torch.Size([2])]


def test_class_subset_is_seeded_relabelled_and_background_only(bench):
    kept, relabel = bench._class_subset(964, 100)
    assert kept.sum() == 100 and not kept[964:].any()  # evaluation characters never train
    assert sorted(relabel[kept].tolist()) == list(range(100)) and (relabel[~kept] == -1).all()
    again, _ = bench._class_subset(964, 100)
    assert (again == kept).all()
    everything, identity = bench._class_subset(964, None)
    assert everything[:964].all() and (identity[:964] == range(964)).all()


def test_class_subset_refusals(bench, tmp_path):
    with pytest.raises(SystemExit, match=r"--classes must be in \[1, 964\], got 965"):
        bench._class_subset(964, 965)
    with pytest.raises(SystemExit, match="--classes picks Omniglot characters; it needs --dataset omniglot, got 'emnist'"):
        bench.main(["--dataset", "emnist", "--classes", "10", "--out", str(tmp_path)])
    args = bench._arguments(["--classes", "250"])
    assert bench._dataset_tag(args) == "omniglot250" and bench._dataset_tag(bench._arguments([])) == "omniglot"
