"""Scenario builders: class-incremental, few-shot and long-tailed streams as Avalanche 0.6 benchmarks.

``build_scenario(spec, seed=...)`` reads a dataset from ``ebv_cl.data``, plans the stream with a kind from
``SCENARIOS`` (``class_incremental``, ``few_shot``, ``long_tailed``) and builds it with Avalanche's
``nc_benchmark``, remapping class ids to ``0..C-1`` in arrival order. ``PRESETS`` holds the standard protocols.
Avalanche itself is imported only when a benchmark is built.
"""

from __future__ import annotations

from .builder import AUGMENTATIONS, COMMON_KEYS, SUBSAMPLE_KEYS, BuiltScenario, build_scenario, validate_scenario_spec
from .kinds import SCENARIOS, Plan, kind_options, list_scenario_kinds
from .partition import LEFTOVER_MODES, partition_classes, resolve_class_order
from .presets import PRESETS, list_presets, preset_spec
from .sampling import exponential_counts, take_per_class

__all__ = [
    "BuiltScenario",
    "build_scenario",
    "validate_scenario_spec",
    "AUGMENTATIONS",
    "COMMON_KEYS",
    "SUBSAMPLE_KEYS",
    "SCENARIOS",
    "Plan",
    "kind_options",
    "list_scenario_kinds",
    "LEFTOVER_MODES",
    "partition_classes",
    "resolve_class_order",
    "PRESETS",
    "list_presets",
    "preset_spec",
    "exponential_counts",
    "take_per_class",
]
