"""Check a run config's names and sections against the registries that own them, before any training.

The run config only knows its own keys; the scenario section (``ebv_cl.continual.scenarios``), the dataset
(``ebv_cl.data``), the backbone (``ebv_cl.models``), the heads, methods, their options and combinations
(``ebv_cl.continual.strategies``) and the bank generation method (``ebv_cl.bank``) are validated by the modules
that define them. Every failure becomes a ``ConfigError`` that says where in the config the bad value sits, so a
typo fails in a second instead of after the first strategy has trained.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import ConfigError, EbvClError

__all__ = ["validate_components", "validate_scenario", "validate_strategies"]

_ERRORS = (EbvClError, ValueError, TypeError)


def validate_scenario(spec: Mapping[str, Any]) -> None:
    """Check a scenario section with ``ebv_cl.continual.scenarios.validate_scenario_spec`` (no data is loaded).

    Raises:
        ConfigError: naming the bad key or value and the valid ones, prefixed with ``scenario:``.
    """
    from ..continual.scenarios import validate_scenario_spec

    try:
        validate_scenario_spec(spec)
    except _ERRORS as exc:
        raise ConfigError(f"scenario: {exc}") from None


def validate_strategies(config: Any) -> None:
    """Check every strategy: head, method, their pairing and options, with the run's shared settings.

    Raises:
        ConfigError: naming the strategy (``strategies[i] (label)``) and the problem.
    """
    from ..continual.strategies import StrategySpec

    for i, s in enumerate(config.strategies):
        try:
            StrategySpec(
                head=s.head, method=s.method, n_classes_total=1, head_options=dict(s.head_options),
                method_options=dict(s.method_options), buffer_size=config.buffer_size, epochs=config.epochs,
                batch_size=config.batch_size, eval_batch_size=config.eval_batch_size,
                lr=s.lr if s.lr is not None else config.lr,
                optimizer=config.optimizer, momentum=config.momentum, weight_decay=config.weight_decay,
            )
        except _ERRORS as exc:
            raise ConfigError(f"strategies[{i}] ({s.label}): {exc}") from None


def validate_components(config: Any) -> None:
    """Validate ``config``'s scenario, backbone, strategies and bank method against their registries.

    Args:
        config: A ``RunConfig``.

    Raises:
        ConfigError: naming the section and the bad value.
    """
    validate_scenario(config.scenario)
    from ..models import list_backbones

    if config.backbone.name not in list_backbones():
        raise ConfigError(
            f"backbone.name = {config.backbone.name!r}: unknown backbone; expected one of: "
            f"{', '.join(list_backbones())}"
        )
    validate_strategies(config)
    from ..continual.loggers import check_loggers

    check_loggers(config.loggers)
    from ..bank.generate import method_names

    if config.bank.path is None and config.bank.method not in method_names():
        raise ConfigError(
            f"bank.method = {config.bank.method!r}: unknown bank generation method; expected one of: "
            f"{', '.join(method_names())}"
        )
