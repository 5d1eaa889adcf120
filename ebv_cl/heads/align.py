"""Feature-classifier alignment: adapt a head's trainable part on a few samples plus stored class means.

In NC-FSCIL (Yang et al., ICLR 2023) the backbone is frozen after the base session and the classifier is a fixed
simplex ETF; each new session fine-tunes only the projection between them, on the session's few samples and the
stored mean features of the old classes, so the new classes move onto their fixed vectors while the old ones
stay on theirs. ``align_head`` is that step for any head whose classifier is fixed and whose projection is
trained (``ebv``, ``hadamard``): full-batch steps of Adam on the head's own ``training_loss`` over the given
features, every other parameter untouched, the head in eval mode (batch-norm statistics of the base session
are kept). ``proximity`` adds ``proximity * ||theta - theta_0||^2`` to the loss, which keeps the projection near
its weights before the session (an L2-SP penalty) so that the base classes drift less.

``solve_alignment`` is the closed-form counterpart: the last linear layer of the projection is refitted by
ridge regression so that every stored class mean (base and new) maps onto its own fixed vector, the ridge
pulling the weights towards their current values instead of towards zero. It needs no Avalanche.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from .base import ClassifierHead

__all__ = ["align_head", "solve_alignment"]


def align_head(
    head: ClassifierHead,
    features: torch.Tensor,
    labels: Iterable[Any] | torch.Tensor,
    *,
    steps: int,
    lr: float,
    weight_decay: float = 0.0,
    proximity: float = 0.0,
) -> list[float]:
    """Fine-tune the head's trainable parameters on ``features`` with its ``training_loss``.

    Args:
        head: The head (every label already added); its mode is restored afterwards.
        features: ``(n, in_features)`` features: the session's samples and the stored class means.
        labels: Their ``n`` class labels.
        steps: Full-batch Adam steps (>= 0; 0 leaves the head unchanged).
        lr: Adam's learning rate (> 0).
        weight_decay: Adam's weight decay (>= 0).
        proximity: Weight of the penalty ``sum ||p - p_0||^2`` over the trainable parameters, ``p_0`` their
            values on entry (>= 0; 0: none).

    Returns:
        The loss before each step (``steps`` values, the penalty included).

    Raises:
        ValueError: on a bad ``steps``, ``lr``, ``weight_decay`` or ``proximity``, or a label count that is not
            ``n``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not float(lr) > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not float(weight_decay) >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if not float(proximity) >= 0:
        raise ValueError(f"proximity must be >= 0, got {proximity!r}")
    x = head._check_features(features).detach()
    cols = head.columns_of(labels).to(x.device)
    if cols.numel() != x.shape[0]:
        raise ValueError(f"labels must have one entry per feature row ({x.shape[0]}), got {cols.numel()}")
    params = [p for p in head.parameters() if p.requires_grad]
    if steps == 0 or not params:
        return []
    optimizer = torch.optim.Adam(params, lr=float(lr), weight_decay=float(weight_decay))
    start = [p.detach().clone() for p in params] if proximity else []
    was_training = head.training
    head.eval()  # normalisation layers keep their base-session statistics; gradients still flow
    losses = []
    try:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = head.training_loss(x, cols)
            if proximity:
                loss = loss + float(proximity) * sum(((p - p0) ** 2).sum() for p, p0 in zip(params, start))
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    finally:
        head.train(was_training)
        optimizer.zero_grad(set_to_none=True)
    return losses


