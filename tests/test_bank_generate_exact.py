"""Exact constructions (orthogonal, simplex, kerdock), their size limits and the Kerdock FWHT decoder."""

from __future__ import annotations

import math

import pytest
import torch

from ebv_cl.bank.generate import KerdockDecoder, generate_vectors
from ebv_cl.bank.generate.hadamard import fwht, hadamard_sign_rows
from ebv_cl.bank.generate.kerdock import kerdock_capacity, kerdock_vectors


def _gram_abs(v: torch.Tensor) -> torch.Tensor:
    g = (v.double() @ v.double().T).abs()
    g.fill_diagonal_(0.0)
    return g


@pytest.mark.parametrize(
    "method, n, dim, expected",
    [
        ("orthogonal", 1, 1, 0.0),
        ("orthogonal", 7, 7, 0.0),
        ("orthogonal", 5, 32, 0.0),
        ("simplex", 2, 1, 1.0),
        ("simplex", 4, 3, 1 / 3),
        ("simplex", 65, 64, 1 / 64),
        ("simplex", 10, 64, 1 / 64),
        ("kerdock", 12, 4, 0.5),
        ("kerdock", 144, 16, 0.25),
        ("kerdock", 2112, 64, 0.125),
        ("kerdock", 100, 64, 0.125),
        ("kerdock", 16, 16, 0.0),
    ],
)
def test_exact_coherence(method: str, n: int, dim: int, expected: float) -> None:
    result = generate_vectors(n, dim, method=method, seed=3)
    v = result.vectors
    assert result.method == method and v.shape == (n, dim) and v.dtype == torch.float32
    assert torch.allclose(v.norm(dim=1), torch.ones(n), atol=1e-6)
    coherence = float(_gram_abs(v).max()) if n > 1 else 0.0
    assert coherence == pytest.approx(expected, abs=1e-6)
    assert result.info["final_coherence"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("dim", [4, 16, 64])
def test_kerdock_full_bank_is_zero_or_unbiased(dim: int) -> None:
    v, info = kerdock_vectors(kerdock_capacity(dim), dim)
    assert v.shape == (dim * dim // 2 + dim, dim)
    g = _gram_abs(v)
    off = g[~torch.eye(len(v), dtype=torch.bool)]
    zero = off < 1e-6
    unbiased = (off - 1 / math.sqrt(dim)).abs() < 1e-6
    assert bool((zero | unbiased).all())
    # within a basis orthogonal, across bases exactly 1/sqrt(d)
    blocks = torch.arange(len(v)) // dim
    same = blocks[:, None] == blocks[None, :]
    assert bool((g[same] < 1e-6).all()) and bool(((g[~same] - 1 / math.sqrt(dim)).abs() < 1e-6).all())
    assert info["kerdock"]["dim"] == dim and info["kerdock"]["capacity"] == len(v)


@pytest.mark.parametrize(
    "method, n, dim, match",
    [
        ("orthogonal", 9, 8, "at most dim = 8"),
        ("simplex", 10, 8, "at most dim \\+ 1 = 9"),
        ("kerdock", 13, 4, "at most dim\\^2/2 \\+ dim = 12"),
        ("kerdock", 10, 8, "power of 4"),
        ("kerdock", 10, 32, "power of 4"),
    ],
)
def test_size_limits_raise(method: str, n: int, dim: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        generate_vectors(n, dim, method=method)


@pytest.mark.parametrize("dim", [1, 2, 8, 64, 256])
def test_fwht_matches_dense_hadamard(dim: int) -> None:
    x = torch.randn(5, dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = hadamard_sign_rows(torch.arange(dim), dim).double()
    assert torch.allclose(fwht(x), x @ h.T, atol=1e-9)
    assert torch.allclose(h @ h.T, dim * torch.eye(dim, dtype=torch.float64))


def test_fwht_rejects_non_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two, got 12"):
        fwht(torch.zeros(2, 12))


@pytest.mark.parametrize("n, dim, k", [(12, 4, 3), (144, 16, 5), (70, 16, 70), (1000, 64, 10), (2112, 64, 1), (9, 16, 2)])
def test_decoder_equals_brute_force(n: int, dim: int, k: int) -> None:
    result = generate_vectors(n, dim, method="kerdock")
    decoder = KerdockDecoder.from_bank_info(n, dim, result.info)
    q = torch.randn(37, dim, generator=torch.Generator().manual_seed(n))
    scores, rows = decoder.search(q, k, batch=8)
    ref_scores, ref_rows = (q @ result.vectors.T).topk(k, dim=1)
    assert scores.shape == (37, k) and rows.dtype == torch.int64 and scores.dtype == torch.float32
    assert torch.equal(rows, ref_rows)
    assert torch.allclose(scores, ref_scores, atol=1e-5)
    assert torch.allclose(decoder.scores(q), q @ result.vectors.T, atol=1e-5)


def test_decoder_errors() -> None:
    with pytest.raises(ValueError, match="no 'kerdock' record"):
        KerdockDecoder.from_bank_info(10, 16, {"steps": 3})
    with pytest.raises(ValueError, match="field_modulus"):
        KerdockDecoder.from_bank_info(10, 16, {"kerdock": {"version": 1, "dim": 16, "field_modulus": 13}})
    with pytest.raises(ValueError, match="n must be in \\[1, 144\\]"):
        KerdockDecoder(145, 16)
    decoder = KerdockDecoder(20, 16)
    with pytest.raises(ValueError, match="k must be <= 20"):
        decoder.search(torch.randn(2, 16), 21)
    with pytest.raises(ValueError, match="shape \\(n, 16\\)"):
        decoder.search(torch.randn(2, 15), 1)


@pytest.mark.slow
@pytest.mark.parametrize("dim", [256, 1024])
def test_kerdock_large_full_bank_via_decoder(dim: int) -> None:
    """Every |cos| of the full d = 256 (33,024 rows) and a 20,000-row d = 1024 bank is 0, 1/sqrt(d) or 1."""
    n = min(kerdock_capacity(dim), 20000)
    v, info = kerdock_vectors(n, dim)
    decoder = KerdockDecoder.from_bank_info(n, dim, info)
    levels = torch.tensor([0.0, 1 / math.sqrt(dim), 1.0])
    for start in range(0, n, 512):
        gram = decoder.scores(v[start : start + 512]).abs()
        nearest = (gram.unsqueeze(-1) - levels).abs().min(dim=-1).values
        assert float(nearest.max()) < 1e-5
        assert torch.equal((gram > 0.5).nonzero()[:, 1], torch.arange(start, min(n, start + 512)))
