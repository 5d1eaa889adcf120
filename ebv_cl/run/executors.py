"""Executors of ``ebv-cl run``'s jobs, and the driver that hands them out and collects their records.

An executor takes the jobs of a run (``ebv_cl.run.jobs``) and yields ``(job, record)`` pairs as jobs finish, in
whatever order they finish, and calls ``on_wait(running_jobs)`` now and then while it waits (the driver shows
each running job's last finished experience beside the bar of finished jobs). ``InProcessExecutor`` runs them one after another in this process; ``RayExecutor``
(``ebv_cl.run.ray_executor``, Ray imported only there) runs them in parallel on a local Ray instance or a
cluster. ``run_jobs`` is the driver: it opens the results folder (or reopens it for ``--resume``), prepares what
jobs share (the bank), skips finished jobs, appends each record to ``results.json`` atomically as it arrives,
deletes the job's checkpoint, and renders ``results.md`` and ``accuracy.png`` once every job is in, records in
the sequential runner's order.
"""

from __future__ import annotations

import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

from .checkpoints import checkpoint_path, remove_checkpoint
from .config import RunConfig, dump_config
from .jobs import Job, job_log_path, plan_jobs, prepare_run, run_job
from .results import ResultsFolder

__all__ = ["Executor", "InProcessExecutor", "create_executor", "run_jobs", "running_status"]

_EXPERIENCE = re.compile(r"experience (\d+/\d+)")


class Executor(Protocol):
    """Runs jobs and yields ``(job, record)`` as each finishes."""

    def run(
        self, config: RunConfig, jobs: Sequence[Job], *, out_dir: Path, progress: bool,
        on_wait: Callable[[list[Job]], None] | None = None,
    ) -> Iterator[tuple[Job, dict[str, Any]]]: ...


class InProcessExecutor:
    """Runs the jobs one after another in this process (what ``ebv-cl run`` without ``--workers`` does)."""

    def __init__(self, *, log: Callable[[str], None] | None = None) -> None:
        self.log = log

    def run(
        self, config: RunConfig, jobs: Sequence[Job], *, out_dir: Path, progress: bool,
        on_wait: Callable[[list[Job]], None] | None = None,
    ) -> Iterator[tuple[Job, dict[str, Any]]]:
        for job in jobs:
            yield job, run_job(config, job, out_dir=out_dir, log=self.log, progress=progress)


def create_executor(workers: int, *, address: str | None = None, config: RunConfig | None = None) -> Any:
    """The Ray executor for ``--workers N`` (``--address``/``RAY_ADDRESS``: an existing cluster).

    Raises:
        ValueError: if ``workers`` is not an int >= 1.
        ImportError: if Ray is not installed (the message says what to install).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers = {workers!r}: expected an int >= 1")
    from .ray_executor import RayExecutor

    resources = {} if config is None else {"cpus_per_job": config.cpus_per_job, "gpus_per_job": config.gpus_per_job}
    return RayExecutor(workers=workers, address=address, **resources)


def running_status(out_dir: Path, jobs: Sequence[Job]) -> str:
    """``"fc+der seed 0: exp 3/5, ..."``: the last finished experience of each running job, from its log file."""
    parts = []
    for job in jobs:
        try:
            lines = job_log_path(out_dir, job).read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        done = next((m.group(1) for m in map(_EXPERIENCE.search, reversed(lines)) if m), None)
        parts.append(f"{job.name}: " + (f"exp {done}" if done else "starting"))
    return ", ".join(parts)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_jobs(
    config: RunConfig,
    *,
    out_dir: str | Path,
    executor: Any,
    resume: bool = False,
    log: Callable[[str], None] = _stderr,
    progress: bool | None = None,
) -> ResultsFolder:
    """Run every unfinished job of ``config`` on ``executor`` and write the results into ``out_dir``.

    Args:
        config: The resolved run config.
        out_dir: The results folder (created; must not hold another run unless ``resume``).
        executor: An ``InProcessExecutor``, a ``RayExecutor`` or anything with their ``run`` method.
        resume: Skip the jobs already in ``results.json``; the others continue from their checkpoints.
        log: Where the driver's progress lines go (default: stderr).
        progress: Show a bar of finished jobs (``None``: the config's ``progress``).

    Returns:
        The results folder, with ``runs`` holding every record in the sequential runner's order.

    Raises:
        ConfigError: if ``out_dir`` holds another run, or ``resume`` is asked with a different config.
    """
    from tqdm.auto import tqdm

    show = config.progress if progress is None else progress
    folder = ResultsFolder(out_dir, config_text=dump_config(config), name=config.name)
    folder.start(resume=resume)
    folder.scenario = dict(config.scenario)
    try:
        if hasattr(executor, "start"):  # Ray starts (and its workers import) while the bank is made in a thread
            with ThreadPoolExecutor(max_workers=1) as pool:
                prepared = pool.submit(prepare_run, config, folder, log=log)
                executor.start()
                prepared.result()
        else:
            prepare_run(config, folder, log=log)
    except BaseException:
        if hasattr(executor, "stop"):
            executor.stop()
        raise
    folder.write(plot=False)
    jobs = plan_jobs(config)
    todo = [j for j in jobs if not folder.finished(j.strategy, j.seed)]
    for job in jobs:
        if job not in todo:
            log(f"[{job.name}] already finished, skipped")
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="jobs finished", unit="job", disable=None
               if show else True, dynamic_ncols=True)
    try:
        def show_running(running: list[Job]) -> None:
            bar.set_postfix_str(running_status(folder.path, running), refresh=True)

        for job, record in executor.run(config, todo, out_dir=folder.path, progress=False, on_wait=show_running):
            folder.add(record, plot=False)
            remove_checkpoint(checkpoint_path(folder.checkpoint_dir, strategy=job.strategy, seed=job.seed))
            bar.update(1)
            log(f"[{job.name}] finished ({len(folder.runs)}/{len(jobs)} jobs)")
    finally:
        bar.close()
        if hasattr(executor, "stop"):
            executor.stop()  # a local Ray instance ends with the run, even when it fails
    order = {(j.strategy, j.seed): i for i, j in enumerate(jobs)}
    folder.runs.sort(key=lambda r: order.get((r["strategy"], r["seed"]), len(order)))
    folder.write(plot=True)
    return folder
