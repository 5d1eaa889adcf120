"""How each head takes in the classes of a few-shot session while the backbone stays frozen.

The few-shot class-incremental protocol of CEC, FACT, NC-FSCIL and TEEN trains backbone and head on the base
classes, then adds each session's classes from K samples without training the backbone. A session update
is a plain function ``update(head, features, labels, *, anchors, options)`` registered in ``SESSION_UPDATES``:

- ``imprint``: weight imprinting (``fc``, ``tau_norm``, ``angular``): the new rows are the normalised class
  means, each calibrated against the stored means of the older classes (``ebv_cl.heads.imprint``); tau-norm
  keeps the tau chosen on held-out base data.
- ``means``: nearest class mean (``ncm``): the new classes' means from their samples.
- ``align``: feature-classifier alignment (``ebv``, ``hadamard``): the new classes take their fixed vectors
  (already allocated) and the head's projection is fine-tuned on the samples plus the stored mean features of
  every older class (``ebv_cl.heads.align``, NC-FSCIL's alignment); ``align_steps: 0`` keeps it frozen;
  ``align_proximity`` adds a penalty that keeps the projection near its weights before the session.
- ``solve``: closed-form alignment (``ebv``'s default, chosen on Omniglot's validation split against ``align``):
  the last linear layer of the projection is refitted by ridge regression towards its current weights
  (``align_ridge``) so that the new classes' means land on their fixed vectors while the stored means of the
  older classes keep their outputs (``align_targets: new``; ``all`` moves every stored mean onto its vector)
  (``ebv_cl.heads.align.solve_alignment``); no gradient steps.
- ``none``: nothing (the new classes only get their allocated column).

``HEAD_UPDATES`` says which updates each head allows, the first being its default; a head it does not list
allows only ``none``. No Avalanche here.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from ..errors import ConfigError
from ..heads.align import align_head, solve_alignment
from ..heads.base import ClassifierHead
from ..heads.imprint import imprint_classes
from ..registry import Registry

__all__ = ["SESSION_UPDATES", "HEAD_UPDATES", "resolve_session_update", "apply_session_update"]

SESSION_UPDATES: Registry[None] = Registry("session update")

HEAD_UPDATES: dict[str, tuple[str, ...]] = {
    "fc": ("imprint", "none"),
    "tau_norm": ("imprint", "none"),
    "angular": ("imprint", "none"),
    "ncm": ("means",),
    "ebv": ("solve", "align", "none"),
    "hadamard": ("align", "none"),
}
"""Per head, the session updates it allows; the first is its default (``session_update: auto``)."""

Anchors = tuple[torch.Tensor, torch.Tensor]

DEFAULT_RIDGE = 0.1
"""Default ``align_ridge`` of ``solve`` (relative proximity weight)."""


@SESSION_UPDATES.register("imprint")
def _imprint(head: ClassifierHead, features: torch.Tensor, labels: torch.Tensor, *, anchors: Anchors | None,
             options: Mapping[str, Any]) -> None:
    imprint_classes(head, features, labels, anchors=anchors)


@SESSION_UPDATES.register("means")
def _means(head: ClassifierHead, features: torch.Tensor, labels: torch.Tensor, *, anchors: Anchors | None,
           options: Mapping[str, Any]) -> None:
    head.reset_means(labels.unique())  # type: ignore[attr-defined]
    head.update_means(features, labels)  # type: ignore[attr-defined]


@SESSION_UPDATES.register("align")
def _align(head: ClassifierHead, features: torch.Tensor, labels: torch.Tensor, *, anchors: Anchors | None,
           options: Mapping[str, Any]) -> None:
    if anchors is not None and anchors[1].numel():
        features = torch.cat([features, anchors[0].to(features)])
        labels = torch.cat([labels, anchors[1].to(labels.device)])
    with torch.enable_grad():
        align_head(head, features, labels, steps=int(options["align_steps"]), lr=float(options["align_lr"]),
                   proximity=float(options.get("align_proximity", 0.0)))


@SESSION_UPDATES.register("solve")
def _solve(head: ClassifierHead, features: torch.Tensor, labels: torch.Tensor, *, anchors: Anchors | None,
           options: Mapping[str, Any]) -> None:
    classes = labels.unique()
    means = torch.stack([features[labels == c].mean(0) for c in classes])
    if anchors is not None and anchors[1].numel():
        keep = ~torch.isin(anchors[1].to(labels.device), classes)
        means = torch.cat([anchors[0].to(means)[keep], means])
        classes = torch.cat([anchors[1].to(labels.device)[keep], classes])
    targets = options.get("align_targets", "new")
    keep = classes[~torch.isin(classes, labels.unique())] if targets == "new" else None
    solve_alignment(head, means, classes, ridge=float(options.get("align_ridge", DEFAULT_RIDGE)), keep=keep)


@SESSION_UPDATES.register("none")
def _none(head: ClassifierHead, features: torch.Tensor, labels: torch.Tensor, *, anchors: Anchors | None,
          options: Mapping[str, Any]) -> None:
    return None


def resolve_session_update(head: str, update: str) -> str:
    """The session update a head uses: its default for ``"auto"``, else ``update`` if the head allows it.

    Raises:
        ConfigError: on an unknown update or one the head does not allow (the message lists the allowed ones).
    """
    allowed = HEAD_UPDATES.get(head, ("none",))
    if update == "auto":
        return allowed[0]
    if update not in SESSION_UPDATES:
        raise ConfigError(f"session_update must be 'auto' or one of {', '.join(SESSION_UPDATES.names())}, "
                          f"got {update!r}")
    if update not in allowed:
        raise ConfigError(f"session_update {update!r} does not apply to head {head!r}; it allows: "
                          f"{', '.join(allowed)} (or 'auto': {allowed[0]})")
    return update


def apply_session_update(name: str, head: ClassifierHead, features: torch.Tensor, labels: torch.Tensor, *,
                         anchors: Anchors | None = None, options: Mapping[str, Any] | None = None) -> None:
    """Run the session update ``name`` on ``head`` with the session's ``features`` ``(n, d)`` and ``labels``.

    Args:
        name: A name of ``SESSION_UPDATES``.
        head: The head, the session's classes already added.
        features: ``(n, in_features)`` backbone features of the session's samples.
        labels: ``(n,)`` int64 class labels.
        anchors: ``(means, labels)`` stored mean features of the older classes (used by ``align``).
        options: ``align_steps``, ``align_lr`` and ``align_proximity`` for ``align``; ``align_ridge`` for
            ``solve``.
    """
    update: Callable[..., None] = SESSION_UPDATES.get(name)
    update(head, features, labels, anchors=anchors, options=dict(options or {}))
