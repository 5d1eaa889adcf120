"""Small banks: the equiangular tight frames (``etf``), their ingredients, the ``smooth`` optimiser and the
small-N branch of ``auto``."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ebv_cl.bank.generate import choose_method, generate_vectors
from ebv_cl.bank.generate import designs
from ebv_cl.bank.generate.budget import Budget
from ebv_cl.bank.generate.etf import etf_catalogue, etf_for, etf_vectors
from ebv_cl.bank.generate.neighbours import coherence
from ebv_cl.bank.generate.smooth import MAX_N, SmoothConfig, default_restarts, default_sharpness, smooth_vectors
from ebv_cl.bank.stats import welch_bound


def _abs_gram(v: torch.Tensor) -> torch.Tensor:
    g = (v.double() @ v.double().T).abs()
    g.fill_diagonal_(0.0)
    return g


@pytest.mark.parametrize("order", [1, 2, 4, 8, 12, 16, 20, 24, 32, 44, 48])
def test_hadamard_matrices(order: int) -> None:
    h = designs.hadamard(order)
    assert np.array_equal(h @ h.T, order * np.eye(order)) and np.all(h[0] == 1)
    assert set(np.unique(h)) <= {-1, 1}


def test_hadamard_rejects_unknown_order() -> None:
    with pytest.raises(ValueError, match="no Hadamard matrix of order 28"):
        designs.hadamard(28)  # 27 is not prime: not built here


@pytest.mark.parametrize("m, blocks", [(3, 7), (4, 35), (5, 155)])
def test_projective_triples_are_steiner_triple_systems(m: int, blocks: int) -> None:
    triples = designs.projective_triples(m)
    v = (1 << m) - 1
    assert len(triples) == blocks == v * (v - 1) // 6
    pairs = {frozenset(p) for t in triples for p in [(t[0], t[1]), (t[0], t[2]), (t[1], t[2])]}
    assert len(pairs) == v * (v - 1) // 2  # every pair once


def test_golay_code_and_leech_lines() -> None:
    code = designs.golay_code()
    assert code.shape == (4096, 24)
    assert np.bincount(code.sum(axis=1), minlength=25)[[0, 8, 12, 16, 24]].tolist() == [1, 759, 2576, 759, 1]
    lines = torch.from_numpy(designs.leech_lines())
    assert lines.shape == (276, 23)
    g = _abs_gram(lines)
    off = g[~torch.eye(276, dtype=torch.bool)]
    assert torch.allclose(off, torch.full_like(off, 0.2), atol=1e-12)  # equiangular at 1/5


@pytest.mark.parametrize(
    "dim, n, expected",
    [
        (3, 6, 1 / math.sqrt(5)),  # icosahedron diagonals (Paley q = 5)
        (5, 10, 1 / 3),  # Petersen
        (6, 16, 1 / 3),  # Steiner pairs v = 4
        (7, 14, 1 / math.sqrt(13)),  # Paley q = 13
        (7, 28, 1 / 3),  # Fano plane
        (15, 36, 1 / 5),  # Latin square graph
        (21, 36, 1 / 7),  # its complement
        (23, 276, 1 / 5),  # Leech lattice
        (28, 64, 1 / 7),  # Steiner pairs v = 8
        (35, 120, 1 / 7),  # PG(3, 2)
        (66, 144, 1 / 11),  # Steiner pairs v = 12, Paley Hadamard 12
        (120, 256, 1 / 15),  # Steiner pairs v = 16
        (496, 1024, 1 / 31),  # Steiner pairs v = 32
    ],
)
def test_etf_meets_the_welch_bound(dim: int, n: int, expected: float) -> None:
    result = generate_vectors(n, dim, method="etf")
    v = result.vectors
    assert result.method == "etf" and v.shape == (n, dim) and v.dtype == torch.float32
    assert torch.allclose(v.norm(dim=1), torch.ones(n), atol=1e-6)
    off = _abs_gram(v)[~torch.eye(n, dtype=torch.bool)]
    assert expected == pytest.approx(welch_bound(n, dim), rel=1e-12)
    assert torch.allclose(off, torch.full_like(off, expected), atol=2e-6)  # every pair, not only the worst
    assert result.info["final_coherence"] == pytest.approx(expected, abs=2e-6)
    assert result.info["etf"]["frame_n"] == n


@pytest.mark.slow
def test_whole_etf_catalogue_meets_the_welch_bound() -> None:
    for entry in etf_catalogue():
        rows = torch.from_numpy(entry.build())
        assert rows.shape == (entry.n, entry.dim), entry.name
        assert coherence(rows) == pytest.approx(welch_bound(entry.n, entry.dim), abs=1e-9), entry.name


def test_etf_subset_limits_and_determinism() -> None:
    full, _ = etf_vectors(64, 28)
    part, info = etf_vectors(40, 28)
    assert torch.equal(part, full[:40])  # a prefix in the documented order; the seed is ignored
    assert torch.equal(generate_vectors(40, 28, method="etf", seed=1).vectors, part)
    assert info["etf"]["construction"] == "steiner pairs v=8"
    with pytest.raises(ValueError, match="method 'etf' has at most 64 vectors in dim = 28, got n = 65"):
        generate_vectors(65, 28, method="etf")
    with pytest.raises(ValueError, match="method 'etf' has no frame in dim = 4, got n = 6"):
        generate_vectors(6, 4, method="etf")
    assert etf_for(30, 15).n == 30 and etf_for(31, 15).n == 36  # the lowest coherence that holds n


def test_steiner_frame_rejects_wrong_hadamard_order() -> None:
    from ebv_cl.bank.generate.etf import steiner_frame

    with pytest.raises(ValueError, match="needs a Hadamard matrix of order 8"):
        steiner_frame(designs.pair_design(8), 8, designs.hadamard(4))


@pytest.mark.parametrize(
    "n, dim, expected",
    [(64, 28, "etf"), (256, 120, "etf"), (1024, 496, "etf"), (36, 15, "etf"), (276, 23, "etf"), (6, 3, "etf"),
     (5, 3, "etf"), (200, 120, "smooth"), (7, 3, "smooth"), (12, 4, "kerdock"), (150, 64, "smooth"),
     (300, 50, "smooth"), (301, 50, "sparse"), (1000, 100, "sparse"), (1000, 500, "sparse")],
)
def test_auto_small_n_choice(n: int, dim: int, expected: str) -> None:
    assert choose_method(n, dim) == expected


def test_auto_uses_the_exact_frame() -> None:
    result = generate_vectors(64, 28, seed=0, time_budget=1.0)
    assert result.method == "etf" and result.info["final_coherence"] == pytest.approx(1 / 7, abs=2e-6)


def test_smooth_is_deterministic_beats_random_and_reports_exact_coherence() -> None:
    from ebv_cl.bank.generate import random_bank

    first = generate_vectors(40, 6, method="smooth", seed=2, max_steps=150)
    second = generate_vectors(40, 6, method="smooth", seed=2, max_steps=150)
    assert torch.equal(first.vectors, second.vectors)
    assert first.info["final_coherence"] == pytest.approx(coherence(first.vectors), abs=1e-7)
    assert first.info["final_coherence"] < 0.8 * coherence(random_bank(40, 6, seed=2))
    assert first.info["restarts"] == default_restarts(40) and first.info["steps"] <= 150


@pytest.mark.parametrize("n, dim, optimum", [(7, 3, 1 / math.sqrt(3)), (12, 4, 0.5), (10, 5, 1 / 3)])
def test_smooth_reaches_known_optima(n: int, dim: int, optimum: float) -> None:
    # (3, 7) and (4, 12) meet the orthoplex bound; (5, 10) is the Petersen ETF
    result = generate_vectors(n, dim, method="smooth", seed=0, max_steps=800)
    assert result.info["final_coherence"] <= optimum * (1 + 1e-4)


def test_smooth_multiple_starts_help_and_limits() -> None:
    budget = Budget(max_steps=800, patience=10**6)
    one, _ = smooth_vectors(5, 3, seed=0, budget=budget, device=torch.device("cpu"), config=SmoothConfig(restarts=1))
    many, info = smooth_vectors(5, 3, seed=0, budget=budget, device=torch.device("cpu"))
    assert info["restarts"] == 32 and coherence(many) <= coherence(one) + 1e-7
    assert default_restarts(10_000) == 1 and default_restarts(2) == 32
    assert default_sharpness(28) == 2e4 and default_sharpness(256) == 2e3
    with pytest.raises(ValueError, match=f"holds at most n = {MAX_N} vectors, got n = {MAX_N + 1}"):
        smooth_vectors(MAX_N + 1, 8, seed=0, budget=budget, device=torch.device("cpu"))


def test_bench_packings_quick_table() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import bench_packings
    finally:
        sys.path.pop(0)
    rows = bench_packings.run([(7, 28, 1 / 3, "ETF")], budget=0.3, seeds=[0])
    (row,) = rows
    assert row["auto_method"] == "etf" and row["auto"] == pytest.approx(1.0, abs=1e-5)
    assert row["reference"] >= 1.0 - 1e-9 and row["smooth"] >= 1.0 - 1e-9
    assert len(bench_packings.SHAPES) == 12
