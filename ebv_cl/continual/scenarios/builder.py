"""Build an Avalanche benchmark from a scenario spec: ``build_scenario(spec, seed=...) -> BuiltScenario``.

The spec (a dict, usually from YAML) names a dataset, a kind and the kind's options; unknown keys are a
``ConfigError`` listing the valid ones. The kind's plan (see ``kinds``) is turned into an Avalanche 0.6
benchmark with ``nc_benchmark`` (fixed class order, one entry per experience in ``per_exp_classes``,
``task_labels=False``, ``class_ids_from_zero_from_first_exp=True``), because Avalanche's ``ICaRL`` reads the class
order from that generator. Class ids are therefore remapped to ``0..C-1`` in arrival order: the first class of the
first experience is 0, and so on, so a head's column ``j`` is class ``j``. The seed fixes the class order
(stream 0), the training subsample (stream 1) and the test subsample (stream 2), without touching global RNGs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ...data import load_dataset
from ...errors import ConfigError
from .kinds import SCENARIOS, Plan, kind_options
from .presets import preset_spec
from .sampling import take_per_class

__all__ = ["BuiltScenario", "build_scenario", "validate_scenario_spec", "COMMON_KEYS", "SUBSAMPLE_KEYS", "AUGMENTATIONS"]

COMMON_KEYS = ("preset", "kind", "dataset", "dataset_options", "subsample", "augment", "validation")
AUGMENTATIONS = ("none", "flip", "crop", "crop_flip")
SUBSAMPLE_KEYS = ("max_per_class_train", "max_per_class_test")


@dataclass
class BuiltScenario:
    """A built stream and what a strategy needs to know about it.

    Attributes:
        benchmark: The Avalanche ``NCScenario``; ``train_stream``/``test_stream`` experiences carry datasets whose
            ``targets`` are remapped class ids.
        classes_per_experience: Remapped class ids of each experience (experience ``i`` holds consecutive ids).
        original_labels: ``original_labels[j]`` is the dataset label of remapped class ``j``.
        class_names: ``class_names[j]`` is the dataset's name of remapped class ``j``.
        n_classes: Number of classes in the stream.
        input_shape: ``(C, H, W)`` of one image.
        kind: The scenario kind.
        description: One paragraph saying what the stream is.
        train_sizes: Training items per experience.
        test_sizes: Test items per experience.
        spec: The resolved spec (preset applied).
        seed: The seed it was built with.
        train_dataset: The ``ArrayDataset`` the train stream's experiences index into (checkpoints refer to it).
        test_dataset: The same for the test stream.
    """

    benchmark: Any
    classes_per_experience: list[list[int]]
    original_labels: list[int]
    class_names: list[str]
    n_classes: int
    input_shape: tuple[int, int, int]
    kind: str
    description: str
    train_sizes: list[int] = field(default_factory=list)
    test_sizes: list[int] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    train_dataset: Any = None
    test_dataset: Any = None

    @property
    def n_experiences(self) -> int:
        """Number of experiences (sessions)."""
        return len(self.classes_per_experience)

    def summary(self) -> dict[str, Any]:
        """Everything but the benchmark, as JSON-serialisable data (for results files)."""
        return {
            "kind": self.kind, "description": self.description, "seed": self.seed, "n_classes": self.n_classes,
            "input_shape": list(self.input_shape), "classes_per_experience": self.classes_per_experience,
            "original_labels": self.original_labels, "class_names": self.class_names,
            "train_sizes": self.train_sizes, "test_sizes": self.test_sizes, "spec": self.spec,
        }


def validate_scenario_spec(spec: Any) -> dict[str, Any]:
    """Check a scenario spec without loading any data, and return it resolved (preset applied).

    Checks the preset, the kind, the keys of that kind, ``subsample``, ``augment``, the dataset name and the
    dataset's option names. Values that depend on the data (class counts, labels) are checked by
    ``build_scenario``.

    Raises:
        ConfigError: naming the bad key or value and listing the valid ones.
    """
    from ...data import dataset_options, list_datasets

    if not isinstance(spec, Mapping):
        raise ConfigError(f"scenario spec must be a mapping, got {type(spec).__name__}")
    spec = dict(spec)
    if "preset" in spec:
        name = spec.pop("preset")
        spec = preset_spec(name, **spec)
        spec["preset"] = name
    kind = spec.get("kind")
    if kind not in SCENARIOS:
        raise ConfigError(f"scenario spec needs kind, one of: {', '.join(SCENARIOS.names())}; got {kind!r}")
    valid = list(COMMON_KEYS) + kind_options(kind)
    unknown = sorted(set(spec) - set(valid))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {kind} scenario spec; valid keys: {', '.join(valid)}")
    if "dataset" not in spec:
        raise ConfigError("scenario spec needs dataset (a name from ebv_cl.data.list_datasets())")
    if spec["dataset"] not in list_datasets():
        raise ConfigError(f"unknown dataset {spec['dataset']!r}; expected one of: {', '.join(list_datasets())}")
    for key in ("dataset_options", "subsample"):
        if not isinstance(spec.get(key, {}), Mapping):
            raise ConfigError(f"{key} must be a mapping, got {spec[key]!r}")
    bad = sorted(set(spec.get("dataset_options", {})) - set(dataset_options(spec["dataset"])))
    if bad:
        raise ConfigError(f"unknown option(s) {bad} for dataset {spec['dataset']!r}; valid options: "
                          f"{', '.join(dataset_options(spec['dataset']))}")
    bad = sorted(set(spec.get("subsample", {})) - set(SUBSAMPLE_KEYS))
    if bad:
        raise ConfigError(f"unknown key(s) {bad} in subsample; valid keys: {', '.join(SUBSAMPLE_KEYS)}")
    for key, value in spec.get("subsample", {}).items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"subsample.{key} must be an int >= 1 or null, got {value!r}")
    val = spec.get("validation")
    if val is not None and (isinstance(val, bool) or not isinstance(val, int) or val < 1):
        raise ConfigError(f"validation must be an int >= 1 (training items held out per class) or null, got {val!r}")
    if spec.get("augment") not in (None, *AUGMENTATIONS):
        raise ConfigError(f"augment must be one of {list(AUGMENTATIONS)} or null, got {spec['augment']!r}")
    return spec


def _train_transform(augment: Any, input_shape: tuple[int, int, int]) -> Any:
    if augment is None or augment == "none":
        return None
    from torchvision import transforms

    flip = transforms.RandomHorizontalFlip()
    if augment == "flip":
        return flip
    if augment == "crop":  # characters and digits: shifts only (a flip makes another glyph)
        return transforms.RandomCrop(input_shape[1:], padding=max(1, input_shape[1] // 8))
    return transforms.Compose([transforms.RandomCrop(input_shape[1:], padding=4), flip])


def _make_benchmark(train: Any, test: Any, groups: list[list[int]], train_transform: Any) -> Any:
    from avalanche.benchmarks import nc_benchmark

    return nc_benchmark(
        train, test, n_experiences=len(groups), task_labels=False, shuffle=False, seed=None,
        fixed_class_order=[c for g in groups for c in g], per_exp_classes={i: len(g) for i, g in enumerate(groups)},
        class_ids_from_zero_from_first_exp=True, train_transform=train_transform,
    )


def _load_pair(spec: dict[str, Any], root: str | os.PathLike | None) -> tuple[Any, Any]:
    options = dict(spec.get("dataset_options", {}))
    train = load_dataset(spec["dataset"], root=root, train=True, **options)
    test = load_dataset(spec["dataset"], root=root, train=False, **options)
    return train, test


def _validation_split(train: Any, per_class: int, seed: int) -> tuple[Any, Any]:
    """Hold ``per_class`` training items of every class out as the test set (seed stream 3).

    Hyper-parameters are chosen on such a split, never on the test data: the stream is built from the other
    training items and evaluated on the held-out ones. Every class keeps at least one training item.
    """
    targets = train.targets.numpy()
    rng = np.random.default_rng([seed, 3])
    held = []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        if len(idx) <= per_class:
            raise ConfigError(f"validation = {per_class} leaves no training item of class {int(c)} "
                              f"({len(idx)} items); hold out fewer")
        held.append(idx[rng.permutation(len(idx))[:per_class]])
    held_idx = np.sort(np.concatenate(held))
    rest = np.setdiff1d(np.arange(len(targets)), held_idx)
    return train.subset(rest), train.subset(held_idx)


def _select(train: Any, test: Any, spec: dict[str, Any], seed: int) -> tuple[Plan, np.ndarray, np.ndarray]:
    """Plan the stream and pick the train/test indices it keeps (seed streams 0, 1, 2)."""
    sub = {k: spec.get("subsample", {}).get(k) for k in SUBSAMPLE_KEYS}
    train_t, test_t = train.targets.numpy(), test.targets.numpy()
    kind_args = {k: spec[k] for k in kind_options(spec["kind"]) if k in spec}
    plan = SCENARIOS.get(spec["kind"])(train_t, rng=np.random.default_rng([seed, 0]),
                                       max_per_class_train=sub["max_per_class_train"], **kind_args)
    used = [c for g in plan.groups for c in g]
    no_test = sorted(set(used) - set(np.unique(test_t).tolist()))
    if no_test:
        raise ConfigError(f"class(es) {no_test[:10]} of dataset {spec['dataset']!r} have no test items")
    drawn = {c: n for c, n in plan.train_counts.items() if c not in plan.train_items}
    train_idx = take_per_class(train_t, drawn, rng=np.random.default_rng([seed, 1]))
    if plan.train_items:
        given = np.array([i for items in plan.train_items.values() for i in items], dtype=np.int64)
        train_idx = np.sort(np.concatenate([train_idx, given]))
    test_counts = {c: sub["max_per_class_test"] for c in used}
    test_idx = take_per_class(test_t, test_counts, rng=np.random.default_rng([seed, 2]))
    return plan, train_idx, test_idx


def _sizes(targets: Any, groups: list[list[int]]) -> list[int]:
    position = {c: i for i, g in enumerate(groups) for c in g}
    return np.bincount([position[c] for c in targets.tolist()], minlength=len(groups)).tolist()


def build_scenario(spec: Mapping[str, Any], *, seed: int, root: str | os.PathLike | None = None) -> BuiltScenario:
    """Build the class-incremental, few-shot or long-tailed stream a spec describes.

    Args:
        spec: ``dataset`` (name), ``dataset_options`` (dict), ``kind`` (``class_incremental``, ``few_shot``,
            ``long_tailed``), the kind's options, ``subsample`` (``max_per_class_train``/``max_per_class_test``),
            ``augment`` (``null``, ``"flip"`` or ``"crop_flip"``: random 4-pixel-padded crop and horizontal flip
            on the training stream only), or ``preset`` (a name from ``list_presets()``) whose keys the others
            override; ``validation`` (an int): hold that many training items of every class out and use them as
            the test set (for choosing hyper-parameters; the real test split is not read); ``augment: crop``
            is a padded random crop without flip (characters).
        seed: Seeds the class order and subsampling (global RNGs are not touched); an int >= 0.
        root: The data root (default ``$EBV_CL_DATA``).

    Returns:
        A ``BuiltScenario`` holding the Avalanche benchmark and the remapped class ids.

    Raises:
        TypeError: if ``seed`` is not an int.
        ValueError: if ``seed`` is negative.
        ConfigError: on an unknown or missing key, a bad value, or classes that do not divide.
        DataRootError: if the dataset's files are not found.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    spec = validate_scenario_spec(spec)
    train, test = _load_pair(spec, root)
    if spec.get("validation") is not None:
        if spec.get("shot_indices") is not None:
            raise ConfigError("validation and shot_indices exclude each other: shot_indices name items of the full "
                              "training set; drop shot_indices (shots are then drawn) to choose settings on validation")
        train, test = _validation_split(train, spec["validation"], int(seed))
    transform = _train_transform(spec.get("augment"), train.input_shape)
    plan, train_idx, test_idx = _select(train, test, spec, int(seed))
    train_sub, test_sub = train.subset(train_idx), test.subset(test_idx)
    benchmark = _make_benchmark(train_sub, test_sub, plan.groups, transform)
    used = [c for g in plan.groups for c in g]
    if list(benchmark.classes_order_original_ids) != used:  # internal invariant of nc_benchmark's remapping
        raise RuntimeError("nc_benchmark did not keep the requested class order")
    bounds = np.cumsum([0] + [len(g) for g in plan.groups]).tolist()
    sizes = "/".join(str(len(g)) for g in plan.groups)
    description = (f"{spec['kind']} stream on {spec['dataset']}: {len(plan.groups)} experiences of {sizes} classes "
                   f"({len(used)} classes, {len(train_idx)} train / {len(test_idx)} test items, seed {seed})")
    description += "".join(f"; {note}" for note in plan.notes)
    return BuiltScenario(
        benchmark=benchmark, classes_per_experience=[list(range(a, b)) for a, b in zip(bounds, bounds[1:])],
        original_labels=used, class_names=[train.classes[c] for c in used], n_classes=len(used),
        input_shape=train.input_shape, kind=spec["kind"], description=description,
        train_sizes=_sizes(train_sub.targets, plan.groups), test_sizes=_sizes(test_sub.targets, plan.groups),
        spec=spec, seed=int(seed), train_dataset=train_sub, test_dataset=test_sub,
    )
