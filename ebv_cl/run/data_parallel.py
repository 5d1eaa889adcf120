"""``torchrun --nproc_per_node=P -m ebv_cl run CONFIG``: every job of the run trained data-parallel by P processes.

Each process runs the sequential runner on the same jobs with the same seeds; the strategy gets
``ebv_cl.continual.distributed.DataParallelPlugin`` (``DistributedDataParallel`` through Avalanche's
``DistributedHelper``: gloo on the CPU, NCCL with ``device: cuda``, each process on ``cuda:<LOCAL_RANK>``), so
each process trains on its ``1/P`` share of every minibatch and all end each experience with the same weights.
``batch_size`` is per process: the global batch is ``P x batch_size``. Rank 0 writes the results into
``--out``; rank ``r > 0`` writes its own (equal) records into ``--out/ranks/<r>`` so they can be compared.
Rank 0 generates (or loads) the bank first and the others copy it, so every process uses the same bank.
Strategies that Avalanche cannot train data-parallel yet are refused up front, with the reason.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from .config import RunConfig

__all__ = ["world_size", "check_data_parallel", "run_data_parallel"]


def world_size() -> int:
    """The number of processes ``torchrun`` started (``WORLD_SIZE``), 1 outside ``torchrun``."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE = {os.environ['WORLD_SIZE']!r}: expected an int (set by torchrun)") from None


def check_data_parallel(config: RunConfig) -> None:
    """Refuse strategies that cannot train data-parallel yet.

    Raises:
        ConfigError: naming each such strategy and why.
    """
    from ..continual.distributed import unsupported_reason

    reasons = [f"{s.label}: {r}" for s in config.strategies if (r := unsupported_reason(s.head, s.method, s.method_options)) is not None]
    if reasons:
        raise ConfigError("these strategies cannot train data-parallel under torchrun yet: " + "; ".join(reasons)
                          + ". Run them without torchrun (or with --workers to run jobs in parallel).")


def _with_plugin(build_from_spec: Callable[..., Any], plugin: Any) -> Callable[..., Any]:
    def build(spec: Any, **kwargs: Any) -> Any:
        kwargs["plugins"] = [*kwargs.get("plugins", ()), plugin]
        return build_from_spec(spec, **kwargs)

    return build


def run_data_parallel(
    config: RunConfig, *, out_dir: str | Path, resume: bool = False, progress: bool | None = None
) -> Any:
    """Run ``config`` in this ``torchrun`` process (see the module docstring); returns this rank's folder.

    Raises:
        ConfigError: if a strategy cannot train data-parallel, or ``device`` is ``cuda`` with fewer GPUs than
            processes on this node.
    """
    check_data_parallel(config)
    from avalanche.distributed import DistributedHelper

    from ..continual.distributed import DataParallelPlugin
    from .components import default_components
    from .jobs import prepare_run
    from .results import ResultsFolder
    from .runner import resolve_device, run_config
    from .config import dump_config

    cuda = resolve_device(config.device).type == "cuda"
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        config = replace(config, device=f"cuda:{local}")
    DistributedHelper.init_distributed(random_seed=config.seeds[0], use_cuda=cuda)
    try:
        rank = DistributedHelper.rank
        out = Path(out_dir)
        if rank == 0:
            prepare_run(config, ResultsFolder(out, config_text=dump_config(config), name=config.name),
                        log=lambda m: print(m, file=sys.stderr, flush=True))
        DistributedHelper.barrier()
        if rank != 0:
            mine = out / "ranks" / str(rank)
            mine.mkdir(parents=True, exist_ok=True)
            if (out / "bank.ebv").exists() and not (mine / "bank.ebv").exists():
                shutil.copyfile(out / "bank.ebv", mine / "bank.ebv")
            out = mine
        parts = default_components()
        parts = replace(parts, build_from_spec=_with_plugin(parts.build_from_spec, DataParallelPlugin()))
        log = (lambda m: print(m, file=sys.stderr, flush=True)) if rank == 0 else (lambda m: None)
        folder = run_config(config, out_dir=out, resume=resume, components=parts, log=log,
                            progress=progress if rank == 0 else False)
        DistributedHelper.barrier()
        return folder
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
