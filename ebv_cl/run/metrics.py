"""The continual-learning figures, computed from per-class correct counts after each experience.

After training experience ``i`` the runner counts, for every class ``c`` seen so far, how many of its test
samples are classified correctly: ``correct[i, c]`` out of ``total[c]``. Everything else follows, as fractions
in [0, 1]:

- ``accuracy_matrix[i][j]``: accuracy on the test samples of experience ``j``'s classes after training
  experience ``i``, for ``j <= i``; ``NaN`` (``null`` in JSON) for ``j > i``, classes not trained yet.
- ``seen_accuracy[i]``: accuracy on the test samples of all classes seen up to experience ``i``.
- ``avg_incremental_accuracy``: the mean of ``seen_accuracy`` over experiences (Rebuffi et al., iCaRL).
- ``final_accuracy``: ``seen_accuracy`` after the last experience.
- ``performance_drop``: ``seen_accuracy`` after the first experience minus after the last (the few-shot
  class-incremental papers' "PD": session 0 minus the last session).
- ``forgetting``: the mean over classes first seen before the last experience of the best accuracy on that
  class after any earlier experience minus its accuracy after the last one (Chaudhry et al. 2018, per class;
  negative when a class improved). ``NaN`` for a single-experience stream.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = ["class_accuracy", "accuracy_matrix", "seen_accuracy", "forgetting", "summarize", "nan_to_none"]


def _check(correct: np.ndarray, total: np.ndarray, classes_per_experience: Sequence[Sequence[int]]) -> None:
    if correct.ndim != 2 or total.ndim != 1 or correct.shape[1] != total.shape[0]:
        raise ValueError(
            f"correct must have shape (experiences, classes) and total (classes,), got {correct.shape} and "
            f"{total.shape}"
        )
    if correct.shape[0] > len(classes_per_experience):
        raise ValueError(
            f"correct has {correct.shape[0]} rows but classes_per_experience lists only "
            f"{len(classes_per_experience)} experiences"
        )


def class_accuracy(
    correct: np.ndarray, total: np.ndarray, classes_per_experience: Sequence[Sequence[int]]
) -> np.ndarray:
    """``(T, C)`` accuracy per class after each experience; ``NaN`` for classes not yet seen or without tests."""
    correct, total = np.asarray(correct, float), np.asarray(total, float)
    _check(correct, total, classes_per_experience)
    out = np.full(correct.shape, np.nan)
    seen: list[int] = []
    for i in range(correct.shape[0]):
        seen.extend(classes_per_experience[i])
        cols = [c for c in seen if total[c] > 0]
        out[i, cols] = correct[i, cols] / total[cols]
    return out


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def accuracy_matrix(
    correct: np.ndarray, total: np.ndarray, classes_per_experience: Sequence[Sequence[int]]
) -> np.ndarray:
    """``(T, T)`` accuracy on experience ``j``'s classes after experience ``i``; ``NaN`` above the diagonal."""
    correct, total = np.asarray(correct, float), np.asarray(total, float)
    _check(correct, total, classes_per_experience)
    t = correct.shape[0]
    out = np.full((t, t), np.nan)
    for i in range(t):
        for j in range(i + 1):
            cols = list(classes_per_experience[j])
            out[i, j] = _ratio(correct[i, cols].sum(), total[cols].sum())
    return out


def seen_accuracy(
    correct: np.ndarray, total: np.ndarray, classes_per_experience: Sequence[Sequence[int]]
) -> np.ndarray:
    """``(T,)`` accuracy on the test samples of every class seen up to each experience."""
    correct, total = np.asarray(correct, float), np.asarray(total, float)
    _check(correct, total, classes_per_experience)
    out = np.empty(correct.shape[0])
    seen: list[int] = []
    for i in range(correct.shape[0]):
        seen.extend(classes_per_experience[i])
        out[i] = _ratio(correct[i, seen].sum(), total[seen].sum())
    return out


def forgetting(class_acc: np.ndarray, classes_per_experience: Sequence[Sequence[int]]) -> float:
    """Mean over classes seen before the last experience of (best earlier accuracy - final accuracy)."""
    class_acc = np.asarray(class_acc, float)
    t = class_acc.shape[0]
    if t < 2:
        return math.nan
    drops = []
    for first, classes in enumerate(classes_per_experience[: t - 1]):
        for c in classes:
            earlier = class_acc[first : t - 1, c]
            best = np.nanmax(earlier) if np.isfinite(earlier).any() else np.nan
            final = class_acc[t - 1, c]
            if np.isfinite(best) and np.isfinite(final):
                drops.append(best - final)
    return float(np.mean(drops)) if drops else math.nan


def nan_to_none(value: Any) -> Any:
    """Replace NaN floats by ``None`` recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    if isinstance(value, np.ndarray):
        return nan_to_none(value.tolist())
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(float(value)) else float(value)
    return value


def summarize(
    correct: np.ndarray, total: np.ndarray, classes_per_experience: Sequence[Sequence[int]]
) -> dict[str, Any]:
    """Every figure of a run, JSON-ready (NaN as ``None``).

    Args:
        correct: ``(T, C)`` correct test predictions per class after each of ``T`` experiences.
        total: ``(C,)`` test samples per class.
        classes_per_experience: the class ids of each experience.

    Returns:
        ``accuracy_matrix``, ``seen_accuracy``, ``avg_incremental_accuracy``, ``final_accuracy``,
        ``performance_drop``, ``forgetting`` and ``class_accuracy``.
    """
    class_acc = class_accuracy(correct, total, classes_per_experience)
    seen = seen_accuracy(correct, total, classes_per_experience)
    return nan_to_none(
        {
            "accuracy_matrix": accuracy_matrix(correct, total, classes_per_experience),
            "seen_accuracy": seen,
            "avg_incremental_accuracy": float(np.mean(seen)) if seen.size else math.nan,
            "final_accuracy": float(seen[-1]) if seen.size else math.nan,
            "performance_drop": float(seen[0] - seen[-1]) if seen.size else math.nan,
            "forgetting": forgetting(class_acc, classes_per_experience),
            "class_accuracy": class_acc,
        }
    )
