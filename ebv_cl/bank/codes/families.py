"""Sequence families from m-sequences: Gold, small and large Kasami sets, as ordered lists of members.

Every family is a set of binary sequences of length ``n = 2^m - 1`` built from one m-sequence ``u`` (the
*base*, from a primitive feedback polynomial) and its decimations ``u[q t + i]``. Each *component*
(``u``, ``v``, ``w``) spans a cyclic code whose non-zero codewords are the cyclic shifts of its *generators*
(one generator when ``gcd(q, n) = 1``, ``gcd(q, n)`` when the decimated sequence has a shorter period, as ``v``
of the large Kasami set when ``m = 0 mod 4``). A *member* picks, for some components, one non-zero codeword
each (generator ``i`` shifted by ``k``: value ``r = i * period + k``) and XORs them. Members are cyclic-shift
orbit representatives, so no two rows ``(member, shift)`` of a bank are equal; orbits of a shorter period
than ``n`` (``w`` alone, ``v`` alone when its period is ``n / 3``, ...) are excluded from the family.

Member order (fixed, documented, part of the row order of a code bank):

- ``gold`` (m odd: ``v = u`` decimated by ``q = 3``; ``m = 2 mod 4``: ``q = 5``, i.e. ``k = 2`` with
  ``m / gcd(m, k)`` odd, a preferred pair): ``u``; ``v``; ``u + T^j v`` for ``j = 0 .. n-1``.
  ``2^m + 1`` members, coherence ``(2^((m+1)/2) + 1) / n`` (m odd) or ``(2^((m+2)/2) + 1) / n``.
- ``kasami_small`` (m even; ``w = u`` decimated by ``2^(m/2) + 1``, period ``2^(m/2) - 1``): ``u``;
  ``u + T^j w``. ``2^(m/2)`` members, coherence ``(2^(m/2) + 1) / n``.
- ``kasami_large`` (m even; also ``v = u`` decimated by ``2^(m/2+1) + 1``): the small set first, then
  ``u + v-codeword``, ``v`` (when of full period), ``u + v-codeword + T^j w``, then the full-period
  ``v-codeword + T^j w`` orbits. ``2^(m/2) (2^m + 1)`` members (one fewer when ``m = 0 mod 4``), coherence
  ``(2^(m/2+1) + 1) / n``.

The set of all shifts of all members, together with the excluded short orbits, is the set of non-zero
codewords of the linear code spanned by the components; ``ebv_cl.bank.codes.coherence`` relies on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .gf2 import coset_size, decimate, m_sequence, primitive_polynomial

__all__ = ["FAMILIES", "Component", "Family", "build_family", "check_family_params", "nominal_max_abs_sum"]

FAMILIES = ("gold", "kasami_small", "kasami_large")


@dataclass(frozen=True)
class Component:
    """One cyclic code of the family: its name, decimation, generators ``(G, n)`` uint8 and their period."""

    name: str
    decimation: int
    generators: np.ndarray
    period: int

    @property
    def codewords(self) -> int:
        """Number of non-zero codewords (``G * period``)."""
        return int(self.generators.shape[0]) * self.period


@dataclass(frozen=True)
class Family:
    """A sequence family: its components and the member table.

    ``members`` is ``(K, C)`` int32: column ``c`` is ``-1`` when component ``c`` is absent from the member, else
    the codeword ``r = generator * period + shift``. ``short`` lists the excluded short-period orbit
    representatives the same way (used to span the whole code when computing coherence).
    ``blocks`` records ``(first member, stop, component subset)`` for each block of the member order.
    """

    name: str
    m: int
    poly: int
    components: tuple[Component, ...]
    members: np.ndarray
    short: np.ndarray
    blocks: tuple[tuple[int, int, tuple[int, ...]], ...]

    @property
    def length(self) -> int:
        """The sequence length ``n = 2^m - 1``."""
        return (1 << self.m) - 1

    @property
    def size(self) -> int:
        """The number of (full-period) members."""
        return int(self.members.shape[0])

    def decimations(self) -> dict[str, int]:
        """``{component name: decimation}``."""
        return {c.name: c.decimation for c in self.components}

    def bits(self, table: np.ndarray) -> np.ndarray:
        """The 0/1 sequences ``(k, n)`` uint8 of member-table rows ``table`` (``(k, C)`` int32)."""
        n = self.length
        out = np.zeros((table.shape[0], n), dtype=np.uint8)
        ar = np.arange(n, dtype=np.int64)
        for c, comp in enumerate(self.components):
            r = table[:, c].astype(np.int64)
            present = np.nonzero(r >= 0)[0]
            if present.size == 0:
                continue
            gen, shift = np.divmod(r[present], comp.period)
            out[present] ^= comp.generators[gen[:, None], (ar[None, :] + shift[:, None]) % n]
        return out


def check_family_params(family: str, m: int) -> None:
    """Raise ``ValueError`` unless ``family`` exists and is defined for ``m``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    if isinstance(m, bool) or not isinstance(m, int) or not 3 <= m <= 20:
        raise ValueError(f"m must be an int in [3, 20] (sequence length 2^m - 1), got {m!r}")
    if family == "gold" and m % 4 == 0:
        raise ValueError(f"family 'gold' needs m odd or m = 2 mod 4 (no preferred pair of m-sequences), got m={m}")
    if family.startswith("kasami") and m % 2:
        raise ValueError(f"family {family!r} needs an even m, got m={m}")


