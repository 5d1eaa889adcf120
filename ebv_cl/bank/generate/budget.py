"""When an optimising generator stops, and what it remembers on the way: the best bank seen.

A ``Budget`` gathers the stopping rules shared by the optimising methods (``allpairs``, ``sparse``): a target
coherence ``alpha``, a time budget in seconds, a step budget, and a plateau rule. A ``Tracker`` applies them
during a run: it keeps the best bank seen (by exact coherence), counts steps and evaluations, drives the
optional tqdm bar that shows the current coherence, and writes the JSON-ready ``info`` of the result.

Default budget: when neither ``time_budget`` nor ``max_steps`` is given, the run is limited to
``DEFAULT_TIME_BUDGET`` (60) seconds, so a call with only ``alpha`` (or nothing) always ends.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["DEFAULT_TIME_BUDGET", "Budget", "Tracker"]

DEFAULT_TIME_BUDGET = 60.0


@dataclass(frozen=True)
class Budget:
    """The stopping rules of one optimisation run.

    Args:
        alpha: Target coherence in (0, 1): stop as soon as an exact evaluation reaches it.
        time_budget: Seconds the run may take (``None``: no time limit unless ``max_steps`` is also ``None``).
        max_steps: Optimisation steps at most.
        patience: Evaluations without a relative improvement of ``min_improvement`` before stopping (plateau).
        min_improvement: Relative decrease of the best coherence that counts as progress.
    """

    alpha: float | None = None
    time_budget: float | None = None
    max_steps: int | None = None
    patience: int = 50
    min_improvement: float = 1e-4

    @classmethod
    def create(cls, *, alpha: Any = None, time_budget: Any = None, max_steps: Any = None, **kwargs: Any) -> "Budget":
        """Validate the user's stopping rules and apply the default time budget.

        Raises:
            TypeError: if a value is not a number (or ``max_steps`` not an int).
            ValueError: if ``alpha`` is outside (0, 1), ``time_budget`` is not > 0 or ``max_steps`` < 1.
        """
        from ...validation import check_positive_int

        if alpha is not None:
            alpha = _check_number(alpha, name="alpha")
            if not 0.0 < alpha < 1.0:
                raise ValueError(f"alpha must be in (0, 1) (a target max |cos|), got {alpha}")
        if time_budget is not None:
            time_budget = _check_number(time_budget, name="time_budget")
            if not time_budget > 0.0:
                raise ValueError(f"time_budget must be > 0 seconds, got {time_budget}")
        if max_steps is not None:
            max_steps = check_positive_int(max_steps, name="max_steps")
        if time_budget is None and max_steps is None:
            time_budget = DEFAULT_TIME_BUDGET
        return cls(alpha=alpha, time_budget=time_budget, max_steps=max_steps, **kwargs)

    def fraction(self, step: int, elapsed: float) -> float:
        """How far the run is through its budget, in [0, 1], for annealing schedules.

        With a step budget the fraction depends on ``step`` only, so schedules (and results) are
        deterministic; with a time budget alone it is the elapsed share of the time.
        """
        parts = []
        if self.max_steps is not None:
            parts.append(step / self.max_steps)
        if self.time_budget is not None:
            parts.append(elapsed / self.time_budget)
        return min(1.0, max(parts)) if parts else 0.0


def _check_number(value: Any, *, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class Tracker:
    """Apply a ``Budget`` during a run and keep the best bank seen.

    Args:
        budget: The stopping rules.
        progress: Show a tqdm bar with the current and best coherence.
        desc: Label of the bar.
    """

    def __init__(self, budget: Budget, *, progress: bool = False, desc: str = "generate") -> None:
        self.budget = budget
        self.start = time.perf_counter()
        self.step = 0
        self.evaluations = 0
        self.best_coherence = math.inf
        self.best_step = 0
        self.best_vectors: torch.Tensor | None = None
        self.initial_coherence: float | None = None
        self.stop_reason: str | None = None
        self._since_improvement = 0
        self._bar = None
        # The bar counts steps against max_steps when there is one, else seconds against the time budget, so it
        # has a total and an ETA; it switches itself off when stderr is not a terminal (no carriage returns in logs).
        self._bar_seconds = budget.max_steps is None and budget.time_budget is not None
        if progress:
            from tqdm.auto import tqdm

            total = budget.time_budget if self._bar_seconds else budget.max_steps
            self._bar = tqdm(total=total, desc=desc, unit="s" if self._bar_seconds else "step", leave=False,
                             disable=None, dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{remaining} left{postfix}]"
                             if self._bar_seconds else None)

    @property
    def elapsed(self) -> float:
        """Seconds since the tracker was created."""
        return time.perf_counter() - self.start

    def fraction(self) -> float:
        """The budget fraction used so far (see ``Budget.fraction``)."""
        return self.budget.fraction(self.step, self.elapsed)

    def record(self, coherence: float, vectors: torch.Tensor) -> None:
        """Record an exact evaluation of ``vectors``; a copy is kept when it is the best so far."""
        self.evaluations += 1
        if self.initial_coherence is None:
            self.initial_coherence = coherence
        if coherence < self.best_coherence * (1.0 - self.budget.min_improvement):
            self._since_improvement = 0
        else:
            self._since_improvement += 1
        if coherence < self.best_coherence:
            self.best_coherence = coherence
            self.best_step = self.step
            self.best_vectors = vectors.detach().to("cpu", torch.float32, copy=True)
        if self._bar is not None:
            self._bar.set_postfix(coherence=f"{coherence:.4f}", best=f"{self.best_coherence:.4f}", refresh=False)

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` optimisation steps."""
        self.step += steps
        if self._bar is not None:
            if self._bar_seconds:
                self._bar.update(min(self.elapsed, self._bar.total) - self._bar.n)
            else:
                self._bar.update(steps)

    def should_stop(self) -> bool:
        """Whether a stopping rule holds; sets ``stop_reason`` to the first one that does."""
        b = self.budget
        if b.alpha is not None and self.best_coherence <= b.alpha:
            self.stop_reason = "alpha reached"
        elif b.max_steps is not None and self.step >= b.max_steps:
            self.stop_reason = "max steps"
        elif b.time_budget is not None and self.elapsed >= b.time_budget:
            self.stop_reason = "time budget"
        elif self._since_improvement >= b.patience:
            self.stop_reason = "plateau"
        return self.stop_reason is not None

    def reset_plateau(self) -> None:
        """Forget a plateau (for a method that changes its schedule instead of stopping) and clear the stop reason."""
        self._since_improvement = 0
        self.stop_reason = None

    def close(self) -> None:
        """Close the progress bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def info(self, **extra: Any) -> dict[str, Any]:
        """The JSON-ready record of the run (budget, steps, seconds, best coherence, stop reason, ``extra``)."""
        seconds = self.elapsed
        out: dict[str, Any] = {
            "steps": self.step,
            "seconds": round(seconds, 4),
            "seconds_per_step": round(seconds / self.step, 6) if self.step else None,
            "evaluations": self.evaluations,
            "initial_coherence": self.initial_coherence,
            "final_coherence": self.best_coherence,
            "best_step": self.best_step,
            "stop_reason": self.stop_reason,
            "budget": {
                "alpha": self.budget.alpha,
                "time_budget": self.budget.time_budget,
                "max_steps": self.budget.max_steps,
                "patience": self.budget.patience,
            },
        }
        out.update(extra)
        return out
