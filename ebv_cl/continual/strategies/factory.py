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
from ...errors import ConfigError
from ...heads import HEADS, create_head
from ..plugins import ClassAllocationPlugin, HeadLoss, NCMMeansPlugin, TauCalibrationPlugin
from .methods import METHODS, MethodParts, training_output_of
from .model import HeadedModel
from .names import resolve_strategy_name
from .spec import StrategySpec

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


def _make_head(spec: StrategySpec, in_features: int, bank: EBVBank | None) -> nn.Module:
    kwargs = spec.head_kwargs()
    traits = HEADS.traits(spec.head)
    if traits.get("seeded"):
        kwargs.setdefault("seed", spec.seed)
    if traits.get("capacity_option") and bank is None:
        kwargs.setdefault(traits["capacity_option"], spec.n_classes_total)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        return create_head(spec.head, in_features, bank=bank, **kwargs)


def _head_plugins(spec: StrategySpec) -> list[SupervisedPlugin]:
    plugins: list[SupervisedPlugin] = []
    if spec.head == "tau_norm":
        opts = spec.plugin_options()
        plugins.append(TauCalibrationPlugin(fraction=opts["holdout_fraction"],
                                            max_per_class=opts["holdout_max_per_class"],
                                            seed=spec.seed, taus=opts["taus"]))
    plugins.append(ClassAllocationPlugin())
    if spec.head == "ncm":
        plugins.append(NCMMeansPlugin())
    return plugins


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
    bank: EBVBank | None = None,
    evaluator: EvaluationPlugin | None = None,
    plugins: Sequence[SupervisedPlugin] = (),
) -> tuple[Any, nn.Module]:
    """Build the strategy described by ``spec`` around ``backbone``.

    Args:
        spec: The validated settings.
        backbone: Maps inputs to features; must expose ``feature_dim``. Trained in place.
        bank: The EBV bank (required by ``ebv``; ``hadamard`` takes its size from it when given).
        evaluator: Avalanche's evaluation plugin; ``None`` gives a silent one (``silent_evaluator``).
        plugins: Extra plugins, appended after the strategy's own (the sequence is not modified). Under the
            ``FEATURE_OUTPUT_METHODS`` the training output is features, not logits (``HeadedModel``): a plugin
            that reads ``strategy.mb_output`` in training should go through ``model.logits_of_output``.

    Returns:
        ``(strategy, model)``: a stock Avalanche strategy and the model whose eval-mode output is indexed by
        class id (``argmax(1)`` is the prediction).

    Raises:
        ConfigError: on a backbone without ``feature_dim``, a missing bank or an invalid head option.
    """
    if not isinstance(spec, StrategySpec):
        raise TypeError(f"spec must be a StrategySpec, got {type(spec).__name__}")
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
    head = _make_head(spec, _feature_dim(backbone), bank)
    model = HeadedModel(backbone, head, num_outputs=spec.n_classes_total,
                        training_output=training_output_of(spec.method)).to(spec.device)
    parts = MethodParts(
        spec=spec,
        model=model,
        optimizer_factory=_optimizer_factory(spec),
        criterion=HeadLoss(model),
        head_plugins=_head_plugins(spec),
        extra_plugins=list(plugins),
        evaluator=evaluator if evaluator is not None else silent_evaluator(),
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
    buffer_size: int = 0,
    epochs: int = 1,
    batch_size: int = 32,
    eval_batch_size: int = 256,
    lr: float = 0.01,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    device: str | torch.device = "cpu",
    seed: int = 0,
    evaluator: EvaluationPlugin | None = None,
    plugins: Sequence[SupervisedPlugin] = (),
) -> tuple[Any, nn.Module]:
    """Build ``head`` under ``method`` as an Avalanche strategy; see ``StrategySpec`` for the settings.

    ``method=None`` (a short strategy name) means ``replay`` when ``buffer_size > 0``, else ``naive``.

    Returns:
        ``(strategy, model)``, as ``build_from_spec``.

    Raises:
        ConfigError: on an unknown head, method or option, an invalid value or a rejected pair.
    """
    if method is None:
        head, method = resolve_strategy_name(head, buffer_size=buffer_size)
    spec = StrategySpec(
        head=head, method=method, n_classes_total=n_classes_total,
        head_options=dict(head_options or {}), method_options=dict(method_options or {}),
        buffer_size=buffer_size, epochs=epochs, batch_size=batch_size, eval_batch_size=eval_batch_size,
        lr=lr, optimizer=optimizer, momentum=momentum, weight_decay=weight_decay, device=str(device), seed=seed,
    )
    return build_from_spec(spec, backbone=backbone, bank=bank, evaluator=evaluator, plugins=plugins)
