"""Low-precision copies of a bank and of query batches, with rigorous bounds on the scoring error.

A certified search scores every allocated class in low precision (int8 on the CPU, float32 possibly computed
with TF32 or bf16 inputs on a GPU), then re-ranks a few candidates exactly. Which candidates are enough follows
from a bound on ``|approx_score - exact_score|`` for every (query, class) pair. This module builds the encodings
and computes that bound from the *measured* quantisation errors, so it holds for any input, not just typical ones:

``|q~.b~ - q.b| <= ||q~ - q|| ||b~|| + ||q|| ||b~ - b|| + accumulation error``

where ``q~``/``b~`` are the decoded low-precision vectors (Cauchy-Schwarz on each term).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "BankEncoding",
    "QueryEncoding",
    "encode_bank",
    "encode_queries",
    "error_bound",
    "float64_error",
    "matmul_input_unit",
    "gamma",
]

U32 = 2.0**-24
U64 = 2.0**-53
_INT8_MAX = 127
_SLACK = 1e-12  # absolute slack covering float64 rounding in the norms below
_BLOCK_ROWS = 16384  # rows encoded at once: bounds the float64 temporaries (4 x 64 MiB at d = 512)


def _int8_padding(dim: int) -> int:
    """Zero columns that bring an int8 encoding to a multiple of 8 columns.

    Zeros change no dot product; they keep ``torch._int_mm`` on its regular kernels (torch 2.14 returns wrong
    products on the CPU when the inner dimension is 1).
    """
    return -dim % 8


def gamma(n: int, u: float) -> float:
    """Higham's ``gamma_n = n u / (1 - n u)``: the relative error bound of an ``n``-term float sum."""
    if n * u >= 1:
        raise ValueError(f"a sum of {n} terms has no error bound at unit roundoff {u}")
    return n * u / (1 - n * u)


def matmul_input_unit(device: torch.device) -> float:
    """Unit roundoff of the inputs of a float32 matmul on ``device`` under the current torch settings.

    ``torch.set_float32_matmul_precision("high")`` allows TF32 (10-bit mantissa), ``"medium"`` allows bf16
    (7-bit mantissa); CUDA may use TF32 through ``torch.backends.cuda.matmul.allow_tf32``. Returns 0 when inputs
    are used at full float32 precision.
    """
    precision = torch.get_float32_matmul_precision()
    unit = {"highest": 0.0, "high": 2.0**-11, "medium": 2.0**-8}.get(precision, 2.0**-8)
    if device.type == "cuda":
        unit = max(unit, 2.0**-11)  # allow_tf32 and cuBLAS TF32 modes can be switched on elsewhere
    return unit


@dataclass(frozen=True)
class BankEncoding:
    """A bank in the precision used for candidate scoring.

    Attributes:
        dtype: ``"int8"`` (one global step ``scale``) or ``"float32"``.
        data: ``(n, dim)`` encoded rows on the scoring device (int8: zero-padded to a multiple of 8 columns).
        scale: The int8 step (a row decodes to ``scale * data``); 1.0 for float32.
        err: An upper bound of ``max_j ||decoded_j - b_j||``.
        norm: An upper bound of ``max_j ||decoded_j||``.
        vec_norm: An upper bound of ``max_j ||b_j||``.
    """

    dtype: str
    data: torch.Tensor
    scale: float
    err: float
    norm: float
    vec_norm: float

    @property
    def nbytes(self) -> int:
        """Bytes held by ``data``."""
        return self.data.numel() * self.data.element_size()


@dataclass(frozen=True)
class QueryEncoding:
    """A batch of unit queries in the precision of a ``BankEncoding``.

    Attributes:
        data: ``(n, dim)`` encoded queries.
        scale: ``(n,)`` float64 per-query int8 step (ones for float32).
        err: ``(n,)`` float64 bound of ``||decoded - q||``.
        norm: ``(n,)`` float64 bound of ``||decoded||``.
        vec_norm: ``(n,)`` float64 bound of ``||q||``.
    """

    data: torch.Tensor
    scale: torch.Tensor
    err: torch.Tensor
    norm: torch.Tensor
    vec_norm: torch.Tensor


