"""The training methods: one registry entry each, carrying its builder, its options and its traits.

An entry is registered with ``METHODS.register(name, options=<settings function>, **traits)`` on its builder:

- the builder takes the prepared ``MethodParts`` (model, optimizer, criterion, the head's plugins, the common
  Avalanche arguments) and returns one stock Avalanche 0.6 strategy;
- the settings function takes the head's name (positional) and the method's options as keywords with their
  defaults, checks them and returns them normalised (``StrategySpec`` calls it; its keyword defaults are the
  documented defaults, ``ebv-cl config --schema`` reads them and its ``Args:``);
- the traits say what callers need without switching on the name: ``buffer`` (keeps a replay memory of
  ``buffer_size`` samples), ``rejects`` (heads it cannot train, each with the reason), ``data_parallel``
  (``True``, or why it cannot train under ``torchrun`` yet, or a function of the options giving either) and
  ``training_output`` (``"features"`` when the strategy reads the training output only through the criterion;
  absent: ``"logits"``).

Adding a method is one decorated builder (here or in any module that registers before the run is configured).
``naive``, ``replay`` (``ReplayPlugin`` with a ``ClassBalancedBuffer`` or ``ReservoirSamplingBuffer``),
``lwf`` (``LwFPlugin``), ``gdumb`` (``GDumbPlugin``) and ``fscil`` (``FewShotSessionsPlugin``) run on the stock
``SupervisedTemplate``; ``der`` and ``icarl`` on Avalanche's ``DER`` and ``ICaRL``, whose logic lives in their
templates. The head's plugins come first (class allocation must precede every other callback), then the
method's, then the caller's extra plugins. Lists are always fresh: Avalanche's strategies append to the list
they get. Builders import Avalanche when called, so validating a config does not import it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from ...errors import ConfigError
from ...registry import Registry
from ..sessions import resolve_session_update
from .model import HeadedModel
from .training import check_int, check_number

if TYPE_CHECKING:  # pragma: no cover
    from .spec import StrategySpec

__all__ = ["METHODS", "MethodParts", "list_methods", "method_defaults", "method_options",
           "training_output_of"]

def training_output_of(method: str) -> str:
    """The ``training_output`` of the ``HeadedModel`` a method trains (its ``training_output`` trait).

    ``"features"`` for methods whose strategy reads the training output only through the criterion (the head's
    loss then forms only the logits it scores); ``"logits"``, the safe default, for any method without the trait
    or not registered (DER stores logits, LwF and iCaRL distil them).
    """
    if method not in METHODS:
        return "logits"
    return METHODS.traits(method).get("training_output", "logits")


@dataclass
class MethodParts:
    """What every method builder receives.

    Attributes:
        spec: The validated settings.
        model: The ``HeadedModel`` (class-id outputs of width ``num_outputs``, the stream's class count).
        optimizer_factory: Builds the optimizer over a list of parameters.
        criterion: The loss used where the method takes a criterion (``HeadLoss``).
        head_plugins: The head's plugins (allocation first), a fresh list.
        extra_plugins: The caller's plugins, a fresh list.
        evaluator: Avalanche's evaluation plugin.
        device: Where the model trains.
        seed: The strategy's seed (seeds a method's own draws, e.g. replay's balanced fine-tune).
    """

    spec: StrategySpec
    model: HeadedModel
    optimizer_factory: Callable[[list[nn.Parameter]], torch.optim.Optimizer]
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    head_plugins: list[Any]
    extra_plugins: list[Any]
    evaluator: Any
    device: str = "cpu"
    seed: int = 0

    def common(self) -> dict[str, Any]:
        """The keyword arguments every Avalanche strategy takes."""
        return {
            "train_mb_size": self.spec.batch_size,
            "train_epochs": self.spec.epochs,
            "eval_mb_size": self.spec.eval_batch_size,
            "device": self.device,
            "evaluator": self.evaluator,
        }

    def template(self, method_plugins: list[Any], *, first: bool = False) -> Any:
        """A stock ``SupervisedTemplate`` with the method's plugins after (or, ``first``, before) the head's."""
        from avalanche.training.templates import SupervisedTemplate

        plugins = (method_plugins + self.head_plugins) if first else (self.head_plugins + method_plugins)
        return SupervisedTemplate(
            model=self.model,
            optimizer=self.optimizer_factory(list(self.model.parameters())),
            criterion=self.criterion,
            plugins=plugins + self.extra_plugins,
            **self.common(),
        )


METHODS: Registry[Any] = Registry("method")


def method_options(method: str, head: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """``given`` options of ``method`` (under ``head``) checked, with the defaults filled in.

    Raises:
        ValueError: on an unknown method.
        UnknownOptionError: on an option the method does not take (a ``ConfigError``; lists the valid ones).
        ConfigError: on a bad value (the method's settings function says which).
    """
    given = dict(given or {})
    METHODS.check_options(method, given)
    settings = METHODS.option_source(method)
    return {} if settings is None else dict(settings(head, **given))


def method_defaults(method: str) -> dict[str, Any]:
    """The options of ``method`` and their defaults."""
    return {name: p.default for name, p in METHODS.options(method).items()}


def _where(method: str, key: str) -> str:
    return f"{key} of method {method!r}"


def _memory_batch(method: str, value: int | None) -> int | None:
    return None if value is None else check_int(value, _where(method, "batch_size_mem"), low=1)


@METHODS.register("naive", options=False, data_parallel=True, training_output="features")
def _naive(parts: MethodParts) -> Any:
    """Fine-tuning: the stock template with the head's plugins only."""
    return parts.template([])


_STORAGES = ("class_balanced", "reservoir")


def _replay_options(head: str, /, *, storage: str = "class_balanced", batch_size_mem: int | None = None,
                    finetune_epochs: int = 0, finetune_lr: float | None = None, logit_adjustment: float = 0.0
                    ) -> dict[str, Any]:
    """The options, checked and normalised (keyword defaults are the documented defaults).

    Args:
        storage: The buffer: ``class_balanced`` (equal share per seen class) or ``reservoir`` (uniform sample).
        batch_size_mem: Replayed samples per minibatch (``null``: ``batch_size``).
        finetune_epochs: Passes of a class-balanced fine-tune of the head alone after each experience, on the
            experience's data and the memory (Decoupling's cRT; ``0``: none).
        finetune_lr: The fine-tune's learning rate (``null``: the run's ``lr``).
        logit_adjustment: Train with the logit-adjusted loss of this strength, priors counted over the
            experience's training batches (Menon et al. 2021; ``0``: the head's own loss).
    """
    if storage not in _STORAGES:
        raise ConfigError(f"{_where('replay', 'storage')} = {storage!r}: expected one of {', '.join(_STORAGES)}")
    lr = None if finetune_lr is None else check_number(finetune_lr, _where("replay", "finetune_lr"), strict=True)
    return {"storage": storage, "batch_size_mem": _memory_batch("replay", batch_size_mem),
            "finetune_epochs": check_int(finetune_epochs, _where("replay", "finetune_epochs"), low=0),
            "finetune_lr": lr,
            "logit_adjustment": check_number(logit_adjustment, _where("replay", "logit_adjustment"))}


def _replay_data_parallel(options: dict[str, Any]) -> bool | str:
    """Replay trains data-parallel, except with its balanced fine-tune, which would run on each rank apart."""
    if options.get("finetune_epochs", 0):
        return ("its balanced fine-tune (finetune_epochs > 0) would run on every rank apart and the heads would "
                "drift; not wired to data-parallel yet")
    return True


@METHODS.register("replay", options=_replay_options, buffer=True, data_parallel=_replay_data_parallel,
                  training_output="features")
def _replay(parts: MethodParts) -> Any:
    """Experience replay from a class-balanced (default) or reservoir buffer of ``buffer_size`` samples.

    Options for long-tailed streams (off by default): ``finetune_epochs`` adds a class-balanced fine-tune of the
    head after each experience (``BalancedFinetunePlugin``, Decoupling's cRT), placed before every other plugin
    so that it sees the memory before this experience's update and tau-norm calibrates the fine-tuned weights;
    ``logit_adjustment`` trains with ``LogitAdjustedLoss`` of that strength instead of the head's loss.
    """
    from avalanche.training.plugins import ReplayPlugin
    from avalanche.training.storage_policy import ClassBalancedBuffer, ReservoirSamplingBuffer

    from ..plugins.balanced_finetune import BalancedFinetunePlugin
    from ..plugins.logit_adjustment import LogitAdjustedLoss

    spec, opts = parts.spec, parts.spec.method_options
    size = spec.buffer_size
    storage = (ClassBalancedBuffer(max_size=size, adaptive_size=True) if opts["storage"] == "class_balanced"
               else ReservoirSamplingBuffer(max_size=size))
    replay = ReplayPlugin(mem_size=size, batch_size_mem=opts["batch_size_mem"], storage_policy=storage)
    method_plugins: list[Any] = [replay]
    if opts["logit_adjustment"] > 0:
        adjusted = LogitAdjustedLoss(parts.model, opts["logit_adjustment"])
        parts = replace(parts, criterion=adjusted)
        method_plugins.append(adjusted)
    strategy = parts.template(method_plugins)
    if opts["finetune_epochs"] > 0:
        lr = opts["finetune_lr"] if opts["finetune_lr"] is not None else spec.lr

        def make_optimizer(params: list[nn.Parameter]) -> torch.optim.Optimizer:
            optimizer = parts.optimizer_factory(params)
            for group in optimizer.param_groups:
                group["lr"] = lr
            return optimizer

        finetune = BalancedFinetunePlugin(epochs=opts["finetune_epochs"], batch_size=spec.batch_size,
                                          make_optimizer=make_optimizer, seed=parts.seed)
        strategy.plugins.insert(0, finetune)
    return strategy


def _der_options(head: str, /, *, alpha: float | list[float] = 0.1, beta: float = 0.5,
                 batch_size_mem: int | None = None) -> dict[str, Any]:
    """The options, checked and normalised (keyword defaults are the documented defaults).

    Args:
        alpha: Weight of the MSE between the stored and the current logits of replayed samples.
        beta: Weight of the cross-entropy on replayed samples.
        batch_size_mem: Replayed samples per minibatch (``null``: ``min(batch_size, buffer_size)``).
    """
    if isinstance(alpha, (list, tuple)):
        alpha = [check_number(a, _where("der", "alpha[]")) for a in alpha]
    else:
        alpha = check_number(alpha, _where("der", "alpha"))
    return {"alpha": alpha, "beta": check_number(beta, _where("der", "beta")),
            "batch_size_mem": _memory_batch("der", batch_size_mem)}


@METHODS.register("der", options=_der_options, buffer=True, data_parallel=(
    "Avalanche 0.6's DER template draws its buffer minibatches and stores logits per process; its buffer would "
    "differ between processes (the template has no distributed support)"))
def _der(parts: MethodParts) -> Any:
    """Avalanche's DER++ (``alpha``: logit MSE, ``beta``: replayed CE) with padded stored logits.

    Batches that replay use DER's own loss (cross-entropy on the class-id logits plus the two replay terms),
    not the head's ``training_loss``; the head's loss is used only before the buffer can fill a replay batch.
    For ``ncm`` the logits DER sees are raw cosines (no temperature), so its cross-entropy is a weak signal.
    """
    from avalanche.training import DER

    from ..plugins import DERLogitsPlugin

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


def _lwf_options(head: str, /, *, alpha: float | list[float] = 1.0, temperature: float = 2.0) -> dict[str, Any]:
    """The options, checked and normalised (keyword defaults are the documented defaults).

    Args:
        alpha: Weight of the distillation loss (a list: one weight per experience).
        temperature: Softmax temperature of the distillation.
    """
    if isinstance(alpha, (list, tuple)):
        alpha = [check_number(a, _where("lwf", "alpha[]")) for a in alpha]
    else:
        alpha = check_number(alpha, _where("lwf", "alpha"))
    return {"alpha": alpha, "temperature": check_number(temperature, _where("lwf", "temperature"), strict=True)}


@METHODS.register("lwf", options=_lwf_options, data_parallel=(
    "Avalanche 0.6's LwFPlugin is not marked supports_distributed (its teacher's outputs are taken on each "
    "process's shard without synchronisation)"))
def _lwf(parts: MethodParts) -> Any:
    """Learning without Forgetting: distillation of the previous model's outputs on the old classes."""
    from avalanche.training.plugins import LwFPlugin

    opts = parts.spec.method_options
    return parts.template([LwFPlugin(alpha=opts["alpha"], temperature=opts["temperature"])])


def _icarl_options(head: str, /, *, fixed_memory: bool = True) -> dict[str, Any]:
    """The options, checked and normalised (keyword defaults are the documented defaults).

    Args:
        fixed_memory: Keep ``buffer_size`` exemplars in all (``false``: ``buffer_size`` per class).
    """
    if not isinstance(fixed_memory, bool):
        raise ConfigError(f"{_where('icarl', 'fixed_memory')} = {fixed_memory!r}: expected true or false")
    return {"fixed_memory": fixed_memory}


@METHODS.register("icarl", options=_icarl_options, buffer=True, rejects={
    "ncm": "iCaRL trains the backbone through a classifier's logits (sigmoid + distillation) and then classifies "
           "by its own nearest mean of exemplars; the ncm head has no trainable classifier to give those logits, "
           "so 'ncm+icarl' would be iCaRL without its training classifier. Use icarl with fc (the original "
           "iCaRL), ebv, hadamard or angular, or ncm with replay",
    "tau_norm": "tau-norm only rescales the classifier used at prediction time, and iCaRL predicts with its own "
                "nearest mean of exemplars instead, so 'tau_norm+icarl' would silently be 'fc+icarl'. Use fc+icarl",
}, data_parallel=(
    "Avalanche 0.6's ICaRL template computes exemplars and class means on each process's data and does not "
    "support distributed training"))
def _icarl(parts: MethodParts) -> Any:
    """Avalanche's iCaRL: the head trains the representation; prediction is by nearest mean of exemplars.

    The strategy's model is Avalanche's ``TrainEvalModel(backbone, HeadedModel(Identity, head), NCM)``; its
    eval-mode output is iCaRL's class-id scores (classes without exemplars padded, see ``SeenClassNCM``).
    """
    from avalanche.training import ICaRL

    from ..plugins import SeenClassNCM

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


@METHODS.register("gdumb", options=False, buffer=True, training_output="features", rejects={
    "tau_norm": "GDumb trains only on its buffer, which Avalanche fills from the whole experience (held-out "
                "samples included), so no unseen training data is left to choose tau on. Use tau_norm with "
                "replay, der, lwf or naive",
}, data_parallel="GDumb retrains from scratch on its buffer each experience; not wired to data-parallel here yet")
def _gdumb(parts: MethodParts) -> Any:
    """GDumb: retrain from the initial model on a class-balanced buffer at every experience."""
    from avalanche.training.plugins import GDumbPlugin

    from ..plugins import KeepModelPlugin

    gdumb = GDumbPlugin(mem_size=parts.spec.buffer_size)
    return parts.template([gdumb, KeepModelPlugin(parts.model)], first=True)


_SCHEDULES = ("cosine", "step", "none")
_ALIGN_TARGETS = ("new", "all")


def _fscil_options(head: str, /, *, base_epochs: int | None = None, schedule: str = "cosine",
                   session_epochs: int = 0, session_lr: float | None = None, session_update: str = "auto",
                   align_steps: int = 100, align_lr: float = 0.001, align_proximity: float = 0.0,
                   align_ridge: float = 0.1, align_targets: str = "new") -> dict[str, Any]:
    """The options, checked and normalised (keyword defaults are the documented defaults).

    Args:
        base_epochs: Epochs of the base session (``null``: the run's ``epochs``).
        schedule: Learning-rate schedule of the base session: ``cosine``, ``step`` or ``none``.
        session_epochs: Epochs of backbone-frozen training on each later session (0: the session update only).
        session_lr: Learning rate of that training (``null``: a hundredth of the run's ``lr``).
        session_update: How the head takes in a session's classes (``auto``: the head's default).
        align_steps: Steps of the ``align`` session update.
        align_lr: Learning rate of the ``align`` session update.
        align_proximity: Weight of ``align``'s penalty on the distance to the projection's weights before the
            session (0: none).
        align_ridge: Relative ridge of the ``solve`` session update towards the last layer's current weights.
        align_targets: ``solve``'s targets: ``new`` (the session's new classes move onto their vectors, the older
            classes' means keep their outputs) or ``all`` (every stored class mean onto its vector).
    """
    where = lambda key: _where("fscil", key)  # noqa: E731
    if schedule not in _SCHEDULES:
        raise ConfigError(f"{where('schedule')} = {schedule!r}: expected one of {', '.join(_SCHEDULES)}")
    if align_targets not in _ALIGN_TARGETS:
        raise ConfigError(f"{where('align_targets')} = {align_targets!r}: expected one of "
                          f"{', '.join(_ALIGN_TARGETS)}")
    resolve_session_update(head, session_update)
    return {
        "base_epochs": None if base_epochs is None else check_int(base_epochs, where("base_epochs"), low=1),
        "schedule": schedule,
        "session_epochs": check_int(session_epochs, where("session_epochs"), low=0),
        "session_lr": None if session_lr is None else check_number(session_lr, where("session_lr"), strict=True),
        "session_update": session_update,
        "align_steps": check_int(align_steps, where("align_steps"), low=0),
        "align_lr": check_number(align_lr, where("align_lr"), strict=True),
        "align_proximity": check_number(align_proximity, where("align_proximity")),
        "align_ridge": check_number(align_ridge, where("align_ridge")),
        "align_targets": align_targets,
    }


@METHODS.register("fscil", options=_fscil_options, training_output="features")
def _fscil(parts: MethodParts) -> Any:
    """The few-shot class-incremental protocol (``FewShotSessionsPlugin``): a long base session under a schedule,
    then sessions whose classes enter through the head's session update with the backbone frozen.

    tau-norm's tau is chosen on data held out in the base session only (five shots leave none to spare).
    """
    from ..plugins import TauCalibrationPlugin
    from ..plugins.fscil import FewShotSessionsPlugin

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
        align_proximity=opts["align_proximity"],
        align_ridge=opts["align_ridge"],
        align_targets=opts["align_targets"],
    )
    return parts.template([sessions])


def list_methods() -> list[str]:
    """The registered method names, sorted."""
    return METHODS.names()
