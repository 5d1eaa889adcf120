"""Binary m-sequences: primitive feedback polynomials over GF(2), the LFSR, decimation and cyclotomic cosets.

Polynomials are Python ints whose bit ``i`` is the coefficient of ``x^i`` (``0b10011`` is ``x^4 + x + 1``).
The m-sequence of a primitive polynomial ``p`` of degree ``m`` has period ``n = 2^m - 1`` and satisfies the
recurrence ``s[t + m] = sum_{i < m} p_i s[t + i]`` (mod 2), started from ``s[0..m-1] = 1, 0, ..., 0``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = [
    "is_primitive",
    "primitive_polynomial",
    "m_sequence",
    "decimate",
    "coset_size",
    "prime_factors",
]


def prime_factors(value: int) -> list[int]:
    """The distinct prime factors of ``value >= 1`` (trial division; fine below 2^40)."""
    out, p = [], 2
    while p * p <= value:
        if value % p == 0:
            out.append(p)
            while value % p == 0:
                value //= p
        p += 1
    if value > 1:
        out.append(value)
    return out


def _mulmod(a: int, b: int, poly: int, degree: int) -> int:
    result = 0
    top = 1 << degree
    while b:
        if b & 1:
            result ^= a
        b >>= 1
        a <<= 1
        if a & top:
            a ^= poly
    return result


def _powmod_x(exponent: int, poly: int, degree: int) -> int:
    result, base = 1, (2 if degree > 1 else 1)
    while exponent:
        if exponent & 1:
            result = _mulmod(result, base, poly, degree)
        base = _mulmod(base, base, poly, degree)
        exponent >>= 1
    return result


def is_primitive(poly: int, m: int) -> bool:
    """Whether ``poly`` (bit i = coefficient of x^i) is a primitive polynomial of degree ``m`` over GF(2).

    A polynomial of degree m with a non-zero constant term is primitive iff ``x`` has multiplicative order
    exactly ``2^m - 1`` modulo it (which also implies irreducibility).
    """
    if m < 1 or poly.bit_length() != m + 1 or not poly & 1:
        return False
    order = (1 << m) - 1
    if _powmod_x(order, poly, m) != 1:
        return False
    return all(_powmod_x(order // r, poly, m) != 1 for r in prime_factors(order))


@lru_cache(maxsize=None)
def primitive_polynomial(m: int) -> int:
    """The smallest primitive polynomial of degree ``m`` (as an int), found by search; deterministic.

    Raises:
        ValueError: if ``m`` is not in [2, 30].
    """
    if not 2 <= m <= 30:
        raise ValueError(f"m must be in [2, 30] (sequence length 2^m - 1), got m={m}")
    for poly in range((1 << m) | 1, 1 << (m + 1), 2):
        if is_primitive(poly, m):
            return poly
    raise AssertionError(f"no primitive polynomial of degree {m}")  # pragma: no cover - one always exists


def m_sequence(poly: int, m: int) -> np.ndarray:
    """One period (``2^m - 1`` bits, uint8 0/1) of the m-sequence of the primitive polynomial ``poly``.

    Raises:
        ValueError: if ``poly`` is not a primitive polynomial of degree ``m``.
    """
    if not is_primitive(poly, m):
        raise ValueError(f"feedback polynomial {poly:#x} is not a primitive polynomial of degree {m}")
    n = (1 << m) - 1
    taps = [i for i in range(m) if (poly >> i) & 1]
    out = np.zeros(n + m, dtype=np.uint8)
    out[0] = 1
    for t in range(n):
        bit = 0
        for i in taps:
            bit ^= int(out[t + i])
        out[t + m] = bit
    return out[:n].copy()


def decimate(seq: np.ndarray, q: int, offset: int = 0) -> np.ndarray:
    """``out[t] = seq[(q t + offset) mod n]`` for one period of a periodic sequence."""
    n = seq.shape[-1]
    idx = (np.arange(n, dtype=np.int64) * q + offset) % n
    return seq[..., idx]


def coset_size(q: int, n: int) -> int:
    """Size of the cyclotomic coset ``{q 2^j mod n}``: the degree of the minimal polynomial of ``alpha^q``."""
    seen, x = set(), q % n
    while x not in seen:
        seen.add(x)
        x = (2 * x) % n
    return len(seen)


def gcd(a: int, b: int) -> int:
    """``math.gcd`` (re-exported for the family code)."""
    return math.gcd(a, b)
