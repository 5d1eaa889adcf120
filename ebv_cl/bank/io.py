"""The bank file format: a magic line, a JSON header, then the raw float32 vectors.

Layout (all integers little-endian)::

    b"EBVBANK\\n"  | uint32 header length | header (UTF-8 JSON) | n * dim float32, row-major

The header holds the metadata (format version, n, dim, seed, method, alpha, coherence, ...), the sha256 of
the vector bytes and a sha256 of the header itself, so a truncated, bit-flipped or tampered file, a file of
another format version, or one whose size disagrees with its metadata raises ``BankFileError``. The vectors
start at a 64-byte aligned offset so large banks can be memory-mapped. Writes are atomic.

Format version 2 holds a *code bank* (``ebv_cl.bank.codes``) as a formula instead of rows: the same magic and
header layout, with ``"code"`` (family, m, feedback polynomial, decimations, padding, n, dim), ``code_sha256``
(of the formula), ``sequences_sha256`` (of the int8 sequences the formula generates, so a file is refused when
the generator no longer reproduces them) and ``header_sha256``; nothing follows the header. A 10^7-row bank is a
few kilobytes. Version 1 files stay readable.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..errors import BankFileError

__all__ = [
    "FORMAT_VERSION",
    "FORMULA_VERSION",
    "MAGIC",
    "write_bank_file",
    "read_bank_file",
    "read_bank_header",
    "write_formula_file",
    "read_formula_file",
    "vectors_sha256",
]

MAGIC = b"EBVBANK\n"
FORMAT_VERSION = 1
FORMULA_VERSION = 2
_FORMULA_REQUIRED = ("format_version", "n", "dim", "code", "code_sha256", "sequences_sha256", "header_sha256")
_ALIGN = 64
_REQUIRED = ("format_version", "n", "dim", "dtype", "vectors_sha256", "header_sha256")


def vectors_sha256(vectors: np.ndarray) -> str:
    """The sha256 hex digest of a float32 C-contiguous array's bytes."""
    arr = np.ascontiguousarray(vectors, dtype="<f4")
    digest = hashlib.sha256()
    flat = arr.reshape(-1).view(np.uint8)
    step = 1 << 26
    for start in range(0, flat.size, step):
        digest.update(memoryview(flat[start : start + step]))
    return digest.hexdigest()


def _header_digest(header: dict[str, Any]) -> str:
    body = {k: v for k, v in header.items() if k != "header_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


def write_bank_file(path: str | os.PathLike, vectors: np.ndarray, metadata: dict[str, Any]) -> Path:
    """Atomically write ``vectors`` (``(n, dim)``, converted to float32) and ``metadata`` to ``path``.

    Returns:
        The path written.
    """
    arr = np.ascontiguousarray(vectors, dtype="<f4")
    if arr.ndim != 2:
        raise ValueError(f"vectors must have shape (n, dim), got {arr.shape}")
    header = dict(metadata)
    header.update(
        format_version=FORMAT_VERSION,
        n=int(arr.shape[0]),
        dim=int(arr.shape[1]),
        dtype="float32",
        vectors_sha256=vectors_sha256(arr),
    )
    header["header_sha256"] = _header_digest(header)
    raw = json.dumps(header, sort_keys=True).encode("utf-8")
    pad = (-(len(MAGIC) + 4 + len(raw))) % _ALIGN
    raw += b" " * pad

    def write(f) -> None:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(raw)))
        f.write(raw)
        flat = arr.reshape(-1)
        step = 1 << 24
        for start in range(0, flat.size, step):
            f.write(flat[start : start + step].tobytes())

    return atomic_write(path, write)


def read_bank_header(path: str | os.PathLike) -> tuple[dict, int]:
    """Read the JSON header of a bank file (any format version) without checking it.

    Returns:
        ``(header, offset)``: the header dict and the byte offset where the payload starts.

    Raises:
        BankFileError: if the file is missing, not a bank file, or its header is truncated or not JSON.
    """
    p = Path(path)
    if not p.is_file():
        raise BankFileError(f"bank file {str(p)!r} does not exist or is not a file")
    size = p.stat().st_size
    with p.open("rb") as f:
        magic = f.read(len(MAGIC))
        if magic != MAGIC:
            raise BankFileError(f"{str(p)!r} is not an ebv-cl bank file (expected magic {MAGIC!r}, got {magic!r})")
        raw_len = f.read(4)
        if len(raw_len) != 4:
            raise BankFileError(f"{str(p)!r} is truncated inside its header")
        (header_len,) = struct.unpack("<I", raw_len)
        offset = len(MAGIC) + 4 + header_len
        if offset > size:
            raise BankFileError(f"{str(p)!r} is truncated: header says {header_len} bytes, file has {size} bytes")
        raw = f.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BankFileError(f"{str(p)!r} has a corrupt header: {exc}") from None
    if not isinstance(header, dict):
        raise BankFileError(f"{str(p)!r} has a header that is not a JSON object")
    return header, offset


