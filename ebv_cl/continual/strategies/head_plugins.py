"""The Avalanche plugins a head brings to every method, registered per head name.

Every head gets ``ClassAllocationPlugin`` (its classes enter as experiences arrive). A head that needs more
registers here, under its own name (``ebv_cl.heads`` holds the head itself and cannot know Avalanche plugins):
the builder ``build(options, *, seed) -> (before, after)`` gives the plugins that go before and after the
allocation plugin; ``options=`` a settings function whose keyword defaults are the head options the plugins
consume (given in ``head_options`` beside the head's own, checked and returned normalised); trait
``data_parallel``: ``True``, or why the head cannot train under ``torchrun`` yet. A head without an entry has
only the allocation plugin and trains data-parallel. Builders import Avalanche when called.
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError
from ...registry import Registry
from .training import check_int, check_number

__all__ = ["HEAD_PLUGINS", "head_plugins", "plugin_defaults", "plugin_options"]

HEAD_PLUGINS: Registry[tuple[list[Any], list[Any]]] = Registry("head plugin")


def plugin_defaults(head: str) -> dict[str, Any]:
    """The head options ``head``'s plugins consume, with their defaults (empty for a head without plugins)."""
    if head not in HEAD_PLUGINS:
        return {}
    return {name: p.default for name, p in HEAD_PLUGINS.options(head).items()}


def plugin_options(head: str, given: dict[str, Any]) -> dict[str, Any]:
    """The plugin options of ``head``: ``given`` (only plugin option names) checked, defaults filled in.

    Raises:
        ConfigError: on a bad value (the entry's settings function names it).
    """
    source = HEAD_PLUGINS.option_source(head) if head in HEAD_PLUGINS else None
    return {} if source is None else dict(source(**given))


def head_plugins(head: str, options: dict[str, Any], *, seed: int) -> list[Any]:
    """The plugins of ``head``, allocation included, in callback order (a fresh list).

    Args:
        head: A head name.
        options: The plugin options (``plugin_defaults(head)`` with the given ones).
        seed: Seeds the plugins' own randomness.
    """
    from ..plugins import ClassAllocationPlugin

    before, after = HEAD_PLUGINS.get(head)(options, seed=seed) if head in HEAD_PLUGINS else ([], [])
    return [*before, ClassAllocationPlugin(), *after]


def _tau_options(*, holdout_fraction: float = 0.1, holdout_max_per_class: int = 50,
                 taus: list[float] | None = None) -> dict[str, Any]:
    """The options, checked and normalised (keyword defaults are the documented defaults).

    Args:
        holdout_fraction: (calibration plugin) The share of each class's training samples held out, in ``(0, 1)``.
        holdout_max_per_class: (calibration plugin) The most samples held out per class (>= 1).
        taus: (calibration plugin) The tau grid (``None``: the head's default 0, 0.05, ..., 1).
    """
    where = "of head 'tau_norm'"
    if taus is not None:
        if not isinstance(taus, (list, tuple)) or not taus:
            raise ConfigError(f"taus {where} = {taus!r}: expected a non-empty list of numbers >= 0 or null")
        taus = [check_number(t, f"taus[] {where}") for t in taus]
    return {"holdout_fraction": check_number(holdout_fraction, f"holdout_fraction {where}", strict=True, below=1.0),
            "holdout_max_per_class": check_int(holdout_max_per_class, f"holdout_max_per_class {where}", low=1),
            "taus": taus}


@HEAD_PLUGINS.register("tau_norm", options=_tau_options, data_parallel=(
    "tau calibration holds out data per process and picks tau on it; the processes could disagree"))
def _tau_norm(options: dict[str, Any], *, seed: int) -> tuple[list[Any], list[Any]]:
    """tau-norm chooses its tau on training data held out per class (``TauCalibrationPlugin``)."""
    from ..plugins import TauCalibrationPlugin

    calibration = TauCalibrationPlugin(fraction=options["holdout_fraction"],
                                       max_per_class=options["holdout_max_per_class"], seed=seed,
                                       taus=options["taus"])
    return [calibration], []


@HEAD_PLUGINS.register("ncm", options=False, data_parallel=(
    "the NCM head's class means would be computed from each process's share of the data, not all of it"))
def _ncm(options: dict[str, Any], *, seed: int) -> tuple[list[Any], list[Any]]:
    """The nearest-class-mean head recomputes its means from the experience and the buffer (``NCMMeansPlugin``)."""
    from ..plugins import NCMMeansPlugin

    return [], [NCMMeansPlugin()]
