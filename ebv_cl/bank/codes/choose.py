"""Which family and code length serve N vectors in R^dim best.

Every family and ``m`` with ``n = 2^m - 1 <= dim`` whose family holds at least N rows (and at most
``MAX_STRUCTURE_BITS``) is a candidate; its
coherence is the family's theoretical value (``families.nominal_max_abs_sum``; the small Kasami value for a
large-Kasami prefix inside the small set). The lowest coherence wins; ties go to the longer code, then the
smaller family. The rows are zero padded from ``n`` to ``dim`` (isometric, so the coherence is unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass

from .families import FAMILIES, check_family_params, nominal_max_abs_sum

__all__ = ["CodeChoice", "MAX_STRUCTURE_BITS", "family_size", "code_candidates", "choose_code"]

# Candidates whose whole family has more rows than this are skipped: their structural coherence check (one
# pass over every codeword orbit, family size x n bits) would take minutes (kasami_large m = 12 is 1.1e9).
MAX_STRUCTURE_BITS = 2_000_000_000


@dataclass(frozen=True)
class CodeChoice:
    """A candidate code: ``family``, ``m``, ``length``, family ``capacity`` (rows) and its ``coherence``."""

    family: str
    m: int
    length: int
    capacity: int
    coherence: float


def family_size(family: str, m: int) -> int:
    """Members of a family (closed form; equal to ``build_family(family, m).size``, checked in the tests)."""
    check_family_params(family, m)
    if family == "gold":
        return (1 << m) + 1
    if family == "kasami_small":
        return 1 << (m // 2)
    return (1 << (m // 2)) * ((1 << m) + 1) - (1 if m % 4 == 0 else 0)


def code_candidates(n: int, dim: int, families: tuple[str, ...] = FAMILIES) -> list[CodeChoice]:
    """Every family/length that holds ``n`` rows in ``R^dim``, best (lowest coherence) first."""
    out = []
    for family in families:
        for m in range(3, 21):
            length = (1 << m) - 1
            if length > dim:
                break
            try:
                check_family_params(family, m)
            except ValueError:
                continue
            capacity = family_size(family, m) * length
            if capacity < n or capacity > MAX_STRUCTURE_BITS:
                continue
            peak = nominal_max_abs_sum(family, m)
            if family == "kasami_large" and n <= family_size("kasami_small", m) * length:
                peak = nominal_max_abs_sum("kasami_small", m)
            out.append(CodeChoice(family, m, length, capacity, peak / length))
    order = {f: i for i, f in enumerate(FAMILIES)}
    out.sort(key=lambda c: (round(c.coherence, 12), -c.length, c.capacity, order[c.family]))
    return out


def choose_code(n: int, dim: int, families: tuple[str, ...] = FAMILIES) -> CodeChoice | None:
    """The best candidate of ``code_candidates`` or ``None`` when no family of these holds ``n`` rows."""
    cands = code_candidates(n, dim, families)
    return cands[0] if cands else None


# What ``sparse`` reaches in its default 60 s budget, as a ratio to the Welch/Levenstein bound, measured on the
# project's 2-core CPU (benchmarks/README.md): 1.11-1.44 at N = 1000, 2.16-2.26 at N = 10^4, 3.83 at 10^5 (even
# after 1200 s). Interpolated in log10(N); deliberately optimistic for ``sparse`` (a code is chosen only when it
# beats this), so the official EBV sizes (N = 1000) keep ``sparse``. Check at N = 5000 (60 s, same CPU, loaded):
# sparse 0.1834 (2.10x) at d = 128 and 0.0871 (2.08x) at d = 512, where the estimate says 1.73x and the Gold
# codes chosen give 0.1339 (1.53x) and 0.0646 (1.54x).
_SPARSE_RATIO = ((3.0, 1.1), (4.0, 2.0), (5.0, 3.5))


def expected_sparse_ratio(n: int) -> float:
    """An optimistic estimate of the coherence/bound ratio ``sparse`` reaches for ``n`` vectors in 60 s."""
    import math

    x = math.log10(max(n, 1))
    pts = _SPARSE_RATIO
    if x <= pts[0][0]:
        return pts[0][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    (x0, y0), (x1, y1) = pts[-2], pts[-1]
    return y1 + (y1 - y0) * (x - x1) / (x1 - x0)


def code_method_for(n: int, dim: int) -> str | None:
    """The code method (``"gold"`` or ``"kasami"``) ``auto`` uses for (n, dim), or ``None`` when the best code
    does not beat ``expected_sparse_ratio(n)`` times the Welch/Levenstein bound."""
    from ..stats import coherence_lower_bound

    choice = choose_code(n, dim)
    if choice is None:
        return None
    bound = coherence_lower_bound(n, dim)
    if bound <= 0 or choice.coherence > expected_sparse_ratio(n) * bound:
        return None
    return "gold" if choice.family == "gold" else "kasami"
