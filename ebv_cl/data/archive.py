"""Read the files of a dataset from a folder or straight from an archive, and decode images.

``iter_files`` yields ``(relative posix path, bytes)`` for every file with one of the wanted suffixes, from an
extracted folder, a ``.tar``/``.tar.gz``/``.tgz`` (streamed once, never extracted to disk) or a ``.zip``, so
every image loader parses paths the same way whatever form the data has. ``decode_image`` turns bytes into a
uint8 array with Pillow, optionally resized.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import DataRootError

__all__ = ["iter_files", "list_files", "decode_image", "is_archive"]


def is_archive(path: Path) -> bool:
    """Whether ``path`` is a file with an archive suffix this module reads."""
    name = path.name.lower()
    return path.is_file() and name.endswith((".tar.gz", ".tgz", ".tar", ".zip"))


def _wanted(name: str, suffixes: Sequence[str]) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and name.lower().endswith(tuple(s.lower() for s in suffixes))


def list_files(folder: Path, suffixes: Sequence[str]) -> list[str]:
    """Relative posix paths of the files under ``folder`` with one of ``suffixes``, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        rel = Path(dirpath).relative_to(folder).as_posix()
        for f in filenames:
            name = f if rel == "." else f"{rel}/{f}"
            if _wanted(name, suffixes):
                out.append(name)
    return sorted(out)


def iter_files(source: Path, suffixes: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(relative posix path, content)`` for each wanted file of a folder or archive.

    Folders are walked in sorted order; archives in their stored order (callers sort if they need to).

    Args:
        source: A folder, or a ``.tar``, ``.tar.gz``, ``.tgz`` or ``.zip`` file.
        suffixes: File name endings to keep (case-insensitive), e.g. ``(".png",)``.

    Raises:
        ValueError: if ``source`` is neither a folder nor a supported archive.
        DataRootError: if the archive is truncated or corrupt (a bad CRC, a cut gzip stream, a tar without its
            end-of-archive blocks), so a partial archive never reads as a smaller dataset.
    """
    try:
        yield from _iter_files(source, suffixes)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, DataRootError):
            raise
        raise DataRootError(f"archive {str(source)!r} is truncated or corrupt ({type(exc).__name__}: {exc}); "
                            "download or copy it again") from None


def _check_tar_end(source: Path) -> None:
    """An uncompressed tar ends with two zero blocks; a copy cut at a member boundary does not."""
    size = source.stat().st_size
    with open(source, "rb") as f:
        f.seek(max(0, size - 1024))
        tail = f.read(1024)
    if size % 512 or len(tail) < 1024 or tail.count(0) != 1024:
        raise DataRootError(f"archive {str(source)!r} is truncated: it lacks the tar end-of-archive blocks")


def _iter_files(source: Path, suffixes: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    if source.is_dir():
        for name in list_files(source, suffixes):
            yield name, (source / name).read_bytes()
        return
    lower = source.name.lower()
    if lower.endswith(".zip"):
        with zipfile.ZipFile(source) as zf:
            for info in zf.infolist():
                if not info.is_dir() and _wanted(info.filename, suffixes):
                    yield info.filename.lstrip("./"), zf.read(info)
        return
    if lower.endswith((".tar.gz", ".tgz", ".tar")):
        compressed = not lower.endswith(".tar")
        if not compressed:
            _check_tar_end(source)
        with (gzip.open(source, "rb") if compressed else open(source, "rb")) as raw:
            with tarfile.open(fileobj=raw, mode="r|") as tf:
                for member in tf:
                    if member.isfile() and _wanted(member.name, suffixes):
                        f = tf.extractfile(member)
                        if f is not None:
                            name = member.name[2:] if member.name.startswith("./") else member.name
                            data = f.read()
                            if len(data) != member.size:
                                raise EOFError(f"member {member.name!r} is cut short")
                            yield name, data
            while raw.read(1 << 20):  # read the gzip stream to its end: checks its CRC and that it is whole
                pass
        return
    raise ValueError(f"source must be a folder or a .tar/.tar.gz/.tgz/.zip archive, got {str(source)!r}")


def decode_image(
    data: bytes, *, mode: str, size: int | tuple[int, int] | None = None, name: str | None = None
) -> np.ndarray:
    """Decode image bytes into a uint8 array ``(H, W)`` (mode ``"L"``) or ``(H, W, 3)`` (mode ``"RGB"``).

    Args:
        data: The encoded file (PNG, JPEG, ...).
        mode: ``"L"`` for grayscale or ``"RGB"``.
        size: Resize to ``size x size`` (or ``(height, width)``) with bilinear antialiasing; ``None`` keeps it.
        name: The file's name, for the error message.

    Raises:
        DataRootError: if the bytes are not a decodable image (corrupt, truncated, a bad CRC).
    """
    try:
        return _decode(data, mode=mode, size=size)
    except (OSError, ValueError, SyntaxError, EOFError, zlib.error) as exc:
        raise DataRootError(f"image {name or '(unnamed)'} cannot be decoded ({type(exc).__name__}: {exc}); "
                            "the file is corrupt") from None


def _decode(data: bytes, *, mode: str, size: int | tuple[int, int] | None) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert(mode)
        if size is not None:
            h, w = (size, size) if isinstance(size, int) else size
            if im.size != (w, h):
                im = im.resize((w, h), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8).copy()
