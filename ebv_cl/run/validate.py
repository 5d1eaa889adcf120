"""Check a run config's names and sections against the registries that own them, before any training.

The run config checks its own keys and builds every strategy's ``StrategySpec`` (heads, methods, their options
and combinations, checked by ``ebv_cl.continual.strategies``); the scenario section
(``ebv_cl.continual.scenarios``), the dataset (``ebv_cl.data``), the backbone (``ebv_cl.models``) and the bank
generation method (``ebv_cl.bank``) are validated here by the modules that define them. Every failure becomes a
``ConfigError`` that says where in the config the bad value sits, so a typo fails in a second instead of after
the first strategy has trained.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import ConfigError, EbvClError

__all__ = ["validate_components", "validate_scenario"]

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


def validate_components(config: Any) -> None:
    """Validate ``config``'s scenario, backbone, loggers and bank method against their registries (its
    strategies were checked when it was built: ``RunConfig.specs``).

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
    from ..continual.loggers import check_loggers

    check_loggers(config.loggers)
    from ..bank.generate import method_names

    if config.bank.path is None and config.bank.method not in method_names():
        raise ConfigError(
            f"bank.method = {config.bank.method!r}: unknown bank generation method; expected one of: "
            f"{', '.join(method_names())}"
        )