def _row_norms(x: torch.Tensor) -> torch.Tensor:
    return x.double().norm(dim=1) * (1 + 1e-15) + _SLACK


def encode_bank(vectors: torch.Tensor, dtype: str, *, device: torch.device | str = "cpu") -> BankEncoding:
    """Encode an ``(n, dim)`` float32 bank as ``dtype`` (``"int8"`` or ``"float32"``) on ``device``.

    Raises:
        ValueError: on an unknown ``dtype`` or a dimension too large for exact int32 accumulation.
    """
    device = torch.device(device)
    n, dim = vectors.shape
    vec_norm = max((float(_row_norms(vectors[i : i + _BLOCK_ROWS]).max()) for i in range(0, n, _BLOCK_ROWS)), default=0.0)
    if dtype == "float32":
        data = vectors.to(device=device, dtype=torch.float32).contiguous()
        return BankEncoding("float32", data, 1.0, 0.0, vec_norm, vec_norm)
    if dtype != "int8":
        raise ValueError(f"dtype must be 'int8' or 'float32', got {dtype!r}")
    if dim * _INT8_MAX * _INT8_MAX >= 2**31:
        raise ValueError(f"int8 scoring needs dim * 127^2 < 2^31 for exact int32 sums, got dim={dim}")
    peak = max((float(vectors[i : i + _BLOCK_ROWS].abs().max()) for i in range(0, n, _BLOCK_ROWS)), default=1.0)
    scale = (peak or 1.0) / _INT8_MAX
    data = torch.zeros((n, dim + _int8_padding(dim)), dtype=torch.int8)
    err = norm = 0.0
    for i in range(0, n, _BLOCK_ROWS):
        block = vectors[i : i + _BLOCK_ROWS].double()
        code = torch.round(block / scale).clamp_(-_INT8_MAX, _INT8_MAX)
        data[i : i + _BLOCK_ROWS, :dim] = code.to(torch.int8)
        decoded = code * scale
        err = max(err, float(_row_norms(decoded - block).max()))
        norm = max(norm, float(_row_norms(decoded).max()))
    return BankEncoding("int8", data.to(device), scale, err, norm, vec_norm)


def encode_queries(queries: torch.Tensor, dtype: str) -> QueryEncoding:
    """Encode ``(n, dim)`` float32 unit queries as ``dtype`` with one int8 step per query."""
    vec_norm = _row_norms(queries)
    if dtype == "float32":
        ones = torch.ones_like(vec_norm)
        return QueryEncoding(queries, ones, torch.zeros_like(vec_norm), vec_norm, vec_norm)
    q = queries.double()
    scale = q.abs().amax(dim=1).clamp_min(1e-300) / _INT8_MAX
    code = torch.round(q / scale[:, None]).clamp_(-_INT8_MAX, _INT8_MAX)
    decoded = code * scale[:, None]
    data = torch.nn.functional.pad(code.to(torch.int8), (0, _int8_padding(q.shape[1])))
    return QueryEncoding(data, scale, _row_norms(decoded - q), _row_norms(decoded), vec_norm)


def error_bound(query: QueryEncoding, bank: BankEncoding, *, dim: int, input_unit: float = 0.0) -> torch.Tensor:
    """Per-query bound ``(n,)`` (float64) of ``|approx_score - exact_score|`` over every bank row.

    Args:
        query: The encoded queries.
        bank: The encoded bank.
        dim: The vector dimension (number of terms in each dot product).
        input_unit: For float32 scoring, the unit roundoff of the matmul inputs (see ``matmul_input_unit``).
    """
    bound = query.err * bank.norm + query.vec_norm * bank.err
    if bank.dtype == "float32":
        rounding = (2 * input_unit + input_unit**2) * query.vec_norm * bank.vec_norm
        accumulation = gamma(dim, U32) * (1 + input_unit) ** 2 * query.vec_norm * bank.vec_norm
        bound = bound + rounding + accumulation
    return bound * (1 + 1e-9) + _SLACK


def float64_error(query: QueryEncoding, bank: BankEncoding, *, dim: int) -> torch.Tensor:
    """Per-query bound of the float64 re-rank error (exact float32 products, float64 sum of ``dim`` terms)."""
    return gamma(dim, U64) * query.vec_norm * bank.vec_norm + math.ulp(1.0)
