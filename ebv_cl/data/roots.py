"""Where datasets are found (the data root) and where decoded arrays are cached.

The data root is the ``root`` argument or else the environment variable ``EBV_CL_DATA``; the cache is
``EBV_CL_CACHE`` or ``~/.cache/ebv_cl``. ``find_source`` locates a dataset inside a root as either an extracted
folder or an archive (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip``) and raises ``DataRootError`` naming what it
expected otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

from ..errors import DataRootError

__all__ = ["resolve_root", "cache_dir", "find_source", "ARCHIVE_SUFFIXES"]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


def resolve_root(root: str | os.PathLike | None, *, dataset: str) -> Path:
    """Return the data root: ``root`` or ``$EBV_CL_DATA``.

    Raises:
        DataRootError: if neither is set or the folder does not exist.
    """
    if root is None:
        env = os.environ.get("EBV_CL_DATA")
        if not env:
            raise DataRootError(
                f"dataset {dataset!r} needs a data root: pass root=... or set the environment variable EBV_CL_DATA"
            )
        root = env
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataRootError(f"data root {str(path)!r} for dataset {dataset!r} is not an existing folder")
    return path


def cache_dir() -> Path:
    """The cache folder for extracted and decoded data: ``$EBV_CL_CACHE`` or ``~/.cache/ebv_cl``."""
    return Path(os.environ.get("EBV_CL_CACHE") or Path.home() / ".cache" / "ebv_cl").expanduser()


def find_source(
    root: Path,
    *,
    dataset: str,
    folders: Sequence[str],
    archives: Sequence[str],
    is_valid: Callable[[Path], bool],
    expected: str,
) -> Path:
    """Find a dataset in ``root`` as an extracted folder or an archive file.

    Args:
        root: The data root.
        dataset: The dataset name, for messages.
        folders: Candidate folder names relative to ``root`` (``"."`` means ``root`` itself), tried in order.
        archives: Candidate archive file names relative to ``root``.
        is_valid: Whether a candidate folder has the expected layout.
        expected: A description of the expected layout, for the error message.

    Returns:
        The folder or the archive file.

    Raises:
        DataRootError: if no candidate exists; the message lists what was looked for.
    """
    for name in folders:
        path = root / name
        if path.is_dir() and is_valid(path):
            return path
    for name in archives:
        path = root / name
        if path.is_file():
            return path
    tried = [str(root / f) + "/" for f in folders] + [str(root / a) for a in archives]
    raise DataRootError(
        f"dataset {dataset!r} not found under {str(root)!r}: expected {expected}; looked for " + ", ".join(tried)
    )
