"""Walsh-Hadamard scoring of a code bank built on an m-sequence (the ``wht`` scorer of path ``fft``).

Every member of a Gold or Kasami family that contains the base m-sequence ``u`` is ``u + c`` (XOR), with ``c``
a codeword of the other components (``ebv_cl.bank.codes.families``); its row at shift ``t`` is
``T^t u + T^t c``. The LFSR states of ``u`` (``sigma(i) = sum_k u[i + k] 2^k``) run through every non-zero
``m``-bit value once, and ``u[i + a] = <y_a, sigma(i)>`` for a linear functional ``y_a`` (bit ``k`` of ``y_a``
is ``u[i_k + a]``, ``i_k`` the time whose state is the unit vector ``e_k``), so for a fixed other part ``c'``
the scores of ``T^a u + c'`` for all ``n`` shifts ``a`` are the outputs ``y_a`` of one Walsh-Hadamard
transform of size ``2^m`` of ``z[sigma(i)] = x[i] (-1)^{c'[i]}`` (``z[0] = 0``). Taking for ``c'`` the other
part of each member (a *group*), output ``y_a`` of group ``g`` is the row ``T^a u + c_g``: slot
``(member m', shift a)`` with ``c_{m'} = T^{-a} c_g`` (inside the member's block: every codeword index
``r = generator * period + k`` becomes ``generator * period + (k - a) mod period``). So a block of ``G`` members
is scored by ``G`` transforms, each giving ``n`` scores; members without ``u`` (``v`` alone, the ``v + w``
orbits of the large Kasami set: a handful) are left to the FFT scorer.

The transforms of a query block against a block of groups are one bf16 matrix product (AMX / tensor cores):
``out[q, y, g] = sum_s (x_q[s] H[y, s]) S[s, g]`` with ``S`` the groups' signs in state order (a
``2^m x G`` table) and ``H`` the Sylvester Hadamard matrix, i.e. the transform as a product with the query
folded into ``H`` (the dense form measured 1.5-2.5x faster than the ``H_16 x H_16`` Kronecker form and than a
butterfly of float32 additions here: each butterfly stage is one memory pass). Every product ``x H S`` is exact
in the float32 accumulator (``+-1`` times a bf16), so the error of a score is at most
``sqrt(n) ||x_bf16 - x||_2`` (the query's rounding to bf16, measured in float64; Cauchy-Schwarz against the
``+-1`` sequence) ``+ gamma_{2^m} ||x_bf16||_1`` (the float32 accumulation, any order) ``+ u_bf16 (||x_bf16||_1
(1 + gamma))`` (the rounding of the output to bf16), with ``x`` the code-space query divided by ``sqrt(n)``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .encoding import U32, gamma

__all__ = ["WalshPlan", "bf16_matmul_is_fast", "row_max", "state_order", "walsh_applies"]

U_BF16 = 2.0**-8
# block shapes (measured, one thread): a query block of max(4, 2^20 / 4^m) queries (16 at m = 8), 256+ groups
# per product; (16 x 255, 256) @ (256, 256) ran at 0.7 ns per output against 1.0-1.9 with 32-64 groups
_GEMM_ELEMS = 1 << 20  # outputs of one block (2 MiB of bf16)
_QUERY_ELEMS = 1 << 20  # entries of the folded query matrices of a query block (2 MiB of bf16)
# a block of members the bank uses only partly is scored by WHT (all of its groups, surplus outputs masked) when
# it uses at least this fraction of its members, else its used members go to the FFT scorer
_PARTIAL_FRACTION = 0.4
_LOW_BITS = 8


def walsh_applies(code: Any) -> bool:
    """Whether ``code`` exposes the family structure the Walsh-Hadamard scorer needs (real Gold/Kasami codes)."""
    fam = getattr(code, "structure", None)
    return fam is not None and hasattr(fam, "components") and hasattr(fam, "blocks") and fam.m <= 16


def state_order(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LFSR states and shift functionals of an m-sequence ``u`` (0/1, length ``n = 2^m - 1``).

    Returns:
        ``sigma`` (``(n,)`` int64): ``sigma[i] = sum_k u[(i + k) % n] 2^k``, a permutation of ``1 .. n``;
        ``y`` (``(n,)`` int64): ``u[(i + a) % n] = popcount(y[a] & sigma[i]) mod 2`` for all ``i, a``.

    Raises:
        ValueError: if ``u`` is not an m-sequence (its states are not all distinct and non-zero).
    """
    n = int(u.shape[0])
    m = n.bit_length()
    if n != (1 << m) - 1:
        raise ValueError(f"an m-sequence has length 2^m - 1, got {n}")
    ar = np.arange(n)
    bits = u[(ar[:, None] + np.arange(m)[None, :]) % n].astype(np.int64)
    sigma = (bits << np.arange(m)[None, :]).sum(axis=1)
    if np.unique(sigma).size != n or sigma.min() < 1:
        raise ValueError("sequence is not an m-sequence: its m-bit windows are not the n non-zero states")
    where = np.empty(n + 1, dtype=np.int64)
    where[sigma] = ar
    i_k = where[1 << np.arange(m)]  # time of the unit states
    ybits = u[(i_k[None, :] + ar[:, None]) % n].astype(np.int64)  # (a, k)
    y = (ybits << np.arange(m)[None, :]).sum(axis=1)
    return sigma, y


