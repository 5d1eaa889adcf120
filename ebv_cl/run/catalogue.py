"""The catalogue of ready YAML entries that a run config includes by name.

``scenarios/<name>.yaml`` holds one scenario section and ``strategies/<name>.yaml`` one strategy setting. They
are looked up in these roots, first match wins: the folders listed in ``EBV_CL_CATALOGUE`` (``os.pathsep``
separated, for one's own entries), the catalogue shipped inside the installed package (``ebv_cl/_catalogue``,
copied from the repository's top-level folders when a wheel is built), and the source checkout that holds the
``ebv_cl`` package (an editable install). The working directory is not searched, so a name means the same entry
wherever ``ebv-cl`` runs. An unknown name raises ``ConfigError`` listing the names that exist.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

__all__ = ["KINDS", "catalogue_roots", "catalogue_names", "find_entry", "load_entry", "read_yaml", "parse_yaml"]

KINDS = ("scenarios", "strategies")
_SINGULAR = {"scenarios": "scenario", "strategies": "strategy"}


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads ``1e-3`` (no dot) as a float, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str) -> Any:
    """Parse YAML text safely (no object construction); ``1e-3`` is a float.

    Raises:
        yaml.YAMLError: on invalid YAML.
    """
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def catalogue_roots() -> list[Path]:
    """The folders searched for ``scenarios/`` and ``strategies/``, in order of precedence."""
    roots = [Path(p) for p in os.environ.get("EBV_CL_CATALOGUE", "").split(os.pathsep) if p]
    package = Path(__file__).resolve().parents[1]
    shipped = package / "_catalogue"
    if shipped.is_dir():
        roots.append(shipped)
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file():  # a source checkout, not site-packages
        roots.append(checkout)
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def catalogue_names(kind: str) -> list[str]:
    """The entry names available for ``kind`` (``"scenarios"`` or ``"strategies"``), sorted."""
    _check_kind(kind)
    names = set()
    for root in catalogue_roots():
        folder = root / kind
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml"))
    return sorted(names)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"catalogue kind must be one of {', '.join(KINDS)}, got {kind!r}")


def find_entry(kind: str, name: str) -> Path:
    """The file of the catalogue entry ``name`` of ``kind``.

    Raises:
        ConfigError: if no root holds ``<kind>/<name>.yaml``; the message lists the available names.
    """
    _check_kind(kind)
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"{_SINGULAR[kind]} name must be a plain catalogue name, got {name!r}")
    for root in catalogue_roots():
        path = root / kind / f"{name}.yaml"
        if path.is_file():
            return path
    available = ", ".join(catalogue_names(kind)) or "none found"
    raise ConfigError(
        f"unknown {_SINGULAR[kind]} {name!r}: no {kind}/{name}.yaml in the catalogue; available: {available}"
    )


def read_yaml(path: str | os.PathLike, *, what: str = "config") -> Any:
    """Parse one YAML file.

    Raises:
        FileNotFoundError: if the file does not exist.
        ConfigError: if it is not valid YAML.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist")
    try:
        return parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        detail = str(exc).replace("\n", " ")
        raise ConfigError(f"{what} file {str(path)!r} is not valid YAML: {detail}") from None


def load_entry(kind: str, name: str) -> dict[str, Any]:
    """The mapping stored in the catalogue entry ``name`` of ``kind``.

    Raises:
        ConfigError: if the entry is unknown or does not hold a mapping.
    """
    path = find_entry(kind, name)
    data = read_yaml(path, what=f"{_SINGULAR[kind]} {name!r}")
    if not isinstance(data, dict):
        raise ConfigError(f"{_SINGULAR[kind]} file {str(path)!r} must hold a mapping, got {type(data).__name__}")
    return data
