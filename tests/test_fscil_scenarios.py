"""Few-shot scenario options: the validation split, explicit shot lists, the crop augmentation, session tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebv_cl.continual.scenarios import build_scenario
from ebv_cl.data import load_dataset
from ebv_cl.errors import ConfigError
from ebv_cl.run.metrics import summarize
from ebv_cl.run.results import results_markdown, session_table

FEW = {"dataset": "digits", "kind": "few_shot", "base_classes": 6, "ways": 2, "shots": 3, "class_order": "fixed"}


def _items(dataset):
    return {tuple(np.asarray(dataset[i][0]).ravel().round(4).tolist()) for i in range(len(dataset))}


def test_validation_holds_training_items_out_as_the_test_set():
    train = load_dataset("digits")
    built = build_scenario({**FEW, "validation": 4}, seed=0)
    assert built.test_sizes == [6 * 4, 2 * 4, 2 * 4]
    test_items = set().union(*(_items(e.dataset) for e in built.benchmark.test_stream))
    train_items = set().union(*(_items(e.dataset) for e in built.benchmark.train_stream))
    all_train = _items(train)
    assert test_items <= all_train, "validation items come from the training split"
    assert not test_items & train_items, "held-out items are never trained on"
    again = build_scenario({**FEW, "validation": 4}, seed=0)
    assert again.test_sizes == built.test_sizes
    assert _items(again.benchmark.test_stream[0].dataset) == _items(built.benchmark.test_stream[0].dataset)


@pytest.mark.parametrize("value, match", [(0, "validation must be an int >= 1"), (True, "validation must be"),
                                          (500, "leaves no training item of class")])
def test_validation_errors(value, match):
    with pytest.raises(ConfigError, match=match):
        build_scenario({**FEW, "validation": value}, seed=0)


def test_shot_indices_fix_the_shots():
    targets = load_dataset("digits").targets.numpy()
    pick = lambda c, k: np.flatnonzero(targets == c)[:k].tolist()  # noqa: E731
    shots = [pick(6, 3) + pick(7, 3), pick(8, 3) + pick(9, 3)]
    built = build_scenario({**FEW, "shot_indices": shots}, seed=0)
    assert built.train_sizes[1:] == [6, 6]
    other = build_scenario({**FEW, "shot_indices": shots}, seed=5)
    assert _items(other.benchmark.train_stream[1].dataset) == _items(built.benchmark.train_stream[1].dataset)
    with pytest.raises(ConfigError, match=r"shot_indices must be a list of 2 lists"):
        build_scenario({**FEW, "shot_indices": shots[:1]}, seed=0)
    with pytest.raises(ConfigError, match=r"must hold 3 distinct items of each class of session 1 \[6, 7\]"):
        build_scenario({**FEW, "shot_indices": [pick(6, 3) + pick(8, 3), shots[1]]}, seed=0)
    with pytest.raises(ConfigError, match="validation and shot_indices exclude each other"):
        build_scenario({**FEW, "shot_indices": shots, "validation": 2}, seed=0)


def test_crop_augmentation_shifts_without_flipping():
    built = build_scenario({**FEW, "augment": "crop"}, seed=0)
    ds = built.benchmark.train_stream[0].dataset
    torch.manual_seed(0)
    assert len({ds[0][0].numpy().tobytes() for _ in range(12)}) > 1
    assert len({built.benchmark.test_stream[0].dataset[0][0].numpy().tobytes() for _ in range(3)}) == 1


def test_performance_drop_and_session_table():
    correct = np.array([[4, 4, 0, 0], [3, 4, 2, 0], [2, 4, 1, 1]])
    total = np.array([4, 4, 4, 4])
    s = summarize(correct, total, [[0, 1], [2], [3]])
    assert s["seen_accuracy"] == pytest.approx([1.0, 9 / 12, 8 / 16])
    assert s["performance_drop"] == pytest.approx(0.5)
    runs = [{"strategy": "ebv+fscil", "head": "ebv", "method": "fscil", "seed": k, "trainable_head_params": [1],
             "wall_time_s": 1.0, "forgetting": 0.1, **s} for k in (0, 1)]
    table = session_table(runs)
    assert "| strategy | seeds | 0 | 1 | 2 | average | drop (0 minus last) |" in table
    assert "| ebv+fscil | 2 | 100.00 | 75.00 | 50.00 | 75.00 ± 0.00 | 50.00 ± 0.00 |" in table
    assert "after each session" in results_markdown(runs, sessions=True)
    assert "after each session" not in results_markdown(runs)
