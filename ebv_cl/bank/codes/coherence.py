"""Exact coherence of a code bank from its structure, never from the ``N^2 d`` Gram matrix.

Two rows of a code bank are ``+-1/sqrt(n)`` sequences ``a``, ``b`` (shifts of members; the zero padding adds
nothing), and ``<a, b> = sum((-1)^(a + b)) / n``, where ``a + b`` (mod 2) is a codeword of the linear code spanned
by the family's components. Hence:

- **Upper bound, always valid:** the largest ``|sum of +-1 entries|`` over the non-zero codewords of the span of
  the components the bank's members use, divided by ``n``: one pass over the code's orbit representatives,
  ``O(#orbits * n)`` (the orbits' weights are shift invariant).
- **Exact for the whole family:** every non-zero codeword of the span is the sum of two distinct rows of the
  family (a codeword without the base ``u`` is ``u + (u + c)``; one with ``T^j u`` is ``T^k u + (T^k u + c)``
  with ``k != j``, and every codeword containing ``u`` is a full-period row), so the bound is attained.
- **Lower bound for a prefix:** correlate member 0 (the base ``u``, all of its shifts present) with every member
  by FFT, ``O(K n log n)``. When it meets the upper bound the coherence is exact; otherwise, for few members,
  every pair of members is cross-correlated by FFT (exact); else the upper bound is reported, labelled as such.

``code_statistics`` turns this into a ``BankStats``; its mean-angle figures are estimated from random pairs of
rows (stated in ``note``). ``sample_check`` is the brute-force cross-check of ``bank stats --sample K``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .code import SequenceCode

__all__ = ["CodeCoherence", "code_coherence", "code_statistics", "sample_check", "EXACT_PAIR_BUDGET"]

EXACT_PAIR_BUDGET = 4e8  # pairs of members x n: above this, a prefix that misses the bound stays an upper bound
_CHUNK = 2048


@dataclass(frozen=True)
class CodeCoherence:
    """Coherence of a code bank: ``value`` (exact when ``exact``), the structural ``upper`` and ``lower`` bounds."""

    value: float
    exact: bool
    upper: float
    lower: float
    how: str


def _abs_sums(code: SequenceCode, table: np.ndarray) -> np.ndarray:
    fam = code.structure
    out = np.empty(table.shape[0], dtype=np.int64)
    n = code.length
    for start in range(0, table.shape[0], _CHUNK):
        bits = fam.bits(table[start : start + _CHUNK])
        out[start : start + bits.shape[0]] = np.abs(n - 2 * bits.sum(axis=1, dtype=np.int64))
    return out


def span_max_abs_sum(code: SequenceCode) -> int:
    """Largest ``|sum of +-1 entries|`` over the non-zero codewords spanned by the components the bank uses."""
    fam = code.structure
    used = fam.members[: code.n_members] >= 0
    components = used.any(axis=0)
    table = np.concatenate([fam.members, fam.short])
    inside = ~((table >= 0) & ~components[None, :]).any(axis=1)
    return int(_abs_sums(code, table[inside]).max())


def _fft(seqs: np.ndarray) -> np.ndarray:
    return np.fft.rfft(seqs.astype(np.float64), axis=1)


def _corr_with(code: SequenceCode, f_a: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``(len(members), n)`` cross-correlations ``sum_c a[c] b[(c + s) % n]`` of sequence ``a`` with each member."""
    n = code.length
    f_b = _fft(code.sequences(members))
    return np.rint(np.fft.irfft(np.conj(f_a)[None, :] * f_b, n=n, axis=1)).astype(np.int64)


def _allowed_self_shifts(code: SequenceCode, member: int) -> np.ndarray:
    """Shift differences ``s != 0`` realised between two rows of ``member`` (all, unless it is partial)."""
    n = code.length
    present = min(n, code.n_rows - member * n)
    s = np.arange(n)
    return (s != 0) & ((s < present) | (s > n - present))


def _exact_all_pairs(code: SequenceCode) -> int:
    """Largest ``|cross-correlation|`` over every pair of rows, member pair by member pair (FFT)."""
    k, best = code.n_members, 0
    n = code.length
    f_all = _fft(code.sequences(slice(0, k)))
    for a in range(k):
        corr = np.rint(np.fft.irfft(np.conj(f_all[a])[None, :] * f_all[a:], n=n, axis=1)).astype(np.int64)
        best = max(best, int(np.abs(corr[0][_allowed_self_shifts(code, a)]).max(initial=0)))
        if corr.shape[0] > 1:
            best = max(best, int(np.abs(corr[1:]).max()))
    return best


