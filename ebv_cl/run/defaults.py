"""The embedded default job of ``ebv-cl run`` (no config file needed, no download).

scikit-learn's digits (8x8 images of 10 classes) split into 5 experiences of 2 classes, an MLP backbone and
every head under experience replay with a small class-balanced buffer, three seeds: the README's first
quick-start command. It shows what the project is for within a minute on a laptop CPU: each head's size
(``trainable head params``) beside its accuracy, and what swapping ``fc`` for each head changes, paired by
seed with a t-test verdict (which needs at least 3 seeds). Replay rather than plain fine-tuning, because
without any memory every head forgets all but the last experience and the comparison says nothing.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["DEFAULT_CONFIG", "default_config"]

DEFAULT_CONFIG: dict[str, Any] = {
    "name": "digits-default",
    "scenario": {"dataset": "digits", "kind": "class_incremental", "n_experiences": 5},
    "backbone": {"name": "mlp", "options": {}},
    "strategies": [f"{head}+replay" for head in ("fc", "ncm", "tau_norm", "ebv", "hadamard", "angular")],
    "seeds": [0, 1, 2],
    "epochs": 5,
    "batch_size": 32,
    "optimizer": "sgd",
    "lr": 0.02,
    "momentum": 0.9,
    "buffer_size": 100,
    "bank": {"n": None, "dim": None, "method": "auto", "seed": 0, "time_budget": 5.0, "path": None},
    "device": "cpu",
    "threads": 1,
}


def default_config() -> dict[str, Any]:
    """A fresh copy of the embedded default config mapping."""
    return copy.deepcopy(DEFAULT_CONFIG)
