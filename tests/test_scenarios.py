"""Scenario builders on scikit-learn digits: every kind, leftovers, remapping in arrival order, strict specs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from ebv_cl.continual.scenarios import (
    PRESETS,
    build_scenario,
    exponential_counts,
    kind_options,
    list_presets,
    list_scenario_kinds,
    partition_classes,
    preset_spec,
    resolve_class_order,
    take_per_class,
    validate_scenario_spec,
)
from ebv_cl.continual.scenarios.builder import COMMON_KEYS
from ebv_cl.data import load_dataset
from ebv_cl.errors import ConfigError

DIGITS_TRAIN = load_dataset("digits")
DIGITS_TEST = load_dataset("digits", train=False)


def _ci(**kw):
    return {"dataset": "digits", "kind": "class_incremental", **kw}


def _stream_items(stream):
    """(image bytes, label) of every item of every experience, per experience."""
    out = []
    for exp in stream:
        items = [(x.numpy().tobytes(), int(y)) for x, y, *_ in (exp.dataset[i] for i in range(len(exp.dataset)))]
        out.append(items)
    return out


def _check_remapping(built, train_source, test_source):
    """Oracle: remapped class j holds exactly the images of original label original_labels[j], in arrival order."""
    bm = built.benchmark
    flat = [c for g in built.classes_per_experience for c in g]
    assert flat == list(range(built.n_classes))  # ids are given in arrival order
    assert list(bm.classes_order) == flat and list(bm.classes_order_original_ids) == built.original_labels
    assert list(bm.n_classes_per_exp) == [len(g) for g in built.classes_per_experience]
    for stream, source, sizes in ((bm.train_stream, train_source, built.train_sizes),
                                  (bm.test_stream, test_source, built.test_sizes)):
        assert [len(e.dataset) for e in stream] == sizes
        by_image = {}
        for i in range(len(source)):
            x, y = source[i]
            by_image.setdefault(x.numpy().tobytes(), set()).add(y)
        for exp, items, group in zip(stream, _stream_items(stream), built.classes_per_experience):
            assert sorted(exp.classes_in_this_experience) == group
            assert sorted(set(exp.dataset.targets)) == group
            for image, label in items:
                assert built.original_labels[label] in by_image[image]


# ---------------------------------------------------------------- plain partition helpers


@pytest.mark.parametrize(
    "n_classes, n_exp, leftover, sizes",
    [(10, 5, "error", [2] * 5), (10, 3, "first", [4, 3, 3]), (10, 3, "last", [3, 3, 4]), (7, 7, "error", [1] * 7),
     (10, 1, "error", [10])],
)
def test_partition_sizes_keep_every_class(n_classes, n_exp, leftover, sizes):
    groups = partition_classes(list(range(n_classes)), n_exp, leftover=leftover)
    assert [len(g) for g in groups] == sizes
    assert [c for g in groups for c in g] == list(range(n_classes))


@pytest.mark.parametrize(
    "n_exp, leftover, match",
    [(3, "error", r"10 classes do not divide into n_experiences=3 \(1 left over\)"), (0, "error", "must be >= 1"),
     (11, "error", "must be <= 10"), (2, "middle", "leftover must be one of"), ("2", "error", "must be an int")],
)
def test_partition_errors(n_exp, leftover, match):
    with pytest.raises(ConfigError, match=match):
        partition_classes(list(range(10)), n_exp, leftover=leftover)


def test_class_order_modes():
    classes = [5, 1, 9, 3]
    assert resolve_class_order(classes, "fixed", rng=np.random.default_rng(0)) == [1, 3, 5, 9]
    a = resolve_class_order(classes, "random", rng=np.random.default_rng(0))
    b = resolve_class_order(classes, "random", rng=np.random.default_rng(0))
    assert a == b and sorted(a) == [1, 3, 5, 9]
    assert resolve_class_order(classes, [9, 1, 3, 5], rng=np.random.default_rng(0)) == [9, 1, 3, 5]


@pytest.mark.parametrize(
    "order, match",
    [([1, 1, 3, 5, 9], r"duplicates \[1\]"), ([1, 3, 5], r"missing \[9\]"), ([1, 3, 5, 9, 4], r"unknown \[4\]"),
     ("sorted", "class_order must be 'random', 'fixed' or a list"), ([1.0, 3, 5, 9], "integer class labels")],
)
def test_class_order_errors(order, match):
    with pytest.raises(ConfigError, match=match):
        resolve_class_order([5, 1, 9, 3], order, rng=np.random.default_rng(0))


def test_exponential_counts_match_long_tailed_cifar10():
    # LT-CIFAR-10 with imbalance ratio 100 (Cui et al. 2019; papers 001/002): 12,406 training images.
    counts = exponential_counts(5000, 100, 10)
    assert counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50] and sum(counts) == 12406
    assert exponential_counts(500, 1, 3) == [500, 500, 500]


def test_take_per_class_seeded_and_clipped():
    y = np.repeat(np.arange(3), 5)
    a = take_per_class(y, {0: 2, 2: None, 1: 9}, rng=np.random.default_rng(1))
    b = take_per_class(y, {0: 2, 2: None, 1: 9}, rng=np.random.default_rng(1))
    assert np.array_equal(a, b) and np.bincount(y[a]).tolist() == [2, 5, 5]


# ---------------------------------------------------------------- class-incremental


def test_class_incremental_random_order_remapped_in_arrival_order():
    built = build_scenario(_ci(n_experiences=5), seed=3)
    assert built.classes_per_experience == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert sorted(built.original_labels) == list(range(10)) and built.original_labels != list(range(10))
    assert (built.n_classes, built.input_shape, built.kind, built.n_experiences) == (10, (1, 8, 8),
                                                                                     "class_incremental", 5)
    assert sum(built.train_sizes) == len(DIGITS_TRAIN) and sum(built.test_sizes) == len(DIGITS_TEST)
    _check_remapping(built, DIGITS_TRAIN, DIGITS_TEST)
    again = build_scenario(_ci(n_experiences=5), seed=3)
    other = build_scenario(_ci(n_experiences=5), seed=4)
    assert again.original_labels == built.original_labels and other.original_labels != built.original_labels


@pytest.mark.parametrize("leftover, sizes", [("first", [4, 3, 3]), ("last", [3, 3, 4])])
def test_class_incremental_leftover(leftover, sizes):
    built = build_scenario(_ci(n_experiences=3, leftover=leftover, class_order="fixed"), seed=0)
    assert [len(g) for g in built.classes_per_experience] == sizes
    assert built.original_labels == list(range(10)) and built.n_classes == 10
    assert list(built.benchmark.n_classes_per_exp) == sizes


def test_class_incremental_leftover_error_by_default():
    with pytest.raises(ConfigError, match=r"do not divide into n_experiences=3 \(1 left over\).*leftover"):
        build_scenario(_ci(n_experiences=3), seed=0)


def test_class_incremental_explicit_groups():
    built = build_scenario(_ci(classes_per_experience=[[3, 1], [7], [0, 9, 2]]), seed=0)
    assert built.original_labels == [3, 1, 7, 0, 9, 2]
    assert built.classes_per_experience == [[0, 1], [2], [3, 4, 5]]
    assert built.class_names == ["3", "1", "7", "0", "9", "2"]
    _check_remapping(built, DIGITS_TRAIN, DIGITS_TEST)


def test_class_incremental_explicit_order_and_subsample():
    order = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    built = build_scenario(_ci(n_experiences=2, class_order=order,
                               subsample={"max_per_class_train": 7, "max_per_class_test": 3}), seed=1)
    assert built.original_labels == order
    assert built.train_sizes == [35, 35] and built.test_sizes == [15, 15]
    exp0 = built.benchmark.train_stream[0].dataset
    assert np.bincount(list(exp0.targets), minlength=10).tolist() == [7] * 5 + [0] * 5


# ---------------------------------------------------------------- few-shot


def test_few_shot_base_then_k_shot_sessions():
    spec = {"dataset": "digits", "kind": "few_shot", "base_classes": 4, "ways": 2, "shots": 3, "class_order": "fixed"}
    built = build_scenario(spec, seed=0)
    assert [len(g) for g in built.classes_per_experience] == [4, 2, 2, 2]  # n_sessions defaults to what fits
    counts = torch.bincount(torch.as_tensor(list(built.benchmark.train_stream[0].dataset.targets)))
    base_available = torch.bincount(DIGITS_TRAIN.targets)[:4]
    assert torch.equal(counts, base_available)  # base session keeps all its data
    for exp in list(built.benchmark.train_stream)[1:]:
        assert np.bincount(list(exp.dataset.targets)).tolist()[-2:] == [3, 3]
    test_counts = torch.bincount(DIGITS_TEST.targets)
    assert built.test_sizes == [int(test_counts[:4].sum()), int(test_counts[4:6].sum()), int(test_counts[6:8].sum()),
                                int(test_counts[8:].sum())]
    assert "base session of 4 classes, then 3 sessions of 2-way 3-shot" in built.description
    _check_remapping(built, DIGITS_TRAIN, DIGITS_TEST)


def test_few_shot_shots_are_seeded():
    spec = {"dataset": "digits", "kind": "few_shot", "base_classes": 6, "ways": 2, "shots": 2, "n_sessions": 1}
    a, b = build_scenario(spec, seed=5), build_scenario(spec, seed=5)
    items = [x.numpy().tobytes() for x, *_ in a.benchmark.train_stream[1].dataset]
    assert items == [x.numpy().tobytes() for x, *_ in b.benchmark.train_stream[1].dataset]
    assert "8 of 10 classes used" in a.description


@pytest.mark.parametrize(
    "options, match",
    [({"base_classes": 6, "ways": 2, "shots": 2, "n_sessions": 3}, r"needs 12 classes, the data has 10"),
     ({"ways": 2, "shots": 2}, "needs base_classes"),
     ({"base_classes": 10, "ways": 2, "shots": 2}, "leaves no class"),
     ({"base_classes": 4, "ways": 2, "shots": 500}, r"shots=500 but class\(es\)"),
     ({"base_classes": 4, "ways": 0, "shots": 2}, "ways must be an int >= 1")],
)
def test_few_shot_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        build_scenario({"dataset": "digits", "kind": "few_shot", **options}, seed=0)


# ---------------------------------------------------------------- long-tailed


def test_long_tailed_exponential_profile_over_label_rank():
    spec = {"dataset": "digits", "kind": "long_tailed", "imbalance_ratio": 10, "n_experiences": 5,
            "subsample": {"max_per_class_train": 100}}
    built = build_scenario(spec, seed=2)
    expected = exponential_counts(100, 10, 10)
    got = [0] * 10
    for exp in built.benchmark.train_stream:
        for remapped, n in enumerate(np.bincount(list(exp.dataset.targets), minlength=10).tolist()):
            if n:
                got[built.original_labels[remapped]] = n
    assert got == expected
    assert sum(built.test_sizes) == len(DIGITS_TEST)  # test stays balanced
    assert "imbalance ratio 10" in built.description
    _check_remapping(built, DIGITS_TRAIN, DIGITS_TEST)


def test_long_tailed_natural_keeps_and_scales_counts(tmp_path):
    labels = np.repeat(np.arange(4), [40, 20, 10, 4])
    images = np.random.default_rng(0).integers(0, 256, (74, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "lt.npz", images=images, labels=labels)
    base = {"dataset": "npz", "dataset_options": {"path": str(tmp_path / "lt.npz"), "test_fraction": 0.25},
            "kind": "long_tailed", "natural": True, "n_experiences": 2, "class_order": "fixed"}
    full = build_scenario(base, seed=0)
    assert full.train_sizes == [30 + 15, 8 + 3]
    half = build_scenario({**base, "subsample": {"max_per_class_train": 15}}, seed=0)
    assert half.train_sizes == [15 + 7, 4 + 1]  # scaled by 15/30, at least 1


@pytest.mark.parametrize(
    "options, match",
    [({"n_experiences": 5}, "exactly one of imbalance_ratio"),
     ({"n_experiences": 5, "imbalance_ratio": 10, "natural": True}, "exactly one of"),
     ({"n_experiences": 5, "imbalance_ratio": 0.5}, "imbalance_ratio must be a number >= 1"),
     ({"n_experiences": 5, "natural": "yes"}, "natural must be true or false")],
)
def test_long_tailed_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        build_scenario({"dataset": "digits", "kind": "long_tailed", **options}, seed=0)


# ---------------------------------------------------------------- strict specs and presets


@pytest.mark.parametrize(
    "spec, match",
    [(_ci(n_experiences=5, n_exp=5), r"unknown key\(s\) \['n_exp'\] in class_incremental scenario spec; valid keys: "
                                     r"preset, kind, dataset, dataset_options, subsample, augment, validation, "
                                     r"n_experiences"),
     ({"dataset": "digits", "n_experiences": 5}, "needs kind, one of: class_incremental, few_shot, long_tailed"),
     ({"kind": "class_incremental", "n_experiences": 5}, "needs dataset"),
     (_ci(dataset="digitz", n_experiences=5), "unknown dataset 'digitz'"),
     (_ci(n_experiences=5, subsample={"max_train": 3}), r"unknown key\(s\) \['max_train'\] in subsample"),
     (_ci(n_experiences=5, subsample={"max_per_class_train": 0}), "must be an int >= 1 or null"),
     (_ci(n_experiences=5, dataset_options={"colour": 1}), r"unknown option\(s\) \['colour'\]"),
     (_ci(), "give n_experiences or classes_per_experience"),
     (_ci(classes_per_experience=[[1], [2]], class_order="fixed"), "either classes_per_experience or class_order"),
     (_ci(classes_per_experience=[[1], [1]]), r"repeats class\(es\) \[1\]"),
     (_ci(classes_per_experience=[[1], [12]]), r"class\(es\) \[12\] absent"),
     (_ci(classes_per_experience=[[1], [2]], n_experiences=3), "disagrees with classes_per_experience"),
     ({"preset": "split_mnist"}, "unknown scenario preset 'split_mnist'; expected one of"),
     ("class_incremental", "spec must be a mapping")],
)
def test_spec_errors(spec, match):
    with pytest.raises(ConfigError, match=match):
        build_scenario(spec, seed=0)


def test_seed_must_be_int():
    with pytest.raises(TypeError, match="seed must be an int"):
        build_scenario(_ci(n_experiences=5), seed=1.5)
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        build_scenario(_ci(n_experiences=5), seed=-1)


def test_augment_applies_to_train_stream_only():
    built = build_scenario(_ci(n_experiences=5, augment="crop_flip", class_order="fixed"), seed=0)
    train_ds, test_ds = built.benchmark.train_stream[0].dataset, built.benchmark.test_stream[0].dataset
    torch.manual_seed(0)
    views = {train_ds[0][0].numpy().tobytes() for _ in range(8)}
    assert len(views) > 1 and train_ds[0][0].shape == (1, 8, 8)
    assert len({test_ds[0][0].numpy().tobytes() for _ in range(4)}) == 1
    with pytest.raises(ConfigError, match="augment must be one of"):
        build_scenario(_ci(n_experiences=5, augment="mixup"), seed=0)


def test_summary_is_json():
    import json

    built = build_scenario(_ci(n_experiences=2, class_order="fixed"), seed=0)
    data = json.loads(json.dumps(built.summary()))
    assert data["classes_per_experience"] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]] and data["n_classes"] == 10


def test_validate_without_loading_data():
    spec = validate_scenario_spec({"preset": "cifar100_fscil", "subsample": {"max_per_class_train": 5}})
    assert spec["base_classes"] == 60 and spec["preset"] == "cifar100_fscil"  # no CIFAR-100 needed to validate
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['sise'\] for dataset 'omniglot'"):
        validate_scenario_spec({"preset": "omniglot_fscil", "dataset_options": {"sise": 28}})


def test_kinds_and_presets_are_consistent():
    assert list_scenario_kinds() == ["class_incremental", "few_shot", "long_tailed"]
    for name in list_presets():
        spec = PRESETS[name]
        valid = set(COMMON_KEYS) | set(kind_options(spec["kind"]))
        assert set(spec) <= valid, name
    assert preset_spec("cifar100_fscil")["base_classes"] == 60
    merged = preset_spec("miniimagenet_fscil", dataset_options={"path": "/x"})
    assert merged["dataset_options"] == {"path": "/x", "size": 84}


def test_preset_built_with_overrides():
    built = build_scenario({"preset": "split_digits", "class_order": "fixed"}, seed=0)
    assert built.original_labels == list(range(10)) and built.spec["preset"] == "split_digits"
    assert built.classes_per_experience == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


# ---------------------------------------------------------------- FSCIL presets on generated stand-ins


def _png_folders(base, n_classes, n_train, n_test):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
    data = buf.getvalue()
    for split, n in (("train", n_train), ("test", n_test)):
        for c in range(n_classes):
            folder = base / split / f"class{c:03d}"
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"{i}.png").write_bytes(data)


@pytest.mark.parametrize(
    "preset, n_classes, sessions",
    [("miniimagenet_fscil", 100, [60] + [5] * 8), ("cub200_fscil", 200, [100] + [10] * 10)],
)
def test_fscil_presets_on_image_folder_stand_ins(tmp_path, monkeypatch, preset, n_classes, sessions):
    monkeypatch.setenv("EBV_CL_CACHE", str(tmp_path / "cache"))
    _png_folders(tmp_path / "data", n_classes, n_train=6, n_test=1)
    built = build_scenario({"preset": preset, "dataset_options": {"path": str(tmp_path / "data"), "size": 4}},
                           seed=0)
    assert [len(g) for g in built.classes_per_experience] == sessions
    assert built.original_labels == list(range(n_classes))  # the protocols use the fixed label order
    assert built.train_sizes == [sessions[0] * 6] + [s * 5 for s in sessions[1:]]
    assert built.input_shape == (3, 4, 4)


def test_cifar100_fscil_preset_on_pickle_stand_in(tmp_path):
    import pickle

    from ebv_cl.continual.scenarios.index_lists import CEC_CIFAR100_SHOTS

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for split, per_class in (("train", 6), ("test", 2)):
        labels = [c for c in range(100) for _ in range(per_class)]
        blob = {b"data": np.zeros((len(labels), 3072), np.uint8), b"fine_labels": labels, b"coarse_labels": labels}
        (folder / split).write_bytes(pickle.dumps(blob))
    meta = {b"fine_label_names": [f"c{i}".encode() for i in range(100)], b"coarse_label_names": []}
    (folder / "meta").write_bytes(pickle.dumps(meta))
    # The preset's shots are TOPIC/CEC's published lists: indices into the 50,000 real training images.
    assert [len(s) for s in CEC_CIFAR100_SHOTS] == [25] * 8
    assert len({i for s in CEC_CIFAR100_SHOTS for i in s}) == 200 and max(max(s) for s in CEC_CIFAR100_SHOTS) < 50000
    with pytest.raises(ConfigError, match="shot_indices\\[0\\] holds indices .* beyond the 600 training items"):
        build_scenario({"preset": "cifar100_fscil"}, seed=0, root=tmp_path)
    # On the stand-in (6 images per class, class c at 6c .. 6c+5) the same mechanism takes lists of its own.
    shots = [[6 * c + i for c in range(60 + 5 * s, 65 + 5 * s) for i in (5, 3, 1, 0, 2)] for s in range(8)]
    built = build_scenario({"preset": "cifar100_fscil", "shot_indices": shots}, seed=0, root=tmp_path)
    assert [len(g) for g in built.classes_per_experience] == [60] + [5] * 8
    assert built.train_sizes == [360] + [25] * 8 and built.test_sizes == [120] + [10] * 8
    exp1 = built.benchmark.train_stream[1].dataset
    assert sorted(int(t) for t in exp1.targets) == [c for c in range(60, 65) for _ in range(5)]


# ---------------------------------------------------------------- properties and import hygiene

@settings(max_examples=60, deadline=None)
@given(n_classes=st.integers(1, 40), data=st.data())
def test_partition_never_drops_a_class(n_classes, data):
    n_exp = data.draw(st.integers(1, n_classes))
    leftover = data.draw(st.sampled_from(["first", "last"]))
    order = data.draw(st.permutations(list(range(n_classes))))
    groups = partition_classes(order, n_exp, leftover=leftover)
    assert [c for g in groups for c in g] == list(order) and len(groups) == n_exp
    sizes = [len(g) for g in groups]
    big = 0 if leftover == "first" else -1
    assert sizes[big] == n_classes // n_exp + n_classes % n_exp
    assert all(s == n_classes // n_exp for i, s in enumerate(sizes) if i != (big % n_exp))


def test_importing_scenarios_does_not_import_avalanche():
    import subprocess
    import sys

    code = ("import sys, ebv_cl.continual, ebv_cl.continual.scenarios as s; "
            "s.validate_scenario_spec({'preset': 'split_digits'}); print('avalanche' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