def _last_linear(projection: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """``(front, last)``: the projection split before its last ``nn.Linear`` (front: identity for a linear one)."""
    if isinstance(projection, nn.Linear):
        return nn.Identity(), projection
    if isinstance(projection, nn.Sequential) and len(projection) and isinstance(projection[-1], nn.Linear):
        return projection[:-1], projection[-1]
    raise TypeError(f"solve_alignment needs a projection that ends in nn.Linear, got {type(projection).__name__}")


@torch.no_grad()
def solve_alignment(
    head: ClassifierHead,
    means: torch.Tensor,
    labels: Iterable[Any] | torch.Tensor,
    *,
    ridge: float,
    keep: Iterable[Any] | torch.Tensor | None = None,
) -> torch.Tensor:
    """Refit the last linear layer of the head's projection so that class means map onto their fixed vectors.

    The head must compute ``normalize(bn(last(front(x))))`` against fixed ``class_vectors`` (``ebv``), ``bn``
    the optional ``feature_bn``, used with its running statistics, as in evaluation. For each class mean
    ``m_c`` the target of the normalised output is its vector ``v_c``, at the output's current length
    ``r_c = ||bn(last(front(m_c)))||`` (cosine logits ignore the length, and keeping it changes least); the
    batch norm's affine map is inverted to give the target ``t_c`` of ``last``. With ``h_c = [front(m_c), 1]``
    and ``theta = [W, b]`` the layer solves

        min_theta  sum_c ||theta h_c - t_c||^2 + lambda ||theta - theta_0||^2,
        lambda = ridge * ||H||_F^2 / (columns of H)

    in closed form: ``theta = (T^T H + lambda theta_0) (H^T H + lambda I)^-1``. ``ridge`` is relative to the
    mean eigenvalue of ``H^T H``: 0 is the least-squares fit, large values keep the layer as it was. Nothing is
    trained by gradient, so there is no step size or step count to drift with. The classes in ``keep`` take
    their current output as target instead (the older classes stay where they are; only the others move).

    Args:
        head: The head (every label already added), e.g. an ``EBVHead``.
        means: ``(C, in_features)`` mean backbone features of the classes to place.
        labels: Their ``C`` class labels.
        ridge: The proximity weight (>= 0), relative as above.
        keep: Labels (among ``labels``) whose means keep their current output (default: none).

    Returns:
        The cosine between each mean's output and its vector after the refit, ``(C,)``.

    Raises:
        TypeError: if the head has no ``projection`` ending in ``nn.Linear`` or no ``class_vectors``.
        ValueError: on a negative ``ridge`` or a label count that is not ``C``.
    """
    if not float(ridge) >= 0:
        raise ValueError(f"ridge must be >= 0, got {ridge!r}")
    projection = getattr(head, "projection", None)
    if projection is None or not hasattr(head, "class_vectors"):
        raise TypeError(f"solve_alignment needs a head with a projection and fixed class_vectors, got "
                        f"{type(head).__name__}")
    front, last = _last_linear(projection)
    x = head._check_features(means).detach()
    cols = head.columns_of(labels).to(x.device)
    if cols.numel() != x.shape[0]:
        raise ValueError(f"labels must have one entry per mean ({x.shape[0]}), got {cols.numel()}")
    bn = getattr(head, "feature_bn", None)
    was_training = head.training
    head.eval()
    try:
        hidden = front(x)
        z = last(hidden)
        if bn is None:
            gain, shift = torch.ones_like(z[0]), torch.zeros_like(z[0])
        else:
            gain = bn.running_var.add(bn.eps).rsqrt() * (bn.weight if bn.affine else 1.0)
            shift = (bn.bias if bn.affine else 0.0) - bn.running_mean * gain
        out = z * gain + shift
        vectors = head.class_vectors.index_select(0, cols).to(out)
        target = (vectors * out.norm(dim=1, keepdim=True) - shift) / gain
        if keep is not None:
            kept = torch.isin(cols, head.columns_of(keep).to(cols.device))
            target = torch.where(kept[:, None], z, target)
        h = torch.cat([hidden, hidden.new_ones(len(hidden), 1)], 1) if last.bias is not None else hidden
        theta0 = torch.cat([last.weight, last.bias[:, None]], 1) if last.bias is not None else last.weight
        h64, t64, th64 = h.double(), target.double(), theta0.double()
        gram = h64.T @ h64
        lam = float(ridge) * float(gram.diagonal().sum()) / gram.shape[0]
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        rhs = t64.T @ h64 + lam * th64
        theta = torch.linalg.lstsq(gram + lam * eye, rhs.T).solution.T if lam == 0 else \
            torch.linalg.solve(gram + lam * eye, rhs.T).T
        theta = theta.to(theta0)
        if last.bias is not None:
            last.weight.copy_(theta[:, :-1])
            last.bias.copy_(theta[:, -1])
        else:
            last.weight.copy_(theta)
        fitted = nn.functional.normalize(last(hidden) * gain + shift, dim=1)
        return (fitted * vectors).sum(1)
    finally:
        head.train(was_training)
