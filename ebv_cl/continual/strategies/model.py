"""``HeadedModel``: a backbone and a classifier head as one module whose outputs are indexed by class id.

A head orders its output columns by class ARRIVAL; Avalanche's methods (DER's stored logits, LwF's and iCaRL's
distillation, iCaRL's one-hot targets) index outputs by class id and need a fixed output width. With
``num_outputs`` set, ``HeadedModel`` scatters the head's logits to their class ids in a ``(B, num_outputs)``
tensor and fills the ids the head does not know yet with ``PAD_LOGIT`` (a large negative constant: zero
softmax and sigmoid mass, never the argmax while a known class exists). So ``model(x).argmax(1)`` is a class
id for every head, whatever the arrival order.

In training mode the output depends on ``training_output``: ``"logits"`` (the default) gives the same class-id
logits, which every Avalanche method and metric can read; ``"features"`` gives the backbone features
``(B, head.in_features)`` and forms no logits at all, so a head whose loss scores only some classes (EBV's
sampled softmax) never pays for the others. ``HeadLoss`` takes either, explicitly, as Avalanche's
``criterion(mb_output, mb_y)``. Use ``"features"`` only when nothing but the criterion reads the training
output: DER (stored logits), LwF and iCaRL (distillation) need ``"logits"``; Avalanche's training accuracy
reads it too (``HeadEpochAccuracy`` is the epoch accuracy that works with both).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError
from ...validation import check_positive_int

__all__ = ["PAD_LOGIT", "TRAINING_OUTPUTS", "HeadedModel", "find_headed_model", "head_param_count", "predict_logits"]

PAD_LOGIT = -1.0e4
"""The logit given to class ids a head does not know yet (finite, so MSE and KL stay finite)."""

TRAINING_OUTPUTS = ("logits", "features")
"""What ``HeadedModel`` returns in training mode (see the module doc)."""


class HeadedModel(nn.Module):
    """``head(backbone(x))``, optionally scattered to a fixed class-id output space.

    Args:
        backbone: Maps inputs to features ``(B, head.in_features)``.
        head: A ``ClassifierHead`` (``ebv_cl.heads``).
        num_outputs: The width of the output: the total number of class ids of the stream (labels must be
            ints in ``[0, num_outputs)``). ``None`` returns the head's logits in column (arrival) order.
        pad_value: The logit of class ids the head does not know yet.
        training_output: ``"logits"`` (default) or ``"features"``: what ``forward`` returns in training mode
            (module doc). Evaluation mode always returns logits.

    Raises:
        TypeError: if ``backbone`` or ``head`` is not an ``nn.Module``.
        ConfigError: on an unknown ``training_output``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        *,
        num_outputs: int | None = None,
        pad_value: float = PAD_LOGIT,
        training_output: str = "logits",
    ) -> None:
        super().__init__()
        for name, mod in (("backbone", backbone), ("head", head)):
            if not isinstance(mod, nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module, got {type(mod).__name__}")
        self.backbone = backbone
        self.head = head
        self.num_outputs = None if num_outputs is None else check_positive_int(num_outputs, name="num_outputs")
        self.pad_value = float(pad_value)
        self.training_output = training_output
        self._ids_cache: tuple[int, torch.Tensor] | None = None

    @property
    def training_output(self) -> str:
        """``"logits"`` or ``"features"``: what ``forward`` returns in training mode."""
        return self._training_output

    @training_output.setter
    def training_output(self, value: str) -> None:
        if value not in TRAINING_OUTPUTS:
            raise ConfigError(f"training_output must be one of {', '.join(TRAINING_OUTPUTS)}, got {value!r}")
        self._training_output = value

    @property
    def output_width(self) -> int:
        """The width of the logits: ``num_outputs``, or the head's class count when ``num_outputs`` is None."""
        return self.head.num_classes if self.num_outputs is None else self.num_outputs

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``(B, feature_dim)`` of inputs ``x``."""
        return self.backbone(x)

    def class_ids(self, device: torch.device | None = None) -> torch.Tensor:
        """The class id of every head column, ``int64`` of shape ``(num_classes,)``.

        Raises:
            ConfigError: if a label is not an int in ``[0, num_outputs)``.
        """
        n = self.head.num_classes
        if self._ids_cache is None or self._ids_cache[0] != n:
            labels = self.head.classes
            bad = [c for c in labels if not isinstance(c, int) or not 0 <= c < (self.num_outputs or 0)]
            if bad:
                raise ConfigError(
                    f"head labels must be int class ids in [0, {self.num_outputs}) to fill a fixed output; "
                    f"got {bad[:5]!r}"
                )
            self._ids_cache = (n, torch.tensor(labels, dtype=torch.long))
        ids = self._ids_cache[1]
        return ids if device is None else ids.to(device)

    def scatter(self, logits: torch.Tensor) -> torch.Tensor:
        """Place column logits ``(B, num_classes)`` at their class ids in ``(B, num_outputs)``."""
        if self.num_outputs is None:
            return logits
        out = logits.new_full((logits.shape[0], self.num_outputs), self.pad_value)
        # A head may give -inf to a class it cannot score yet (ncm without a mean): keep outputs finite.
        return out.index_copy(1, self.class_ids(logits.device), logits.clamp_min(self.pad_value))

    def columns(self, logits: torch.Tensor) -> torch.Tensor:
        """The head's column logits ``(B, num_classes)`` of class-id logits ``(B, num_outputs)`` (``scatter``'s inverse)."""
        if self.num_outputs is None:
            return logits
        return logits.index_select(1, self.class_ids(logits.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of inputs ``x``: ``(B, num_outputs)`` by class id, or ``(B, num_classes)`` by column.

        In training mode with ``training_output="features"``: the backbone features ``(B, head.in_features)``.
        """
        feats = self.backbone(x)
        if not self.training:
            return self.scatter(self.head.prediction_logits(feats))
        if self._training_output == "features":
            return feats
        return self.scatter(self.head(feats))

    @torch.no_grad()
    def logits_of_output(self, output: torch.Tensor) -> torch.Tensor:
        """Class-id logits of a forward's ``output`` (a training-mode ``"features"`` output is scored here).

        For metrics that read the training output (``HeadEpochAccuracy``); no gradient.
        """
        if self.training and self._training_output == "features":
            with torch.no_grad(), batch_norm_statistics_kept(self.head):
                return self.scatter(self.head(output))
        return output

    def adopt(self, other: "HeadedModel") -> None:
        """Take ``other``'s backbone and head (used after Avalanche replaced the strategy's model by a copy)."""
        self.backbone = other.backbone
        self.head = other.head
        self._ids_cache = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.pop("last_features", None)  # held by checkpoints written before training_output existed
        state.setdefault("_training_output", "logits")
        super().__setstate__(state)