def code_coherence(code: SequenceCode, *, pair_budget: float | None = None) -> CodeCoherence:
    """The coherence of the bank ``code`` describes, from its structure (see the module docstring).

    Args:
        code: The code bank's formula.
        pair_budget: Most ``member pairs x n`` to cross-correlate for an exact prefix value (default
            ``EXACT_PAIR_BUDGET``).
    """
    if pair_budget is None:
        pair_budget = EXACT_PAIR_BUDGET
    n = code.length
    k = code.n_members
    if code.n_rows < 2:
        return CodeCoherence(0.0, True, 0.0, 0.0, "one row")
    upper = span_max_abs_sum(code)
    if k == code.family_size and code.n_rows == code.capacity:
        return CodeCoherence(upper / n, True, upper / n, upper / n, "whole family: max over the code's non-zero codewords")
    if code.n_rows <= n:  # shifts of the base only: its autocorrelation on the realised shift differences
        auto = _corr_with(code, _fft(code.sequences([0]))[0], np.array([0]))[0]
        val = int(np.abs(auto[_allowed_self_shifts(code, 0)]).max(initial=0))
        return CodeCoherence(val / n, True, upper / n, val / n, "shifts of one sequence: autocorrelation")
    f_u = _fft(code.sequences([0]))[0]
    lower = int(np.abs(_corr_with(code, f_u, np.array([0])))[0][_allowed_self_shifts(code, 0)].max(initial=0))
    for start in range(1, k, _CHUNK):
        members = np.arange(start, min(k, start + _CHUNK))
        lower = max(lower, int(np.abs(_corr_with(code, f_u, members)).max()))
        if lower == upper:
            break
    if lower == upper:
        return CodeCoherence(upper / n, True, upper / n, lower / n,
                             "prefix: a pair with the base sequence meets the code's bound")
    if k * k / 2 * n <= pair_budget:
        exact = _exact_all_pairs(code)
        return CodeCoherence(exact / n, True, upper / n, exact / n, "prefix: every pair of members by FFT")
    return CodeCoherence(upper / n, False, upper / n, lower / n,
                         "prefix too large for all pairs: upper bound from the code, lower bound from the base")


def _sampled_means(code: SequenceCode, pairs: int = 20_000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    n_rows = code.n_rows
    a = rng.integers(0, n_rows, size=pairs)
    b = rng.integers(0, n_rows - 1, size=pairs)
    b = b + (b >= a)
    abs_cos = np.empty(pairs)
    for start in range(0, pairs, 8192):
        ra = code.rows(a[start : start + 8192]).double()
        rb = code.rows(b[start : start + 8192]).double()
        abs_cos[start : start + ra.shape[0]] = (ra * rb).sum(1).abs().clamp(max=1.0).numpy()
    return float(abs_cos.mean()), math.degrees(float(np.arcsin(abs_cos).mean()))


def code_statistics(code: SequenceCode):
    """A ``BankStats`` for a code bank: structural coherence (exact or a labelled upper bound), the bounds, and
    mean figures estimated from 20,000 random pairs of rows (seed 0)."""
    from ..stats import BankStats, coherence_lower_bound, levenstein_bound, welch_bound

    coh = code_coherence(code)
    n_rows, dim = code.n_rows, code.dim
    if n_rows >= 2:
        mean_abs_cos, mean_dev = _sampled_means(code, pairs=min(20_000, n_rows * (n_rows - 1) // 2))
    else:
        mean_abs_cos, mean_dev = 0.0, 0.0
    bound = coherence_lower_bound(n_rows, dim)
    note = (f"{code.family} m={code.m} code (n={code.length}, {code.n_members}/{code.family_size} members); "
            f"coherence {'exact' if coh.exact else 'UPPER BOUND'}: {coh.how}; mean figures estimated from 20,000 random pairs")
    return BankStats(
        n=n_rows,
        dim=dim,
        coherence=coh.value,
        min_angle_deg=math.degrees(math.acos(min(1.0, coh.value))),
        mean_abs_dev_deg=mean_dev,
        mean_abs_cos=mean_abs_cos,
        welch_bound=welch_bound(n_rows, dim),
        levenstein_bound=levenstein_bound(n_rows, dim),
        lower_bound=bound,
        coherence_to_bound=(coh.value / bound) if bound > 0 else None,
        coherence_exact=coh.exact,
        coherence_lower=coh.lower,
        note=note,
    )


def sample_check(code, k: int, *, seed: int = 0, against: int = 1 << 18) -> dict:
    """Brute-force cross-check of a bank (an ``EBVBank`` or a ``SequenceCode``): ``k`` random rows against
    ``min(N, against)`` rows (every row when ``N <= against``, else a random subset plus the ``k`` rows), by dense
    float64 products of the rows ``rows()`` returns.

    Returns:
        ``{"rows": k, "against": m, "all_rows": bool, "max_abs_cos": ..., "unit_norm_error": ..., "seed": seed}``;
        ``max_abs_cos`` can never exceed the bank's coherence (equals it when the sample meets a worst pair).
    """
    import torch

    n_rows = int(getattr(code, "n_rows", None) or code.n)
    rng = np.random.default_rng(seed)
    k = int(min(k, n_rows))
    picked = np.sort(rng.choice(n_rows, size=k, replace=False))
    if n_rows <= against:
        others = np.arange(n_rows)
    else:
        others = np.unique(np.concatenate([picked, rng.choice(n_rows, size=against, replace=False)]))
    rows = code.rows(picked).double()
    best = 0.0
    for start in range(0, others.size, 16384):
        block = others[start : start + 16384]
        g = rows @ code.rows(block).double().T
        g[torch.from_numpy(picked[:, None] == block[None, :])] = 0.0
        best = max(best, float(g.abs().max()))
    return {"rows": k, "against": int(others.size), "all_rows": bool(others.size == n_rows), "max_abs_cos": best,
            "unit_norm_error": float((rows.norm(dim=1) - 1).abs().max()), "seed": seed}
