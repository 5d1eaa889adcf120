"""``SequenceCode``: a code bank's formula (family, m, feedback polynomial, N, dim) and its rows on demand.

Row order (fixed, never changes): slot ``i`` is member ``i // n``, shift ``t = i % n`` (``n`` = code length):
``row_i[c] = s_member[(c + t) % n] / sqrt(n)`` for ``c < n``, then zero padding into ``R^dim`` (coordinates
``n .. dim-1`` are 0). Members come in the family's documented order (``ebv_cl.bank.codes.families``), so a
bank of ``N < K n`` rows is a prefix: whole shift orbits first, the last member possibly partial.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Sequence

import numpy as np
import torch

from .families import FAMILIES, Family, build_family, check_family_params
from .gf2 import is_primitive

__all__ = ["SequenceCode", "PADDINGS"]

PADDINGS = ("zero",)
_CHUNK = 4096


class SequenceCode:
    """The formula of a code bank and the maps between slots, sequences and rows.

    Args:
        family: ``"gold"``, ``"kasami_small"`` or ``"kasami_large"``.
        m: Degree of the m-sequence; the code length is ``n = 2^m - 1``.
        n_rows: Rows of the bank (``1 <= n_rows <= family size * n``).
        dim: Dimension of the bank (``>= n``).
        poly: Primitive feedback polynomial of the base m-sequence (bit i = coefficient of x^i); default the
            smallest primitive polynomial of degree ``m``.
        padding: The isometric embedding of ``R^n`` into ``R^dim``; only ``"zero"`` (zero padding).

    Raises:
        ValueError: on an unknown family, an unsupported ``m``, a non-primitive ``poly``, ``dim < n`` or more
            rows than the family holds.
    """

    def __init__(self, family: str, m: int, n_rows: int, dim: int, *, poly: int | None = None,
                 padding: str = "zero") -> None:
        check_family_params(family, m)
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {list(PADDINGS)}, got {padding!r}")
        if poly is not None and (isinstance(poly, bool) or not isinstance(poly, int) or not is_primitive(poly, m)):
            raise ValueError(f"poly must be a primitive polynomial of degree {m} (an int), got {poly!r}")
        n = (1 << m) - 1
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < n:
            raise ValueError(f"dim must be an int >= the code length {n} (m={m}), got {dim!r}")
        self._family: Family = build_family(family, m, poly)
        capacity = self._family.size * n
        if isinstance(n_rows, bool) or not isinstance(n_rows, int) or not 1 <= n_rows <= capacity:
            raise ValueError(f"n_rows must be an int in [1, {capacity}] ({family} m={m} holds {self._family.size} "
                             f"sequences x {n} shifts), got {n_rows!r}")
        self.family: str = family
        self.m: int = m
        self.n_rows: int = n_rows
        self.dim: int = dim
        self.padding: str = padding
        self.poly: int = self._family.poly

    # -- the contract surface ---------------------------------------------------------------------------
    @property
    def length(self) -> int:
        """The code length ``n = 2^m - 1`` (<= dim)."""
        return (1 << self.m) - 1

    @property
    def n_members(self) -> int:
        """Members the bank uses: ``ceil(n_rows / length)``."""
        return -(-self.n_rows // self.length)

    @property
    def family_size(self) -> int:
        """Members of the whole family (full-period sequences)."""
        return self._family.size

    @property
    def capacity(self) -> int:
        """Rows of the whole family: ``family_size * length``."""
        return self._family.size * self.length

    @property
    def structure(self) -> Family:
        """The underlying ``Family`` (components, member table)."""
        return self._family

    def _member_index(self, members: Any) -> np.ndarray:
        if isinstance(members, slice):
            return np.arange(self.n_members, dtype=np.int64)[members]
        if isinstance(members, torch.Tensor):
            members = members.detach().cpu().numpy()
        idx = np.asarray(members)
        if idx.ndim == 0:
            idx = idx.reshape(1)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise ValueError(f"members must be a 1-D array of ints or a slice, got shape {idx.shape} dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_members):
            bad = int(idx[(idx < 0) | (idx >= self.n_members)][0])
            raise ValueError(f"members must be in [0, {self.n_members}), got {bad}")
        return idx

    def sequences(self, members: Sequence[int] | np.ndarray | torch.Tensor | slice) -> np.ndarray:
        """The +-1 sequences of ``members`` as an int8 ``(len, n)`` array (no normalisation, no padding)."""
        idx = self._member_index(members)
        out = np.empty((idx.size, self.length), dtype=np.int8)
        for start in range(0, idx.size, _CHUNK):
            part = idx[start : start + _CHUNK]
            bits = self._family.bits(self._family.members[part])
            out[start : start + part.size] = 1 - 2 * bits.astype(np.int8)
        return out

    def to_code_space(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """The adjoint of the embedding: ``(q, dim) -> (q, n)``, here ``x[:, :n]`` (zero padding).

        ``x @ row_i == to_code_space(x) @ (shift_t(s_m) / sqrt(n))`` exactly.
        """
        if x.shape[-1] != self.dim:
            raise ValueError(f"x must have last dimension dim={self.dim}, got shape {tuple(x.shape)}")
        return x[..., : self.length]

    def _slot_index(self, slots: Any) -> np.ndarray:
        if isinstance(slots, slice):
            return np.arange(self.n_rows, dtype=np.int64)[slots]
        if isinstance(slots, torch.Tensor):
            slots = slots.detach().cpu().numpy()
        idx = np.asarray(slots)
        if idx.ndim == 0:
            idx = idx.reshape(1)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise ValueError(f"slots must be a 1-D array of ints or a slice, got shape {idx.shape} dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_rows):
            bad = int(idx[(idx < 0) | (idx >= self.n_rows)][0])
            raise ValueError(f"slots must be in [0, {self.n_rows}), got {bad}")
        return idx

    def rows(self, slots: Any) -> torch.Tensor:
        """Rows ``slots`` (int array/tensor or slice) as a float32 ``(k, dim)`` tensor, computed on demand."""
        idx = self._slot_index(slots)
        n = self.length
        out = torch.zeros(idx.size, self.dim, dtype=torch.float32)
        scale = np.float32(1.0 / math.sqrt(n))
        ar = np.arange(n, dtype=np.int64)
        for start in range(0, idx.size, _CHUNK * 4):
            part = idx[start : start + _CHUNK * 4]
            member, shift = np.divmod(part, n)
            uniq, inverse = np.unique(member, return_inverse=True)
            seqs = self.sequences(uniq)
            vals = seqs[inverse[:, None], (ar[None, :] + shift[:, None]) % n].astype(np.float32) * scale
            out[start : start + part.size, :n] = torch.from_numpy(vals)
        return out

    # -- the formula ---------------------------------------------------------------------------------------
    def formula(self) -> dict[str, Any]:
        """The JSON-ready parameters that define every row (what a bank file stores)."""
        return {
            "family": self.family,
            "m": self.m,
            "length": self.length,
            "n": self.n_rows,
            "dim": self.dim,
            "feedback_polynomial": self.poly,
            "decimations": self._family.decimations(),
            "padding": self.padding,
            "row_order": "slot i = member i // length, shift i % length; members in the family's order",
        }

    @classmethod
    def from_formula(cls, formula: dict[str, Any]) -> "SequenceCode":
        """Rebuild a code from ``formula()``; raises ``ValueError`` if a field is missing or inconsistent."""
        keys = ("family", "m", "length", "n", "dim", "feedback_polynomial", "decimations", "padding")
        missing = [k for k in keys if k not in formula]
        if missing:
            raise ValueError(f"code formula lacks the keys {missing}")
        if formula["family"] not in FAMILIES:
            raise ValueError(f"code formula has unknown family {formula['family']!r}; known: {list(FAMILIES)}")
        code = cls(formula["family"], formula["m"], formula["n"], formula["dim"], poly=formula["feedback_polynomial"],
                   padding=formula["padding"])
        if formula["length"] != code.length or formula["decimations"] != code._family.decimations():
            raise ValueError(
                f"code formula is inconsistent: length {formula['length']!r} / decimations {formula['decimations']!r}, "
                f"expected {code.length} / {code._family.decimations()} for {code.family} m={code.m}"
            )
        return code

    def sha256(self) -> str:
        """sha256 of the canonical formula JSON (the code bank's identity)."""
        return hashlib.sha256(json.dumps(self.formula(), sort_keys=True).encode("utf-8")).hexdigest()

    def sequences_sha256(self) -> str:
        """sha256 of the int8 sequences of every member the bank uses, in order (checks the generator itself)."""
        digest = hashlib.sha256()
        for start in range(0, self.n_members, _CHUNK):
            digest.update(self.sequences(slice(start, min(self.n_members, start + _CHUNK))).tobytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return (f"SequenceCode(family={self.family!r}, m={self.m}, length={self.length}, n_rows={self.n_rows}, "
                f"dim={self.dim}, members={self.n_members}/{self.family_size})")