@contextmanager
def batch_norm_statistics_kept(module: nn.Module) -> Iterator[None]:
    """Run a training-mode forward of ``module`` that leaves its batch norms' running statistics as they were.

    A metric that scores the training output through the head again (``logits_of_output``) must not update the
    head's running means and variances a second time in the step: that would change what the model predicts.
    """
    norms = [m for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.running_mean is not None]
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in norms]
    try:
        yield
    finally:
        for m, (mean, var, count) in zip(norms, saved):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(count)


def find_headed_model(model: nn.Module) -> HeadedModel:
    """The ``HeadedModel`` inside ``model`` (``model`` itself, or e.g. iCaRL's train classifier).

    Raises:
        TypeError: if ``model`` contains no ``HeadedModel``.
    """
    if isinstance(model, HeadedModel):
        return model
    if isinstance(model, nn.Module):
        for mod in model.modules():
            if isinstance(mod, HeadedModel):
                return mod
    raise TypeError(f"model must be or contain an ebv_cl HeadedModel, got {type(model).__name__}")


def head_param_count(model: nn.Module) -> int:
    """The number of trainable parameters of the classifier head inside ``model``."""
    return int(find_headed_model(model).head.trainable_head_params)


@torch.no_grad()
def predict_logits(model_or_strategy: Any, x: torch.Tensor) -> torch.Tensor:
    """Evaluation logits ``(B, num_outputs)`` indexed by class id: ``argmax(1)`` is the predicted class.

    Accepts a strategy (its current ``.model`` is used: GDumb and iCaRL may wrap or replace it) or a model.
    The model is put in eval mode for the call and its previous mode restored.
    """
    model = getattr(model_or_strategy, "model", model_or_strategy)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model_or_strategy must be an nn.Module or a strategy, got {type(model_or_strategy).__name__}")
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        return model(x if param is None else x.to(param.device))
    finally:
        model.train(was_training)
