"""Dataset loaders on tiny generated stand-ins of every on-disk layout (fast), plus the ArrayDataset contract."""

from __future__ import annotations

import gzip
import io
import pickle
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ebv_cl.data import ArrayDataset, dataset_options, list_datasets, load_dataset, stratified_split
from ebv_cl.errors import ConfigError, DataRootError


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("EBV_CL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EBV_CL_DATA", raising=False)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, *, gz: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        data = _idx_bytes(arr)
        if gz:
            (folder / (stem + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)


def _png(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _tar_folder(folder: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as tf:
        for child in sorted(folder.iterdir()):
            tf.add(child, arcname=child.name)
    return target


# ---------------------------------------------------------------- ArrayDataset and splits


@pytest.mark.parametrize(
    "images, shape",
    [
        (np.full((4, 5, 6), 255, np.uint8), (1, 5, 6)),
        (np.full((4, 5, 6, 3), 255, np.uint8), (3, 5, 6)),
        (np.full((4, 5, 6), 1.0, np.float32), (1, 5, 6)),
    ],
)
def test_array_dataset_items(images, shape):
    ds = ArrayDataset(images, [0, 1, 2, 1])
    x, y = ds[2]
    assert ds.input_shape == shape and x.shape == shape and x.dtype == torch.float32
    assert y == 2 and isinstance(y, int)
    assert torch.allclose(x, torch.ones(shape))
    assert ds.targets.dtype == torch.long and ds.n_classes == 3
    sub = ds.subset([3, 0])
    assert sub.targets.tolist() == [1, 0] and len(sub) == 2


def test_array_dataset_standardize_and_channel_order():
    img = np.zeros((2, 2, 2, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 0, 51, 255
    ds = ArrayDataset(img, [0, 0], mean=[0.0, 0.1, 0.5], std=[1.0, 0.1, 0.5])
    x, _ = ds[0]
    assert torch.allclose(x[:, 0, 0], torch.tensor([0.0, 1.0, 1.0]), atol=1e-6)


@pytest.mark.parametrize(
    "images, targets, kwargs, error, match",
    [
        (np.zeros((3, 4), np.uint8), [0, 0, 0], {}, ValueError, "images must have shape"),
        (np.zeros((3, 4, 4), np.int32), [0, 0, 0], {}, TypeError, "uint8"),
        (np.zeros((3, 4, 4), np.uint8), [0, 0], {}, ValueError, "targets has 2 labels"),
        (np.zeros((3, 4, 4), np.uint8), [0.0, 1.0, 2.0], {}, TypeError, "integer"),
        (np.zeros((3, 4, 4), np.uint8), [0, -1, 0], {}, ValueError, ">= 0"),
        (np.zeros((3, 4, 4), np.uint8), [0, 1, 0], {"mean": [0.5]}, ValueError, "together"),
        (np.zeros((3, 4, 4), np.uint8), [0, 1, 0], {"mean": [0.5, 0.5], "std": [1, 1]}, ValueError, "1 or 1 values"),
    ],
)
def test_array_dataset_rejects(images, targets, kwargs, error, match):
    with pytest.raises(error, match=match):
        ArrayDataset(images, targets, **kwargs)


@pytest.mark.parametrize("fraction", [0.2, 0.25, 0.5])
def test_stratified_split_partitions_per_class(fraction):
    y = np.repeat(np.arange(5), [10, 7, 2, 1, 20])
    tr, te = stratified_split(y, test_fraction=fraction, seed=3)
    assert np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(len(y)))
    for c, n in enumerate([10, 7, 2, 1, 20]):
        n_test = int((y[te] == c).sum())
        expected = 0 if n < 2 else min(max(round(n * fraction), 1), n - 1)
        assert n_test == expected
    tr2, te2 = stratified_split(y, test_fraction=fraction, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(te, te2)


def test_stratified_split_rejects_fraction():
    with pytest.raises(ValueError, match="test_fraction must be a number in"):
        stratified_split([0, 1], test_fraction=1.0, seed=0)


# ---------------------------------------------------------------- registry and common options


def test_registry_lists_every_dataset():
    assert set(list_datasets()) >= {"digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "omniglot",
                                    "emnist_byclass", "tinyimagenet", "npz", "image_folder"}
    assert "normalize" in dataset_options("digits")


def test_digits_split_deterministic_and_stratified():
    tr, te = load_dataset("digits"), load_dataset("digits", train=False)
    assert (len(tr), len(te)) == (1347, 450) and tr.input_shape == (1, 8, 8)
    assert torch.equal(tr.targets, load_dataset("digits").targets)
    counts = torch.bincount(te.targets, minlength=10)
    assert counts.min() >= 44 and counts.max() <= 46
    x, _ = tr[0]
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_normalize_standard_uses_train_stats():
    tr = load_dataset("digits", normalize="standard")
    te = load_dataset("digits", train=False, normalize="standard")
    xs = torch.stack([tr[i][0] for i in range(len(tr))])
    assert abs(float(xs.mean())) < 1e-4 and abs(float(xs.std()) - 1.0) < 1e-2
    assert torch.equal(te.mean, tr.mean) and torch.equal(te.std, tr.std)


@pytest.mark.parametrize(
    "name, kwargs, error, match",
    [
        ("nope", {}, ValueError, "unknown dataset 'nope'; expected one of: cifar10"),
        ("digits", {"colour": 1}, ConfigError, r"unknown option\(s\) \['colour'\] for dataset 'digits'; valid"),
        ("digits", {"normalize": "zscore"}, ConfigError, "normalize must be one of"),
        ("mnist", {}, DataRootError, "EBV_CL_DATA"),
        ("npz", {"root": "/nonexistent/dir", "path": "x.npz"}, DataRootError, "is not an existing folder"),
        ("image_folder", {"root": "/tmp"}, DataRootError, "needs the option path"),
    ],
)
def test_load_dataset_errors(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        load_dataset(name, **kwargs)


# ---------------------------------------------------------------- MNIST family (IDX)


@pytest.mark.parametrize(
    "name, folder, gz",
    [("mnist", "mnist", True), ("mnist", "MNIST/raw", False), ("fashion_mnist", "fashion-mnist", True),
     ("fashion_mnist", "FashionMNIST/raw", False)],
)
def test_idx_layouts(tmp_path, name, folder, gz):
    imgs = {p: _rng(i).integers(0, 256, (n, 28, 28), dtype=np.uint8) for i, (p, n) in enumerate([("train", 12),
                                                                                                   ("t10k", 6)])}
    labs = {"train": np.arange(12) % 10, "t10k": np.arange(6) % 10}
    for p in imgs:
        _write_idx(tmp_path / folder, p, imgs[p], labs[p], gz=gz)
    for train, p in ((True, "train"), (False, "t10k")):
        ds = load_dataset(name, root=tmp_path, train=train)
        assert np.array_equal(ds.images, imgs[p]) and ds.targets.tolist() == labs[p].tolist()
        assert ds.n_classes == 10


def test_mnist_train_missing_names_files(tmp_path, monkeypatch):
    _write_idx(tmp_path / "mnist-test", "t10k", np.zeros((2, 28, 28), np.uint8), np.array([0, 1]), gz=True)
    monkeypatch.setenv("EBV_CL_DATA", str(tmp_path))
    assert len(load_dataset("mnist", train=False)) == 2
    with pytest.raises(DataRootError, match=r"training split not found.*train-images-idx3-ubyte\[\.gz\]"):
        load_dataset("mnist", train=True)


def test_idx_truncated_file(tmp_path):
    folder = tmp_path / "fashion-mnist"
    _write_idx(folder, "t10k", np.zeros((2, 28, 28), np.uint8), np.array([0, 1]), gz=False)
    data = (folder / "t10k-images-idx3-ubyte").read_bytes()
    (folder / "t10k-images-idx3-ubyte").write_bytes(data[:-5])
    with pytest.raises(DataRootError, match="truncated or corrupt"):
        load_dataset("fashion_mnist", root=tmp_path, train=False)


# ---------------------------------------------------------------- CIFAR


def _cifar10_folder(base: Path) -> dict:
    arrays = {}
    for split, n in (("train", 3), ("test", 2)):
        for c in ("airplane", "automobile", "bird"):
            for i in range(n):
                arr = np.full((32, 32, 3), (40 * i + 20, 100, 200), np.uint8)
                path = base / split / c / f"{i:04d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(_png(arr, "JPEG"))
                arrays[(split, c, i)] = arr
    return arrays


@pytest.mark.parametrize("form", ["folder", "archive"])
def test_cifar10_jpeg_folder_and_archive(tmp_path, form):
    root = tmp_path / "root"
    folder = _cifar10_folder(tmp_path / "src" if form == "archive" else root / "cifar10-jpg")
    if form == "archive":
        root.mkdir()
        _tar_folder(tmp_path / "src", root / "cifar10-jpg.tar.gz")
    tr = load_dataset("cifar10", root=root)
    te = load_dataset("cifar10", root=root, train=False)
    assert (len(tr), len(te), tr.input_shape, tr.classes) == (9, 6, (3, 32, 32), ["airplane", "automobile", "bird"])
    assert tr.targets.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert np.abs(tr.images[1].astype(int) - folder[("train", "airplane", 1)]).max() <= 3  # JPEG is lossy
    assert len(list((tmp_path / "cache" / "arrays").glob("cifar10-*/_done"))) == 1
    again = load_dataset("cifar10", root=root)  # from the .npy cache
    assert np.array_equal(again.images, tr.images)


def test_unwritable_cache_warns_and_still_loads(tmp_path, monkeypatch):
    _cifar10_folder(tmp_path / "root" / "cifar10-jpg")
    (tmp_path / "blocked").write_text("a file, not a folder")
    monkeypatch.setenv("EBV_CL_CACHE", str(tmp_path / "blocked"))
    with pytest.warns(RuntimeWarning, match="could not write the dataset cache"):
        ds = load_dataset("cifar10", root=tmp_path / "root")
    assert len(ds) == 9


def test_cifar10_missing_says_layout(tmp_path):
    with pytest.raises(DataRootError, match=r"expected \{train,test\}/<class>/\*\.jpg.*cifar10-jpg\.tar\.gz"):
        load_dataset("cifar10", root=tmp_path)


def _cifar100_files(folder: Path, n: int = 4) -> dict:
    folder.mkdir(parents=True)
    out = {}
    for split in ("train", "test"):
        data = _rng(len(split)).integers(0, 256, (n, 3072), dtype=np.uint8)
        blob = {b"data": data, b"fine_labels": list(range(n)), b"coarse_labels": [i % 2 for i in range(n)]}
        (folder / split).write_bytes(pickle.dumps(blob))
        out[split] = data
    meta = {b"fine_label_names": [f"c{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"s{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta))
    return out


@pytest.mark.parametrize("form", ["folder", "archive"])
def test_cifar100_pickles(tmp_path, form):
    root = tmp_path / "root"
    root.mkdir()
    src = (tmp_path / "src" if form == "archive" else root) / "cifar-100-python"
    data = _cifar100_files(src)
    if form == "archive":
        _tar_folder(tmp_path / "src", root / "cifar-100-python.tar.gz")
    ds = load_dataset("cifar100", root=root, train=False)
    assert ds.input_shape == (3, 32, 32) and ds.n_classes == 100 and ds.targets.tolist() == [0, 1, 2, 3]
    expected = data["test"][2].reshape(3, 32, 32).astype(np.float32) / 255
    assert torch.allclose(ds[2][0], torch.from_numpy(expected))
    coarse = load_dataset("cifar100", root=root, label_type="coarse")
    assert coarse.targets.tolist() == [0, 1, 0, 1] and coarse.classes[1] == "s1"


# ---------------------------------------------------------------- Omniglot


def _omniglot(base: Path, drawers: int = 4) -> None:
    for bg, alphabets in (("images_background", ("Beta", "Alpha")), ("images_evaluation", ("Gamma",))):
        for a in alphabets:
            for ch in ("character02", "character01"):
                for d in range(1, drawers + 1):
                    arr = np.full((105, 105), 255, np.uint8)
                    arr[: 10 * d, :] = 0  # black strokes, more for later drawers
                    path = base / bg / a / ch / f"0{ord(a[0])}_{d:02d}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(_png(arr))


@pytest.mark.parametrize("form", ["folder", "archive"])
def test_omniglot_order_split_resize(tmp_path, form):
    root = tmp_path / "root"
    root.mkdir()
    _omniglot(tmp_path / "src" if form == "archive" else root / "omniglot")
    if form == "archive":
        _tar_folder(tmp_path / "src", root / "omniglot.tar.gz")
    tr = load_dataset("omniglot", root=root, train_drawers=3)
    te = load_dataset("omniglot", root=root, train=False, train_drawers=3, size=105, invert=False)
    assert tr.classes == ["Alpha/character01", "Alpha/character02", "Beta/character01", "Beta/character02",
                          "Gamma/character01", "Gamma/character02"]
    assert tr.targets.tolist() == [c for c in range(6) for _ in range(3)] and te.targets.tolist() == list(range(6))
    assert tr.input_shape == (1, 28, 28) and te.input_shape == (1, 105, 105)
    assert te.images[0, 0, 0] == 0 and te.images[0, 50, 0] == 255  # drawer 4: rows < 40 black, not inverted
    assert tr.images[0, 0, 0] == 255  # inverted: strokes bright


# ---------------------------------------------------------------- EMNIST, npz


def test_emnist_npz_split(tmp_path):
    labels = np.repeat(np.arange(3), [20, 5, 10])
    images = _rng().integers(0, 256, (35, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "emnist-byclass-test.npz", images=images, labels=labels, mapping=np.array([48, 65, 97]))
    tr = load_dataset("emnist_byclass", root=tmp_path)
    te = load_dataset("emnist_byclass", root=tmp_path, train=False)
    assert tr.classes == ["0", "A", "a"] and len(tr) + len(te) == 35
    assert torch.bincount(te.targets).tolist() == [4, 1, 2]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataRootError, match="emnist-byclass-test.npz"):
        load_dataset("emnist_byclass", root=tmp_path / "empty")


def test_npz_both_forms(tmp_path):
    imgs = _rng().integers(0, 256, (10, 5, 5, 3), dtype=np.uint8)
    np.savez(tmp_path / "one.npz", images=imgs, labels=np.arange(10) % 2, classes=np.array(["cat", "dog"]))
    np.savez(tmp_path / "two.npz", train_images=imgs[:6], train_labels=np.zeros(6, int), test_images=imgs[6:],
             test_labels=np.ones(4, int))
    one = load_dataset("npz", root=tmp_path, path="one.npz", test_fraction=0.4)
    assert one.classes == ["cat", "dog"] and len(one) == 6 and one.input_shape == (3, 5, 5)
    two = load_dataset("npz", path=str(tmp_path / "two.npz"), train=False)
    assert np.array_equal(two.images, imgs[6:])
    np.savez(tmp_path / "bad.npz", x=imgs)
    with pytest.raises(DataRootError, match="must hold arrays 'images' and 'labels'"):
        load_dataset("npz", root=tmp_path, path="bad.npz")


# ---------------------------------------------------------------- image_folder, TinyImageNet


def _class_folders(base: Path, classes=("b", "a"), n=5, size=6) -> None:
    for k, c in enumerate(classes):
        for i in range(n):
            path = base / c / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_png(np.full((size, size, 3), 10 * k + i, np.uint8)))


@pytest.mark.parametrize("lazy", [False, True])
def test_image_folder_flat_split(tmp_path, lazy):
    _class_folders(tmp_path / "imgs")
    tr = load_dataset("image_folder", root=tmp_path, path="imgs", test_fraction=0.4, lazy=lazy, size=6)
    te = load_dataset("image_folder", root=tmp_path, path="imgs", train=False, test_fraction=0.4, lazy=lazy, size=6)
    assert tr.classes == ["a", "b"] and (len(tr), len(te)) == (6, 4)
    assert sorted(te.targets.tolist()) == [0, 0, 1, 1]
    x, y = te[0]
    assert x.shape == (3, 6, 6) and abs(float(x[0, 0, 0]) * 255 - round(float(x[0, 0, 0]) * 255)) < 1e-4


@pytest.mark.parametrize("form", ["folder", "archive"])
def test_image_folder_train_test_dirs(tmp_path, form):
    src = tmp_path / "data"
    _class_folders(src / "train", n=3)
    _class_folders(src / "val", n=2)
    path = src
    if form == "archive":
        path = tmp_path / "data.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for f in sorted(src.rglob("*.png")):
                zf.write(f, f.relative_to(src).as_posix().replace("val/", "test/"))
    tr = load_dataset("image_folder", path=str(path), mode="L")
    te = load_dataset("image_folder", path=str(path), train=False, mode="L")
    assert (len(tr), len(te), tr.input_shape) == (6, 4, (1, 6, 6))


def test_image_folder_mixed_sizes_need_size(tmp_path):
    _class_folders(tmp_path / "x", classes=("a",), size=6)
    _class_folders(tmp_path / "x", classes=("b",), size=7)
    with pytest.raises(DataRootError, match="pass the option size=N"):
        load_dataset("image_folder", path=str(tmp_path / "x"))
    assert load_dataset("image_folder", path=str(tmp_path / "x"), size=4).input_shape == (3, 4, 4)


def test_tinyimagenet_layout(tmp_path):
    base = tmp_path / "tiny-imagenet-200"
    wnids = ["n02", "n01"]
    for k, w in enumerate(wnids):
        for i in range(3):
            p = base / "train" / w / "images" / f"{w}_{i}.JPEG"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(_png(np.full((64, 64, 3), 100 * k, np.uint8), "JPEG"))
    (base / "val" / "images").mkdir(parents=True)
    lines = []
    for i, w in enumerate(["n01", "n02", "n02"]):
        (base / "val" / "images" / f"val_{i}.JPEG").write_bytes(_png(np.zeros((64, 64, 3), np.uint8), "JPEG"))
        lines.append(f"val_{i}.JPEG\t{w}\t0\t0\t10\t10")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines))
    (base / "wnids.txt").write_text("\n".join(wnids))
    tr = load_dataset("tinyimagenet", root=tmp_path)
    te = load_dataset("tinyimagenet", root=tmp_path, train=False)
    assert tr.classes == ["n01", "n02"] and tr.targets.tolist() == [0, 0, 0, 1, 1, 1]
    assert te.targets.tolist() == [0, 1, 1] and te.input_shape == (3, 64, 64)


def test_data_package_does_not_import_avalanche():
    import subprocess

    code = "import ebv_cl.data, ebv_cl.models, sys; print('avalanche' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
