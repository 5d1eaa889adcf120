"""Class orders and their partition into experiences, as plain functions on label lists (no Avalanche).

``resolve_class_order`` turns the ``class_order`` option (``"random"`` seeded, ``"fixed"`` ascending, or an
explicit list) into a permutation of the available classes; ``partition_classes`` cuts it into experiences.
Leftover classes are never dropped: when ``n_experiences`` does not divide the number of classes, ``leftover``
decides (``"error"``, the default, raises; ``"first"``/``"last"`` put the remainder in the first/last experience).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...errors import ConfigError
from ...validation import check_positive_int

__all__ = ["LEFTOVER_MODES", "resolve_class_order", "partition_classes", "check_class_groups"]

LEFTOVER_MODES = ("error", "first", "last")


def _as_label(value: Any, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must hold integer class labels, got {value!r} ({type(value).__name__})")
    return int(value)


def resolve_class_order(classes: Sequence[int], class_order: Any, *, rng: np.random.Generator) -> list[int]:
    """Return the arrival order of ``classes``.

    Args:
        classes: The available original labels.
        class_order: ``"random"`` (a permutation drawn from ``rng``), ``"fixed"`` (ascending labels) or an explicit
            list holding every available class exactly once.
        rng: The generator for ``"random"``.

    Raises:
        ConfigError: on an unknown mode, or an explicit list with duplicates, unknown or missing classes.
    """
    available = sorted(int(c) for c in classes)
    if isinstance(class_order, str):
        if class_order == "fixed":
            return available
        if class_order == "random":
            return [available[i] for i in rng.permutation(len(available))]
        raise ConfigError(f"class_order must be 'random', 'fixed' or a list of labels, got {class_order!r}")
    if not isinstance(class_order, (list, tuple)):
        raise ConfigError(f"class_order must be 'random', 'fixed' or a list of labels, got {class_order!r}")
    order = [_as_label(c, name="class_order") for c in class_order]
    dupes = sorted({c for c in order if order.count(c) > 1})
    unknown = sorted(set(order) - set(available))
    missing = sorted(set(available) - set(order))
    if dupes or unknown or missing:
        raise ConfigError(
            f"class_order must list each of the {len(available)} available classes once: duplicates {dupes}, "
            f"unknown {unknown[:10]}, missing {missing[:10]}{'...' if len(missing) > 10 else ''}; to use a subset, "
            "give classes_per_experience"
        )
    return order


def partition_classes(order: Sequence[int], n_experiences: Any, *, leftover: str = "error") -> list[list[int]]:
    """Cut a class order into ``n_experiences`` consecutive groups.

    Args:
        order: Classes in arrival order.
        n_experiences: Number of experiences, ``1 <= n_experiences <= len(order)``.
        leftover: What to do with ``len(order) % n_experiences`` remaining classes: ``"error"`` raises,
            ``"first"``/``"last"`` adds them to the first/last experience.

    Raises:
        ConfigError: on a bad ``n_experiences`` or ``leftover``, or a remainder with ``leftover="error"``.
    """
    n_classes = len(order)
    try:
        n = check_positive_int(n_experiences, name="n_experiences", maximum=n_classes)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{err} (there are {n_classes} classes)") from None
    if leftover not in LEFTOVER_MODES:
        raise ConfigError(f"leftover must be one of {list(LEFTOVER_MODES)}, got {leftover!r}")
    base, rest = divmod(n_classes, n)
    if rest and leftover == "error":
        raise ConfigError(
            f"{n_classes} classes do not divide into n_experiences={n} ({rest} left over); choose a divisor, give "
            "classes_per_experience, or set leftover to 'first' or 'last' to add the remainder to that experience"
        )
    sizes = [base] * n
    sizes[0 if leftover == "first" else -1] += rest
    groups, start = [], 0
    for size in sizes:
        groups.append([int(c) for c in order[start:start + size]])
        start += size
    return groups


def check_class_groups(groups: Any, classes: Sequence[int]) -> list[list[int]]:
    """Validate an explicit ``classes_per_experience`` (list of non-empty, disjoint lists of available labels).

    Raises:
        ConfigError: on a wrong structure, an empty group, a repeated or an unknown label.
    """
    if not isinstance(groups, (list, tuple)) or not groups or not all(isinstance(g, (list, tuple)) for g in groups):
        raise ConfigError(f"classes_per_experience must be a non-empty list of lists of labels, got {groups!r}")
    out = [[_as_label(c, name="classes_per_experience") for c in g] for g in groups]
    empty = [i for i, g in enumerate(out) if not g]
    if empty:
        raise ConfigError(f"classes_per_experience has empty experience(s) {empty}")
    flat = [c for g in out for c in g]
    dupes = sorted({c for c in flat if flat.count(c) > 1})
    if dupes:
        raise ConfigError(f"classes_per_experience repeats class(es) {dupes}; each class arrives once")
    unknown = sorted(set(flat) - {int(c) for c in classes})
    if unknown:
        raise ConfigError(f"classes_per_experience names class(es) {unknown} absent from the training data "
                          f"(available: {len(classes)} classes)")
    return out
