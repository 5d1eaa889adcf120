"""Data-parallel training of one strategy with ``torchrun``, through Avalanche's distributed support.

Under ``torchrun --nproc_per_node=P`` every process runs the same job. Avalanche's ``DistributedHelper`` opens
the process group (gloo on the CPU, NCCL on CUDA) and its data loaders then give each process a
``DistributedSampler`` share of every minibatch (``TaskBalancedDataLoader`` for the experience,
``ReplayDataLoader`` for replay); ``DataParallelPlugin`` wraps the model in ``DistributedDataParallel``
(``DistributedHelper.wrap_model``) for each experience's training and unwraps it after, so gradients are
averaged across processes and every process ends each experience with the same weights. The global batch is
``P x batch_size``.

Only what Avalanche 0.6 marks ``supports_distributed`` (and what ebv-cl's head plugins do per class, the same
on every process) is allowed; ``unsupported_reason`` names the rest and why, and the run refuses them instead
of training them wrong.
"""

from __future__ import annotations

from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from avalanche.distributed import DistributedHelper

__all__ = ["DataParallelPlugin", "unsupported_reason", "SUPPORTED_METHODS", "SUPPORTED_HEADS"]

SUPPORTED_METHODS = ("naive", "replay")
SUPPORTED_HEADS = ("fc", "ebv", "hadamard", "angular")

_METHOD_REASONS = {
    "der": "Avalanche 0.6's DER template draws its buffer minibatches and stores logits per process; its "
           "buffer would differ between processes (the template has no distributed support)",
    "icarl": "Avalanche 0.6's ICaRL template computes exemplars and class means on each process's data and "
             "does not support distributed training",
    "lwf": "Avalanche 0.6's LwFPlugin is not marked supports_distributed (its teacher's outputs are taken on "
           "each process's shard without synchronisation)",
    "gdumb": "GDumb retrains from scratch on its buffer each experience; not wired to data-parallel here yet",
}
_HEAD_REASONS = {
    "ncm": "the NCM head's class means would be computed from each process's share of the data, not all of it",
    "tau_norm": "tau calibration holds out data per process and picks tau on it; the processes could disagree",
}


def unsupported_reason(head: str, method: str) -> str | None:
    """Why ``head`` under ``method`` cannot train data-parallel yet, or ``None`` when it can."""
    if method not in SUPPORTED_METHODS:
        return f"method {method!r}: " + _METHOD_REASONS.get(method, "not supported by data-parallel training")
    if head not in SUPPORTED_HEADS:
        return f"head {head!r}: " + _HEAD_REASONS.get(head, "not supported by data-parallel training")
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
    EBV head's default projection has batch norm).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            for buffer in module.buffers(recurse=False):
                dist.broadcast(buffer.data, src=0)
