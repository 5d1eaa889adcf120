"""The scenario kinds: plans that say which classes arrive in which experience and how many items each keeps.

A kind is a function ``plan(train_targets, *, rng, max_per_class_train, **options) -> Plan`` registered in
``SCENARIOS``; its keyword options are exactly the keys a scenario spec of that kind may hold. Plans are plain
numpy (no Avalanche): ``build_scenario`` turns them into a benchmark.

- ``class_incremental``: all classes, cut into ``n_experiences`` (or explicit ``classes_per_experience``).
- ``few_shot``: a base session of ``base_classes`` classes with all their data, then ``n_sessions`` sessions of
  ``ways`` new classes with ``shots`` training items each (drawn with the seed).
- ``long_tailed``: like ``class_incremental`` but class ``c`` (rank of its label) keeps
  ``n_max * imbalance_ratio ** (-c / (C - 1))`` items, or (``natural: true``) its own count in the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import ConfigError
from ...registry import Registry
from .partition import check_class_groups, partition_classes, resolve_class_order
from .sampling import exponential_counts

__all__ = ["Plan", "SCENARIOS", "list_scenario_kinds", "kind_options"]


@dataclass
class Plan:
    """What a scenario kind decided, in original labels.

    Attributes:
        groups: Classes of each experience, in arrival order.
        train_counts: Training items to keep per class (``None``: all of them).
        notes: Sentences for the scenario's description.
        train_items: Explicit training-set indices per class (they replace ``train_counts`` for those classes).
    """

    groups: list[list[int]]
    train_counts: dict[int, int | None]
    notes: list[str] = field(default_factory=list)
    train_items: dict[int, list[int]] = field(default_factory=dict)


SCENARIOS: Registry[Plan] = Registry("scenario kind", fixed=("train_targets", "rng", "max_per_class_train"))


def list_scenario_kinds() -> list[str]:
    """The registered scenario kinds, sorted."""
    return SCENARIOS.names()


def _int_option(value: Any, *, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _groups(classes: list[int], *, rng: np.random.Generator, n_experiences: Any, classes_per_experience: Any,
            class_order: Any, leftover: str) -> list[list[int]]:
    if classes_per_experience is not None:
        if class_order is not None:
            raise ConfigError("give either classes_per_experience or class_order, not both: classes_per_experience "
                              "already fixes the order")
        groups = check_class_groups(classes_per_experience, classes)
        if n_experiences is not None and n_experiences != len(groups):
            raise ConfigError(f"n_experiences={n_experiences!r} disagrees with classes_per_experience, which has "
                              f"{len(groups)} experiences")
        return groups
    if n_experiences is None:
        raise ConfigError("give n_experiences or classes_per_experience")
    order = resolve_class_order(classes, "random" if class_order is None else class_order, rng=rng)
    return partition_classes(order, n_experiences, leftover=leftover)


@SCENARIOS.register("class_incremental")
def class_incremental(
    train_targets: np.ndarray,
    *,
    rng: np.random.Generator,
    max_per_class_train: int | None,
    n_experiences: int | None = None,
    classes_per_experience: list[list[int]] | None = None,
    class_order: str | list[int] | None = None,
    leftover: str = "error",
) -> Plan:
    """Plan a class-incremental stream over all classes (or those of ``classes_per_experience``).

    ``class_order`` defaults to ``"random"`` (seeded). A number of classes not divisible by ``n_experiences`` is
    an error unless ``leftover`` is ``"first"`` or ``"last"``.

    Args:
        n_experiences: Cut the classes into this many experiences of equal size.
        classes_per_experience: Instead, the dataset labels of each experience (a list of lists).
        class_order: ``"random"`` (seeded, default), ``"fixed"`` (ascending labels) or a list of dataset labels.
        leftover: Where classes go that do not divide: ``error`` (default), ``first`` or ``last`` experience.
    """
    classes = sorted(int(c) for c in np.unique(train_targets))
    groups = _groups(classes, rng=rng, n_experiences=n_experiences, classes_per_experience=classes_per_experience,
                     class_order=class_order, leftover=leftover)
    counts: dict[int, int | None] = {c: max_per_class_train for g in groups for c in g}
    return Plan(groups, counts)


@SCENARIOS.register("few_shot")
def few_shot(
    train_targets: np.ndarray,
    *,
    rng: np.random.Generator,
    max_per_class_train: int | None,
    base_classes: int | None = None,
    ways: int | None = None,
    shots: int | None = None,
    n_sessions: int | None = None,
    class_order: str | list[int] | None = None,
    shot_indices: list[list[int]] | None = None,
) -> Plan:
    """Plan a few-shot class-incremental stream: a base session, then ``n_sessions`` ``ways``-way ``shots``-shot.

    ``n_sessions`` defaults to as many full sessions as the remaining classes allow; classes beyond
    ``base_classes + ways * n_sessions`` are not used (the description says how many). ``shot_indices`` fixes
    the shots instead of drawing them: one list of training-set indices per session, ``shots`` items of each of
    that session's classes (the literature's published lists, e.g. ``CEC_CIFAR100_SHOTS``).

    Args:
        base_classes: Classes of the base session, trained with all their data (required).
        ways: New classes per incremental session (required).
        shots: Training items per new class (required).
        n_sessions: Incremental sessions (default: as many as the classes allow).
        class_order: ``"random"`` (seeded, default), ``"fixed"`` (ascending labels) or a list of dataset labels.
        shot_indices: One list of training-set indices per incremental session (default: shots drawn).
    """
    for key, value in (("base_classes", base_classes), ("ways", ways), ("shots", shots)):
        if value is None:
            raise ConfigError(f"few_shot scenario needs {key}")
    base = _int_option(base_classes, name="base_classes")
    ways_, shots_ = _int_option(ways, name="ways"), _int_option(shots, name="shots")
    classes = sorted(int(c) for c in np.unique(train_targets))
    if base >= len(classes):
        raise ConfigError(f"base_classes={base} leaves no class for the sessions (the data has {len(classes)})")
    max_sessions = (len(classes) - base) // ways_
    sessions = max_sessions if n_sessions is None else _int_option(n_sessions, name="n_sessions")
    if sessions < 1 or sessions > max_sessions:
        raise ConfigError(f"base_classes={base} + n_sessions={sessions} x ways={ways_} needs "
                          f"{base + sessions * ways_} classes, the data has {len(classes)}")
    order = resolve_class_order(classes, "random" if class_order is None else class_order, rng=rng)
    groups = [order[:base]] + [order[base + i * ways_: base + (i + 1) * ways_] for i in range(sessions)]
    available = {c: int(n) for c, n in zip(*np.unique(train_targets, return_counts=True))}
    short = [c for g in groups[1:] for c in g if available[c] < shots_]
    if short:
        raise ConfigError(f"shots={shots_} but class(es) {short[:10]} have fewer training items")
    counts: dict[int, int | None] = {c: max_per_class_train for c in groups[0]}
    counts.update({c: shots_ for g in groups[1:] for c in g})
    used = base + sessions * ways_
    notes = [f"base session of {base} classes, then {sessions} sessions of {ways_}-way {shots_}-shot",
             f"{used} of {len(classes)} classes used"]
    items = {} if shot_indices is None else _check_shot_indices(shot_indices, train_targets, groups[1:], shots_)
    if items:
        notes.append("shots from the given shot_indices")
    return Plan(groups, counts, notes, items)


def _check_shot_indices(shot_indices: Any, train_targets: np.ndarray, sessions: list[list[int]],
                        shots: int) -> dict[int, list[int]]:
    """Per class, the given indices; each session's list must hold ``shots`` items of each of its classes."""
    if not isinstance(shot_indices, (list, tuple)) or len(shot_indices) != len(sessions):
        raise ConfigError(f"shot_indices must be a list of {len(sessions)} lists (one per session) of training-set "
                          f"indices, got {type(shot_indices).__name__} of length "
                          f"{len(shot_indices) if isinstance(shot_indices, (list, tuple)) else 'n/a'}")
    items: dict[int, list[int]] = {}
    n = len(train_targets)
    for i, (given, classes) in enumerate(zip(shot_indices, sessions), start=1):
        if not isinstance(given, (list, tuple)):
            raise ConfigError(f"shot_indices[{i - 1}] must be a list of indices, got {given!r}")
        idx = [_int_option(v, name=f"shot_indices[{i - 1}][]", minimum=0) for v in given]
        bad = [v for v in idx if v >= n]
        if bad:
            raise ConfigError(f"shot_indices[{i - 1}] holds indices {bad[:5]} beyond the {n} training items")
        per: dict[int, list[int]] = {}
        for v in idx:
            per.setdefault(int(train_targets[v]), []).append(v)
        if sorted(per) != sorted(classes) or any(len(set(v)) != shots for v in per.values()):
            raise ConfigError(f"shot_indices[{i - 1}] must hold {shots} distinct items of each class of session {i} "
                              f"{sorted(classes)}; it holds classes {sorted(per)} with counts "
                              f"{[len(set(v)) for v in per.values()]}")
        items.update({c: sorted(set(v)) for c, v in per.items()})
    return items


