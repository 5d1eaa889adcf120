"""``ebv-cl run [CONFIG] [--out DIR] [--resume] [--workers N [--address A]] [key.sub=value ...]``: run a comparison.

Without CONFIG the embedded default runs (scikit-learn digits, 5 experiences of 2 classes, every head).
Results go to ``--out`` or ``./runs/<timestamp>[-<name>]``; see ``ebv_cl.run`` for the config and the results.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

__all__ = ["register"]


def _default_out(name: str | None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / (f"{stamp}-{name}" if name else stamp)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _split_args(config: str | None, overrides: list[str]) -> tuple[str | None, list[str]]:
    """Let the first positional be an override (``ebv-cl run epochs=2``) when it contains ``=``."""
    if config is not None and "=" in config and not Path(config).exists():
        return None, [config, *overrides]
    return config, overrides


def _run(args: argparse.Namespace) -> int:
    from ..run import config_from_dict, default_config, load_config, run_config

    config_path, overrides = _split_args(args.config, list(args.overrides))
    if config_path is None:
        config = config_from_dict(default_config(), overrides=overrides)
    else:
        config = load_config(config_path, overrides=overrides)
    if args.resume and args.out is None:
        raise ValueError("--resume needs --out DIR: the folder of the run to continue")
    out = Path(args.out) if args.out is not None else _default_out(config.name)
    print(f"ebv-cl run: writing results to {out}", file=sys.stderr, flush=True)
    progress = False if args.no_progress else None
    if args.address is not None and args.workers is None:
        raise ValueError(f"--address {args.address!r} needs --workers N: how many jobs to run at once on the cluster")
    from ..run.data_parallel import run_data_parallel, world_size

    if world_size() > 1:
        if args.workers is not None:
            raise ValueError("--workers runs jobs on Ray; under torchrun each job already trains data-parallel: "
                             "drop one of them")
        folder = run_data_parallel(config, out_dir=out, resume=args.resume, progress=progress)
        if folder.path != out:  # ranks > 0 print nothing
            return 0
    elif args.workers is None:
        folder = run_config(config, out_dir=out, resume=args.resume, progress=progress)
    else:
        from ..run.executors import create_executor, run_jobs

        executor = create_executor(args.workers, address=args.address, config=config)
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so a local Ray instance is stopped on kill
        try:
            folder = run_jobs(config, out_dir=out, executor=executor, resume=args.resume, progress=progress)
        finally:
            signal.signal(signal.SIGTERM, previous)
    print((out / "results.md").read_text(encoding="utf-8") if (out / "results.md").exists() else "")
    print(f"results: {folder.results_json}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand."""
    p = subparsers.add_parser(
        "run",
        help="run strategies on a continual-learning scenario and compare them",
        description="Run every strategy of CONFIG under every seed and write resolved_config.yaml, results.json, "
        "results.md and accuracy.png into the output folder. Without CONFIG, runs the embedded default "
        "(scikit-learn digits, 5 experiences of 2 classes, every head).",
    )
    p.add_argument("config", nargs="?", default=None, help="the run config (YAML); omit for the embedded default")
    p.add_argument("overrides", nargs="*", default=[], help="overrides such as epochs=2 strategies.0.method=der")
    p.add_argument("--out", default=None, help="results folder (default ./runs/<timestamp>[-<name>])")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run the (strategy, seed) jobs N at a time on Ray (needs the 'distributed' extra)")
    p.add_argument("--address", default=None,
                   help="with --workers: the Ray cluster to join (default $RAY_ADDRESS, else a local instance)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
