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

from ...registry import Registry

__all__ = ["HEAD_PLUGINS", "head_plugins", "plugin_defaults"]

HEAD_PLUGINS: Registry[tuple[list[Any], list[Any]]] = Registry("head plugin")


def plugin_defaults(head: str) -> dict[str, Any]:
    """The head options ``head``'s plugins consume, with their defaults (empty for a head without plugins)."""
    if head not in HEAD_PLUGINS:
        return {}
    return {name: p.default for name, p in HEAD_PLUGINS.options(head).items()}


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
    return {"holdout_fraction": holdout_fraction, "holdout_max_per_class": holdout_max_per_class, "taus": taus}


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
