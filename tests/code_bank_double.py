"""A test double of a code bank (``CODE_BANK_CONTRACT.md``): random +-1 sequences in the contract's row order.

The structured search works for any sequences; only a real code family's low coherence needs Gold/Kasami, so
the index and head tests run against this double as well as against the real code banks when they exist.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class FakeCode:
    """``n_members`` random +-1 sequences of length ``length`` (distinct full-period ones), zero-padded."""

    family = "random"

    def __init__(self, length: int, n_members: int, dim: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.length, self.n_members, self.dim = length, n_members, dim
        self._seqs = rng.choice(np.array([-1, 1], dtype=np.int8), size=(n_members, length))

    def sequences(self, members: Any) -> np.ndarray:
        return self._seqs[members]

    def to_code_space(self, x: Any) -> Any:
        return x[:, : self.length]


class FakeCodeBank:
    """The bank surface of the contract: ``code``, ``n``, ``dim``, ``rows``, ``vectors``, ``sha256``."""

    method = "random_code"

    def __init__(self, n: int, dim: int, length: int, seed: int = 0, n_members: int | None = None) -> None:
        self.n, self.dim = n, dim
        self.code = FakeCode(length, n_members or -(-n // length), dim, seed)
        self.rows_fetched = 0

    def rows(self, slots: Any) -> torch.Tensor:
        if isinstance(slots, slice):
            slots = np.arange(self.n)[slots]
        slots = np.asarray(torch.as_tensor(slots).cpu(), dtype=np.int64)
        if slots.size and (slots.min() < 0 or slots.max() >= self.n):
            raise IndexError("slot out of range")
        self.rows_fetched += int(slots.size)
        n = self.code.length
        m, t = slots // n, slots % n
        cols = (np.arange(n)[None, :] + t[:, None]) % n
        seq = self.code._seqs[m[:, None], cols].astype(np.float32) / np.float32(np.sqrt(n))
        out = np.zeros((slots.size, self.dim), dtype=np.float32)
        out[:, :n] = seq
        return torch.from_numpy(out)

    @property
    def vectors(self) -> torch.Tensor:
        return self.rows(np.arange(self.n))

    @property
    def coherence(self) -> float:
        v = self.vectors.double()
        g = (v @ v.T).abs()
        g.fill_diagonal_(0)
        return float(g.max())

    def sha256(self) -> str:
        return f"fake-{self.n}-{self.dim}-{self.code.length}"
