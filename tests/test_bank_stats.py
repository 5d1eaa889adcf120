"""Bank statistics against an independent brute-force computation, and the coherence bounds."""

import math

import numpy as np
import pytest
import torch

from ebv_cl.bank import EBVBank, bank_statistics, coherence_lower_bound, levenstein_bound, welch_bound


def brute_force(vectors: torch.Tensor) -> dict:
    w = vectors.double().numpy()
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    gram = np.clip(np.abs(w @ w.T), 0, 1)
    iu = np.triu_indices(len(w), k=1)
    pairs = gram[iu]
    theta = np.degrees(np.arccos(np.clip(w @ w.T, -1, 1)[iu]))
    return {
        "coherence": pairs.max(),
        "min_angle_deg": np.minimum(theta, 180 - theta).min(),
        "mean_abs_dev_deg": np.abs(theta - 90).mean(),
        "mean_abs_cos": pairs.mean(),
    }


@pytest.mark.parametrize("n, dim, block", [(2, 3, None), (37, 5, 4), (300, 16, 7), (129, 64, 128), (5000, 8, None)])
def test_statistics_equal_brute_force(random_unit_vectors, n, dim, block):
    v = random_unit_vectors(n, dim, seed=n)
    stats = bank_statistics(v, block_size=block)
    expected = brute_force(v)
    assert stats.coherence == pytest.approx(expected["coherence"], abs=1e-6)
    assert stats.min_angle_deg == pytest.approx(expected["min_angle_deg"], abs=1e-3)
    assert stats.mean_abs_dev_deg == pytest.approx(expected["mean_abs_dev_deg"], abs=1e-4)
    assert stats.mean_abs_cos == pytest.approx(expected["mean_abs_cos"], abs=1e-6)


def test_orthonormal_bank_has_zero_coherence():
    stats = bank_statistics(torch.eye(6))
    assert stats.coherence == 0 and stats.min_angle_deg == 90 and stats.mean_abs_dev_deg == 0


def test_single_vector_bank():
    stats = bank_statistics(torch.ones(1, 4))
    assert stats.coherence == 0 and stats.mean_abs_dev_deg == 0


def test_antipodal_vectors_are_the_same_line():
    stats = bank_statistics(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    assert stats.coherence == pytest.approx(1.0) and stats.min_angle_deg == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize(
    "n, dim, welch",
    [(1000, 128, math.sqrt(872 / (128 * 999))), (10, 10, 0.0), (5, 10, 0.0), (4, 3, math.sqrt(1 / 9))],
)
def test_welch_bound(n, dim, welch):
    assert welch_bound(n, dim) == pytest.approx(welch)


def test_levenstein_bound_applies_above_d_d_plus_1_over_2():
    assert levenstein_bound(8256, 128) is None  # exactly d(d+1)/2
    assert levenstein_bound(10_000, 128) == pytest.approx(0.102, abs=5e-4)  # the figure quoted in issue 3
    for d in (4, 16, 64, 256):  # the Kerdock size d^2/2 + d meets 1/sqrt(d) exactly
        assert levenstein_bound(d * d // 2 + d, d) == pytest.approx(1 / math.sqrt(d))
    assert coherence_lower_bound(10_000, 128) == pytest.approx(levenstein_bound(10_000, 128))
    assert coherence_lower_bound(1000, 128) == pytest.approx(welch_bound(1000, 128))


def test_simplex_meets_the_welch_bound():
    d = 5
    simplex = torch.eye(d + 1) - 1.0 / (d + 1)  # d+1 centred basis vectors span a d-dim subspace
    q, _ = torch.linalg.qr(simplex.double().T)
    v = simplex.double() @ q[:, :d]
    stats = bank_statistics(v)
    assert stats.coherence == pytest.approx(1 / d, abs=1e-9)
    assert stats.coherence == pytest.approx(welch_bound(d + 1, d), abs=1e-9)
    assert stats.coherence_to_bound == pytest.approx(1.0, abs=1e-9)


def test_bank_stats_are_cached_and_json_ready(random_unit_vectors):
    bank = EBVBank(random_unit_vectors(40, 8))
    assert bank.stats() is bank.stats()
    d = bank.stats().to_dict()
    assert {"n", "dim", "coherence", "min_angle_deg", "mean_abs_dev_deg", "welch_bound"} <= set(d)
