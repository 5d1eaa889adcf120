"""The few-shot class-incremental protocol as one Avalanche plugin: a long base session, then frozen sessions.

``FewShotSessionsPlugin`` drives a stock ``SupervisedTemplate`` through the protocol of CEC, FACT, NC-FSCIL and
TEEN, reading the session from ``strategy.experience.current_experience``:

- session 0 (the base classes): ``base_epochs`` epochs at the run's learning rate under a schedule
  (``cosine`` annealing to 0 over the session, ``step``: x0.1 at 60% and 80% of it, or ``none``); an ``ncm``
  head's means are recomputed after every epoch so its prototype loss follows the backbone. Afterwards the
  mean backbone feature of every base class is stored (the anchors of ``align``).
- sessions 1..N (K samples of each new class): the backbone's features of the session's samples (eval
  transform, eval mode) go through the head's session update (``ebv_cl.continual.sessions``: imprinting,
  class means or feature-classifier alignment), the new classes' means join the anchors, and then the model
  trains for ``session_epochs`` epochs at ``session_lr`` (default 0: the backbone stays frozen).
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.core import SupervisedPlugin

from ...errors import ConfigError
from ..sessions import apply_session_update
from ..strategies.model import find_headed_model
from .features import collect_features
from .ncm_means import refresh_means

__all__ = ["FewShotSessionsPlugin", "SCHEDULES"]

SCHEDULES = ("cosine", "step", "none")


class FewShotSessionsPlugin(SupervisedPlugin):
    """Base-session schedule, frozen-backbone session updates and the stored class means.

    Args:
        update: The resolved session update (a name of ``SESSION_UPDATES``).
        base_epochs: Epochs of the base session (>= 1).
        schedule: ``cosine``, ``step`` or ``none`` (learning rate over the base session).
        session_epochs: Epochs of training in each later session (0: backbone and head frozen but for the
            session update).
        session_lr: Learning rate of those epochs (> 0).
        align_steps: Adam steps of ``align`` (0 keeps the projection frozen).
        align_lr: Adam's learning rate in ``align``.
        align_proximity: Weight of ``align``'s penalty on the distance to the projection's weights before the
            session (>= 0; 0: none).
        align_ridge: Relative ridge of ``solve`` towards the last layer's current weights (>= 0).
        align_targets: ``solve``'s targets: ``"new"`` (default: only the session's new classes move onto their
            vectors, the older classes' means keep their current outputs) or ``"all"`` (every stored class mean
            onto its vector).

    Raises:
        ConfigError: on an unknown schedule or an out-of-range number.
    """

    def __init__(self, *, update: str, base_epochs: int, schedule: str = "cosine", session_epochs: int = 0,
                 session_lr: float = 1e-4, align_steps: int = 100, align_lr: float = 1e-3,
                 align_proximity: float = 0.0, align_ridge: float = 0.1, align_targets: str = "new") -> None:
        super().__init__()
        if schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
        if align_targets not in ("all", "new"):
            raise ConfigError(f"align_targets must be 'all' or 'new', got {align_targets!r}")
        if (base_epochs < 1 or session_epochs < 0 or align_steps < 0 or not session_lr > 0 or not align_lr > 0
                or not align_proximity >= 0 or not align_ridge >= 0):
            raise ConfigError(f"few-shot sessions need base_epochs >= 1, session_epochs >= 0, align_steps >= 0 and "
                              f"positive learning rates; got base_epochs={base_epochs}, session_epochs="
                              f"{session_epochs}, align_steps={align_steps}, session_lr={session_lr}, "
                              f"align_lr={align_lr}, align_proximity={align_proximity}, align_ridge={align_ridge} "
                              "(both >= 0)")
        self.update = update
        self.base_epochs = int(base_epochs)
        self.schedule = schedule
        self.session_epochs = int(session_epochs)
        self.session_lr = float(session_lr)
        self.options = {"align_steps": int(align_steps), "align_lr": float(align_lr),
                        "align_proximity": float(align_proximity), "align_ridge": float(align_ridge),
                        "align_targets": align_targets}
        self.anchor_means = torch.zeros(0, 0)
        self.anchor_labels = torch.zeros(0, dtype=torch.long)
        self.scheduler: Any = None
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------------------- helpers
    @staticmethod
    def _session(strategy: Any) -> int:
        return int(getattr(strategy.experience, "current_experience", 0))

    @staticmethod
    def _features(strategy: Any, dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
        data = dataset.eval() if hasattr(dataset, "eval") else dataset
        backbone = find_headed_model(strategy.model).backbone
        return collect_features(backbone, [data], batch_size=strategy.eval_mb_size, device=strategy.device)

    def _add_anchors(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        classes = labels.unique()
        means = torch.stack([feats[labels == c].mean(0) for c in classes])
        keep = ~torch.isin(self.anchor_labels, classes)
        old = self.anchor_means[keep] if self.anchor_means.numel() else means.new_zeros(0, means.shape[1])
        self.anchor_means = torch.cat([old, means])
        self.anchor_labels = torch.cat([self.anchor_labels[keep], classes])

    def _make_scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        if self.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.base_epochs)
        if self.schedule == "step":
            marks = sorted({max(1, round(self.base_epochs * f)) for f in (0.6, 0.8)})
            return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=marks, gamma=0.1)
        return None

    # ----------------------------------------------------------------------------------------- callbacks
    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """Base session: epochs and schedule. Later sessions: the head's session update, then the epochs."""
        if self._session(strategy) == 0:
            strategy.train_epochs = self.base_epochs
            self.scheduler = self._make_scheduler(strategy.optimizer)
            return
        headed = find_headed_model(strategy.model)
        feats, labels = self._features(strategy, strategy.experience.dataset)
        anchors = (self.anchor_means, self.anchor_labels) if self.anchor_labels.numel() else None
        dev = strategy.device
        apply_session_update(self.update, headed.head, feats.to(dev), labels.to(dev), anchors=anchors,
                             options=self.options)
        self._add_anchors(feats, labels)
        self.history.append({"session": self._session(strategy), "update": self.update, "samples": len(labels)})
        strategy.train_epochs = self.session_epochs
        for group in strategy.optimizer.param_groups:
            group["lr"] = self.session_lr

    def after_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        """Step the base session's schedule; keep an ``ncm`` head's means current."""
        if self._session(strategy) != 0:
            return
        if self.scheduler is not None:
            self.scheduler.step()
        if self.update == "means":
            refresh_means(strategy.model, [strategy.experience.dataset.eval()], [],
                          batch_size=strategy.eval_mb_size, device=strategy.device)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        """After the base session, store the mean feature of every base class."""
        if self._session(strategy) == 0:
            self.scheduler = None
            self._add_anchors(*self._features(strategy, strategy.experience.dataset))
