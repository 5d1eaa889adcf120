"""The training methods: a registry of builders, each making one stock Avalanche 0.6 strategy.

Each builder takes the prepared ``MethodParts`` (model, optimizer, criterion, the head's plugins, the common
Avalanche arguments) and returns the strategy: ``naive``, ``replay`` (``ReplayPlugin`` with a
``ClassBalancedBuffer`` or ``ReservoirSamplingBuffer``), ``lwf`` (``LwFPlugin``) and ``gdumb``
(``GDumbPlugin``) on the stock ``SupervisedTemplate``; ``der`` and ``icarl`` with Avalanche's ``DER`` and
``ICaRL`` strategies, whose logic lives in their templates. The head's plugins come first (class allocation
must precede every other callback), then the method's, then the caller's extra plugins. Lists are always
fresh: Avalanche's strategies append to the list they get.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import DER, ICaRL
from avalanche.training.plugins import GDumbPlugin, LwFPlugin, ReplayPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer, ReservoirSamplingBuffer
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from ...registry import Registry
from ..plugins import DERLogitsPlugin, KeepModelPlugin, SeenClassNCM, TauCalibrationPlugin
from ..plugins.fscil import FewShotSessionsPlugin
from ..sessions import resolve_session_update
from .model import HeadedModel
from .spec import StrategySpec

__all__ = ["FEATURE_OUTPUT_METHODS", "METHODS", "MethodParts", "list_methods", "training_output_of"]

FEATURE_OUTPUT_METHODS = frozenset({"naive", "replay", "gdumb", "fscil"})
"""Methods whose strategy reads the training output only through the criterion: their ``HeadedModel`` returns
features in training (``training_output="features"``), so the head's loss forms only the logits it scores. DER
(stored logits, its own replay loss), LwF and iCaRL (distillation) read class-id logits and get them."""


def training_output_of(method: str) -> str:
    """``"features"`` for ``FEATURE_OUTPUT_METHODS``, else ``"logits"`` (the safe default for any other method)."""
    return "features" if method in FEATURE_OUTPUT_METHODS else "logits"


@dataclass
class MethodParts:
    """What every method builder receives.

    Attributes:
        spec: The validated settings.
        model: The ``HeadedModel`` (class-id outputs of width ``spec.n_classes_total``).
        optimizer_factory: Builds the optimizer over a list of parameters.
        criterion: The loss used where the method takes a criterion (``HeadLoss``).
        head_plugins: The head's plugins (allocation first), a fresh list.
        extra_plugins: The caller's plugins, a fresh list.
        evaluator: Avalanche's evaluation plugin.
    """

    spec: StrategySpec
    model: HeadedModel
    optimizer_factory: Callable[[list[nn.Parameter]], torch.optim.Optimizer]
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    head_plugins: list[SupervisedPlugin]
    extra_plugins: list[SupervisedPlugin]
    evaluator: Any

    def common(self) -> dict[str, Any]:
        """The keyword arguments every Avalanche strategy takes."""
        return {
            "train_mb_size": self.spec.batch_size,
            "train_epochs": self.spec.epochs,
            "eval_mb_size": self.spec.eval_batch_size,
            "device": self.spec.device,
            "evaluator": self.evaluator,
        }

    def template(self, method_plugins: list[SupervisedPlugin], *, first: bool = False) -> SupervisedTemplate:
        """A stock ``SupervisedTemplate`` with the method's plugins after (or, ``first``, before) the head's."""
        plugins = (method_plugins + self.head_plugins) if first else (self.head_plugins + method_plugins)
        return SupervisedTemplate(
            model=self.model,
            optimizer=self.optimizer_factory(list(self.model.parameters())),
            criterion=self.criterion,
            plugins=plugins + self.extra_plugins,
            **self.common(),
        )


METHODS: Registry[SupervisedTemplate] = Registry("method")


@METHODS.register("naive")
def _naive(parts: MethodParts) -> SupervisedTemplate:
    """Fine-tuning: the stock template with the head's plugins only."""
    return parts.template([])


@METHODS.register("replay")
def _replay(parts: MethodParts) -> SupervisedTemplate:
    """Experience replay from a class-balanced (default) or reservoir buffer of ``buffer_size`` samples."""
    size, opts = parts.spec.buffer_size, parts.spec.method_options
    storage = (ClassBalancedBuffer(max_size=size, adaptive_size=True) if opts["storage"] == "class_balanced"
               else ReservoirSamplingBuffer(max_size=size))
    replay = ReplayPlugin(mem_size=size, batch_size_mem=opts["batch_size_mem"], storage_policy=storage)
    return parts.template([replay])


