"""Path ``fft``: exact search of a code bank by its structure (every cyclic shift of a sequence at once).

A code bank (``bank.code`` is a ``SequenceCode``, see ``ebv_cl.bank``) has ``K`` member sequences ``s_m`` of
length ``n``; slot ``i`` is member ``m = i // n`` shifted by ``t = i % n``, scaled by ``1/sqrt(n)`` and embedded
isometrically into ``R^dim``. With ``x = code.to_code_space(q)`` the score of slot ``(m, t)`` is the circular
cross-correlation ``r_m[t] / sqrt(n)``, ``r_m[t] = sum_c x[c] s_m[(c + t) % n]``: all ``n`` shifts of a member for
``O(L log L)`` work by FFT instead of ``O(n dim)``. The correlation is taken as a linear one against ``s_m``
extended by its first ``n - 1`` entries, zero-padded to the power of two ``L >= 2n - 1`` (power-of-two FFTs
measured 1.8x faster than length-``n`` ones at ``n = 511`` and 5x at ``n = 1023``), in float32 with the member
spectra precomputed (``K x (L/2 + 1)`` complex64: 80 MB at ``N = 10^7``). The bank rows are never formed: the
re-rank fetches the few candidate rows with ``bank.rows``.

Exactness (the same result as ``rerank.exact_search``, lower slot first on ties) follows the certified scheme of
``certified``: ``|fft_score - true_score| <= E ||x||`` for every slot, where ``E`` is the normwise error bound
of the FFT pipeline (forward FFT, rounded spectra, complex products, inverse FFT, scaling) derived from
Higham's bound for a floating-point FFT (Accuracy and Stability of Numerical Algorithms, 2nd ed., Thm 24.2:
``||fl(F x) - F x|| <= log2(L) eta / (1 - log2(L) eta) ||F x||``, ``eta = mu + gamma_4 (sqrt 2 + mu)``). That
theorem is stated for radix-2 Cooley-Tukey; torch's CPU/GPU FFT libraries use other radices and real-input
variants, so the bound is multiplied by ``_SAFETY = 16`` and checked on probe queries when the path is built
(a path whose measured error exceeds the unmultiplied bound refuses to build). The search streams over member
blocks keeping the exact running top-k: a slot is re-scored in float64 (``rerank.pair_scores`` on the rows of
``bank.rows``) only when its FFT score is within ``2 W`` of the running k-th best FFT score and within ``W`` of
the running exact k-th best, ``W = E ||x|| + E_64`` (``E_64`` bounds the float64 re-rank's own rounding). Both
are necessary for a slot of the final exact top-k, so the answer is exact for every query, ties included;
memory stays at one block of scores plus the candidates, whatever the number of tied slots.

Scorers (``scorer=``): ``"fft"`` (above), ``"wht"`` (``ebv_cl.index.walsh``: for Gold/Kasami codes, the members
that contain the base m-sequence are scored by Walsh-Hadamard transforms in the LFSR state order, one per member,
as bf16 matrix products; its own error bound per query; the few members without the base sequence stay with the
FFT; the search runs in two passes, every block's maximum first, then per query the blocks in decreasing order
of that maximum, so most blocks are never scanned for candidates), ``"circulant"`` (int8, see below) and
``"auto"``: ``"wht"`` for real codes with ``m <= 8`` where bf16 products run on matrix units (AMX, CUDA), else
``"fft"`` (measurements at ``_WALSH_MAX_M``). ``search_approx`` is the raw scores' top-k without the re-rank.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Iterator

import torch

from .encoding import U32, U64, gamma
from .rerank import pair_scores, topk_of_pairs
from .walsh import WalshPlan, bf16_matmul_is_fast, row_max, walsh_applies

__all__ = ["ShiftPath", "SCORERS", "fft_error_bound", "is_code_bank"]

SCORERS = ("auto", "wht", "fft", "circulant")

_SAFETY = 16.0
_BLOCK_ELEMS = 1 << 18  # FFT outputs per block (1 MiB of float32): cache-resident, measured fastest
_QUERY_BLOCK = 64
_PAIR_CHUNK = 1 << 15  # candidate pairs re-scored at once (rows of at most this many slots in memory)
_SENTINEL = 2**62
_KEEP_BYTES = 64 << 20  # Walsh-Hadamard products of a query block kept between the two passes, at most
_INT_ELEMS = 1 << 22  # int32 scores per block of the circulant scorer (16 MiB)
_INT32_MIN = -(2**31)
# scorer "auto" is "fft": at n = 255 (10^6 x 512, kasami_large m=8) the int8 circulant product measured 4.7-5.4 s
# per 1,000 queries against 4.5 s for the FFT (one thread, loaded machine): it does n^2 multiply-adds per member
# (half of a dense d = 512 scan) but int8 matmuls with an inner size of 256 ran at 110-150 GMAC/s here, against
# 198 at 512. It stays available (``scorer="circulant"``) and is tested as an independent second scorer.
_CIRCULANT_MAX_LENGTH = 0
# scorer "auto" is "wht" up to m = 8 where bf16 products run on matrix units (AMX, CUDA). Measured (one thread,
# CPU ms per 1,000 queries, same process, loaded machine): m = 8 (10^6 x 512, kasami_large) wht 2,734-3,095 vs fft
# 7,131-7,232; m = 9 (262,143 x 512, gold) wht 1,714-1,925 vs fft 1,794-1,852 (parity: the bf16 butterfly stage
# and the per-block work cancel the cheaper products); m = 10 (10^6 x 1024, gold) wht 7,123-8,778 vs fft 6,135-6,236.
_WALSH_MAX_M = 8


def is_code_bank(bank: Any) -> bool:
    """Whether ``bank`` is stored as a sequence code (``bank.code`` set), so path ``fft`` applies."""
    return getattr(bank, "code", None) is not None


def _cast_down(thr: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float64 thresholds as ``dtype``, rounded down (a raw score ``>=`` the result whenever ``>= thr``)."""
    if dtype == torch.int32:
        return torch.floor(thr).clamp(_INT32_MIN + 1, 2**31 - 1).to(torch.int32)
    low = thr.to(dtype)
    return torch.nextafter(low, torch.full_like(low, float("-inf")))


