"""The Ray adapter of ``ebv-cl run --workers N``: each job is one Ray task running ``ebv_cl.run.jobs.run_job``.

Without ``address`` (and no ``RAY_ADDRESS``) a local Ray instance with ``workers x cpus_per_job`` CPUs is
started on entry and stopped on exit; with one, the executor joins that cluster (whose nodes must see the run
folder at the same path: a shared filesystem) and keeps at most ``workers`` jobs in flight. Each task reserves
``cpus_per_job`` CPUs and ``gpus_per_job`` GPUs. A worker process that dies mid-job is a system failure that
Ray retries (``max_retries``); the retried job continues from its last checkpoint. Ray is imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import MissingExtraError
from .config import RunConfig
from .jobs import Job

__all__ = ["RayExecutor", "require_ray"]

# For the local instance only (a cluster keeps its own settings). Ray's 60 s register timeout gave up on worker
# processes still starting on a 2-core machine at load 20, then waited forever for workers that never came. Ray
# runs workers at niceness 15, which on a machine shared with other work gave them a sliver of the CPU (the
# 2-worker run was no faster than 1 worker at load 27); the jobs run at the same priority as the sequential run.
_LOCAL_SYSTEM_CONFIG = {"worker_register_timeout_seconds": 600, "worker_niceness": 0}

INSTALL_HINT = 'pip install "ebv-cl[distributed]" (or pip install "ray[default]")'


def require_ray() -> Any:
    """Import and return ``ray``.

    Raises:
        MissingExtraError: if Ray is not installed, saying what to install.
    """
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError(f"--workers runs jobs on Ray, which is not installed: {INSTALL_HINT}") from exc
    return ray


def _warm_up() -> int:
    """Import what every job needs (torch, Avalanche, the factories) so the first job does not wait for it."""
    from .components import default_components

    default_components()
    return os.getpid()


def _job_task(config: RunConfig, job: Job, out_dir: str, progress: bool) -> dict[str, Any]:
    from .jobs import run_job

    return run_job(config, job, out_dir=out_dir, progress=progress)


class RayExecutor:
    """Runs jobs as Ray tasks, at most ``workers`` at a time (see the module docstring).

    Args:
        workers: Jobs in flight at once (and, for a local instance, its worker processes).
        address: A Ray cluster to join (``"auto"``, ``"ray://host:10001"``, ...); default ``RAY_ADDRESS``, else
            a local instance started for this run.
        cpus_per_job: CPUs each task reserves.
        gpus_per_job: GPUs each task reserves (fractions share a GPU).
        max_retries: How often Ray re-runs a job whose worker process died.

    Raises:
        MissingExtraError: if Ray is not installed.
        ValueError: on a bad ``workers`` or resource amount.
    """

    def __init__(
        self,
        *,
        workers: int,
        address: str | None = None,
        cpus_per_job: float = 1.0,
        gpus_per_job: float = 0.0,
        max_retries: int = 3,
    ) -> None:
        self.ray = require_ray()
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers = {workers!r}: expected an int >= 1")
        for name, value in {"cpus_per_job": cpus_per_job, "gpus_per_job": gpus_per_job}.items():
            if not value >= 0:
                raise ValueError(f"{name} = {value!r}: expected a number >= 0")
        self.workers, self.cpus_per_job, self.gpus_per_job = workers, float(cpus_per_job), float(gpus_per_job)
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.max_retries = max_retries
        self._started = False
        self._warming: list[Any] = []

    def start(self) -> None:
        """Join a running Ray instance or start a local one, and warm up the workers (imports) in the background.

        ``run_jobs`` calls it before preparing the run, so the workers import while the driver makes the bank.
        """
        ray = self.ray
        if not ray.is_initialized():
            if self.address is not None:
                ray.init(address=self.address, log_to_driver=True)
            else:  # local workers inherit this process's environment (PYTHONPATH, OMP_NUM_THREADS, ...)
                cpus = max(1, round(self.workers * max(self.cpus_per_job, 1e-3)))
                gpus = None if self.gpus_per_job == 0 else int(-(-self.workers * self.gpus_per_job // 1))
                ray.init(num_cpus=cpus, num_gpus=gpus, include_dashboard=False, log_to_driver=True,
                         _system_config=_LOCAL_SYSTEM_CONFIG)
            self._started = True
        warm = ray.remote(_warm_up).options(num_cpus=self.cpus_per_job, num_gpus=self.gpus_per_job)
        self._warming = [warm.remote() for _ in range(self.workers)]

    def stop(self) -> None:
        """Stop the local Ray instance if ``start`` started it."""
        if self._started:
            self.ray.shutdown()
            self._started = False

    def run(
        self, config: RunConfig, jobs: Sequence[Job], *, out_dir: Path, progress: bool,
        on_wait: Callable[[list[Job]], None] | None = None,
    ) -> Iterator[tuple[Job, dict[str, Any]]]:
        """Yield ``(job, record)`` as Ray tasks finish; a failed job stops the run (finished ones stay written).

        ``on_wait(running_jobs)`` is called about every 2 s while waiting (the driver's progress display).
        """
        ray = self.ray
        if not ray.is_initialized():
            self.start()
        if not jobs:
            self.stop()
            return
        task = ray.remote(_job_task)
        options = {"num_cpus": self.cpus_per_job, "num_gpus": self.gpus_per_job, "max_retries": self.max_retries,
                   "retry_exceptions": False}
        pending = list(jobs)
        running: dict[Any, Job] = {}
        config_ref = ray.put(config)
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    job = pending.pop(0)
                    ref = task.options(name=f"ebv-cl {job.name}", **options).remote(config_ref, job, str(out_dir), progress)
                    running[ref] = job
                done, _ = ray.wait(list(running), num_returns=1, timeout=2.0)
                if not done:
                    if on_wait is not None:
                        on_wait(list(running.values()))
                    continue
                job = running.pop(done[0])
                yield job, ray.get(done[0])
        finally:
            for ref in running:
                ray.cancel(ref, force=True)
            self.stop()
