"""A job of ``ebv-cl run``: one strategy under one seed, a plain function of the config and the run folder.

``plan_jobs(config)`` lists the jobs in the order the sequential runner takes them (seed by seed, strategies in
config order). ``run_job(config, job, out_dir=...)`` trains and evaluates that one job exactly as the sequential
runner does (same seeding, same checkpoints after every experience in ``<out_dir>/checkpoints``) and returns its
record for ``results.json``; it writes nothing else there, so any executor (this process, a Ray worker, another
machine that sees the same folder) can run it, and a job started again after a crash continues from its last
checkpoint. ``prepare_run(config, folder)`` does once, before any job starts, what jobs share: the EBV bank
(generated or loaded, saved as ``bank.ebv`` in the folder, where every job loads it) and the run's context.
Each job's progress lines are also appended to ``<out_dir>/logs/<strategy>-seed<seed>.log``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import DivergenceError
from .config import RunConfig, dump_config
from .results import ResultsFolder
from .seeding import local_rng

__all__ = ["Job", "plan_jobs", "prepare_run", "run_job", "job_log_path"]

_CACHE: dict[str, Any] = {}


@dataclass(frozen=True)
class Job:
    """One (strategy, seed) pair of a run; ``strategy`` is the strategy's label in the results."""

    strategy: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.strategy} seed {self.seed}"


def plan_jobs(config: RunConfig) -> list[Job]:
    """Every job of ``config``, seed by seed then strategy by strategy (the sequential runner's order)."""
    return [Job(s.label, seed) for seed in config.seeds for s in config.strategies]


def job_log_path(out_dir: str | Path, job: Job) -> Path:
    """The file the progress lines of ``job`` are appended to."""
    from .checkpoints import checkpoint_path

    return checkpoint_path(Path(out_dir) / "logs", strategy=job.strategy, seed=job.seed).with_suffix(".log")


def _runner(config: RunConfig, out_dir: Path, log: Callable[[str], None], progress: bool) -> Any:
    """The runner of this process for ``(config, out_dir)``: kept between jobs so a worker that runs several
    jobs of one seed builds the stream once, as the sequential runner does."""
    from .components import default_components
    from .runner import _Runner

    text = dump_config(config)
    key = f"{out_dir.resolve()}\n{text}"
    runner = _CACHE.get(key)
    if runner is None:
        _CACHE.clear()
        folder = ResultsFolder(out_dir, config_text=text, name=config.name)
        runner = _Runner(config, folder, default_components(), log, progress=progress)
        _CACHE[key] = runner
    runner.log, runner.progress = log, progress
    return runner


def prepare_run(config: RunConfig, folder: ResultsFolder, *, log: Callable[[str], None]) -> None:
    """Generate or load the run's bank into ``folder`` (when a strategy needs one) and fill its context.

    Jobs then load ``bank.ebv`` from the folder, so every job of the run uses the same bank as the sequential
    runner would.
    """
    from .components import default_components
    from .runner import _Runner, _environment, needs_bank, resolve_device

    folder.context["environment"] = _environment(resolve_device(config.device), config.threads)
    if not needs_bank(config):
        return
    runner = _Runner(config, folder, default_components(), log, progress=False)
    built = runner.scenario(config.seeds[0])
    with local_rng(config.seeds[0]):
        feature_dim = int(runner.backbone(built).feature_dim)
    runner.bank(built, feature_dim)


def run_job(
    config: RunConfig,
    job: Job,
    *,
    out_dir: str | Path,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train and evaluate one job and return its record (see ``ebv_cl.run.results``).

    Args:
        config: The resolved run config.
        job: Which strategy and seed (one of ``plan_jobs(config)``).
        out_dir: The run folder, prepared by ``prepare_run``; checkpoints go to its ``checkpoints`` folder.
        log: Where progress lines go besides the job's log file (default: stderr).
        progress: Show progress bars while training.

    Returns:
        The job's record, equal (but for ``wall_time_s``) to the one the sequential runner writes.

    Raises:
        ValueError: if ``job`` names a strategy or seed that ``config`` does not have.
    """
    strategies = {s.label: s for s in config.strategies}
    if job.strategy not in strategies or job.seed not in config.seeds:
        raise ValueError(f"job = {job!r}: expected a strategy of {sorted(strategies)} and a seed of {config.seeds}")
    out = Path(out_dir)
    log_file = job_log_path(out, job)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    echo = log or (lambda m: print(m, file=sys.stderr, flush=True))

    def both(message: str) -> None:
        with open(log_file, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%H:%M:%S')} pid {os.getpid()} {message}\n")
        echo(message)

    from .runner import failed_record, run_environment

    runner = _runner(config, out, both, progress)
    with run_environment(config.threads, both):
        both(f"[{job.name}] started")
        try:
            return runner.run_one(strategies[job.strategy], job.seed, resume=True)
        except DivergenceError as exc:  # recorded as failed, as the sequential runner does
            both(f"[{job.name}] failed: {exc}")
            return failed_record(strategies[job.strategy], job.seed, exc)
