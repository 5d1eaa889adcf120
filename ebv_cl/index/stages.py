"""The low-precision scorers of the certified search: int8 (CPU), float32 (CPU or CUDA) and Kerdock FWHT.

Each stage scores all allocated bank rows in blocks and states, per query, the window inside which the exact
top-k must lie (twice its error bound plus the float64 re-rank error, see ``encoding``).
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import torch

from .certified import score_block_rows
from .encoding import (
    U32,
    BankEncoding,
    encode_bank,
    encode_queries,
    error_bound,
    float64_error,
    gamma,
    matmul_input_unit,
)

__all__ = ["MatmulStage", "KerdockStage"]


class MatmulStage:
    """Scores by ``queries @ bank.T`` in int8 (exact int32 sums) or float32.

    Args:
        vectors: ``(N, dim)`` float32 unit bank vectors.
        dtype: ``"int8"`` or ``"float32"``.
        device: Where the encoded bank lives and the scoring runs.
    """

    def __init__(self, vectors: torch.Tensor, *, dtype: str, device: torch.device) -> None:
        if dtype == "int8" and device.type != "cpu":
            raise ValueError(f"int8 scoring runs on the CPU, got device {device}; use path 'fp32' on {device.type}")
        self.encoding: BankEncoding = encode_bank(vectors, dtype, device=device)

    @property
    def nbytes(self) -> int:
        """Bytes of the encoded bank (0 extra for float32, which shares the vectors)."""
        return self.encoding.nbytes if self.encoding.dtype == "int8" else 0

    def scan(self, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, Iterator[tuple[int, torch.Tensor]]]:
        """See ``certified.Stage.scan``."""
        bank, dim = self.encoding, queries.shape[1]
        enc = encode_queries(queries, bank.dtype)
        unit = matmul_input_unit(queries.device) if bank.dtype == "float32" else 0.0
        window = 2 * error_bound(enc, bank, dim=dim, input_unit=unit) + 2 * float64_error(enc, bank, dim=dim)
        if bank.dtype == "int8":
            window = window / (enc.scale * bank.scale) * (1 + 1e-9)
        return window, self._blocks(enc.data, n, k)

    def _blocks(self, qdata: torch.Tensor, n: int, k: int) -> Iterator[tuple[int, torch.Tensor]]:
        step = min(n, score_block_rows(qdata.shape[0], k))
        data, nq = self.encoding.data, qdata.shape[0]
        int8 = qdata.dtype == torch.int8
        # one output buffer reused by every block: fresh 64 MiB outputs cost more in page faults than the
        # scoring saves (the caller consumes each block before asking for the next)
        buffer = torch.empty(nq * step, dtype=torch.int32 if int8 else torch.float32, device=qdata.device)
        for j0 in range(0, n, step):
            block = data[j0 : min(n, j0 + step)]
            out = buffer[: nq * block.shape[0]].view(nq, block.shape[0])
            if int8:
                torch._int_mm(qdata, block.T, out=out)
            else:
                torch.mm(qdata, block.T, out=out)
            yield j0, out


class KerdockStage:
    """Scores a Kerdock bank by fast Walsh-Hadamard transforms (the ``KerdockDecoder`` construction).

    Rows follow the construction's order (``kerdock`` module docstring): the standard basis, then ``dim`` rows
    per quadratic form, scored as ``fwht(q * signs[s]) / sqrt(dim)``. Every score is ``+-`` a sum of ``dim``
    query entries divided by ``sqrt(dim)`` (a power of two), computed in at most ``log2(dim)`` rounded float32
    stages, so its error is at most
    ``((1 + u_in)^log2(dim) (1 + gamma_dim) - 1) * sum|q_i| / sqrt(dim)``; rows of the standard basis are exact.

    Args:
        decoder: A ``KerdockDecoder`` for the whole bank.
        vectors: ``(N, dim)`` float32 bank vectors, checked against these transforms on a probe batch.

    Raises:
        ValueError: if the decoder's scores disagree with the vectors (the bank is not that Kerdock bank).
    """

    def __init__(self, decoder: Any, vectors: torch.Tensor) -> None:
        self.decoder = decoder
        g = torch.Generator().manual_seed(0)
        probe = torch.nn.functional.normalize(torch.randn(4, vectors.shape[1], generator=g), dim=1)
        probe = probe.to(vectors.device)
        got = torch.cat([block for _, block in self._blocks(probe, vectors.shape[0], 1)], dim=1)
        want = probe @ vectors.T
        if got.shape != want.shape or float((got - want).abs().max()) > 1e-4:
            raise ValueError("path 'wht': the bank's vectors are not the Kerdock construction its info describes")

    nbytes = 0

    def scan(self, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, Iterator[tuple[int, torch.Tensor]]]:
        """See ``certified.Stage.scan``."""
        dim = queries.shape[1]
        levels = max(1, math.ceil(math.log2(dim)))
        unit = matmul_input_unit(queries.device)
        rel = (1 + unit) ** levels * (1 + gamma(dim, U32)) * (1 + U32) - 1
        l1 = queries.double().abs().sum(dim=1) / math.sqrt(dim)
        enc = encode_queries(queries, "float32")
        bound = rel * l1 * (1 + 1e-9) + 1e-12
        ref = BankEncoding("float32", queries[:0], 1.0, 0.0, 1.0 + 1e-6, 1.0 + 1e-6)
        window = 2 * bound + 2 * float64_error(enc, ref, dim=dim)
        return window, self._blocks(queries, n, k)

    def _blocks(self, queries: torch.Tensor, n: int, k: int) -> Iterator[tuple[int, torch.Tensor]]:
        from ..bank.generate.hadamard import fwht

        dim = queries.shape[1]
        yield 0, queries[:, : min(n, dim)]  # the standard basis comes first
        signs = self.decoder.signs.to(queries.device)
        per_block = max(1, score_block_rows(queries.shape[0], k) // dim)
        for s0 in range(0, math.ceil((n - dim) / dim) if n > dim else 0, per_block):
            s1 = min(signs.shape[0], s0 + per_block)
            mixed = fwht(queries[:, None, :] * signs[None, s0:s1, :]) / math.sqrt(dim)
            first = dim * (1 + s0)
            yield first, mixed.reshape(queries.shape[0], -1)[:, : n - first]
