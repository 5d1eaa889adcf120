"""``build_strategy``: a head under a method as a ready Avalanche strategy, and the model to evaluate.

The factory validates the settings (``StrategySpec``), builds the head from the core registry (its
initialisation under a forked, seeded RNG, so the global RNG is neither seeded nor advanced), wraps backbone
and head in a ``HeadedModel`` whose outputs are indexed by class id, adds the head's plugins and hands
everything to the method's builder. It never seeds the global RNG: for reproducible data shuffling call
Avalanche's own ``RNGManager.set_random_seeds(seed)`` before training (``ebv-cl run`` uses
``ebv_cl.run.seeding.local_rng``).

Evaluation contract: after ``strategy.train(experience)``, ``model.eval(); model(x).argmax(1)`` is the
predicted class id for every head and method (``predict_logits(strategy, x)`` does the same and also follows
a model that a method replaced). For ``icarl`` the returned model is Avalanche's ``TrainEvalModel`` whose
eval-mode output is iCaRL's nearest-mean-of-exemplars score.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from ...bank import EBVBank
from ...errors import ConfigError, UnknownOptionError
from ...heads import HEADS, create_head
from ..plugins import HeadLoss
from .head_plugins import head_plugins
from .methods import METHODS, MethodParts, training_output_of
from .model import HeadedModel
from .names import resolve_strategy_name
from .spec import StrategySpec
from .training import TrainingSettings, check_int, training_fields

__all__ = ["build_strategy", "build_from_spec", "silent_evaluator"]


def silent_evaluator() -> EvaluationPlugin:
    """An Avalanche evaluation plugin with no metric and no logger (the runner computes its own figures)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return EvaluationPlugin(loggers=[])


def _feature_dim(backbone: nn.Module) -> int:
    dim = getattr(backbone, "feature_dim", None)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ConfigError(
            f"backbone must expose feature_dim (a positive int, the size of its output features); "
            f"got {type(backbone).__name__} with feature_dim={dim!r}"
        )
    return dim


def _make_head(spec: StrategySpec, in_features: int, bank: EBVBank | None, *, n_classes_total: int, seed: int
               ) -> nn.Module:
    kwargs = spec.head_kwargs()
    traits = HEADS.traits(spec.head)
    if traits.get("seeded"):
        kwargs.setdefault("seed", seed)
    if traits.get("capacity_option") and bank is None:
        kwargs.setdefault(traits["capacity_option"], n_classes_total)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_head(spec.head, in_features, bank=bank, **kwargs)


def _optimizer_factory(spec: StrategySpec):
    def make(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        if spec.optimizer == "adam":
            return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)

    return make


def build_from_spec(
    spec: StrategySpec,
    *,
    backbone: nn.Module,
    n_classes_total: int,
    bank: EBVBank | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    evaluator: EvaluationPlugin | None = None,
    plugins: Sequence[SupervisedPlugin] = (),
) -> tuple[Any, nn.Module]:
    """Build the strategy described by ``spec`` around ``backbone``.

    Args:
        spec: The validated settings.
        backbone: Maps inputs to features; must expose ``feature_dim``. Trained in place.
        n_classes_total: The number of class ids of the stream (outputs are indexed ``0 .. n-1``).
        bank: The EBV bank (required by heads with the ``needs_bank`` trait; a head with a ``capacity_option``
            takes its size from it when given, else from ``n_classes_total``).
        seed: Seeds the head's initialisation and the head's plugins (EBV's negative sampling, tau's held-out
            split); the global RNG is neither seeded nor advanced.
        device: Where the model trains.
        evaluator: Avalanche's evaluation plugin; ``None`` gives a silent one (``silent_evaluator``).
        plugins: Extra plugins, appended after the strategy's own (the sequence is not modified). Under methods
            with the ``training_output="features"`` trait the training output is features, not logits
            (``HeadedModel``): a plugin that reads ``strategy.mb_output`` in training should go through
            ``model.logits_of_output``.

    Returns:
        ``(strategy, model)``: a stock Avalanche strategy and the model whose eval-mode output is indexed by
        class id (``argmax(1)`` is the prediction).

    Raises:
        ConfigError: on a backbone without ``feature_dim``, a bad class count or seed, a missing bank or an
            invalid head option.
    """
    if not isinstance(spec, StrategySpec):
        raise TypeError(f"spec must be a StrategySpec, got {type(spec).__name__}")
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
    n_classes_total = check_int(n_classes_total, "n_classes_total", low=1)
    seed = check_int(seed, "seed", low=0)
    head = _make_head(spec, _feature_dim(backbone), bank, n_classes_total=n_classes_total, seed=seed)
    model = HeadedModel(backbone, head, num_outputs=n_classes_total,
                        training_output=training_output_of(spec.method)).to(str(device))
    parts = MethodParts(
        spec=spec,
        model=model,
        optimizer_factory=_optimizer_factory(spec),
        criterion=HeadLoss(model),
        head_plugins=head_plugins(spec.head, spec.plugin_options(), seed=seed),
        extra_plugins=list(plugins),
        evaluator=evaluator if evaluator is not None else silent_evaluator(),
        device=str(device),
        seed=seed,
    )
    strategy = METHODS.create(spec.method, parts)
    return strategy, strategy.model


def build_strategy(
    *,
    head: str,
    method: str | None,
    backbone: nn.Module,
    n_classes_total: int,
    bank: EBVBank | None = None,
    head_options: Mapping[str, Any] | None = None,
    method_options: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    evaluator: EvaluationPlugin | None = None,
    plugins: Sequence[SupervisedPlugin] = (),
    **training: Any,
) -> tuple[Any, nn.Module]:
    """Build ``head`` under ``method`` as an Avalanche strategy: ``StrategySpec`` then ``build_from_spec``.

    ``method=None`` (a short strategy name) means ``replay`` when ``buffer_size > 0``, else ``naive``;
    ``**training`` are the ``TrainingSettings`` (``epochs``, ``batch_size``, ``eval_batch_size``, ``optimizer``,
    ``lr``, ``momentum``, ``weight_decay``, ``buffer_size``), with their defaults when not given.

    Returns:
        ``(strategy, model)``, as ``build_from_spec``.

    Raises:
        ConfigError: on an unknown head, method or option, an invalid value or a rejected pair.
    """
    unknown = sorted(set(training) - set(training_fields()))
    if unknown:
        raise UnknownOptionError(f"build_strategy() got unknown keyword(s) {unknown}; training settings are: "
                                 f"{', '.join(training_fields())}")
    if method is None:
        buffer_size = training.get("buffer_size", TrainingSettings().buffer_size)
        head, method = resolve_strategy_name(head, buffer_size=buffer_size)
    spec = StrategySpec(head=head, method=method, head_options=dict(head_options or {}),
                        method_options=dict(method_options or {}), **training)
    return build_from_spec(spec, backbone=backbone, n_classes_total=n_classes_total, bank=bank, seed=seed,
                           device=device, evaluator=evaluator, plugins=plugins)
