"""Bring-your-own data: an ``.npz`` of arrays, or an image folder with one sub-folder per class.

``npz``: arrays ``images`` (uint8 ``(N, H, W)`` or ``(N, H, W, C)``) and ``labels`` (``(N,)`` ints), optionally
``classes`` (names); split into train/test per class with ``test_fraction`` and ``split_seed``. A file holding
``train_images``/``train_labels``/``test_images``/``test_labels`` is used with its own split.

``image_folder``: ``<path>/<class>/<image>`` (split per class with ``test_fraction``) or, when ``<path>`` has
``train/`` and ``test/`` (or ``val/``) sub-folders, ``<path>/{train,test}/<class>/<image>``; ``path`` may be a
folder or an archive. Labels follow the sorted class names. This is also the loader for miniImageNet and CUB-200
exported as class folders.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import DataRootError
from ..archive import is_archive, list_files
from ..cache import cached_arrays, source_fingerprint
from ..dataset import ArrayDataset
from ..folders import IMAGE_SUFFIXES, read_class_folders
from ..lazy import LazyImages
from ..registry import DATASETS
from ..roots import resolve_root
from ..split import npz_part, stratified_split

__all__ = ["load_npz", "load_image_folder"]


def _resolve_path(root: str | os.PathLike | None, path: str | os.PathLike | None, *, dataset: str) -> Path:
    if path is None:
        raise DataRootError(f"dataset {dataset!r} needs the option path=... (absolute, or relative to the data root)")
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = resolve_root(root, dataset=dataset) / p
    if not p.exists():
        raise DataRootError(f"dataset {dataset!r}: path {str(p)!r} does not exist")
    return p


@DATASETS.register("npz")
def load_npz(
    *,
    root: str | os.PathLike | None = None,
    train: bool = True,
    path: str | None = None,
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> ArrayDataset:
    """Load images and labels from an ``.npz`` file.

    Args:
        root: Base folder for a relative ``path`` (``$EBV_CL_DATA`` by default).
        train: Training or test part.
        path: The ``.npz`` file.
        test_fraction: Share of each class in the test part (single-split files).
        split_seed: Seed of that split.

    Raises:
        DataRootError: if the file is missing or lacks ``images``/``labels``.
    """
    p = _resolve_path(root, path, dataset="npz")
    with np.load(p, allow_pickle=False) as z:
        keys = set(z.files)
        classes = [str(c) for c in z["classes"]] if "classes" in keys else None
        part = npz_part(z, train=train, test_fraction=test_fraction, split_seed=split_seed)
        if part is None:
            raise DataRootError(f"npz file {str(p)!r} must hold arrays 'images' and 'labels' (or train_/test_ "
                                f"versions); it holds {sorted(keys)}")
        images, labels = part
    return ArrayDataset(np.ascontiguousarray(images), np.asarray(labels).astype(np.int64), classes=classes,
                        name=p.stem)


def _split_dirs(p: Path) -> tuple[str, str] | None:
    if p.is_dir() and (p / "train").is_dir():
        for test in ("test", "val"):
            if (p / test).is_dir():
                return ("train", test)
    return None


def _lazy(p: Path, splits: tuple[str, str] | None, train: bool, mode: str, size: int | None, test_fraction: float,
          split_seed: int) -> ArrayDataset:
    if size is None:
        raise DataRootError("image_folder with lazy=True needs the option size=N (images are resized to N x N)")
    if not p.is_dir():
        raise DataRootError(f"image_folder with lazy=True needs an extracted folder, got the file {str(p)!r}")
    folder = p / (splits[0] if train else splits[1]) if splits else p
    class_root = p / splits[0] if splits else p
    classes = sorted(d.name for d in class_root.iterdir() if d.is_dir())
    files = [f for f in list_files(folder, IMAGE_SUFFIXES) if f.count("/") == 1 and f.split("/")[0] in classes]
    if not files:
        raise DataRootError(f"image_folder: no image found as <class>/<image> under {str(folder)!r}")
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[f.split("/")[0]] for f in files], dtype=np.int64)
    paths = [folder / f for f in files]
    if splits is None:
        tr, te = stratified_split(labels, test_fraction=test_fraction, seed=split_seed)
        keep = tr if train else te
        paths, labels = [paths[i] for i in keep], labels[keep]
    return ArrayDataset(LazyImages(paths, mode=mode, size=size), labels, classes=classes, name=p.name)


@DATASETS.register("image_folder")
def load_image_folder(
    *,
    root: str | os.PathLike | None = None,
    train: bool = True,
    path: str | None = None,
    size: int | None = None,
    mode: str = "RGB",
    test_fraction: float = 0.2,
    split_seed: int = 0,
    lazy: bool = False,
    cache: bool = True,
) -> ArrayDataset:
    """Load a class-per-folder image collection.

    Args:
        root: Base folder for a relative ``path`` (``$EBV_CL_DATA`` by default).
        train: Training or test part.
        path: The folder (or archive) holding ``<class>/<image>`` or ``{train,test|val}/<class>/<image>``.
        size: Resize images to ``size x size`` (needed when sizes differ, and with ``lazy``).
        mode: ``"RGB"`` or ``"L"`` (grayscale).
        test_fraction: Share of each class in the test part when there are no split folders.
        split_seed: Seed of that split.
        lazy: Decode files on access instead of holding all images in memory (extracted folders only).
        cache: Store/reuse the decoded arrays in the cache folder (in-memory mode).

    Raises:
        DataRootError: if ``path`` is missing, holds no image, or images differ in size without ``size``.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    p = _resolve_path(root, path, dataset="image_folder")
    if not p.is_dir() and not is_archive(p):
        raise DataRootError(f"image_folder: path {str(p)!r} must be a folder or a .tar/.tar.gz/.tgz/.zip archive")
    splits = _split_dirs(p)
    if lazy:
        return _lazy(p, splits, train, mode, size, test_fraction, split_seed)
    key = {"loader": "image_folder", "version": 1, "size": size, "mode": mode, "splits": splits,
           "source": source_fingerprint(p)}

    def build() -> dict[str, np.ndarray]:
        arrays = None
        if splits is None and is_archive(p):
            try:
                arrays = read_class_folders(p, splits=("train", "test"), mode=mode, size=size, dataset="image_folder")
            except DataRootError:
                arrays = None
        if arrays is None:
            arrays = read_class_folders(p, splits=splits, mode=mode, size=size, dataset="image_folder")
        renamed = {k.replace("val_", "test_", 1) if k.startswith("val_") else k: v for k, v in arrays.items()}
        return {k: np.array(v) if k == "classes" else v for k, v in renamed.items()}

    arrays = cached_arrays(f"image_folder-{p.name}", key, build, use_cache=cache)
    classes = [str(c) for c in arrays["classes"]]
    if "all_images" in arrays:
        tr, te = stratified_split(arrays["all_labels"], test_fraction=test_fraction, seed=split_seed)
        keep = tr if train else te
        images, labels = arrays["all_images"][keep], arrays["all_labels"][keep]
    else:
        side = "train" if train else "test"
        images, labels = arrays[f"{side}_images"], arrays[f"{side}_labels"]
    return ArrayDataset(images, labels, classes=classes, name=p.name)