class _Block:
    """One block of the member order that contains ``u``: members ``start .. stop-1``, component codewords."""

    def __init__(self, start: int, stop: int, others: list[int], fam: Any) -> None:
        self.start, self.stop, self.others = start, stop, others
        comps = fam.components
        self.periods = [comps[c].period for c in others]
        sizes = [comps[c].codewords for c in others]
        self.strides = [int(np.prod(sizes[j + 1 :], dtype=np.int64)) for j in range(len(sizes))]
        self.codewords = torch.from_numpy(fam.members[start:stop][:, others].astype(np.int64))  # (G, len(others))

    @property
    def size(self) -> int:
        return self.stop - self.start

    def members(self, group: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Member ``m'`` of the row ``T^a u + c_g`` (``group`` = member index inside the block, ``shift`` = ``a``)."""
        out = torch.full_like(group, self.start)
        for j, (period, stride) in enumerate(zip(self.periods, self.strides)):
            r = self.codewords[group, j]
            gen, k = torch.div(r, period, rounding_mode="floor"), torch.remainder(r, period)
            out += (gen * period + torch.remainder(k - shift, period)) * stride
        return out


class WalshPlan:
    """The Walsh-Hadamard scorer of a Gold/Kasami code bank's first ``members`` members (module docstring).

    Args:
        code: A ``SequenceCode`` (``code.structure`` is its ``Family``).
        members: Members the bank uses (``ceil(N / n)``).
        device: Where the products run.

    Attributes:
        fft_ranges: ``[(first, stop)]`` member ranges this plan leaves to the FFT scorer (no ``u`` part, or a
            block the bank uses less than ``_PARTIAL_FRACTION`` of).
    """

    def __init__(self, code: Any, members: int, device: torch.device) -> None:
        fam = code.structure
        self.m, self.length = int(fam.m), int(code.length)
        self.size = 1 << self.m
        self.device = device
        base = fam.components[0].generators[0]
        sigma, y = state_order(base)
        self.sigma = torch.from_numpy(sigma).to(device)
        pos = np.full(self.size, -1, dtype=np.int64)
        pos[y] = np.arange(self.length)
        self.shift_of = torch.from_numpy(pos)  # Hadamard index y -> shift a (y_a = y); -1 at y = 0 (no row)
        # H_{2^m} = H_{2^t} (x) H_L with L = 2^min(m, 8): 2^t products of inner size L, then a 2^t-point
        # butterfly in bf16 (t = m - 8 stages): L multiply-adds per output whatever m (a product of inner size 512
        # ran at 1.5 ns per output against 0.7 at 256, one thread)
        self.low = 1 << min(self.m, _LOW_BITS)
        self.top = self.size // self.low
        self.blocks: list[_Block] = []
        self.fft_ranges: list[tuple[int, int]] = []
        for start, stop, subset in fam.blocks:
            if start >= members:
                break
            used = min(stop, members) - start
            if 0 in subset and used >= _PARTIAL_FRACTION * (stop - start):
                self.blocks.append(_Block(start, stop, [c for c in subset if c != 0], fam))
            else:
                self.fft_ranges.append((start, start + used))
        # groups' signs in state order: column g = member g of the blocks, row sigma(i) = (-1)^{c_g[i]}, row 0 = 0
        total = sum(b.size for b in self.blocks)
        self.signs = torch.zeros(self.size, total, dtype=torch.bfloat16)
        col = 0
        for b in self.blocks:
            for g0 in range(b.start, b.stop, 4096):
                g1 = min(b.stop, g0 + 4096)
                table = fam.members[g0:g1].copy()
                table[:, 0] = -1  # the other parts only
                bits = fam.bits(table)
                self.signs[self.sigma.cpu(), col : col + g1 - g0] = torch.from_numpy(1.0 - 2.0 * bits.T).to(torch.bfloat16)
                col += g1 - g0
        self.signs = self.signs.to(device)
        rows = torch.arange(self.low, dtype=torch.int64)
        z = torch.arange(self.low, dtype=torch.int64)
        parity = rows[:, None] & z[None, :]
        for s in (8, 4, 2, 1):
            parity ^= parity >> s
        self.hadamard = (1 - 2 * (parity & 1)).to(torch.bfloat16).to(device)  # (L, L) Sylvester
        self.query_block = max(4, _QUERY_ELEMS // (self.size * self.low))
        self._masks: dict[tuple[int, int], torch.Tensor] = {}

    @property
    def nbytes(self) -> int:
        """Bytes of the sign table and the Hadamard matrix."""
        return self.signs.numel() * 2 + self.hadamard.numel() * 2

    @property
    def groups(self) -> int:
        """Transforms per query (members scored by this plan)."""
        return int(self.signs.shape[1])

    def fold(self, x64: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The bf16 query in state order and the per-query error bound of every score.

        Args:
            x64: ``(q, n)`` float64 code-space queries.

        Returns:
            ``(xb, err)``: ``xb`` ``(q, 2^m)`` bf16 (``xb[:, sigma(i)] = x[:, i] / sqrt(n)``, ``xb[:, 0] = 0``),
            ``err`` ``(q,)`` float64 with ``|score - exact| <= err`` for every output of ``blocks``.
        """
        xs = x64 / math.sqrt(self.length)
        xb = xs.to(torch.bfloat16)
        rounding = (xb.double() - xs).norm(dim=1) * math.sqrt(self.length)
        l1 = xb.double().abs().sum(dim=1)
        acc = gamma(self.low, U32)
        stages = self.top.bit_length()  # the products' rounding to bf16, then one per butterfly stage
        rel = (1 + acc) * (1 + U_BF16) ** stages - 1
        err = rounding * (1 + 1e-9) + rel * l1 * (1 + 1e-9) + 1e-30 * self.size
        out = torch.zeros(x64.shape[0], self.size, dtype=torch.bfloat16, device=x64.device)
        out[:, self.sigma.to(x64.device)] = xb
        return out, err

    def chunks(self, q: int, n: int) -> list[tuple[int, int, int, int]]:
        """``(block index, first group, stop, sign-table column of the first group)`` of the products for ``q``
        queries over slots ``0 .. n-1`` (blocks past slot ``n`` left out)."""
        per = max(256, _GEMM_ELEMS // (max(1, q) * self.size))
        out, col = [], 0
        for index, block in enumerate(self.blocks):
            if block.start * self.length >= n:
                break
            out.extend((index, g0, min(block.size, g0 + per), col + g0) for g0 in range(0, block.size, per))
            col += block.size
        return out

    def fold_queries(self, xb: torch.Tensor) -> torch.Tensor:
        """``(2^t, q, L, L)`` bf16: ``[j, q, y, s] = xb[q, j L + s] H_L[y, s]`` (exact: sign flips)."""
        q = xb.shape[0]
        parts = xb.view(q, self.top, self.low).transpose(0, 1)  # (2^t, q, L)
        return parts[:, :, None, :] * self.hadamard[None, None]

    def scores(self, folded: torch.Tensor, chunk: tuple[int, int, int, int]) -> torch.Tensor:
        """bf16 ``(q, 2^t, L, G_c)`` (a permuted view): output ``[:, j, y, g]`` is the score of ``T^a u + c_g`` with
        ``a = shift_of[j L + y]``; output ``[:, 0, 0, :]`` (Hadamard index 0, no row) is ``-inf``."""
        _, g0, g1, col = chunk
        top, low, q = self.top, self.low, folded.shape[1]
        out = torch.empty(top, q * low, g1 - g0, dtype=torch.bfloat16, device=folded.device)
        for j in range(top):
            torch.mm(folded[j].reshape(q * low, low), self.signs[j * low : (j + 1) * low, col : col + g1 - g0], out=out[j])
        half = 1
        while half < top:  # Sylvester butterfly over the top index (rounded to bf16 at every stage)
            view = out.view(top // (2 * half), 2, half, q * low, g1 - g0)
            a, b = view[:, 0], view[:, 1]
            total = a + b
            torch.sub(a, b, out=b)
            a.copy_(total)
            half *= 2
        out = out.view(top, q, low, g1 - g0)
        out[0, :, 0, :] = float("-inf")
        return out.permute(1, 0, 2, 3)

    def slot_map(self, chunk: tuple[int, int, int, int]) -> Callable[..., torch.Tensor]:
        """``to_slot(j, y, g)``: the slots of outputs ``[:, j, y, g]`` of ``chunk``."""
        block, g0 = self.blocks[chunk[0]], chunk[1]

        def to_slot(j: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
            shift = self.shift_of[(j * self.low + y).cpu()]
            return (block.members(g.cpu() + g0, shift) * self.length + shift).to(j.device)

        return to_slot

    def mask(self, chunk: tuple[int, int, int, int], n: int) -> torch.Tensor | None:
        """``(2^t, L, G_c)`` bool: outputs of ``chunk`` whose slot is ``>= n`` (None if there are none)."""
        index, g0, g1, _ = chunk
        block = self.blocks[index]
        if block.stop * self.length <= n:
            return None
        key = (index, n)
        masks = self._masks  # one cached (block, n): replaced, never mutated (safe across threads)
        if key not in masks:
            group = torch.arange(block.size)[None, :].expand(self.size - 1, -1)
            shift = self.shift_of[1:, None].expand(-1, block.size)
            slots = block.members(group.reshape(-1), shift.reshape(-1)) * self.length + shift.reshape(-1)
            bad = torch.cat([torch.ones(1, block.size, dtype=torch.bool), (slots >= n).reshape(-1, block.size)])
            masks = {key: bad.view(self.top, self.low, block.size).to(self.device)}
            self._masks = masks
        return masks[key][:, :, g0:g1]

    def blocks_for(self, xb: torch.Tensor, n: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, Callable, Any]]:
        """``(full, scores, to_slot, mask)`` blocks of bf16 scores ``(q, 2^t, L, G_c)`` over the plan's groups.

        Output ``[:, j, y, g]`` is the score of the row ``T^a u + c_g`` (``a = shift_of[j L + y]``);
        ``to_slot(j, y, g)`` maps indices to slots; ``mask`` (``(2^t, L, G_c)`` bool, or None) marks the outputs
        whose slot is ``>= n``,
        which the caller must discard (``full`` and ``scores`` are the same unmasked tensor). Blocks past slot
        ``n`` are not produced.
        """
        folded = self.fold_queries(xb)
        for chunk in self.chunks(xb.shape[0], n):
            out = self.scores(folded, chunk)
            yield out, out, self.slot_map(chunk), self.mask(chunk, n)


def row_max(block: torch.Tensor) -> torch.Tensor:
    """Float64 ``(q,)`` maximum of each query's block ``(q, ...)``.

    bf16 blocks are reduced as int16 bit patterns (4x faster here than a bf16 ``amax``): a non-negative bf16 is
    ordered like its bits, and any of them beats every negative one, whose bits are negative int16s; rows without a
    non-negative entry fall back to ``amax``.
    """
    dims = tuple(range(1, block.dim()))
    if block.dtype != torch.bfloat16:
        return block.amax(dim=dims).double()
    bits = block.view(torch.int16).amax(dim=dims)
    out = bits.view(torch.bfloat16).double()
    neg = bits < 0
    if bool(neg.any()):
        out[neg] = block[neg].amax(dim=dims).double()
    return out


def bf16_matmul_is_fast(device: torch.device) -> bool:
    """Whether bf16 matrix products run on matrix units on ``device`` (CUDA, or a CPU with AMX tiles)."""
    if device.type == "cuda":
        return True
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return device.type == "cpu" and probe is not None and bool(probe())
