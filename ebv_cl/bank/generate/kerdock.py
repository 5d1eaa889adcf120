"""``kerdock``: d/2 + 1 real mutually unbiased bases in R^d (d a power of 4), and their fast decoder.

Construction (Cameron-Seidel / Calderbank-Cameron-Kantor-Seidel): let ``d = 2^m`` with ``m`` even, ``n = m - 1``
(odd) and ``F = GF(2^n)``. With ``Q(u) = sum_{i=1}^{(n-1)/2} Tr(u^{2^i + 1})``, every ``s`` in ``F`` gives the
binary quadratic form ``q_s(x, c) = Q(s x) + c Tr(s x)`` on ``F x GF(2) = GF(2)^m``; the ``2^(m-1) = d/2``
forms are a Kerdock set (``q_s + q_t`` is bent for ``s != t``). Basis ``s`` is ``{(-1)^{q_s(z) + b.z} / sqrt(d)}``
over ``b``; together with the standard basis this gives ``d^2/2 + d`` unit vectors whose ``|cos|`` are all 0 or
``1/sqrt(d)``, which meets the Levenstein bound at full size (d = 256: 33,024 vectors at coherence 0.0625).

Row order (a prefix is taken when ``n`` is smaller): rows ``0 .. d-1`` are the standard basis ``e_0 .. e_{d-1}``;
then for ``s = 0, 1, ..., d/2 - 1`` (field elements in the polynomial basis of the modulus recorded in
``info["kerdock"]["field_modulus"]``) the ``d`` rows of basis ``s`` in Sylvester order ``b = 0 .. d-1``: row
``d (1 + s) + b``. Inner products of a query with one basis are one Walsh-Hadamard transform of the query
times that basis's signs, so ``KerdockDecoder.search`` scores the whole bank in ``O((d/2 + 1) d log d)`` per
query instead of ``O(N d)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .hadamard import fwht, hadamard_sign_rows

__all__ = ["kerdock_capacity", "is_power_of_four", "kerdock_signs", "kerdock_vectors", "KerdockDecoder"]

_FORMAT_VERSION = 1


def is_power_of_four(dim: int) -> bool:
    """Whether ``dim`` is ``4^j`` with ``j >= 1``."""
    return dim >= 4 and dim & (dim - 1) == 0 and (dim.bit_length() - 1) % 2 == 0


def kerdock_capacity(dim: int) -> int:
    """The most vectors the construction holds in ``R^dim``: ``dim^2 / 2 + dim`` (0 if ``dim`` is not 4^j)."""
    return dim * dim // 2 + dim if is_power_of_four(dim) else 0


def _irreducible(degree: int) -> int:
    """The smallest irreducible binary polynomial of ``degree`` (bit ``i`` = coefficient of ``x^i``)."""
    for poly in range((1 << degree) | 1, 1 << (degree + 1), 2):
        if all(_poly_mod(poly, q) for q in range(2, 1 << (degree // 2 + 1))):
            return poly
    raise AssertionError(f"no irreducible polynomial of degree {degree}")  # unreachable


def _poly_mod(a: int, q: int) -> int:
    dq = q.bit_length() - 1
    while a and a.bit_length() - 1 >= dq:
        a ^= q << (a.bit_length() - 1 - dq)
    return a


def _gf_mul(a: np.ndarray, b: np.ndarray, degree: int, modulus: int) -> np.ndarray:
    """Element-wise product in GF(2^degree) of int64 arrays (broadcasting)."""
    a, b = np.broadcast_arrays(a.astype(np.int64), b.astype(np.int64))
    a, b = a.copy(), b.copy()
    out = np.zeros_like(a)
    for _ in range(degree):
        out ^= np.where(b & 1, a, 0)
        b >>= 1
        a <<= 1
        a ^= np.where((a >> degree) & 1, modulus, 0)
    return out


def _trace(u: np.ndarray, degree: int, modulus: int) -> np.ndarray:
    total, x = u.copy(), u
    for _ in range(degree - 1):
        x = _gf_mul(x, x, degree, modulus)
        total ^= x
    return total & 1


def _check_dim(dim: int) -> int:
    if not is_power_of_four(dim):
        raise ValueError(f"method 'kerdock' needs dim a power of 4 (4, 16, 64, 256, 1024, ...), got dim = {dim}")
    return dim.bit_length() - 1


def kerdock_signs(dim: int) -> tuple[torch.Tensor, int]:
    """The ``(dim/2, dim)`` float32 +-1 signs ``(-1)^{q_s(z)}`` of every quadratic form, and the field modulus.

    Raises:
        ValueError: if ``dim`` is not a power of 4.
    """
    m = _check_dim(dim)
    degree = m - 1
    modulus = _irreducible(degree)
    field = np.arange(1 << degree, dtype=np.int64)
    u_all = field  # Q and Tr tabulated over the whole field
    q_tab = np.zeros_like(u_all)
    power = u_all.copy()
    for _ in range((degree - 1) // 2):
        power = _gf_mul(power, power, degree, modulus)  # u^(2^i)
        q_tab ^= _trace(_gf_mul(u_all, power, degree, modulus), degree, modulus)
    tr_tab = _trace(u_all, degree, modulus)
    u = _gf_mul(field[:, None], field[None, :], degree, modulus)  # s * x
    low = q_tab[u]
    forms = np.concatenate([low, low ^ tr_tab[u]], axis=1)  # z = x + c * 2^degree
    return torch.from_numpy(1.0 - 2.0 * forms.astype(np.float32)), modulus


def kerdock_vectors(n: int, dim: int) -> tuple[torch.Tensor, dict[str, Any]]:
    """The first ``n`` Kerdock vectors in ``R^dim`` (order in the module docstring) and their ``info`` record.

    Returns:
        ``(vectors, info)``: ``(n, dim)`` float32 unit rows, and ``{"kerdock": {...}}`` which
        ``KerdockDecoder.from_bank_info`` needs.

    Raises:
        ValueError: if ``dim`` is not a power of 4 or ``n > dim^2/2 + dim``.
    """
    _check_dim(dim)
    capacity = kerdock_capacity(dim)
    if n > capacity:
        raise ValueError(
            f"method 'kerdock' holds at most dim^2/2 + dim = {capacity} vectors in dim {dim}, got n = {n}; "
            "use 'auto' or 'sparse'"
        )
    signs, modulus = kerdock_signs(dim)
    rows = torch.arange(n)
    out = torch.zeros(n, dim, dtype=torch.float32)
    std = rows < dim
    out[rows[std], rows[std]] = 1.0
    rest = rows[~std] - dim
    if rest.numel():
        out[~std] = hadamard_sign_rows(rest % dim, dim) * signs[rest // dim] / math.sqrt(dim)
    info = {"kerdock": {"version": _FORMAT_VERSION, "dim": dim, "capacity": capacity, "field_modulus": modulus,
                        "order": "standard basis, then form s = 0..dim/2-1 with Sylvester rows b"}}
    return out, info


class KerdockDecoder:
    """Exact top-k inner-product search over a Kerdock bank with fast Walsh-Hadamard transforms.

    Args:
        n: Rows of the bank (a prefix of the full construction).
        dim: Dimension, a power of 4.
    """

    def __init__(self, n: int, dim: int) -> None:
        _check_dim(dim)
        if not 1 <= n <= kerdock_capacity(dim):
            raise ValueError(f"n must be in [1, {kerdock_capacity(dim)}] for a Kerdock bank in dim {dim}, got {n}")
        self.n, self.dim = n, dim
        signs, self.modulus = kerdock_signs(dim)
        self.signs = signs[: max(0, math.ceil((n - dim) / dim))].contiguous()  # only the bases in the prefix

    @classmethod
    def from_bank_info(cls, n: int, dim: int, info: dict[str, Any]) -> "KerdockDecoder":
        """The decoder of a bank made by ``kerdock_vectors`` (recognised by ``info["kerdock"]``).

        Raises:
            ValueError: if ``info`` does not describe a Kerdock bank of this ``dim`` and construction.
        """
        meta = (info or {}).get("kerdock")
        if not isinstance(meta, dict):
            raise ValueError("bank info has no 'kerdock' record: the bank was not made by method 'kerdock'")
        decoder = cls(n, dim)
        expected = {"version": _FORMAT_VERSION, "dim": dim, "field_modulus": decoder.modulus}
        for key, value in expected.items():
            if meta.get(key) != value:
                raise ValueError(f"bank info kerdock[{key!r}] = {meta.get(key)!r}, this decoder expects {value!r}")
        return decoder

    def scores(self, queries: torch.Tensor) -> torch.Tensor:
        """Inner products ``(B, n)`` of float32 ``(B, dim)`` queries with every bank row, by FWHT."""
        b = queries.shape[0]
        parts = [queries[:, : min(self.n, self.dim)]]
        if self.signs.shape[0]:
            mixed = fwht(queries.unsqueeze(1) * self.signs.to(queries.device).unsqueeze(0)) / math.sqrt(self.dim)
            parts.append(mixed.reshape(b, -1)[:, : self.n - self.dim])
        return torch.cat(parts, dim=1)

    def search(self, queries: Any, k: int, *, batch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact top-``k`` bank rows by inner product.

        Args:
            queries: ``(B, dim)`` floating tensor or array (normalise it for cosine scores).
            k: Results per query, ``1 <= k <= n``.
            batch: Queries per chunk (default: about 2^24 scores per chunk).

        Returns:
            ``(scores, rows)``: ``(B, k)`` float32 inner products in decreasing order and ``(B, k)`` int64 rows.

        Raises:
            TypeError, ValueError: on a bad query array or ``k`` outside ``[1, n]``.
        """
        from ...validation import as_embeddings, check_positive_int

        q = as_embeddings(queries, dim=self.dim, name="queries", allow_zero=True)
        k = check_positive_int(k, name="k", maximum=self.n)
        batch = batch or max(1, (1 << 24) // max(self.n, 1))
        scores = torch.empty(q.shape[0], k, dtype=torch.float32, device=q.device)
        rows = torch.empty(q.shape[0], k, dtype=torch.int64, device=q.device)
        for start in range(0, q.shape[0], batch):
            s, r = self.scores(q[start : start + batch]).topk(k, dim=1)
            scores[start : start + batch], rows[start : start + batch] = s, r
        return scores, rows
