"""Combinatorial ingredients of the equiangular tight frames in ``etf``: Hadamard matrices, Steiner systems,
Seidel matrices of strongly regular graphs, and the 276 equiangular lines of the Leech lattice.

Every function returns exact integer (or +-1) numpy arrays and checks the defining identity of what it
built (``H H^T = v I``, every pair of points in exactly one block, ...), so a wrong table entry fails loudly
instead of yielding a worse bank.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = [
    "hadamard",
    "hadamard_orders",
    "pair_design",
    "projective_triples",
    "paley_conference_seidel",
    "petersen_seidel",
    "latin_square_seidel",
    "golay_code",
    "leech_lines",
    "is_prime",
]


def is_prime(q: int) -> bool:
    """Whether ``q`` is a prime."""
    return q >= 2 and all(q % p for p in range(2, int(q**0.5) + 1))


def _legendre(q: int) -> np.ndarray:
    """``chi[x]`` for ``x`` in ``0 .. q-1``: 0, +1 on the nonzero squares mod ``q``, -1 elsewhere."""
    chi = -np.ones(q, dtype=np.int64)
    chi[0] = 0
    chi[np.unique((np.arange(1, q) ** 2) % q)] = 1
    return chi


def hadamard_orders(limit: int) -> list[int]:
    """Orders ``<= limit`` that ``hadamard`` builds: powers of two (Sylvester) and ``q + 1`` for primes
    ``q = 3 mod 4`` (Paley I)."""
    out = {1 << k for k in range(limit.bit_length()) if 1 << k <= limit}
    out |= {q + 1 for q in range(3, limit) if q % 4 == 3 and is_prime(q)}
    return sorted(o for o in out if o <= limit)


def hadamard(order: int) -> np.ndarray:
    """A ``(order, order)`` +-1 Hadamard matrix whose first row is all ones (``H H^T = order I``).

    Raises:
        ValueError: if ``order`` is neither a power of two nor ``q + 1`` for a prime ``q = 3 mod 4``.
    """
    if order >= 1 and order & (order - 1) == 0:
        h = np.ones((1, 1), dtype=np.int64)
        while h.shape[0] < order:
            h = np.block([[h, h], [h, -h]])
    elif order % 4 == 0 and is_prime(order - 1):
        q = order - 1
        chi = _legendre(q)
        jacobsthal = chi[(np.arange(q)[None, :] - np.arange(q)[:, None]) % q]  # skew: chi(-1) = -1
        s = np.zeros((order, order), dtype=np.int64)
        s[0, 1:], s[1:, 0], s[1:, 1:] = 1, -1, jacobsthal
        h = s + np.eye(order, dtype=np.int64)
        h = h * h[0][None, :]  # normalise the first row to ones (columns times +-1 keep H H^T)
    else:
        raise ValueError(f"no Hadamard matrix of order {order} here; orders: powers of 2 and q + 1 (q = 3 mod 4 prime)")
    if not np.array_equal(h @ h.T, order * np.eye(order, dtype=np.int64)):
        raise AssertionError(f"Hadamard matrix of order {order} failed H H^T = n I")  # unreachable
    return h


def _check_design(blocks: list[tuple[int, ...]], v: int) -> None:
    seen = np.zeros((v, v), dtype=np.int64)
    for b in blocks:
        for a, c in itertools.combinations(b, 2):
            seen[a, c] += 1
            seen[c, a] += 1
    if not np.array_equal(seen + np.eye(v, dtype=np.int64), np.ones((v, v), dtype=np.int64)):
        raise AssertionError("not a Steiner 2-design: some pair of points is not in exactly one block")


def pair_design(v: int) -> list[tuple[int, ...]]:
    """The 2-(v, 2, 1) design: every pair of ``v`` points is a block (``v (v - 1) / 2`` blocks)."""
    return list(itertools.combinations(range(v), 2))


def projective_triples(m: int) -> list[tuple[int, ...]]:
    """The lines of PG(m - 1, 2): a Steiner triple system on ``v = 2^m - 1`` points.

    Points are the nonzero vectors of ``GF(2)^m`` (as integers ``1 .. v``, stored as ``0 .. v-1``); the lines
    are the triples ``{a, b, a xor b}``.
    """
    v = (1 << m) - 1
    blocks = sorted({tuple(sorted((a - 1, b - 1, (a ^ b) - 1))) for a in range(1, v + 1) for b in range(a + 1, v + 1)})
    _check_design(blocks, v)
    return blocks


def paley_conference_seidel(q: int) -> np.ndarray:
    """The symmetric conference matrix of order ``q + 1`` (``q = 1 mod 4`` prime): ``S^2 = q I``.

    Raises:
        ValueError: if ``q`` is not a prime ``= 1 mod 4``.
    """
    if not (is_prime(q) and q % 4 == 1):
        raise ValueError(f"Paley conference matrices here need a prime q = 1 mod 4, got {q}")
    chi = _legendre(q)
    s = np.zeros((q + 1, q + 1), dtype=np.int64)
    s[0, 1:] = s[1:, 0] = 1
    s[1:, 1:] = chi[(np.arange(q)[None, :] - np.arange(q)[:, None]) % q]
    return s


def _seidel(adjacency: np.ndarray) -> np.ndarray:
    n = adjacency.shape[0]
    return np.ones((n, n), dtype=np.int64) - np.eye(n, dtype=np.int64) - 2 * adjacency.astype(np.int64)


def petersen_seidel() -> np.ndarray:
    """Seidel matrix of the Petersen graph (2-subsets of 5 points, adjacent when disjoint): eigenvalues +-3."""
    pairs = list(itertools.combinations(range(5), 2))
    adj = np.array([[not set(a) & set(b) for b in pairs] for a in pairs], dtype=np.int64)
    return _seidel(adj)


def latin_square_seidel(order: int = 6) -> np.ndarray:
    """Minus the Seidel matrix of the Latin square graph of the cyclic group of ``order`` (cells ``(i, j)``,
    adjacent when they share a row, a column or the symbol ``i + j``). For ``order = 6`` the graph is
    strongly regular (36, 15, 6, 6) and the returned matrix has eigenvalues 7 (15 times) and -5 (21 times)."""
    cells = [(i, j) for i in range(order) for j in range(order)]
    adj = np.array(
        [[(a != b) and (a[0] == b[0] or a[1] == b[1] or (a[0] + a[1] - b[0] - b[1]) % order == 0) for b in cells]
         for a in cells],
        dtype=np.int64,
    )
    return -_seidel(adj)


def golay_code() -> np.ndarray:
    """The 4096 words of the extended binary Golay code [24, 12, 8] as a ``(4096, 24)`` 0/1 array.

    Built as the extended quadratic-residue code of length 23: the span of the cyclic shifts of the indicator
    of the non-residues mod 23 (dimension 12), with an overall parity bit; checked by its weight
    distribution 1, 759, 2576, 759, 1 (weights 0, 8, 12, 16, 24).
    """
    chi = _legendre(23)
    base = (chi == -1).astype(np.int64)
    basis = _row_echelon_gf2(np.stack([np.roll(base, k) for k in range(23)]))
    coeffs = (np.arange(1 << basis.shape[0])[:, None] >> np.arange(basis.shape[0])[None, :]) & 1
    words = (coeffs @ basis) % 2
    words = np.concatenate([words, words.sum(axis=1, keepdims=True) % 2], axis=1)
    weights = np.bincount(words.sum(axis=1), minlength=25)
    expected = np.zeros(25, dtype=np.int64)
    expected[[0, 8, 12, 16, 24]] = [1, 759, 2576, 759, 1]
    if words.shape[0] != 4096 or not np.array_equal(weights, expected):
        raise AssertionError("the extended QR code of length 24 is not the Golay code")  # unreachable
    return words


def _row_echelon_gf2(rows: np.ndarray) -> np.ndarray:
    m = rows.copy() % 2
    rank = 0
    for col in range(m.shape[1]):
        pivot = next((r for r in range(rank, m.shape[0]) if m[r, col]), None)
        if pivot is None:
            continue
        m[[rank, pivot]] = m[[pivot, rank]]
        others = m[:, col].astype(bool)
        others[rank] = False
        m[others] ^= m[rank]
        rank += 1
    return m[:rank]


def leech_lines() -> np.ndarray:
    """276 equiangular lines in R^23 at angle arccos(1/5), from the Leech lattice, as ``(276, 23)`` float64.

    In the Leech lattice (coordinates scaled by sqrt 8, built from the Golay code) fix the norm-6 vector
    ``w = (5, 1^23)``. The 552 minimal (norm-4) vectors ``v`` with ``v . w = 3`` come in pairs ``{v, w - v}``;
    the vectors ``v - w/2`` are orthogonal to ``w``, all of norm 5/2, with inner products +-1/2, so the 276
    lines they span are equiangular with ``|cos| = 1/5`` (Lemmens and Seidel, 1973). One vector per pair is kept
    (the one whose first nonzero coordinate is positive), in lexicographic order of the integer vectors, and
    expressed in an orthonormal basis of ``w``'s complement.
    """
    code = golay_code()
    vecs = []
    for i, j in itertools.combinations(range(24), 2):  # shape (+-4, +-4, 0^22)
        for si, sj in itertools.product((4, -4), repeat=2):
            x = np.zeros(24, dtype=np.int64)
            x[i], x[j] = si, sj
            vecs.append(x)
    octads = code[code.sum(axis=1) == 8]
    signs = np.array([s for s in itertools.product((1, -1), repeat=8) if s.count(-1) % 2 == 0], dtype=np.int64)
    for octad in octads:  # shape (+-2^8, 0^16), an even number of minus signs
        x = np.zeros((len(signs), 24), dtype=np.int64)
        x[:, octad.astype(bool)] = 2 * signs
        vecs.extend(x)
    odd = 1 - 2 * code  # shape (-+3, +-1^23)
    for i in range(24):
        x = odd.copy()
        x[:, i] -= 4 * x[:, i]
        vecs.extend(x)
    lattice = np.stack(vecs)
    if lattice.shape[0] != 196560 or not np.all((lattice**2).sum(axis=1) == 32):
        raise AssertionError("Leech minimal vectors: wrong count or norm")  # unreachable
    w = np.array([5] + [1] * 23, dtype=np.int64)
    chosen = lattice[lattice @ w == 24]  # v . w = 3 in the unscaled lattice
    lines = 2 * chosen - w[None, :]  # 2 (v - w/2), still integer
    first = lines[np.arange(len(lines)), (lines != 0).argmax(axis=1)]
    lines = lines[first > 0]
    lines = lines[np.lexsort(lines.T[::-1])]
    if lines.shape[0] != 276:
        raise AssertionError(f"expected 276 Leech lines, got {lines.shape[0]}")  # unreachable
    basis, _ = np.linalg.qr(np.concatenate([w[:, None], np.eye(24)[:, :23]], axis=1).astype(np.float64))
    coords = lines.astype(np.float64) @ basis[:, 1:]
    return coords / np.linalg.norm(coords, axis=1, keepdims=True)
