"""The fast Walsh-Hadamard transform (Sylvester order), the engine of the Kerdock bank's decoder.

``fwht(x)[..., b] = sum_z x[..., z] (-1)^{popcount(b & z)}`` over the last dimension (a power of two), in
``O(d log d)`` per row instead of ``O(d^2)``; unnormalised. ``hadamard_sign_rows`` gives rows of that matrix.
"""

from __future__ import annotations

import torch

__all__ = ["fwht", "hadamard_sign_rows"]


def _sylvester(size: int, *, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    h = torch.ones(1, 1, dtype=dtype, device=device)
    while h.shape[0] < size:
        h = torch.cat([torch.cat([h, h], dim=1), torch.cat([h, -h], dim=1)], dim=0)
    return h


def fwht(x: torch.Tensor, *, radix: int = 16) -> torch.Tensor:
    """Unnormalised Walsh-Hadamard transform of ``x`` over its last dimension (a new tensor).

    ``H_d`` is the Kronecker product of ``log_radix d`` small Sylvester matrices, applied one axis at a time
    as a batched ``(radix x radix)`` matrix product (cost ``radix * d * log_radix d`` per row, ``O(d log d)``,
    and BLAS-friendly unlike a butterfly of tiny additions).

    Args:
        x: Floating tensor whose last dimension ``d`` is a power of two.
        radix: Size of the small factors (a power of two).

    Raises:
        ValueError: if the last dimension is not a power of two.
    """
    d = x.shape[-1]
    if d < 1 or d & (d - 1):
        raise ValueError(f"fwht needs a last dimension that is a power of two, got {d}")
    shape = x.shape
    y = x.reshape(-1, d)
    rest = d
    while rest > 1:
        f = min(radix, rest)
        rest //= f
        h = _sylvester(f, dtype=y.dtype, device=y.device)
        # transform the leading axis of size f, then rotate it to the end
        y = torch.matmul(h, y.reshape(-1, f, d // f)).transpose(1, 2).reshape(-1, d)
    return y.reshape(shape)


def hadamard_sign_rows(rows: torch.Tensor, dim: int) -> torch.Tensor:
    """Rows ``b`` of the Sylvester Hadamard matrix, ``(-1)^{popcount(b & z)}`` for ``z < dim``, as float32 +-1."""
    z = torch.arange(dim, dtype=torch.int64)
    bits = rows.to(torch.int64).unsqueeze(1) & z.unsqueeze(0)
    for shift in (32, 16, 8, 4, 2, 1):
        bits ^= bits >> shift
    return (1 - 2 * (bits & 1)).to(torch.float32)