def nominal_max_abs_sum(family: str, m: int) -> int:
    """The family's largest ``|sum of +-1 entries|`` of a non-zero codeword (coherence times ``n``), from theory.

    ``gold``: ``2^((m+1)/2) + 1`` (m odd), ``2^((m+2)/2) + 1`` (m = 2 mod 4); ``kasami_small``:
    ``2^(m/2) + 1``; ``kasami_large``: ``2^(m/2+1) + 1``. Verified against the structure in the tests.
    """
    check_family_params(family, m)
    if family == "gold":
        return (1 << ((m + 1) // 2)) + 1 if m % 2 else (1 << ((m + 2) // 2)) + 1
    if family == "kasami_small":
        return (1 << (m // 2)) + 1
    return (1 << (m // 2 + 1)) + 1


def _component(name: str, base: np.ndarray, q: int) -> Component:
    n = base.shape[0]
    m = n.bit_length()
    g = math.gcd(q, n)
    period = n // g
    degree = coset_size(q, n)
    n_gen = ((1 << degree) - 1) // period
    if n_gen == 1 or (degree == m and n_gen == g):
        # One generator: the first non-zero decimation. Full degree: u[q t + i], i < g, are g distinct orbits,
        # since (i, k) -> q k + i mod n is a bijection of [0, g) x [0, period) onto Z_n.
        offsets = [next(i for i in range(n) if decimate(base, q, i).any())] if n_gen == 1 else list(range(g))
        gens = np.stack([decimate(base, q, i) for i in offsets]).astype(np.uint8)
        if not gens.any(axis=1).all() or not np.array_equal(np.roll(gens, -period, axis=1), gens):
            raise AssertionError(f"decimation q={q} of m={m} does not give generators of period {period}")  # pragma: no cover
        return Component(name, q, gens, period)
    kept: list[np.ndarray] = []
    seen: set[bytes] = set()
    for offset in range(n):  # general case (not met by the families here): distinct orbits by search
        if len(kept) == n_gen:
            break
        seq = decimate(base, q, offset)
        if not seq.any() or seq.tobytes() in seen:
            continue
        if not np.array_equal(np.roll(seq, -period), seq):  # pragma: no cover - a property of decimation
            raise AssertionError(f"decimated sequence q={q} does not have period {period}")
        kept.append(seq)
        for k in range(period):
            seen.add(np.roll(seq, -k).tobytes())
    if len(kept) != n_gen:  # pragma: no cover
        raise AssertionError(f"found {len(kept)} of {n_gen} generators for q={q}, m={m}")
    return Component(name, q, np.stack(kept).astype(np.uint8), period)


def _block(comps: tuple[Component, ...], subset: tuple[int, ...], n: int) -> tuple[np.ndarray, int]:
    """Orbit representatives of the codewords using exactly ``subset``, and their period."""
    C = len(comps)
    if 0 in subset:  # the base u has period n: fix its shift to 0, the others are free
        others = [c for c in subset if c != 0]
        sizes = [comps[c].codewords for c in others]
        count = int(np.prod(sizes, dtype=np.int64))
        combos = np.indices(sizes, dtype=np.int32).reshape(len(sizes), count).T  # first listed varies slowest
        table = np.full((combos.shape[0], C), -1, dtype=np.int32)
        table[:, 0] = 0
        for j, c in enumerate(others):
            table[:, c] = combos[:, j]
        return table, n
    if len(subset) == 1:
        (c,) = subset
        comp = comps[c]
        gens = np.arange(comp.generators.shape[0], dtype=np.int32)
        table = np.full((gens.size, C), -1, dtype=np.int32)
        table[:, c] = gens * comp.period
        return table, comp.period
    if len(subset) == 2:
        c1, c2 = subset
        p1, p2 = comps[c1].period, comps[c2].period
        g1 = range(comps[c1].generators.shape[0])
        g2 = range(comps[c2].generators.shape[0])
        rows = [(i1 * p1, i2 * p2 + k2) for i1 in g1 for i2 in g2 for k2 in range(math.gcd(p1, p2))]
        table = np.full((len(rows), C), -1, dtype=np.int32)
        table[:, [c1, c2]] = np.array(rows, dtype=np.int32)
        return table, p1 * p2 // math.gcd(p1, p2)
    raise AssertionError("at most two components besides the base")  # pragma: no cover


@lru_cache(maxsize=16)
def build_family(family: str, m: int, poly: int | None = None) -> Family:
    """Build a family (cached). ``poly`` defaults to the smallest primitive polynomial of degree ``m``.

    Raises:
        ValueError: on an unknown family, an ``m`` the family does not support or a non-primitive ``poly``.
    """
    check_family_params(family, m)
    poly = primitive_polynomial(m) if poly is None else int(poly)
    base = m_sequence(poly, m)
    n = base.shape[0]
    u = Component("u", 1, base[None, :].copy(), n)
    if family == "gold":
        comps = (u, _component("v", base, 3 if m % 2 else 5))
        order = [(0,), (1,), (0, 1)]
    elif family == "kasami_small":
        comps = (u, _component("w", base, (1 << (m // 2)) + 1))
        order = [(0,), (0, 1)]
    else:
        qw, qv = (1 << (m // 2)) + 1, (1 << (m // 2 + 1)) + 1
        comps = (u, _component("w", base, qw), _component("v", base, qv))
        order = [(0,), (0, 1), (0, 2), (2,), (0, 1, 2), (1, 2), (1,)]
    full, short, blocks = [], [], []
    start = 0
    for subset in order:
        table, period = _block(comps, subset, n)
        if period == n:
            full.append(table)
            blocks.append((start, start + table.shape[0], subset))
            start += table.shape[0]
        else:
            short.append(table)
    for c in range(1, len(comps)):  # every subset without u must have been listed (full or short)
        assert any(c in s for s in order)
    empty = np.zeros((0, len(comps)), dtype=np.int32)
    return Family(
        name=family,
        m=m,
        poly=poly,
        components=comps,
        members=np.concatenate(full),
        short=np.concatenate(short) if short else empty,
        blocks=tuple(blocks),
    )