@SCENARIOS.register("long_tailed")
def long_tailed(
    train_targets: np.ndarray,
    *,
    rng: np.random.Generator,
    max_per_class_train: int | None,
    imbalance_ratio: float | None = None,
    natural: bool = False,
    n_experiences: int | None = None,
    classes_per_experience: list[list[int]] | None = None,
    class_order: str | list[int] | None = None,
    leftover: str = "error",
) -> Plan:
    """Plan a long-tailed class-incremental stream.

    With ``imbalance_ratio`` (>= 1), the class of label rank ``c`` among the used classes keeps
    ``floor(n_max * ratio ** (-c / (C - 1)))`` items (clipped to what it has), ``n_max`` being
    ``max_per_class_train`` or the largest class. With ``natural: true`` each class keeps its own count; a
    ``max_per_class_train`` then scales all counts by ``max_per_class_train / largest`` (at least 1), keeping the
    profile. ``class_order`` ``"fixed"`` gives the "ordered" stream (head classes first), ``"random"`` the
    "shuffled" one.

    Args:
        imbalance_ratio: Largest over smallest class count of the exponential profile (>= 1).
        natural: Keep each class's own count instead (exactly one of the two is given).
        n_experiences: Cut the classes into this many experiences of equal size.
        classes_per_experience: Instead, the dataset labels of each experience (a list of lists).
        class_order: ``"random"`` (seeded, default), ``"fixed"`` (ascending labels) or a list of dataset labels.
        leftover: Where classes go that do not divide: ``error`` (default), ``first`` or ``last`` experience.
    """
    if not isinstance(natural, bool):
        raise ConfigError(f"natural must be true or false, got {natural!r}")
    if (imbalance_ratio is None) == (not natural):
        raise ConfigError("long_tailed scenario needs exactly one of imbalance_ratio (a number >= 1) or natural: true")
    classes = sorted(int(c) for c in np.unique(train_targets))
    groups = _groups(classes, rng=rng, n_experiences=n_experiences, classes_per_experience=classes_per_experience,
                     class_order=class_order, leftover=leftover)
    used = sorted(c for g in groups for c in g)
    available = {c: int(n) for c, n in zip(*np.unique(train_targets, return_counts=True))}
    largest = max(available[c] for c in used)
    if natural:
        scale = 1.0 if max_per_class_train is None else min(1.0, max_per_class_train / largest)
        counts: dict[int, int | None] = {c: max(1, int(np.floor(available[c] * scale))) for c in used}
        profile = "natural imbalance of the data"
    else:
        if isinstance(imbalance_ratio, bool) or not isinstance(imbalance_ratio, (int, float)) or imbalance_ratio < 1:
            raise ConfigError(f"imbalance_ratio must be a number >= 1, got {imbalance_ratio!r}")
        n_max = largest if max_per_class_train is None else max_per_class_train
        target = exponential_counts(n_max, float(imbalance_ratio), len(used))
        counts = {c: min(t, available[c]) for c, t in zip(used, target)}
        profile = f"exponential profile, imbalance ratio {imbalance_ratio:g}, n_max {n_max}"
    kept = [int(v) for v in counts.values() if v is not None]
    notes = [f"{profile}: {max(kept)} to {min(kept)} training items per class (ratio {max(kept) / min(kept):.1f})"]
    return Plan(groups, counts, notes)


def kind_options(kind: str) -> list[str]:
    """The spec keys a scenario kind accepts (its keyword options)."""
    return list(SCENARIOS.options(kind))