def _at_least(block: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    """``block >= t`` per query for some ``t <= thr`` (float64 ``(q,)``), as a bool tensor shaped like ``block``.

    For bf16 the threshold is lowered by more than its rounding to bf16; when it is non-negative the comparison
    runs on the int16 bit patterns (ordered like the values from 0 up, and negative for every negative value).
    """
    view = (-1,) + (1,) * (block.dim() - 1)
    if block.dtype != torch.bfloat16:
        return block >= _cast_down(thr, block.dtype).view(view)
    low = (thr - thr.abs() * 2.0**-7 - 1e-30).float().to(torch.bfloat16)
    if bool((low >= 0).all()):
        return block.view(torch.int16) >= low.view(torch.int16).view(view)
    return block >= low.view(view)


def _fft_size(length: int) -> int:
    return 1 << max(1, math.ceil(math.log2(2 * length - 1)))


def fft_error_bound(length: int, size: int, spectrum_max: float, *, unit: float = U32, safety: float = 1.0) -> float:
    """Bound ``E`` of ``|fft_score - score| / ||x||`` for every shift, in the pipeline of this module.

    Args:
        length: The code length ``n`` (scores are correlations divided by ``sqrt(n)``).
        size: The FFT size ``L`` (a power of two, ``>= 2n - 1``).
        spectrum_max: The largest ``|S_k|`` of the extended sequences' spectra as computed in float64.
        unit: The unit roundoff of the FFT arithmetic (float32: ``2^-24``).
        safety: The factor applied to the FFT's own error ``eps`` (see the module docstring).

    Returns:
        ``E``: with ``x`` the code-space query, ``E ||x||_2`` bounds the error of every score.
    """
    levels = math.log2(size)
    mu = 2 * unit  # twiddle factors: computed accurately, then rounded to the working precision
    eta = mu + gamma(4, unit) * (math.sqrt(2) + mu)
    eps = safety * levels * eta / (1 - levels * eta)
    # spectra: computed in float64 (normwise error <= eps_64 sqrt(L) ||s_ext||, bounding every entry; eta_64 is
    # at most 6 u_64, taken as 8 gamma), then rounded to complex64 (relative 2u: both parts rounded)
    d64 = 8 * gamma(int(levels) + 2, U64) * math.sqrt(size) * math.sqrt(2 * length)
    smax = spectrum_max + d64  # |S_k| of the exact spectra
    d_s = 2 * unit * (spectrum_max + d64) + d64  # |S^_k - S_k|
    s_hat = smax + d_s
    # ||X^ - X|| <= eps sqrt(L) ||x||;  ||P^ - P|| <= sqrt(L) ||x|| (eps s_hat + d_s + sqrt2 gamma_2 (1 + eps) s_hat)
    p_err = eps * s_hat + d_s + math.sqrt(2) * gamma(2, unit) * (1 + eps) * s_hat
    # inverse FFT with 1/L: ||y^ - y|| <= (eps ||P^|| + ||P^ - P||) / sqrt(L) per unit ||x||
    y_err = eps * (smax + p_err) + p_err
    # scaling by 1/sqrt(n) (rounded constant, rounded product); |y| <= sqrt(n) ||x||
    return (y_err / math.sqrt(length) + 3 * unit) * (1 + 1e-6)


class _Running:
    """The running state of one query block's search: approximate and exact top-k, pending candidates.

    A slot is re-scored in float64 only when its raw score is within ``2 w`` of the running k-th best raw score
    and within ``w`` of the running exact k-th best (``ShiftPath._threshold``); candidates are flushed to the
    exact re-rank in chunks, so memory stays bounded whatever the number of tied slots.
    """

    def __init__(self, queries: torch.Tensor, k: int, w: torch.Tensor, unit: torch.Tensor, path: "ShiftPath") -> None:
        q, device = queries.shape[0], queries.device
        self.queries, self.k, self.w, self.unit, self.path = queries, k, w, unit, path
        self.approx = torch.full((q, k), float("-inf"), dtype=torch.float64, device=device)  # running top-k, raw
        self.best_s = torch.full((q, k), float("-inf"), dtype=torch.float64, device=device)
        self.best_i = torch.full((q, k), _SENTINEL, dtype=torch.int64, device=device)
        self.rows = torch.arange(q, device=device)
        self.pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.count = 0

    def threshold(self) -> torch.Tensor:
        return self.path._threshold(self.approx, self.best_s, self.w, self.unit)

    def consume(self, full: torch.Tensor, scores: torch.Tensor, to_slot: Any, mask: torch.Tensor | None,
                rows: torch.Tensor, *, owned: bool) -> None:
        """Take one block of raw scores ``(len(rows), A, B)`` of queries ``rows`` (``owned``: may be overwritten)."""
        k = self.k
        # a block whose every raw output (scores, masked outputs and any padding alike) is below the threshold
        # holds no candidate and cannot raise the running top-k (which is above the threshold): skip it. A query
        # left out below keeps a lower running top-k than it could, which only lowers its threshold (safe).
        thr = self.threshold()
        hit = row_max(full) >= thr[rows]
        if not bool(hit.any()):
            return
        every = bool(hit.all())
        sub = rows if every else rows[hit]
        if mask is not None:  # outputs that are no slot of 0 .. n-1 (a masked copy, or in place when owned)
            block = (scores if every and owned else scores[hit]).masked_fill_(mask, float("-inf"))
        else:
            block = scores if every else scores[hit]
        if k > 1:
            flat = block.reshape(sub.shape[0], -1)
            top = flat.topk(min(k, flat.shape[1]), dim=1).values.double()
            if top.shape[1] < k:
                top = torch.nn.functional.pad(top, (0, k - top.shape[1]), value=float("-inf"))
            self.approx[sub] = torch.cat([self.approx[sub], top], dim=1).topk(k, dim=1).values
        else:
            top = row_max(block)[:, None]
            self.approx[sub] = torch.maximum(self.approx[sub], top)
        thr = self.threshold()
        keep = top[:, 0] >= thr[sub]
        if not bool(keep.any()):
            return
        if not bool(keep.all()):
            sub, block = sub[keep], block[keep]
        idx = torch.nonzero(_at_least(block, thr[sub]), as_tuple=True)
        self.pending.append((sub[idx[0]], to_slot(*idx[1:]), block[idx].double()))
        self.count += idx[0].shape[0]
        if self.count > _PAIR_CHUNK:  # re-rank now: the exact k-th best then prunes later blocks too
            self._flush()

    def _flush(self) -> None:
        self.best_s, self.best_i = self.path._flush(self.queries, self.pending, self.threshold(), self.best_s,
                                                    self.best_i, self.k)
        self.pending, self.count = [], 0

    def finish(self) -> tuple[torch.Tensor, torch.Tensor]:
        self._flush()
        return self.best_s.float(), self.best_i


class ShiftPath:
    """The exact ``fft`` search path of a code bank (see the module docstring).

    Args:
        bank: A code bank (``bank.code`` set; ``bank.rows`` gives float32 rows).
        device: Where the FFTs run (CPU or CUDA).
        scorer: ``"fft"`` (float32 FFT cross-correlation), ``"wht"`` (Walsh-Hadamard products in bf16 for the
            members with the base m-sequence, FFT for the rest; Gold/Kasami codes only), ``"circulant"`` (CPU:
            every shift of the int8 query times the int8 sequence table, exact int32 sums, error only from the
            query's rounding) or ``"auto"`` (``"wht"`` up to ``m = 8`` on AMX/CUDA, else ``"fft"``).

    Raises:
        ValueError: on an unknown scorer, ``"wht"`` for a code without the family structure, if ``bank`` is not
            a code bank, or if the scores of probe queries disagree with the bank's rows (beyond the error
            bound) - the bank's ``code`` does not describe its rows.
    """

    exact = True
    name = "fft"

    def __init__(self, bank: Any, device: torch.device | str = "cpu", *, scorer: str = "auto") -> None:
        if scorer not in SCORERS:
            raise ValueError(f"scorer must be one of {list(SCORERS)}, got {scorer!r}")
        if not is_code_bank(bank):
            raise ValueError(
                f"path 'fft' needs a code bank (bank.code set, e.g. method 'gold' or 'kasami'); got method "
                f"{getattr(bank, 'method', None)!r}"
            )
        self.bank, self.code, self.device = bank, bank.code, torch.device(device)
        self.length = int(self.code.length)
        self.size = _fft_size(self.length)
        members = min(int(self.code.n_members), -(-int(bank.n) // self.length))
        if scorer == "auto":
            small = self.length <= _CIRCULANT_MAX_LENGTH
            scorer = "circulant" if self.device.type == "cpu" and small else "fft"
            if walsh_applies(self.code) and self.code.m <= _WALSH_MAX_M and bf16_matmul_is_fast(self.device):
                scorer = "wht"
        if scorer == "circulant" and self.device.type != "cpu":
            raise ValueError(f"scorer 'circulant' (int8) runs on the CPU, got device {self.device}")
        if scorer == "wht" and not walsh_applies(self.code):
            raise ValueError("scorer 'wht' needs a Gold/Kasami code (code.structure: the m-sequence family), got "
                             f"{type(self.code).__name__}")
        self.scorer = scorer
        self.walsh = WalshPlan(self.code, members, self.device) if scorer == "wht" else None
        self.two_pass = self.walsh is not None and self.walsh.top == 1  # measured: better at m = 8, not at 9
        # members scored by FFT: all of them, or what the Walsh-Hadamard plan leaves (no u part, sparse blocks)
        self.fft_ranges = self.walsh.fft_ranges if self.walsh is not None else [(0, members)]
        total = sum(stop - first for first, stop in self.fft_ranges)
        spectra = torch.empty((total, self.size // 2 + 1), dtype=torch.complex64)  # filled in place
        smax = 0.0
        step = max(1, (1 << 20) // self.size)
        offset = 0
        self._fft_offsets = []
        for first, stop in self.fft_ranges:
            self._fft_offsets.append(offset)
            for m0 in range(first, stop, step):
                seq = torch.from_numpy(self.code.sequences(slice(m0, min(stop, m0 + step)))).to(torch.float64)
                ext = torch.cat([seq, seq[:, : self.length - 1]], dim=1)
                spec = torch.fft.rfft(ext, n=self.size, dim=1)
                smax = max(smax, float(spec.abs().max()))
                spectra[offset : offset + spec.shape[0]] = spec
                offset += spec.shape[0]
        self.spectra = spectra.to(self.device)
        self.error = fft_error_bound(self.length, self.size, smax, safety=_SAFETY)
        self._raw_error = fft_error_bound(self.length, self.size, smax)
        self.table = self._sequence_table(members) if scorer == "circulant" else None
        self._check(bank)

    def _sequence_table(self, members: int) -> torch.Tensor:
        """The member sequences as int8 ``(n_pad, K_pad)`` (+-1; zero-padded to multiples of 8 both ways)."""
        pad_n, pad_k = -self.length % 8, -members % 8
        table = torch.zeros(members + pad_k, self.length + pad_n, dtype=torch.int8)
        step = 1 << 14
        for m0 in range(0, members, step):
            table[m0 : min(members, m0 + step), : self.length] = torch.from_numpy(
                self.code.sequences(slice(m0, min(members, m0 + step))))
        return table.T.contiguous()

    @property
    def nbytes(self) -> int:
        """Bytes of the member spectra, the Walsh-Hadamard sign table and the circulant int8 table (as used)."""
        table = 0 if self.table is None else self.table.numel()
        walsh = 0 if self.walsh is None else self.walsh.nbytes
        return self.spectra.numel() * self.spectra.element_size() + table + walsh

    def _code_space(self, queries: torch.Tensor) -> torch.Tensor:
        # in float64, then rounded once to float32 (the search widens its window by that rounding)
        return self._code_space64(queries).to(queries.device, torch.float32)

    def _code_space64(self, queries: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(self.code.to_code_space(queries.double().cpu()), dtype=torch.float64)
        return x.to(queries.device)

    def _check(self, bank: Any) -> None:
        """Probe scores of every scorer's first blocks against ``bank.rows`` (refuses a code that does not match)."""
        g = torch.Generator().manual_seed(0)
        probe = torch.nn.functional.normalize(torch.randn(4, bank.dim, generator=g, dtype=torch.float64), dim=1)
        probe = probe.float().to(self.device)
        x64 = self._code_space64(probe)
        x_norm = float(x64.norm(dim=1).max())
        tol = 2 * gamma(bank.dim, U64) + 1e-12
        checks: list[tuple[torch.Tensor, torch.Tensor, float]] = []
        kinds = [(self._fft_blocks(self._code_space(probe), int(bank.n)), self._raw_error * x_norm)]
        if self.walsh is not None:
            xb, err = self.walsh.fold(x64)
            kinds.append((self.walsh.blocks_for(xb, int(bank.n)), float(err.max())))
        for blocks, bound in kinds:
            for number, (_, scores, to_slot, mask) in enumerate(blocks):
                if number == 2:
                    break
                if mask is not None:
                    scores = scores.masked_fill(mask, float("-inf"))
                flat = scores.reshape(4, -1)
                idx = torch.arange(0, flat.shape[1], max(1, flat.shape[1] // 512), device=flat.device)
                vals = flat[:, idx].double()
                ok = torch.isfinite(vals[0])
                coords, rest = [], idx[ok]
                for extent in reversed(scores.shape[1:]):
                    coords.append(torch.remainder(rest, extent))
                    rest = torch.div(rest, extent, rounding_mode="floor")
                slots = to_slot(*reversed(coords))
                checks.append((vals[:, ok], slots, bound))
        for vals, slots, bound in checks:
            want = probe.double() @ bank.rows(slots.cpu()).to(self.device).double().T
            err = float((vals - want).abs().max()) if slots.numel() else 0.0
            if err > bound + tol:
                raise ValueError(
                    f"path 'fft': the bank's code does not describe its rows (probe error {err:.3g} > bound {bound:.3g})"
                )

    def _fft_blocks(self, x: torch.Tensor, n: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, Any]]:
        """``(full, scores, to_slot)``: float32 FFT scores of the FFT-scored members, a few members at a time.

        ``full`` is ``(q, members, L)``: entry ``[:, j, t]`` is the score of the block's member ``j`` shifted by
        ``t`` for ``t < length``; the entries from ``length`` on are lags of the zero-padded linear correlation,
        not scores (they only ever serve as an upper bound test that sends a block to the exact scan).
        ``scores`` is its ``[:, :, :length]`` view and ``to_slot(j, t)`` the slots. Slots past ``n - 1`` are
        ``-inf``. The blocks are views of one reused buffer.
        """
        q, size, length = x.shape[0], self.size, self.length
        # 1/sqrt(n) folded into the query's spectrum: one rounding, inside the bound's 3u term
        spec = (torch.fft.rfft(x, n=size, dim=1) * (1.0 / math.sqrt(length))).conj_physical()
        per = max(1, _BLOCK_ELEMS // (q * size))
        members = -(-n // length)
        prod = torch.empty((q, per, spec.shape[1]), dtype=torch.complex64, device=x.device)
        out = torch.empty((q, per, size), dtype=torch.float32, device=x.device)
        for (first, stop), offset in zip(self.fft_ranges, self._fft_offsets):
            for m0 in range(first, min(stop, members), per):
                m1 = min(stop, members, m0 + per)
                p, o = prod[:, : m1 - m0], out[:, : m1 - m0]
                torch.mul(spec[:, None, :], self.spectra[None, offset + m0 - first : offset + m1 - first], out=p)
                torch.fft.irfft(p, n=size, dim=2, out=o)
                if m1 * length > n:
                    o[:, -1, n - (m1 - 1) * length : length] = float("-inf")

                def to_slot(j: torch.Tensor, t: torch.Tensor, _m0: int = m0) -> torch.Tensor:
                    return (j + _m0) * length + t

                yield o, o[:, :, :length], to_slot, None

    def search(self, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact ``(scores, slots)`` of shape ``(q, k)`` over slots ``0 .. n-1`` (float32, int64)."""
        out_s, out_i = [], []
        step = _QUERY_BLOCK if self.walsh is None else min(_QUERY_BLOCK, self.walsh.query_block)
        for i0 in range(0, queries.shape[0], step):
            s, i = self._search_block(queries[i0 : i0 + step], n, k)
            out_s.append(s)
            out_i.append(i)
        return torch.cat(out_s), torch.cat(out_i)

    def _search_block(self, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        q, device = queries.shape[0], queries.device
        x64 = self._code_space64(queries)
        x = x64.to(torch.float32)
        x_norm = x.double().norm(dim=1) * (1 + 1e-12) + 1e-300
        q_norm = queries.double().norm(dim=1) * (1 + 1e-12)
        # float64 re-rank error, and (twice that) the float64 code-space map's own rounding
        e64 = 3 * gamma(queries.shape[1], U64) * q_norm * (1 + 1e-6) + math.ulp(1.0)
        if self.scorer == "circulant":
            codes, unit, err = self._quantize(x)
            blocks: Iterator[tuple[torch.Tensor, torch.Tensor, Any]] = self._circulant_blocks(codes, n)
        else:
            unit = torch.ones(q, dtype=torch.float64, device=device)
            err = (self.error + 2 * U32) * x_norm  # |fft score - exact score|
            blocks = self._fft_blocks(x, n)
            if self.walsh is not None:  # every score is within the larger of the two scorers' bounds
                xb, walsh_err = self.walsh.fold(x64)
                err = torch.maximum(err, walsh_err.to(device)) if self.fft_ranges else walsh_err.to(device)
        w = (err + e64) / unit  # |raw * unit - float64 score| <= w * unit, per query, in raw units
        state = _Running(queries, k, w, unit, self)
        for full, scores, to_slot, mask in blocks:
            state.consume(full, scores, to_slot, mask, state.rows, owned=False)
        if self.walsh is not None:
            self._walsh_search(state, xb, n)
        return state.finish()

    def search_approx(self, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Approximate ``(scores, slots)`` ``(q, k)``: the top-k of the raw scores, with no exact re-rank.

        Every returned score is the scorer's raw value (within the path's error bound of the exact one, about
        ``1e-2`` for the bf16 ``wht`` scorer and ``1e-6`` for ``fft``), so a returned slot can trail the exact k-th
        best by up to twice that bound, and which of several tied or nearly tied slots is returned is arbitrary.
        Meant for callers that need good candidates fast (hard negatives), not certified neighbours: a Kasami
        bank's scores take few values, and the exact search re-ranks every slot tied with the k-th best.
        """
        out_s, out_i = [], []
        step = _QUERY_BLOCK if self.walsh is None else min(_QUERY_BLOCK, self.walsh.query_block)
        for i0 in range(0, queries.shape[0], step):
            part = queries[i0 : i0 + step]
            q = part.shape[0]
            x64 = self._code_space64(part)
            if self.scorer == "circulant":
                codes, unit, _ = self._quantize(x64.float())
                blocks: Any = self._circulant_blocks(codes, n)
            else:
                unit = torch.ones(q, dtype=torch.float64, device=part.device)
                blocks = self._fft_blocks(x64.float(), n)
                if self.walsh is not None:
                    blocks = itertools.chain(blocks, self.walsh.blocks_for(self.walsh.fold(x64)[0], n))
            best_s = torch.full((q, k), float("-inf"), dtype=torch.float64, device=part.device)
            best_i = torch.full((q, k), -1, dtype=torch.int64, device=part.device)
            for _, scores, to_slot, mask in blocks:
                if mask is not None:
                    scores = scores.masked_fill(mask, float("-inf"))
                flat = scores.reshape(q, -1)
                vals, pos = flat.topk(min(k, flat.shape[1]), dim=1)
                coords, rest = [], pos.reshape(-1)
                for extent in reversed(scores.shape[1:]):
                    coords.append(torch.remainder(rest, extent))
                    rest = torch.div(rest, extent, rounding_mode="floor")
                slots = to_slot(*reversed(coords)).view(pos.shape)
                vals = vals.double() * unit[:, None]
                slots = slots.masked_fill(torch.isinf(vals), -1)
                merged_s = torch.cat([best_s, vals], dim=1)
                merged_i = torch.cat([best_i, slots], dim=1)
                best_s, order = merged_s.topk(k, dim=1)
                best_i = merged_i.gather(1, order)
            out_s.append(best_s.float())
            out_i.append(best_i)
        return torch.cat(out_s), torch.cat(out_i)

    def _walsh_search(self, state: "_Running", xb: torch.Tensor, n: int) -> None:
        """The Walsh-Hadamard products in two passes: every block's per-query maximum (int16 reduction of the
        bf16 products, unmasked: an upper bound), then per query the blocks in decreasing order of that bound,
        recomputed for that query alone, until the bound falls below the query's threshold. Most blocks of a
        query are never scanned for candidates (measured 3x less candidate work than one pass at 10^6 rows)."""
        plan = self.walsh
        if not self.two_pass:
            for full, scores, to_slot, mask in plan.blocks_for(xb, n):
                state.consume(full, scores, to_slot, mask, state.rows, owned=True)
            return
        folded = plan.fold_queries(xb)
        chunks = plan.chunks(xb.shape[0], n)
        if not chunks:
            return
        keep = xb.shape[0] * (plan.size - 1) * plan.groups * 2 <= _KEEP_BYTES  # keep the products, else recompute
        kept, maxima = [], []
        for chunk in chunks:
            out = plan.scores(folded, chunk)
            maxima.append(row_max(out))
            if keep:
                kept.append(out)
        bound = torch.stack(maxima, dim=1)  # (q, chunks)
        order = bound.argsort(dim=1, descending=True, stable=True).tolist()
        bound_list = bound.tolist()
        for i in range(xb.shape[0]):
            for c in order[i]:
                if bound_list[i][c] < float(state.threshold()[i]):
                    break
                chunk = chunks[c]
                out = kept[c][i : i + 1] if keep else plan.scores(folded[i : i + 1], chunk)
                state.consume(out, out, plan.slot_map(chunk), plan.mask(chunk, n), state.rows[i : i + 1],
                              owned=not keep)

    def _quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """int8 codes of the code-space queries, the per-query score unit and the scoring error bound.

        A query ``x`` becomes ``a * s`` with ``a`` int8 (``s = max|x| / 127``); the sequences are exact in int8,
        so every circulant score ``unit * (a . shift_t(s_m))`` (exact int32 sum, ``unit = s / sqrt(n)``) is off
        by at most ``||a s - x|| ||s_m|| / sqrt(n) = ||a s - x||`` (Cauchy-Schwarz), measured here in float64.
        """
        x64 = x.double()
        peak = x64.abs().amax(dim=1)
        scale = torch.where(peak > 0, peak / 127, torch.ones_like(peak))
        codes = torch.round(x64 / scale[:, None]).clamp_(-127, 127)
        err = (codes * scale[:, None] - x64).norm(dim=1) * (1 + 1e-12) + 1e-300
        unit = scale / math.sqrt(self.length)
        return codes.to(torch.int8), unit, err + 4 * U64 * x64.norm(dim=1)

    def _circulant_blocks(self, codes: torch.Tensor, n: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, Any]]:
        """``(int32 (q, n_len, members), int32 view (q, members, n_len), to_slot)`` raw circulant scores.

        Row ``t`` of a query's shift matrix is the query shifted by ``t`` (``x[(c - t) % n]``), so one int8
        matmul against the sequence table scores every shift of a block of members; invalid slots are int32 min.
        """
        q, length = codes.shape[0], self.length
        ar = torch.arange(length)
        shifted = codes[:, (ar[None, :] - ar[:, None]) % length]  # (q, t, c)
        shifted = torch.nn.functional.pad(shifted, (0, self.table.shape[0] - length)).reshape(q * length, -1)
        members = -(-n // length)
        per = max(8, (_INT_ELEMS // (q * length)) // 8 * 8)
        out = torch.empty(q * length * per, dtype=torch.int32)
        for m0 in range(0, members, per):
            m1 = min(members, m0 + per)
            cols = -(-(m1 - m0) // 8) * 8  # the table is padded with zero members to a multiple of 8
            o = out[: q * length * cols].view(q * length, cols)
            torch._int_mm(shifted, self.table[:, m0 : m0 + cols], out=o)
            full = o.view(q, length, cols)
            full[:, :, m1 - m0 :] = _INT32_MIN
            last = n - (m1 - 1) * length  # valid shifts of the block's last member
            if last < length:
                full[:, last:, m1 - m0 - 1] = _INT32_MIN

            def to_slot(j: torch.Tensor, t: torch.Tensor, _m0: int = m0) -> torch.Tensor:
                return (j + _m0) * length + t

            yield full, full.permute(0, 2, 1), to_slot, None

    @staticmethod
    def _threshold(approx: torch.Tensor, best_s: torch.Tensor, w: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """The raw score (float64, per query) below which no slot can join the exact top-k.

        A slot of the final exact top-k has a float64 score at least the running exact k-th best and at least
        the final k-th best raw score minus ``w`` (in score units ``w * unit``); its raw score is within ``w``.
        """
        k = approx.shape[1]
        return torch.maximum(approx[:, k - 1] - 2 * w, best_s[:, k - 1] / unit - w)

    def _flush(
        self, queries: torch.Tensor, pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
        thr: torch.Tensor, best_s: torch.Tensor, best_i: torch.Tensor, k: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Re-rank the pending candidates still above ``thr`` (raw) exactly and merge them into the running top-k."""
        if not pending:
            return best_s, best_i
        qi, slots, raw = (torch.cat(part) for part in zip(*pending))
        keep = raw >= thr[qi]
        qi, slots = qi[keep], slots[keep]
        for c0 in range(0, qi.shape[0], _PAIR_CHUNK):
            best_s, best_i = self._merge(queries, qi[c0 : c0 + _PAIR_CHUNK], slots[c0 : c0 + _PAIR_CHUNK],
                                         best_s, best_i, k)
        return best_s, best_i

    def _merge(
        self, queries: torch.Tensor, qi: torch.Tensor, slots: torch.Tensor, best_s: torch.Tensor,
        best_i: torch.Tensor, k: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The running exact top-k merged with the float64 scores of candidate pairs (rows from ``bank.rows``)."""
        uniq, inverse = torch.unique(slots, return_inverse=True)
        rows = self.bank.rows(uniq.cpu()).to(queries.device, torch.float32)
        exact = pair_scores(queries, rows, qi, inverse)
        q = queries.shape[0]
        all_q = torch.cat([torch.arange(q, device=qi.device).repeat_interleave(k), qi])
        all_i = torch.cat([best_i.reshape(-1), slots])
        all_s = torch.cat([best_s.reshape(-1), exact])
        return topk_of_pairs(all_q, all_i, all_s, n_queries=q, k=k)
