"""Reading IDX files, the format of MNIST, Fashion-MNIST and EMNIST, plain or gzip-compressed.

An IDX file starts with two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions and one
big-endian uint32 per dimension, followed by the values in row-major order.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataRootError

__all__ = ["read_idx"]

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or not) into a numpy array.

    Raises:
        DataRootError: if the file is not a valid IDX file (wrong magic, truncated).
    """
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataRootError(f"{str(path)!r} is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise DataRootError(f"{str(path)!r} is not an IDX file (bad magic {data[:4]!r})")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_TYPES[data[2]])
    offset = 4 + 4 * ndim
    count = int(np.prod(dims)) if dims else 1
    if len(data) - offset != count * dtype.itemsize:
        raise DataRootError(
            f"{str(path)!r} is truncated or corrupt: header says shape {tuple(dims)} "
            f"({count * dtype.itemsize} bytes), file has {len(data) - offset} bytes of data"
        )
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(dims).astype(dtype.newbyteorder("="))
