"""Thin Avalanche plugins that connect ebv-cl heads to Avalanche 0.6 strategies.

Each plugin calls the heads' plain functions from one or two callbacks:

- ``ClassAllocationPlugin``: add each experience's classes to the head before model/optimizer adaptation.
- ``NCMMeansPlugin``: recompute the ``ncm`` head's class means from the experience data and replay buffer.
- ``TauCalibrationPlugin``: hold out training data per class and choose ``tau_norm``'s tau on it.
- ``DERLogitsPlugin``: neutralise DER's stored logits of classes that did not exist when they were stored.
- ``KeepModelPlugin``: keep the caller's model object when GDumb restarts from a copy.
- ``HeadLoss``: the criterion that calls the head's own loss on the model's features or logits (EBV's sampled
  softmax).
- ``HeadEpochAccuracy``: Avalanche's training accuracy per epoch, right also when the model returns features.
- ``SeenClassNCM``: iCaRL's nearest-mean classifier restricted to classes it has exemplars of.
- ``BalancedFinetunePlugin``: replay's class-balanced fine-tune of the head after each experience (cRT).
- ``LogitAdjustedLoss``: replay's logit-adjusted criterion, priors counted from the experience's batches.
"""

from __future__ import annotations

from .allocation import ClassAllocationPlugin, experience_classes
from .balanced_finetune import BalancedFinetunePlugin, balanced_finetune
from .buffers import replay_buffers
from .der_logits import DERLogitsPlugin
from .features import collect_features
from .head_loss import HeadLoss
from .icarl_ncm import SeenClassNCM
from .logit_adjustment import LogitAdjustedLoss
from .metrics import HeadEpochAccuracy
from .model_identity import KeepModelPlugin
from .ncm_means import NCMMeansPlugin, refresh_means
from .tau_calibration import TauCalibrationPlugin, holdout_indices

__all__ = [
    "BalancedFinetunePlugin",
    "ClassAllocationPlugin",
    "DERLogitsPlugin",
    "HeadEpochAccuracy",
    "HeadLoss",
    "KeepModelPlugin",
    "LogitAdjustedLoss",
    "NCMMeansPlugin",
    "SeenClassNCM",
    "TauCalibrationPlugin",
    "balanced_finetune",
    "collect_features",
    "experience_classes",
    "holdout_indices",
    "refresh_means",
    "replay_buffers",
]