@METHODS.register("der")
def _der(parts: MethodParts) -> SupervisedTemplate:
    """Avalanche's DER++ (``alpha``: logit MSE, ``beta``: replayed CE) with padded stored logits.

    Batches that replay use DER's own loss (cross-entropy on the class-id logits plus the two replay terms),
    not the head's ``training_loss``; the head's loss is used only before the buffer can fill a replay batch.
    For ``ncm`` the logits DER sees are raw cosines (no temperature), so its cross-entropy is a weak signal.
    """
    spec, opts = parts.spec, parts.spec.method_options
    mem_batch = opts["batch_size_mem"] or min(spec.batch_size, spec.buffer_size)
    return DER(
        model=parts.model,
        optimizer=parts.optimizer_factory(list(parts.model.parameters())),
        criterion=parts.criterion,
        mem_size=spec.buffer_size,
        batch_size_mem=mem_batch,
        alpha=opts["alpha"],
        beta=opts["beta"],
        plugins=parts.head_plugins + [DERLogitsPlugin(parts.model.pad_value)] + parts.extra_plugins,
        **parts.common(),
    )


@METHODS.register("lwf")
def _lwf(parts: MethodParts) -> SupervisedTemplate:
    """Learning without Forgetting: distillation of the previous model's outputs on the old classes."""
    opts = parts.spec.method_options
    return parts.template([LwFPlugin(alpha=opts["alpha"], temperature=opts["temperature"])])


@METHODS.register("gdumb")
def _gdumb(parts: MethodParts) -> SupervisedTemplate:
    """GDumb: retrain from the initial model on a class-balanced buffer at every experience."""
    gdumb = GDumbPlugin(mem_size=parts.spec.buffer_size)
    return parts.template([gdumb, KeepModelPlugin(parts.model)], first=True)


@METHODS.register("icarl")
def _icarl(parts: MethodParts) -> SupervisedTemplate:
    """Avalanche's iCaRL: the head trains the representation; prediction is by nearest mean of exemplars.

    The strategy's model is Avalanche's ``TrainEvalModel(backbone, HeadedModel(Identity, head), NCM)``; its
    eval-mode output is iCaRL's class-id scores (classes without exemplars padded, see ``SeenClassNCM``).
    """
    spec, model = parts.spec, parts.model
    classifier = HeadedModel(nn.Identity(), model.head, num_outputs=model.num_outputs, pad_value=model.pad_value,
                             training_output="logits")  # iCaRL's loss reads the logits
    params = list(model.backbone.parameters()) + list(classifier.parameters())
    strategy = ICaRL(
        feature_extractor=model.backbone,
        classifier=classifier,
        optimizer=parts.optimizer_factory(params),
        memory_size=spec.buffer_size,
        buffer_transform=None,
        fixed_memory=spec.method_options["fixed_memory"],
        plugins=parts.head_plugins + parts.extra_plugins,
        **parts.common(),
    )
    strategy.model.eval_classifier = SeenClassNCM(normalize=True)
    return strategy


@METHODS.register("fscil")
def _fscil(parts: MethodParts) -> SupervisedTemplate:
    """The few-shot class-incremental protocol (``FewShotSessionsPlugin``): a long base session under a schedule,
    then sessions whose classes enter through the head's session update with the backbone frozen.

    tau-norm's tau is chosen on data held out in the base session only (five shots leave none to spare).
    """
    spec, opts = parts.spec, parts.spec.method_options
    for plugin in parts.head_plugins:
        if isinstance(plugin, TauCalibrationPlugin):
            plugin.experiences = 1
    sessions = FewShotSessionsPlugin(
        update=resolve_session_update(spec.head, opts["session_update"]),
        base_epochs=opts["base_epochs"] or spec.epochs,
        schedule=opts["schedule"],
        session_epochs=opts["session_epochs"],
        session_lr=opts["session_lr"] if opts["session_lr"] is not None else spec.lr / 100,
        align_steps=opts["align_steps"],
        align_lr=opts["align_lr"],
    )
    return parts.template([sessions])


def list_methods() -> list[str]:
    """The registered method names, sorted."""
    return METHODS.names()
