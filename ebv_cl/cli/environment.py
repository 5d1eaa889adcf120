"""Diagnose a broken install of ebv-cl's heavy dependencies (torch, torchvision, Avalanche) in one line.

A torchvision built for another torch (the usual result of installing a CPU torch and then letting pip pull a
CUDA torchvision) fails at import with a long traceback such as ``operator torchvision::nms does not exist``.
When a command fails with an import-time error, :func:`diagnose` imports each dependency in turn and, if one
is broken, returns a one-line explanation with the command that fixes it; otherwise ``None`` and the original
error stands.
"""

from __future__ import annotations

import importlib
from importlib import metadata

__all__ = ["CPU_INSTALL", "DEPENDENCIES", "diagnose"]

#: The CPU install of torch and torchvision that matches pyproject.toml's upper bounds (README, quick start).
CPU_INSTALL = (
    "pip install --force-reinstall torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu"
)
#: (import name, distribution name) in import order: each one imports the ones before it.
DEPENDENCIES = (("torch", "torch"), ("torchvision", "torchvision"), ("avalanche", "avalanche-lib"))


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _import(name: str) -> None:
    importlib.import_module(name)


def diagnose() -> str | None:
    """A one-line description and fix of the first dependency that fails to import, or ``None`` if all do."""
    for name, distribution in DEPENDENCIES:
        try:
            _import(name)
        except Exception as exc:  # noqa: BLE001 (any import-time failure is the diagnosis)
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            versions = ", ".join(f"{d} {_version(d)}" for _, d in DEPENDENCIES)
            if name == "avalanche":
                fix = "pip install 'avalanche-lib>=0.6,<0.7'"
            else:
                fix = f"reinstall torch and torchvision from one index; on a CPU machine: {CPU_INSTALL}"
            return f"cannot import {name} ({type(exc).__name__}: {detail}); installed: {versions}; fix: {fix}"
    return None
