"""Scenario presets on the real datasets of $EBV_CL_DATA (slow; skipped when absent), and an Avalanche smoke run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from ebv_cl.continual.scenarios import build_scenario
from conftest import data_root, require_data_root
from ebv_cl.errors import DataRootError

pytestmark = pytest.mark.slow

ROOT = data_root() or Path("/nonexistent")


def _build(spec, *, need: str, seed: int = 0):
    require_data_root()
    if not (ROOT / need).exists():
        pytest.skip(f"{ROOT / need} is absent")
    t = time.perf_counter()
    built = build_scenario(spec, seed=seed, root=ROOT)
    print(f"\n[build] {spec}: {time.perf_counter() - t:.2f} s; {built.description}")
    return built


def test_split_fashion_mnist():
    built = _build({"preset": "split_fashion_mnist"}, need="fashion-mnist")
    assert built.train_sizes == [12000] * 5 and built.test_sizes == [2000] * 5
    assert len(set(built.original_labels)) == 10


def test_split_cifar10():
    built = _build({"preset": "split_cifar10"}, need="cifar10-jpg.tar.gz")
    assert built.train_sizes == [10000] * 5 and built.input_shape == (3, 32, 32)


def test_cifar10_long_tailed_matches_papers():
    built = _build({"preset": "cifar10_lt"}, need="cifar10-jpg.tar.gz")
    assert sum(built.train_sizes) == 12406 and sum(built.test_sizes) == 10000


def test_omniglot_fscil():
    built = _build({"preset": "omniglot_fscil"}, need="omniglot.tar.gz")
    assert [len(g) for g in built.classes_per_experience] == [200] + [5] * 10
    assert built.train_sizes == [200 * 15] + [25] * 10 and built.test_sizes == [1000] + [25] * 10


def test_emnist_long_tailed_natural():
    built = _build({"preset": "emnist_lt"}, need="emnist-byclass-test.npz")
    assert [len(g) for g in built.classes_per_experience] == [12] + [10] * 5
    assert "natural imbalance" in built.description and built.n_classes == 62


def test_mnist_scenario_needs_training_files():
    require_data_root()
    if not (ROOT / "mnist-test").exists():
        pytest.skip(f"{ROOT / 'mnist-test'} is absent")
    if any((ROOT / d / "train-images-idx3-ubyte.gz").exists() for d in ("mnist", "mnist-test")):
        pytest.skip("MNIST training files are present")
    with pytest.raises(DataRootError, match="training split not found"):
        build_scenario({"dataset": "mnist", "kind": "class_incremental", "n_experiences": 5}, seed=0, root=ROOT)


def test_avalanche_replay_and_icarl_run_on_digits():
    """The benchmark works with Avalanche's stock Naive + class-balanced replay and ICaRL (reads the class order)."""
    from avalanche.training import ICaRL, Naive
    from avalanche.training.plugins import ReplayPlugin
    from avalanche.training.storage_policy import ClassBalancedBuffer
    from torch import nn

    from ebv_cl.models import create_backbone

    built = build_scenario({"preset": "split_digits", "n_experiences": 2, "leftover": "error"}, seed=0)
    torch.manual_seed(0)
    backbone = create_backbone("mlp", input_shape=built.input_shape, hidden_sizes=[32])
    model = nn.Sequential(backbone, nn.Linear(backbone.feature_dim, built.n_classes))
    policy = ClassBalancedBuffer(max_size=40, adaptive_size=True)
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     criterion=nn.CrossEntropyLoss(), train_mb_size=32,
                     train_epochs=2, eval_mb_size=256, plugins=[ReplayPlugin(mem_size=40, storage_policy=policy)],
                     evaluator=None)
    for exp in built.benchmark.train_stream:
        strategy.train(exp)
    assert sorted(policy.seen_classes) == list(range(built.n_classes))
    results = strategy.eval(built.benchmark.test_stream)
    assert isinstance(results, dict)

    fe = create_backbone("mlp", input_shape=built.input_shape, hidden_sizes=[32])
    classifier = nn.Linear(fe.feature_dim, built.n_classes)
    icarl = ICaRL(feature_extractor=fe, classifier=classifier,
                  optimizer=torch.optim.SGD([*fe.parameters(), *classifier.parameters()], lr=0.1), memory_size=40,
                  buffer_transform=None, fixed_memory=True, train_mb_size=32, train_epochs=1, evaluator=None)
    for exp in built.benchmark.train_stream:
        icarl.train(exp)
    plugin = next(p for p in icarl.plugins if hasattr(p, "observed_classes"))
    assert plugin.observed_classes == [c for g in built.classes_per_experience for c in g]
    icarl.eval(built.benchmark.test_stream)
