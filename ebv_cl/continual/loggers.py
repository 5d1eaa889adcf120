"""Avalanche's own loggers for ``ebv-cl run``: ``loggers: [text, csv, tensorboard, wandb]`` in the run config.

Each strategy run (one strategy under one seed) gets an Avalanche ``EvaluationPlugin`` with loss and accuracy
metrics (per epoch while training; per experience and over the stream seen so far, after each experience)
and the loggers asked for, writing under ``<out>/logs/<strategy>-seed<seed>/``: ``text`` to ``log.txt``,
``csv`` to ``csv/``, ``tensorboard`` to ``tensorboard/`` (``tensorboard --logdir <out>/logs``), ``wandb`` to
the W&B project named after the run (``WANDB_MODE=offline`` keeps it local). TensorBoard and W&B are optional
packages: a config that names one that is not installed is a ``ConfigError`` saying what to install, raised
before anything trains. ebv-cl's own figures (``results.json``) do not depend on the loggers.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError

__all__ = ["LOGGERS", "check_loggers", "make_evaluator", "make_loggers"]

LOGGERS = ("text", "csv", "tensorboard", "wandb")
_PACKAGES = {"tensorboard": ("tensorboard", "pip install tensorboard"), "wandb": ("wandb", "pip install wandb")}


def check_loggers(names: Sequence[str], *, where: str = "loggers") -> None:
    """Check logger names and that their optional packages are installed (nothing is imported).

    Raises:
        ConfigError: on an unknown or repeated name, or a logger whose package is missing (naming the install).
    """
    for name in names:
        if name not in LOGGERS:
            raise ConfigError(f"{where}: unknown logger {name!r}; expected some of: {', '.join(LOGGERS)}")
        module, install = _PACKAGES.get(name, (None, None))
        if module is not None and importlib.util.find_spec(module) is None:
            raise ConfigError(f"{where}: logger {name!r} needs the {module} package, which is not installed: "
                              f"{install}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where} = {list(names)}: a logger is named twice")


def make_loggers(names: Sequence[str], *, log_dir: str | Path, run_name: str, project: str) -> list[Any]:
    """Avalanche logger instances for ``names``, writing under ``log_dir``."""
    from avalanche.logging import CSVLogger, TensorboardLogger, TextLogger, WandBLogger

    check_loggers(names)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    loggers: list[Any] = []
    for name in names:
        if name == "text":
            loggers.append(TextLogger(open(log_dir / "log.txt", "a", encoding="utf-8")))  # noqa: SIM115
        elif name == "csv":
            loggers.append(CSVLogger(log_folder=str(log_dir / "csv")))
        elif name == "tensorboard":
            loggers.append(TensorboardLogger(tb_log_dir=str(log_dir / "tensorboard")))
        else:
            loggers.append(WandBLogger(project_name=project, run_name=run_name, dir=str(log_dir),
                                       save_code=False))
    return loggers


def make_evaluator(names: Sequence[str], *, log_dir: str | Path, run_name: str, project: str) -> Any:
    """An Avalanche ``EvaluationPlugin`` with loss/accuracy metrics and the loggers ``names``."""
    from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
    from avalanche.training.plugins import EvaluationPlugin

    from .plugins.metrics import HeadEpochAccuracy  # right when the model returns features in training

    loggers = make_loggers(names, log_dir=log_dir, run_name=run_name, project=project)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return EvaluationPlugin(
            HeadEpochAccuracy(),
            accuracy_metrics(experience=True, stream=True),
            loss_metrics(epoch=True, experience=True, stream=True),
            loggers=loggers,
        )
