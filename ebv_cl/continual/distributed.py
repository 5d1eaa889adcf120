"""Data-parallel training of one strategy with ``torchrun``, through Avalanche's distributed support.

Under ``torchrun --nproc_per_node=P`` every process runs the same job. Avalanche's ``DistributedHelper`` opens
the process group (gloo on the CPU, NCCL on CUDA) and its data loaders then give each process a
``DistributedSampler`` share of every minibatch (``TaskBalancedDataLoader`` for the experience,
``ReplayDataLoader`` for replay); ``DataParallelPlugin`` wraps the model in ``DistributedDataParallel``
(``DistributedHelper.wrap_model``) for each experience's training and unwraps it after, so gradients are
averaged across processes and every process ends each experience with the same weights. The global batch is
``P x batch_size``.

Only what Avalanche 0.6 marks ``supports_distributed`` (and what ebv-cl's head plugins do per class, the same
on every process) is allowed: the registry entries say so (a method's ``data_parallel`` trait, a head plugin's
``data_parallel`` trait); ``unsupported_reason`` names the rest and why, and the run refuses them instead of
training them wrong.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from avalanche.core import SupervisedPlugin
from avalanche.distributed import DistributedHelper

__all__ = ["DataParallelPlugin", "unsupported_reason"]


def _reason(trait: Any) -> str | None:
    if trait is True:
        return None
    return trait if isinstance(trait, str) else "not supported by data-parallel training"


def unsupported_reason(head: str, method: str, method_options: Mapping[str, Any] | None = None) -> str | None:
    """Why ``head`` under ``method`` cannot train data-parallel yet, or ``None`` when it can.

    A method says so in its ``data_parallel`` trait (``True``, or the reason; absent: not supported; or a
    function of the method's options returning one of those, for a method whose options decide); a head is
    supported unless its ``HEAD_PLUGINS`` entry gives a reason.
    """
    from .strategies.head_plugins import HEAD_PLUGINS
    from .strategies.methods import METHODS

    trait = METHODS.traits(method).get("data_parallel")
    reason = _reason(trait(dict(method_options or {})) if callable(trait) else trait)
    if reason is not None:
        return f"method {method!r}: {reason}"
    reason = _reason(HEAD_PLUGINS.traits(head).get("data_parallel", True)) if head in HEAD_PLUGINS else None
    if reason is not None:
        return f"head {head!r}: {reason}"
    return None


class DataParallelPlugin(SupervisedPlugin, supports_distributed=True):
    """Wraps the strategy's model in ``DistributedDataParallel`` while it trains on an experience.

    Outside a ``torchrun`` process group it does nothing (``wrap_model`` returns the model itself).
    """

    def before_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        model = strategy.model
        if DistributedHelper.is_distributed and getattr(model, "training_output", None) == "features":
            strategy.model = _wrap_features_model(model)
        else:
            strategy.model = DistributedHelper.wrap_model(model)

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        strategy.model = DistributedHelper.unwrap_model(strategy.model)
        _broadcast_buffers(strategy.model)


def _wrap_features_model(model: Any) -> Any:
    """``DistributedDataParallel`` for a ``HeadedModel`` that returns features in training.

    Avalanche wraps with ``find_unused_parameters=True``: DDP then marks every parameter the forward's output
    does not reach as ready when the forward ends. The head's parameters are reached only by the loss, after
    the forward, so their gradients would mark them ready a second time (an error). Every parameter of the
    supported heads gets a gradient from the loss in every step, which is what DDP's default expects.
    """
    from torch.nn.parallel import DistributedDataParallel

    helper = DistributedHelper
    devices = {"device_ids": [helper.make_device()]} if (helper.forced_cuda_comm or helper.use_cuda) else {}
    return DistributedDataParallel(model, find_unused_parameters=False, **devices)


def _broadcast_buffers(model: Any) -> None:
    """Give every process rank 0's batch-norm running statistics.

    DDP averages gradients, so the weights agree, but each process updates its batch-norm buffers on its own
    shard in its last forward pass; without this the processes would evaluate with different statistics (the
    EBV head's MLP projection, its default from 200 classes on, has batch norm).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            for buffer in module.buffers(recurse=False):
                dist.broadcast(buffer.data, src=0)
