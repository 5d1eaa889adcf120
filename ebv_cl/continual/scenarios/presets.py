"""Ready scenario specs for the standard protocols, usable as ``{"preset": name, ...overrides}``.

Few-shot class-incremental (FSCIL) protocols of the literature: ``cifar100_fscil`` (60 base classes, then 8
sessions of 5-way 5-shot, fixed class order 0..99, the shots of TOPIC/CEC's published index lists),
``miniimagenet_fscil`` (the same on miniImageNet exported as ``{train,test}/<class>/<image>`` class folders,
84x84), ``cub200_fscil`` (100 base classes, then 10 sessions of 10-way 5-shot, class folders, 224x224) and
``omniglot_fscil`` (200 base characters, then 10 sessions of 5-way 5-shot, seeded class order). miniImageNet and
CUB-200 draw their shots with the seed (their published lists name image files, which the class-folder loader
does not keep). Class-incremental splits: ``split_digits``, ``split_fashion_mnist``,
``split_cifar10`` (5 experiences of 2 classes), and long-tailed ones: ``cifar10_lt`` / ``cifar100_lt``
(imbalance ratio 100) and ``emnist_lt`` (EMNIST ByClass's natural imbalance, 62 classes in 6 experiences, the
2 leftover classes added to the first).
"""

from __future__ import annotations

import copy
from typing import Any

from ...errors import ConfigError
from .index_lists import CEC_CIFAR100_SHOTS

__all__ = ["PRESETS", "preset_spec", "list_presets"]

_FSCIL_60 = {"kind": "few_shot", "base_classes": 60, "ways": 5, "shots": 5, "n_sessions": 8, "class_order": "fixed"}

PRESETS: dict[str, dict[str, Any]] = {
    "cifar100_fscil": {"dataset": "cifar100", **_FSCIL_60, "shot_indices": CEC_CIFAR100_SHOTS},
    "miniimagenet_fscil": {"dataset": "image_folder", "dataset_options": {"path": "miniimagenet", "size": 84},
                           **_FSCIL_60},
    "cub200_fscil": {"dataset": "image_folder", "dataset_options": {"path": "cub200", "size": 224},
                     "kind": "few_shot", "base_classes": 100, "ways": 10, "shots": 5, "n_sessions": 10,
                     "class_order": "fixed"},
    "omniglot_fscil": {"dataset": "omniglot", "kind": "few_shot", "base_classes": 200, "ways": 5, "shots": 5,
                       "n_sessions": 10, "class_order": "random"},
    "split_digits": {"dataset": "digits", "kind": "class_incremental", "n_experiences": 5},
    "split_fashion_mnist": {"dataset": "fashion_mnist", "kind": "class_incremental", "n_experiences": 5},
    "split_cifar10": {"dataset": "cifar10", "kind": "class_incremental", "n_experiences": 5},
    "cifar10_lt": {"dataset": "cifar10", "kind": "long_tailed", "imbalance_ratio": 100, "n_experiences": 5},
    "cifar100_lt": {"dataset": "cifar100", "kind": "long_tailed", "imbalance_ratio": 100, "n_experiences": 10},
    "emnist_lt": {"dataset": "emnist_byclass", "kind": "long_tailed", "natural": True, "n_experiences": 6,
                  "leftover": "first"},
}


def list_presets() -> list[str]:
    """The preset names, sorted."""
    return sorted(PRESETS)


def preset_spec(name: str, **overrides: Any) -> dict[str, Any]:
    """A copy of preset ``name`` with ``overrides`` applied (``dataset_options``/``subsample`` are merged).

    Raises:
        ConfigError: if ``name`` is not a preset (the message lists them).
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"unknown scenario preset {name!r}; expected one of: {', '.join(list_presets())}")
    spec = copy.deepcopy(PRESETS[name])
    for key, value in overrides.items():
        if key in ("dataset_options", "subsample") and isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = copy.deepcopy(value)
    return spec
