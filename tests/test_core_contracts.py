"""Boundary validation, registries, atomic writes and import hygiene of the core."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from ebv_cl.atomic import atomic_write, atomic_write_json
from ebv_cl.registry import Registry
from ebv_cl.validation import as_embeddings, check_positive_int, normalize_label


@pytest.mark.parametrize(
    "x, err, match",
    [
        ([[1.0, 2.0]], TypeError, "torch.Tensor or numpy.ndarray"),
        (torch.ones(2, 3, dtype=torch.int32), TypeError, "floating dtype"),
        (np.ones((2, 3), dtype=np.int64), TypeError, "floating dtype"),
        (torch.ones(2, 4), ValueError, r"shape \(n, 3\).*dimension 4 != 3"),
        (torch.ones(2, 3, 1), ValueError, "shape"),
        (torch.tensor([[1.0, float("nan"), 0.0]]), ValueError, "row 0 contains NaN or inf"),
        (torch.tensor([[1.0, 1.0, 1.0], [1.0, float("inf"), 0.0]]), ValueError, "row 1 contains NaN or inf"),
        (torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]), ValueError, "row 1 has zero norm"),
    ],
)
def test_as_embeddings_rejects_bad_input_with_a_clear_message(x, err, match):
    with pytest.raises(err, match=match):
        as_embeddings(x, dim=3, name="embeddings")


def test_as_embeddings_converts_dtype_layout_and_single_rows():
    x = np.asfortranarray(np.ones((4, 3), dtype=np.float64))
    out = as_embeddings(x, dim=3)
    assert out.dtype == torch.float32 and out.is_contiguous() and out.shape == (4, 3)
    assert as_embeddings(torch.ones(3, dtype=torch.float16), dim=3).shape == (1, 3)
    assert as_embeddings(torch.zeros(2, 3), dim=3, allow_zero=True).shape == (2, 3)


@pytest.mark.parametrize("value, err", [(0, ValueError), (-3, ValueError), (1.5, TypeError), (True, TypeError)])
def test_check_positive_int(value, err):
    with pytest.raises(err, match="k must"):
        check_positive_int(value, name="k")
    with pytest.raises(ValueError, match="k must be <= 4, got 5"):
        check_positive_int(5, name="k", maximum=4)
    assert check_positive_int(np.int32(3), name="k") == 3


def test_normalize_label():
    assert normalize_label(np.int16(3)) == 3 and type(normalize_label(np.int16(3))) is int
    assert normalize_label("a") == "a"
    with pytest.raises(TypeError, match="int or str"):
        normalize_label(2.0)


def test_registry_trio_and_unknown_names():
    reg: Registry = Registry("widget")

    @reg.register("b")
    def make_b(x=1):
        return ("b", x)

    @reg.register("a")
    def make_a():
        return "a"

    assert reg.names() == ["a", "b"] and "a" in reg
    assert reg.create("b", x=2) == ("b", 2)
    with pytest.raises(ValueError, match=r"unknown widget 'c'; expected one of: a, b"):
        reg.create("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(make_a)


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "r.json"
    atomic_write_json(target, {"runs": [1]})

    def boom(f):
        f.write(b"half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == '{\n  "runs": [\n    1\n  ]\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_importing_the_core_imports_neither_avalanche_nor_the_cli():
    code = (
        "import sys, ebv_cl, ebv_cl.bank, ebv_cl.slots; "
        "import importlib.util as u; "
        "[__import__(m) for m in ('ebv_cl.heads', 'ebv_cl.index', 'ebv_cl.data', 'ebv_cl.models') if u.find_spec(m)]; "
        "bad = [m for m in sys.modules if m.startswith(('avalanche', 'ebv_cl.cli', 'ebv_cl.continual'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = atomic_write_json(tmp_path / "r.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
