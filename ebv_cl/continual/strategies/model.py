"""``HeadedModel``: a backbone and a classifier head as one module whose outputs are indexed by class id.

A head orders its output columns by class ARRIVAL; Avalanche's methods (DER's stored logits, LwF's and iCaRL's
distillation, iCaRL's one-hot targets) index outputs by class id and need a fixed output width. With
``num_outputs`` set, ``HeadedModel`` scatters the head's logits to their class ids in a ``(B, num_outputs)``
tensor and fills the ids the head does not know yet with ``PAD_LOGIT`` (a large negative constant: zero
softmax and sigmoid mass, never the argmax while a known class exists). So ``model(x).argmax(1)`` is a class
id for every head, whatever the arrival order. The last features are kept for ``HeadLoss`` (training only).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...errors import ConfigError
from ...validation import check_positive_int

__all__ = ["PAD_LOGIT", "HeadedModel", "find_headed_model", "head_param_count", "predict_logits"]

PAD_LOGIT = -1.0e4
"""The logit given to class ids a head does not know yet (finite, so MSE and KL stay finite)."""


class HeadedModel(nn.Module):
    """``head(backbone(x))``, optionally scattered to a fixed class-id output space.

    Args:
        backbone: Maps inputs to features ``(B, head.in_features)``.
        head: A ``ClassifierHead`` (``ebv_cl.heads``).
        num_outputs: The width of the output: the total number of class ids of the stream (labels must be
            ints in ``[0, num_outputs)``). ``None`` returns the head's logits in column (arrival) order.
        pad_value: The logit of class ids the head does not know yet.

    Raises:
        TypeError: if ``backbone`` or ``head`` is not an ``nn.Module``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        *,
        num_outputs: int | None = None,
        pad_value: float = PAD_LOGIT,
    ) -> None:
        super().__init__()
        for name, mod in (("backbone", backbone), ("head", head)):
            if not isinstance(mod, nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module, got {type(mod).__name__}")
        self.backbone = backbone
        self.head = head
        self.num_outputs = None if num_outputs is None else check_positive_int(num_outputs, name="num_outputs")
        self.pad_value = float(pad_value)
        self.last_features: torch.Tensor | None = None
        self._ids_cache: tuple[int, torch.Tensor] | None = None

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of inputs ``x``: ``(B, num_outputs)`` by class id, or ``(B, num_classes)`` by column."""
        feats = self.backbone(x)
        self.last_features = feats if self.training else None
        logits = self.head.prediction_logits(feats) if not self.training else self.head(feats)
        return self.scatter(logits)

    def adopt(self, other: "HeadedModel") -> None:
        """Take ``other``'s backbone and head (used after Avalanche replaced the strategy's model by a copy)."""
        self.backbone = other.backbone
        self.head = other.head
        self._ids_cache = None
        self.last_features = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["last_features"] = None  # a graph-carrying tensor cannot be deep-copied
        return state


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
