"""``EBVBank``: a fixed bank of N unit vectors in R^d with its metadata.

A bank is generated once (``EBVBank.generate``), saved (``save``) and loaded (``EBVBank.load``); every class
then takes one row through a ``SlotAllocator``. The vectors never change after creation.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BankFileError, BankMismatchError
from .io import read_bank_file, vectors_sha256, write_bank_file
from .stats import BankStats, bank_statistics

__all__ = ["EBVBank"]

_UNIT_TOLERANCE = 1e-3


class EBVBank:
    """N fixed unit vectors in R^d (rows of ``vectors``), with how they were made.

    Args:
        vectors: ``(n, dim)`` floating tensor or array with finite, non-zero rows; rows are normalised to unit
            length and stored as float32 on the CPU.
        seed: The seed the vectors were generated with, if any.
        method: The generation method (``"allpairs"``, ``"sparse"``, ``"kerdock"``, ... or ``"custom"``).
        alpha: The target coherence the generator was asked for, if any.
        info: Extra JSON-ready facts about the generation (steps, seconds, ...).
    """

    def __init__(
        self,
        vectors: torch.Tensor | np.ndarray,
        *,
        seed: int | None = None,
        method: str = "custom",
        alpha: float | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        from ..validation import as_embeddings

        v = as_embeddings(vectors, dim=None, name="vectors", device="cpu")
        self.vectors: torch.Tensor = torch.nn.functional.normalize(v, dim=1)
        self.seed = seed
        self.method = method
        self.alpha = alpha
        self.info: dict[str, Any] = dict(info or {})
        self._stats: BankStats | None = None
        self._coherence: float | None = None

    @property
    def n(self) -> int:
        """The number of vectors (the most classes the bank can hold)."""
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        """The dimension d of every vector."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        coh = f", coherence={self._coherence:.4f}" if self._coherence is not None else ""
        return f"EBVBank(n={self.n}, dim={self.dim}, method={self.method!r}{coh})"

    def stats(self) -> BankStats:
        """Exact quality statistics (computed once, in blocks, then cached)."""
        if self._stats is None:
            self._stats = bank_statistics(self.vectors)
            self._coherence = self._stats.coherence
        return self._stats

    @property
    def coherence(self) -> float:
        """The largest ``|cos|`` between two distinct vectors (exact)."""
        if self._coherence is None:
            self._coherence = self.stats().coherence
        return self._coherence

    def sha256(self) -> str:
        """The sha256 of the float32 vector bytes, as stored in the bank file."""
        return vectors_sha256(self.vectors.numpy())

    def metadata(self) -> dict[str, Any]:
        """The JSON-ready metadata saved with the bank."""
        return {
            "n": self.n,
            "dim": self.dim,
            "seed": self.seed,
            "method": self.method,
            "alpha": self.alpha,
            "coherence": self.coherence,
            "info": self.info,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Atomically write the bank and its metadata to ``path`` (see ``ebv_cl.bank.io``)."""
        return write_bank_file(path, self.vectors.numpy(), self.metadata())

    @classmethod
    def load(cls, path: str | os.PathLike, *, mmap: bool = False, verify: bool = True) -> "EBVBank":
        """Load a bank written by ``save``.

        Args:
            path: The bank file.
            mmap: Memory-map the vectors (read-only) instead of reading them into memory.
            verify: Check the sha256 of the vectors.

        Raises:
            BankFileError: if the file is missing, truncated, corrupt, tampered with or of another version.
        """
        vectors, header = read_bank_file(path, mmap=mmap, verify=verify)
        bank = cls.__new__(cls)
        if mmap:
            with warnings.catch_warnings():  # read-only memory map: the bank is never written to
                warnings.simplefilter("ignore", UserWarning)
                bank.vectors = torch.from_numpy(vectors)
        else:
            bank.vectors = torch.from_numpy(np.array(vectors))
        norms = bank.vectors[: min(bank.n, 4096)].norm(dim=1)
        if not bool(((norms - 1).abs() < _UNIT_TOLERANCE).all()):
            raise BankFileError(f"{str(path)!r} holds vectors that are not unit length (norms {norms.min():.4f}..{norms.max():.4f})")
        bank.seed = header.get("seed")
        bank.method = header.get("method", "custom")
        bank.alpha = header.get("alpha")
        bank.info = dict(header.get("info") or {})
        bank._stats = None
        bank._coherence = header.get("coherence")
        return bank

    @classmethod
    def generate(
        cls,
        n: int,
        dim: int,
        *,
        method: str = "auto",
        seed: int = 0,
        alpha: float | None = None,
        time_budget: float | None = None,
        max_steps: int | None = None,
        device: str | torch.device = "cpu",
        progress: bool = False,
    ) -> "EBVBank":
        """Generate a bank of ``n`` unit vectors in ``R^dim`` with small coherence.

        Args:
            n: Number of vectors (>= 1).
            dim: Dimension (>= 1).
            method: A name from ``ebv_cl.bank.generate.method_names()`` (``"auto"`` picks an exact algebraic
                construction when one applies, else optimises).
            seed: Seed of the generator; the same (n, dim, seed, method, budget in steps) gives the same bank.
            alpha: Target coherence; optimisation stops once it is reached.
            time_budget: Seconds the optimisation may run.
            max_steps: Steps the optimisation may run.
            device: ``"cpu"`` or a CUDA device for the optimisation.
            progress: Show a tqdm progress bar with the current coherence.

        Returns:
            The bank; its ``info`` records steps, seconds and the concrete method used.
        """
        from .generate import generate_vectors

        result = generate_vectors(
            n,
            dim,
            method=method,
            seed=seed,
            alpha=alpha,
            time_budget=time_budget,
            max_steps=max_steps,
            device=device,
            progress=progress,
        )
        bank = cls(result.vectors, seed=seed, method=result.method, alpha=alpha, info=result.info)
        return bank

    def check_compatible(self, *, n: int | None = None, dim: int | None = None, sha256: str | None = None) -> None:
        """Raise ``BankMismatchError`` unless this bank has the given size, dimension and checksum."""
        if n is not None and n != self.n:
            raise BankMismatchError(f"bank has n={self.n} vectors, expected n={n}")
        if dim is not None and dim != self.dim:
            raise BankMismatchError(f"bank has dim={self.dim}, expected dim={dim}")
        if sha256 is not None and sha256 != self.sha256():
            raise BankMismatchError("bank vectors differ from the ones this state was saved with (sha256 mismatch)")
