"""A cache of decoded dataset arrays as ``.npy`` files, written atomically.

Decoding tens of thousands of JPEG/PNG files takes a while, so each loader decodes once and stores the arrays
under ``cache_dir()/arrays/<name>-<key>/``. The key hashes the source's path, size and modification time and
the loader's parameters, so a changed source or option builds a new entry. The entry is written to a temporary
folder and renamed into place, so a reader never sees a half-written cache and concurrent builders are safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .roots import cache_dir

__all__ = ["source_fingerprint", "cached_arrays"]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_fingerprint(source: Path) -> dict[str, Any]:
    """Path, size, modification time and SHA-256 of a file (an archive: a flipped byte is a new entry), or file
    count, total size and latest mtime of a folder."""
    source = source.resolve()
    if source.is_file():
        st = source.stat()
        return {"path": str(source), "size": st.st_size, "mtime": st.st_mtime_ns, "sha256": _file_sha256(source)}
    count = total = latest = 0
    for dirpath, _, filenames in os.walk(source):
        for f in filenames:
            st = os.stat(os.path.join(dirpath, f))
            count, total, latest = count + 1, total + st.st_size, max(latest, st.st_mtime_ns)
    return {"path": str(source), "files": count, "size": total, "mtime": latest}


def cached_arrays(
    name: str, key: dict[str, Any], build: Callable[[], dict[str, np.ndarray]], *, use_cache: bool = True
) -> dict[str, np.ndarray]:
    """Return the arrays stored for ``(name, key)``, building and storing them on a miss.

    Args:
        name: A readable prefix for the cache entry (``"cifar10-train"``).
        key: JSON-serialisable description of the source and options.
        build: Called on a miss; returns a dict of arrays.
        use_cache: ``False`` skips the cache entirely (always builds, never writes).

    Returns:
        The dict of arrays, names as returned by ``build``.
    """
    if not use_cache:
        return build()
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    entry = cache_dir() / "arrays" / f"{name}-{digest}"
    cached = _read_entry(entry)
    if cached is not None:
        return cached
    arrays = build()
    try:
        _store(entry, key, arrays)
    except OSError as err:  # a read-only or full cache must not stop loading; say so
        warnings.warn(f"could not write the dataset cache {str(entry)!r} ({err}); set EBV_CL_CACHE to a writable "
                      "folder to avoid decoding again next time", RuntimeWarning, stacklevel=2)
    return arrays


def _read_entry(entry: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a finished entry, or ``None`` (and the entry removed) if it is absent or damaged.

    ``_done`` lists the array names; an entry missing one of them, with one that does not load, or written by an
    older version (no list) is rebuilt rather than read as a smaller dataset or a traceback.
    """
    done = entry / "_done"
    if not done.is_file():
        return None
    try:
        names = json.loads(done.read_text())
        if not isinstance(names, list) or not names:
            raise ValueError("no array names")
        return {name: np.load(entry / f"{name}.npy") for name in names}
    except (OSError, ValueError, EOFError) as err:
        warnings.warn(f"the dataset cache entry {str(entry)!r} is damaged ({err}); decoding again", RuntimeWarning,
                      stacklevel=3)
        shutil.rmtree(entry, ignore_errors=True)
        return None


def _store(entry: Path, key: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        for arr_name, arr in arrays.items():
            np.save(tmp / f"{arr_name}.npy", np.ascontiguousarray(arr))
        (tmp / "_key.json").write_text(json.dumps(key, indent=1, sort_keys=True))
        (tmp / "_done").write_text(json.dumps(sorted(arrays)) + "\n")
        try:
            os.rename(tmp, entry)
        except OSError:  # another process finished the same entry first
            if not (entry / "_done").is_file():
                if entry.exists():  # a damaged entry another process left: replace it
                    shutil.rmtree(entry, ignore_errors=True)
                    os.rename(tmp, entry)
                    return
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
