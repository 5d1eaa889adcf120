"""Allocate each experience's classes in the head before the model and optimizer are adapted to it.

Avalanche's ``BaseSGDTemplate._before_training_exp`` adapts the dataset, builds the data loader, then calls
``check_model_and_optimizer`` (which re-registers changed and new parameters in the optimizer), and only then
the plugins' ``before_training_exp``. So the classes are allocated in ``before_train_dataset_adaptation``:
FC's grown rows are then optimised in this very experience, and EBV takes its bank slots. All classes seen
so far are (re)allocated, in arrival order, with each experience's classes in increasing id order: a known
class keeps its column, and a head reset to its initial state (GDumb) gets the same columns back.
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.core import SupervisedPlugin

from ..strategies.model import find_headed_model

__all__ = ["ClassAllocationPlugin", "experience_classes"]


def experience_classes(experience: Any) -> list[int]:
    """The class ids of an experience, in increasing order.

    Uses ``classes_in_this_experience`` when the experience has it (``nc_benchmark`` streams), otherwise the
    distinct targets of its dataset.
    """
    classes = getattr(experience, "classes_in_this_experience", None)
    if classes is None:
        classes = torch.as_tensor(list(experience.dataset.targets)).unique().tolist()
    return sorted(int(c) for c in classes)


class ClassAllocationPlugin(SupervisedPlugin, supports_distributed=True):
    """Adds the classes of every training experience to the head inside the strategy's model."""

    def __init__(self) -> None:
        super().__init__()
        self.seen_classes: list[int] = []

    def before_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        """Allocate all classes seen so far plus the new ones of ``strategy.experience``."""
        for c in experience_classes(strategy.experience):
            if c not in self.seen_classes:
                self.seen_classes.append(c)
        find_headed_model(strategy.model).head.add_classes(self.seen_classes)
