"""Reliability of data loading (issue 15): corrupt or partial files are a ``DataRootError`` naming the file, never
a traceback or a smaller dataset; labels are checked before anything is allocated; the cache keys by content and
rebuilds a damaged entry."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ebv_cl.data import load_dataset
from ebv_cl.data.archive import decode_image, iter_files
from ebv_cl.data.cache import cached_arrays, source_fingerprint
from ebv_cl.data.dataset import ArrayDataset
from ebv_cl.data.idx import read_idx
from ebv_cl.errors import DataRootError


def _png(value: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _tar(path: Path, n: int = 20, *, compress: bool = True) -> list[int]:
    """A tar(.gz) of n PNGs; returns the offsets of the member headers in the uncompressed tar."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for i in range(n):
            data = _png(i) + os.urandom(2000)  # incompressible padding: cuts land inside members
            info = tarfile.TarInfo(f"c{i:02d}/img.png")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    body = raw.getvalue()
    path.write_bytes(gzip.compress(body) if compress else body)
    offsets, tf = [], tarfile.open(fileobj=io.BytesIO(body))
    offsets = [m.offset for m in tf.getmembers()]
    return offsets


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95, 0.999])
def test_a_truncated_tar_gz_is_an_error_not_a_smaller_dataset(tmp_path, fraction):
    path = tmp_path / "a.tar.gz"
    _tar(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(DataRootError, match="truncated or corrupt"):
        list(iter_files(path, (".png",)))


def test_a_plain_tar_cut_at_a_member_boundary_is_an_error(tmp_path):
    path = tmp_path / "a.tar"
    offsets = _tar(path, compress=False)
    assert len(list(iter_files(path, (".png",)))) == 20
    path.write_bytes(path.read_bytes()[: offsets[10]])  # members 0..9 intact, the rest gone
    with pytest.raises(DataRootError, match="truncated"):
        list(iter_files(path, (".png",)))


def test_a_flipped_byte_in_a_gzip_stream_is_an_error(tmp_path):
    path = tmp_path / "a.tar.gz"
    _tar(path)
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF  # inside the CRC-32 trailer
    path.write_bytes(bytes(data))
    with pytest.raises(DataRootError):
        list(iter_files(path, (".png",)))


def test_a_zip_with_a_bad_crc_is_an_error(tmp_path):
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("c/img.png", _png(3))
    data = bytearray(path.read_bytes())
    start = data.index(b"\x89PNG")
    data[start + 20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataRootError, match="truncated or corrupt"):
        list(iter_files(path, (".png",)))


def test_a_corrupt_image_names_the_file():
    data = bytearray(_png(7))
    data[45] ^= 0xFF  # inside the compressed pixels (flips of a few length/trailer bytes decode silently)
    with pytest.raises(DataRootError, match="image 'x.png' cannot be decoded"):
        decode_image(bytes(data), mode="L", name="'x.png'")
    with pytest.raises(DataRootError):
        decode_image(os.urandom(100), mode="L")


def test_a_truncated_idx_gz_is_an_error(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    body = bytes([0, 0, 8, 1]) + (1000).to_bytes(4, "big") + os.urandom(1000)
    path.write_bytes(gzip.compress(body)[:300])
    with pytest.raises(DataRootError, match="truncated or corrupt"):
        read_idx(path)


@pytest.mark.parametrize("content", ["truncated", "random"])
def test_a_damaged_npz_is_an_error(tmp_path, content):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((50, 4, 4), np.uint8), labels=np.arange(50) % 5)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if content == "truncated" else os.urandom(len(data)))
    with pytest.raises(DataRootError, match="npz"):
        load_dataset("npz", path=str(path))


def test_npz_images_and_labels_must_have_one_label_per_image(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((1000, 4, 4), np.uint8), labels=np.arange(800) % 5)
    with pytest.raises(DataRootError, match="images holds 1000 items but labels 800"):
        load_dataset("npz", path=str(path))


def test_one_huge_label_is_remapped_densely_not_allocated(tmp_path):
    path = tmp_path / "d.npz"
    labels = np.arange(100) % 5
    labels[0] = 10**9
    np.savez(path, images=np.zeros((100, 4, 4), np.uint8), labels=labels)
    ds = load_dataset("npz", path=str(path), test_fraction=0.2)
    assert ds.n_classes == 6 and ds.classes[-1] == "1000000000"
    with pytest.raises(ValueError, match="label 1000000000; labels must be at most 16777215"):
        ArrayDataset(np.zeros((2, 4, 4), np.uint8), [0, 10**9])


def test_the_cache_keys_by_content_and_rebuilds_a_damaged_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("EBV_CL_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "src.bin"
    src.write_bytes(b"a" * 100)
    stat = src.stat()
    first = source_fingerprint(src)
    src.write_bytes(b"b" * 100)
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime, other bytes
    assert source_fingerprint(src) != first
    calls = []

    def build():
        calls.append(1)
        return {"images": np.ones((3, 2)), "labels": np.arange(3)}

    out = cached_arrays("t", {"k": 1}, build)
    entry = next((tmp_path / "cache" / "arrays").glob("t-*"))
    (entry / "images.npy").unlink()
    with pytest.warns(RuntimeWarning, match="damaged"):
        again = cached_arrays("t", {"k": 1}, build)
    assert len(calls) == 2 and set(again) == {"images", "labels"} and np.array_equal(again["images"], out["images"])
    assert np.array_equal(cached_arrays("t", {"k": 1}, build)["labels"], np.arange(3)) and len(calls) == 2
