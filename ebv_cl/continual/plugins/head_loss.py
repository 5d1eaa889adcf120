"""The criterion adapter that trains with the head's own loss (EBV's sampled softmax, margins, smoothing).

Avalanche calls ``criterion(mb_output, mb_y)``. ``HeadLoss`` reads ``mb_output`` as what the ``HeadedModel``
returned for that forward pass, by the model's mode, and nothing else:

- training mode, ``training_output="features"``: backbone features ``(B, head.in_features)``; the loss is
  ``head.training_loss(features, columns)`` (a sampled softmax scores only its sampled classes);
- training mode, ``training_output="logits"``: class-id logits ``(B, num_outputs)``; the loss is
  ``head.loss_from_logits`` of their columns (the same loss, from logits the method needed anyway);
- evaluation mode: class-id logits; the loss is their cross-entropy (what Avalanche's loss metrics expect).

An output of another shape is a ``ValueError`` naming the shape expected and the model's mode, never a silent
change of loss.
"""

from __future__ import annotations

import torch
from torch import nn

from ..strategies.model import HeadedModel

__all__ = ["HeadLoss", "read_output"]


class HeadLoss:
    """``criterion(output, targets)`` computed by the head of ``model``.

    Args:
        model: The ``HeadedModel`` whose forward produced ``output``.
    """

    def __init__(self, model: HeadedModel) -> None:
        if not isinstance(model, HeadedModel):
            raise TypeError(f"model must be a HeadedModel, got {type(model).__name__}")
        self.model = model

    def __call__(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The head's loss of one forward pass's ``output`` against class ids ``targets``.

        Args:
            output: What ``model`` returned: features or class-id logits, by its mode (module doc).
            targets: ``(B,)`` integer class ids.

        Raises:
            ValueError: if ``output`` does not have the shape the model's mode gives.
            UnknownLabelError: if a target is not a class of the head (training mode).
        """
        kind, value = read_output(self.model, output, targets.shape[0])
        if kind == "logits":
            return nn.functional.cross_entropy(value, targets.long())
        head = self.model.head
        columns = head.columns_of(targets.long()).to(output.device)
        if kind == "features":
            return head.training_loss(value, columns)
        return head.loss_from_logits(value, columns)

    def __repr__(self) -> str:
        return f"HeadLoss(head={type(self.model.head).__name__}, training_output={self.model.training_output!r})"


def read_output(model: HeadedModel, output: torch.Tensor, batch: int) -> tuple[str, torch.Tensor]:
    """What one forward pass of ``model`` returned, checked against the model's mode (module doc).

    Args:
        model: The ``HeadedModel`` whose forward produced ``output``.
        output: That forward's output.
        batch: The number of samples of the mini-batch.

    Returns:
        ``("logits", class-id logits)`` in evaluation mode, ``("features", backbone features)`` in training mode
        with ``training_output="features"``, ``("columns", the head's column logits)`` in training mode with
        ``training_output="logits"``.

    Raises:
        ValueError: if ``output`` does not have the shape the model's mode gives.
    """
    if not model.training:
        _check(output, (batch, model.output_width), "class-id logits (evaluation mode)")
        return "logits", output
    if model.training_output == "features":
        _check(output, (batch, model.head.in_features), "backbone features (training mode, training_output='features')")
        return "features", output
    _check(output, (batch, model.output_width), "class-id logits (training mode, training_output='logits')")
    return "columns", model.columns(output)


def _check(output: torch.Tensor, shape: tuple[int, int], what: str) -> None:
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != shape:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"HeadLoss expected the model's {what} of shape {shape} (batch, width), got {got}; "
                         f"pass HeadLoss the HeadedModel whose output it receives, and use "
                         f"training_output='logits' where something else reads the training output")
