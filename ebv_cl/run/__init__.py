"""``ebv-cl run``: strict YAML configs, the runner, results (JSON, Markdown, plot), checkpoints and resume.

``load_config(path, overrides=[...])`` reads a config (see ``ebv_cl.run.config`` for every key),
``run_config(config, out_dir=...)`` runs it and writes ``resolved_config.yaml``, ``results.json``,
``results.md`` and ``accuracy.png``; ``run_config(..., resume=True)`` continues an interrupted run. The heavy
parts (torch, Avalanche through the strategy factories) load only when a run starts.
"""

from __future__ import annotations

from typing import Any

from .config import BackboneConfig, BankConfig, RunConfig, StrategyConfig, config_from_dict, dump_config, load_config
from .defaults import default_config

__all__ = [
    "BackboneConfig",
    "BankConfig",
    "RunConfig",
    "StrategyConfig",
    "config_from_dict",
    "default_config",
    "dump_config",
    "load_config",
    "run_config",
]


def run_config(config: RunConfig, **kwargs: Any) -> Any:
    """Run ``config``; see ``ebv_cl.run.runner.run_config``."""
    from .runner import run_config as _run_config

    return _run_config(config, **kwargs)
