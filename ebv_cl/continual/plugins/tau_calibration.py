"""Choose the tau of the ``tau_norm`` head on held-out training data of every class seen so far.

At the start of each experience a seeded fraction of each class's training samples (capped per class, at
least one sample left for training) is taken out of the data the strategy trains on and kept, per class.
After training, the held-out features of all classes seen so far go through ``head.calibrate`` (the
decoupling paper's grid search of tau in [0, 1]). The held-out sets are extra memory beside the replay
buffer: ``max_per_class`` bounds it.

Limitation: Avalanche's storage policies sample the replay buffer from ``strategy.experience.dataset``, the
experience's full data, so a held-out sample can enter the buffer and be trained on in later experiences.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from avalanche.core import SupervisedPlugin

from ...errors import ConfigError
from ..strategies.model import find_headed_model
from .features import collect_features

__all__ = ["TauCalibrationPlugin", "holdout_indices"]


def holdout_indices(
    targets: Sequence[int] | torch.Tensor,
    *,
    fraction: float,
    max_per_class: int,
    generator: torch.Generator,
) -> tuple[list[int], dict[int, list[int]]]:
    """Split sample indices into training and held-out ones, class by class.

    Args:
        targets: The class id of every sample.
        fraction: The share of each class to hold out (rounded up), in ``(0, 1)``.
        max_per_class: The most samples held out per class.
        generator: The seeded generator choosing the samples.

    Returns:
        ``(train_indices, held_out)``: sorted training indices, and held-out indices per class id. A class
        with a single sample holds nothing out.
    """
    t = torch.as_tensor(list(targets) if not isinstance(targets, torch.Tensor) else targets).long()
    train: list[int] = []
    held: dict[int, list[int]] = {}
    for c in t.unique().tolist():
        idx = (t == c).nonzero().flatten()
        idx = idx[torch.randperm(idx.numel(), generator=generator)]
        k = min(math.ceil(fraction * idx.numel()), max_per_class, idx.numel() - 1)
        held[int(c)] = sorted(idx[:k].tolist())
        train.extend(idx[k:].tolist())
    return sorted(train), {c: v for c, v in held.items() if v}


class TauCalibrationPlugin(SupervisedPlugin):
    """Holds out training data per class and calibrates the ``tau_norm`` head's tau after each experience.

    Args:
        fraction: The share of each class's training samples held out, in ``(0, 1)``.
        max_per_class: The most samples held out per class (>= 1).
        seed: Seeds the choice of held-out samples (experience ``i`` uses ``seed + i``).
        taus: The tau grid (``None``: the head's default 0, 0.05, ..., 1).
        experiences: Hold out and calibrate during the first ``experiences`` experiences only (``None``: all);
            later experiences train on all their data and keep the last tau (few-shot sessions).

    Raises:
        ConfigError: on a fraction outside ``(0, 1)`` or a ``max_per_class`` below 1.
    """

    def __init__(self, *, fraction: float = 0.1, max_per_class: int = 50, seed: int = 0,
                 taus: Sequence[float] | None = None, experiences: int | None = None) -> None:
        super().__init__()
        if not 0.0 < float(fraction) < 1.0:
            raise ConfigError(f"holdout_fraction must be in (0, 1), got {fraction!r}")
        if isinstance(max_per_class, bool) or not isinstance(max_per_class, int) or max_per_class < 1:
            raise ConfigError(f"holdout_max_per_class must be an int >= 1, got {max_per_class!r}")
        self.fraction = float(fraction)
        self.max_per_class = max_per_class
        self.seed = int(seed)
        self.taus = None if taus is None else [float(t) for t in taus]
        self.held_out: dict[int, Any] = {}
        self.history: list[float] = []
        self.experiences = experiences
        self._experiences = 0

    def _active(self) -> bool:
        return self.experiences is None or self._experiences < self.experiences

    def after_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        """Remove the held-out samples from ``strategy.adapted_dataset`` and keep them per class."""
        if not self._active():
            self._skipped = True
            return
        self._skipped = False
        data = strategy.adapted_dataset
        full = strategy.experience.dataset
        if len(data) != len(full):
            raise RuntimeError(
                f"tau calibration expects the experience's own training data ({len(full)} samples) but "
                f"another plugin changed it to {len(data)} samples; put TauCalibrationPlugin first"
            )
        gen = torch.Generator().manual_seed(self.seed + self._experiences)
        self._experiences += 1
        train, held = holdout_indices(list(full.targets), fraction=self.fraction,
                                      max_per_class=self.max_per_class, generator=gen)
        for c, idx in held.items():
            self.held_out[c] = full.eval().subset(idx)
        strategy.adapted_dataset = data.subset(train)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """Choose tau on the held-out samples of every class seen so far."""
        if getattr(self, "_skipped", False):
            return
        headed = find_headed_model(strategy.model)
        known = {int(c) for c in headed.head.classes}
        sets = [ds for c, ds in sorted(self.held_out.items()) if c in known]
        feats, labels = collect_features(headed.backbone, sets, batch_size=strategy.eval_mb_size,
                                         device=strategy.device)
        if labels.numel() == 0:
            return
        tau = headed.head.calibrate(feats.to(strategy.device), labels, taus=self.taus)
        self.history.append(float(tau))
