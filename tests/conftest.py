"""Shared fixtures: the real-data root (skips with a clear reason when absent) and small seeded banks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

_DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_root() -> Path | None:
    """The real-data folder: $EBV_CL_DATA, else ../shared/data beside the checkout, else None."""
    env = os.environ.get("EBV_CL_DATA")
    for candidate in ([Path(env)] if env else []) + [_DEFAULT_DATA]:
        if candidate.is_dir():
            return candidate
    return None


NO_DATA_REASON = f"real data not found: set EBV_CL_DATA or provide {_DEFAULT_DATA}"


def require_data_root() -> Path:
    """The real-data root, or skip the calling test saying where it was looked for."""
    root = data_root()
    if root is None:
        pytest.skip(NO_DATA_REASON)
    return root


@pytest.fixture
def real_data_root() -> Path:
    """The real-data root, or skip the test saying where it was looked for."""
    return require_data_root()


@pytest.fixture
def random_unit_vectors():
    """A factory of seeded random unit vectors ``(n, dim)``."""

    def make(n: int, dim: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=1)

    return make


@pytest.fixture
def one_torch_thread():
    """Run single-threaded: on a shared, loaded CPU, OpenMP spin-waits make tiny ops 10-30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _QuietDeprecations:
    """Avalanche's ``warnings`` as its ``@deprecated`` decorator sees it, minus the ``simplefilter("once",
    DeprecationWarning)`` it calls on every use: that call overrides pytest's ``filterwarnings`` and fills the
    test summary with Avalanche's own deprecation notices (not ebv-cl's business)."""

    def __getattr__(self, name):
        import warnings

        return getattr(warnings, name)

    @staticmethod
    def simplefilter(action, category=Warning, lineno=0, append=False):
        import warnings

        if not (action == "once" and category is DeprecationWarning):
            warnings.simplefilter(action, category, lineno, append)


@pytest.fixture(autouse=True)
def _avalanche_deprecations_quiet(monkeypatch):
    import sys

    annotations = sys.modules.get("avalanche._annotations")  # only once a test has imported Avalanche
    if annotations is not None:
        monkeypatch.setattr(annotations, "warnings", _QuietDeprecations())
    yield
