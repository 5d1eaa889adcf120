"""The project parts a run is assembled from, looked up in one place.

The runner only knows these five entry points: ``build_scenario`` (``ebv_cl.continual.scenarios``),
``create_backbone`` (``ebv_cl.models``), ``build_from_spec`` and ``head_param_count``
(``ebv_cl.continual.strategies``) and ``predict`` (class ids from a model's logits). ``Components`` bundles
them so a test can run the runner on stand-ins; ``default_components()`` imports the real ones lazily (they pull
in Avalanche, which ``run/`` itself never imports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

__all__ = ["Components", "default_components"]


@dataclass(frozen=True)
class Components:
    """The factories a run uses (see the module docstring)."""

    build_scenario: Callable[..., Any]
    create_backbone: Callable[..., Any]
    build_from_spec: Callable[..., Any]
    head_param_count: Callable[[torch.nn.Module], int]
    predict: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]


def default_components() -> Components:
    """The real scenario, backbone and strategy factories of the project."""
    from ..continual.scenarios import build_scenario
    from ..continual.strategies import build_from_spec, head_param_count, predict_logits
    from ..models import create_backbone

    def predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return predict_logits(model, x).argmax(1)

    return Components(
        build_scenario=build_scenario,
        create_backbone=create_backbone,
        build_from_spec=build_from_spec,
        head_param_count=head_param_count,
        predict=predict,
    )
