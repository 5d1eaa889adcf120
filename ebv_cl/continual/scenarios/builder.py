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
from .kinds import SCENARIOS, kind_options
from .presets import preset_spec
from .sampling import take_per_class

__all__ = ["BuiltScenario", "build_scenario", "COMMON_KEYS", "SUBSAMPLE_KEYS"]

COMMON_KEYS = ("preset", "kind", "dataset", "dataset_options", "subsample")
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

    @property
    def n_experiences(self) -> int:
        """Number of experiences (sessions)."""
        return len(self.classes_per_experience)


def _resolve_spec(spec: Any) -> dict[str, Any]:
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
    for key in ("dataset_options", "subsample"):
        if not isinstance(spec.get(key, {}), Mapping):
            raise ConfigError(f"{key} must be a mapping, got {spec[key]!r}")
    bad = sorted(set(spec.get("subsample", {})) - set(SUBSAMPLE_KEYS))
    if bad:
        raise ConfigError(f"unknown key(s) {bad} in subsample; valid keys: {', '.join(SUBSAMPLE_KEYS)}")
    for key, value in spec.get("subsample", {}).items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"subsample.{key} must be an int >= 1 or null, got {value!r}")
    return spec


def _make_benchmark(train: Any, test: Any, groups: list[list[int]]) -> Any:
    from avalanche.benchmarks import nc_benchmark

    return nc_benchmark(
        train, test, n_experiences=len(groups), task_labels=False, shuffle=False, seed=None,
        fixed_class_order=[c for g in groups for c in g], per_exp_classes={i: len(g) for i, g in enumerate(groups)},
        class_ids_from_zero_from_first_exp=True,
    )


def build_scenario(spec: Mapping[str, Any], *, seed: int, root: str | os.PathLike | None = None) -> BuiltScenario:
    """Build the class-incremental, few-shot or long-tailed stream a spec describes.

    Args:
        spec: ``dataset`` (name), ``dataset_options`` (dict), ``kind`` (``class_incremental``, ``few_shot``,
            ``long_tailed``), the kind's options, ``subsample`` (``max_per_class_train``/``max_per_class_test``),
            or ``preset`` (a name from ``list_presets()``) whose keys the others override.
        seed: Seeds the class order and subsampling (global RNGs are not touched).
        root: The data root (default ``$EBV_CL_DATA``).

    Returns:
        A ``BuiltScenario`` holding the Avalanche benchmark and the remapped class ids.

    Raises:
        ConfigError: on an unknown or missing key, a bad value, or classes that do not divide.
        DataRootError: if the dataset's files are not found.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    spec = _resolve_spec(spec)
    kind, name = spec["kind"], spec["dataset"]
    options = dict(spec.get("dataset_options", {}))
    try:
        train = load_dataset(name, root=root, train=True, **options)
        test = load_dataset(name, root=root, train=False, **options)
    except ConfigError:
        raise
    except ValueError as err:  # unknown dataset name
        raise ConfigError(str(err)) from None
    sub = {k: spec.get("subsample", {}).get(k) for k in SUBSAMPLE_KEYS}
    train_t, test_t = train.targets.numpy(), test.targets.numpy()
    kind_args = {k: spec[k] for k in kind_options(kind) if k in spec}
    plan = SCENARIOS.get(kind)(train_t, rng=np.random.default_rng([seed, 0]),
                               max_per_class_train=sub["max_per_class_train"], **kind_args)
    used = [c for g in plan.groups for c in g]
    no_test = sorted(set(used) - set(np.unique(test_t).tolist()))
    if no_test:
        raise ConfigError(f"class(es) {no_test[:10]} of dataset {name!r} have no test items")
    train_idx = take_per_class(train_t, plan.train_counts, rng=np.random.default_rng([seed, 1]))
    test_idx = take_per_class(test_t, {c: sub["max_per_class_test"] for c in used}, rng=np.random.default_rng([seed, 2]))
    train_sub, test_sub = train.subset(train_idx), test.subset(test_idx)
    benchmark = _make_benchmark(train_sub, test_sub, plan.groups)
    if list(benchmark.classes_order_original_ids) != used:  # internal invariant of nc_benchmark's remapping
        raise RuntimeError("nc_benchmark did not keep the requested class order")
    remapped, start = [], 0
    for g in plan.groups:
        remapped.append(list(range(start, start + len(g))))
        start += len(g)
    position = {c: i for i, g in enumerate(plan.groups) for c in g}
    train_sizes = np.bincount([position[c] for c in train_sub.targets.tolist()], minlength=len(plan.groups))
    test_sizes = np.bincount([position[c] for c in test_sub.targets.tolist()], minlength=len(plan.groups))
    sizes = "/".join(str(len(g)) for g in plan.groups)
    description = (f"{kind} stream on {name}: {len(plan.groups)} experiences of {sizes} classes ({len(used)} "
                   f"classes, {len(train_idx)} train / {len(test_idx)} test items, seed {seed})")
    if plan.notes:
        description += "; " + "; ".join(plan.notes)
    return BuiltScenario(
        benchmark=benchmark, classes_per_experience=remapped, original_labels=used,
        class_names=[train.classes[c] for c in used], n_classes=len(used), input_shape=train.input_shape, kind=kind,
        description=description, train_sizes=train_sizes.tolist(), test_sizes=test_sizes.tolist(), spec=spec,
        seed=int(seed),
    )