def read_bank_file(path: str | os.PathLike, *, mmap: bool = False, verify: bool = True) -> tuple[np.ndarray, dict]:
    """Read and check a bank file.

    Args:
        path: The file written by ``write_bank_file``.
        mmap: Memory-map the vectors instead of reading them (for banks larger than memory).
        verify: Check the sha256 of the vectors (reads every byte once).

    Returns:
        ``(vectors, header)``: a float32 ``(n, dim)`` array and the header dict.

    Raises:
        BankFileError: if the file is missing, not a bank file, truncated, corrupt, tampered with, of another
            format version, or its size disagrees with its metadata.
    """
    p = Path(path)
    header, offset = read_bank_header(p)
    size = p.stat().st_size
    if header.get("format_version") == FORMULA_VERSION:
        raise BankFileError(f"{str(p)!r} holds a code bank (a formula, format version {FORMULA_VERSION}), not rows: "
                            f"load it with EBVBank.load")
    if not isinstance(header, dict) or any(k not in header for k in _REQUIRED):
        missing = [k for k in _REQUIRED if not isinstance(header, dict) or k not in header]
        raise BankFileError(f"{str(p)!r} has a header without the required keys {missing}")
    if header["format_version"] != FORMAT_VERSION:
        raise BankFileError(
            f"{str(p)!r} has bank format version {header['format_version']!r}; this ebv-cl reads version {FORMAT_VERSION}"
        )
    if header["header_sha256"] != _header_digest(header):
        raise BankFileError(f"{str(p)!r} has a header whose checksum does not match: the metadata was altered")
    n, dim = header["n"], header["dim"]
    if not (isinstance(n, int) and isinstance(dim, int) and n >= 1 and dim >= 1) or header["dtype"] != "float32":
        raise BankFileError(f"{str(p)!r} has invalid shape metadata n={n!r}, dim={dim!r}, dtype={header['dtype']!r}")
    expected = offset + 4 * n * dim
    if size != expected:
        kind = "truncated" if size < expected else "longer than its metadata says"
        raise BankFileError(
            f"{str(p)!r} is {kind}: metadata n={n}, dim={dim} needs {expected} bytes, the file has {size}"
        )
    if mmap:
        vectors = np.memmap(p, dtype="<f4", mode="r", offset=offset, shape=(n, dim))
    else:
        vectors = np.fromfile(p, dtype="<f4", count=n * dim, offset=offset).reshape(n, dim)
    if verify and vectors_sha256(vectors) != header["vectors_sha256"]:
        raise BankFileError(f"{str(p)!r} is corrupt: the sha256 of its vectors does not match its metadata")
    return vectors, header


def write_formula_file(path: str | os.PathLike, formula: dict[str, Any], metadata: dict[str, Any], *,
                       code_sha256: str, sequences_sha256: str) -> Path:
    """Atomically write a code bank: its ``formula`` (``SequenceCode.formula()``), metadata and checksums."""
    header = dict(metadata)
    header.update(
        format_version=FORMULA_VERSION,
        n=int(formula["n"]),
        dim=int(formula["dim"]),
        code=formula,
        code_sha256=code_sha256,
        sequences_sha256=sequences_sha256,
    )
    header["header_sha256"] = _header_digest(header)
    raw = json.dumps(header, sort_keys=True).encode("utf-8")

    def write(f) -> None:
        f.write(MAGIC)
        f.write(struct.pack("<I", len(raw)))
        f.write(raw)

    return atomic_write(path, write)


def read_formula_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check the header of a code bank file (format version 2); the formula itself is checked by
    ``EBVBank.load``.

    Raises:
        BankFileError: if the file is not a version-2 bank file, lacks a key, was altered (header checksum) or
            has bytes after its header.
    """
    p = Path(path)
    header, offset = read_bank_header(p)
    if header.get("format_version") != FORMULA_VERSION:
        raise BankFileError(f"{str(p)!r} has bank format version {header.get('format_version')!r}, expected the code "
                            f"bank version {FORMULA_VERSION}")
    missing = [k for k in _FORMULA_REQUIRED if k not in header]
    if missing:
        raise BankFileError(f"{str(p)!r} has a code bank header without the required keys {missing}")
    if header["header_sha256"] != _header_digest(header):
        raise BankFileError(f"{str(p)!r} has a header whose checksum does not match: the metadata was altered")
    size = p.stat().st_size
    if size != offset:
        raise BankFileError(f"{str(p)!r} is a code bank file with {size - offset} unexpected bytes after its header")
    if not isinstance(header["code"], dict):
        raise BankFileError(f"{str(p)!r} has a code entry that is not a JSON object")
    return header
