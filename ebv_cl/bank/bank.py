"""``EBVBank``: a fixed bank of N unit vectors in R^d with its metadata.

A bank is generated once (``EBVBank.generate``), saved (``save``) and loaded (``EBVBank.load``); every class
then takes one row through a ``SlotAllocator``. The vectors never change after creation.

Two kinds share this class: a *dense* bank stores its rows (``vectors``); a *code* bank (``bank.code`` is a
``SequenceCode``) stores only its formula and computes rows on demand with ``rows(slots)``. Its ``vectors`` are
materialised lazily, and only up to ``MAX_MATERIALISED_BYTES`` (1 GiB); larger code banks (10^6-10^7 rows)
raise ``BankTooLargeError`` there and are used through ``rows`` and the structured search paths.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import BankFileError, BankMismatchError, BankTooLargeError
from .io import FORMULA_VERSION, read_bank_file, read_bank_header, vectors_sha256, write_bank_file, write_formula_file
from .stats import BankStats, bank_statistics

if TYPE_CHECKING:
    from .codes import SequenceCode

__all__ = ["EBVBank", "MAX_MATERIALISED_BYTES"]

_UNIT_TOLERANCE = 1e-3
MAX_MATERIALISED_BYTES = 1 << 30


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
        self._vectors: torch.Tensor | None = torch.nn.functional.normalize(v, dim=1)
        self.code = None
        self.seed = seed
        self.method = method
        self.alpha = alpha
        self.info: dict[str, Any] = dict(info or {})
        self._stats: BankStats | None = None
        self._coherence: float | None = None

    @classmethod
    def from_code(
        cls,
        code: "SequenceCode",
        *,
        seed: int | None = None,
        method: str | None = None,
        alpha: float | None = None,
        info: dict[str, Any] | None = None,
    ) -> "EBVBank":
        """A code bank: rows defined by the formula ``code`` (a ``SequenceCode``), computed on demand."""
        from .codes import SequenceCode

        if not isinstance(code, SequenceCode):
            raise TypeError(f"code must be a SequenceCode, got {type(code).__name__}")
        bank = cls.__new__(cls)
        bank._vectors = None
        bank.code = code
        bank.seed = seed
        bank.method = method or code.family
        bank.alpha = alpha
        bank.info = dict(info or {})
        bank._stats = None
        bank._coherence = None
        return bank

    @property
    def vectors(self) -> torch.Tensor:
        """The ``(n, dim)`` float32 rows. Code banks materialise them once (cached), only up to 1 GiB.

        Raises:
            BankTooLargeError: for a code bank whose rows would take more than ``MAX_MATERIALISED_BYTES``.
        """
        if self._vectors is None:
            need = self.n * self.dim * 4
            if need > MAX_MATERIALISED_BYTES:
                raise BankTooLargeError(
                    f"this {self.code.family} code bank has n={self.n} rows of dim={self.dim}: materialising "
                    f"bank.vectors would take {need / 2**30:.1f} GiB (limit {MAX_MATERIALISED_BYTES / 2**30:.0f} GiB); "
                    f"use bank.rows(slots) or a structured index path instead"
                )
            self._vectors = self.code.rows(slice(None))
        return self._vectors

    @vectors.setter
    def vectors(self, value: torch.Tensor) -> None:
        self._vectors = value

    @property
    def n(self) -> int:
        """The number of vectors (the most classes the bank can hold)."""
        if self.code is not None:
            return self.code.n_rows
        return int(self._vectors.shape[0])

    @property
    def dim(self) -> int:
        """The dimension d of every vector."""
        if self.code is not None:
            return self.code.dim
        return int(self._vectors.shape[1])

    def rows(self, slots: Any) -> torch.Tensor:
        """Rows ``slots`` (int64 array/tensor ``(k,)`` or a slice) as a float32 ``(k, dim)`` CPU tensor.

        Works for dense and code banks; a code bank computes only the rows asked for.
        """
        if self.code is not None:
            return self.code.rows(slots)
        if isinstance(slots, slice):
            return self._vectors[slots]
        idx = torch.as_tensor(np.asarray(slots.cpu() if isinstance(slots, torch.Tensor) else slots), dtype=torch.int64)
        if idx.ndim != 1:
            raise ValueError(f"slots must be 1-D, got shape {tuple(idx.shape)}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.n):
            raise ValueError(f"slots must be in [0, {self.n}), got min {int(idx.min())} max {int(idx.max())}")
        return self._vectors.index_select(0, idx)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        coh = f", coherence={self._coherence:.4f}" if self._coherence is not None else ""
        return f"EBVBank(n={self.n}, dim={self.dim}, method={self.method!r}{coh})"

    def stats(self) -> BankStats:
        """Exact quality statistics (computed once, in blocks, then cached)."""
        if self._stats is None:
            if self.code is not None:
                from .codes import code_statistics

                self._stats = code_statistics(self.code)
            else:
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
        """The sha256 of the float32 vector bytes as stored in the bank file (code banks: of the formula)."""
        if self.code is not None:
            return self.code.sha256()
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
        """Atomically write the bank and its metadata to ``path`` (see ``ebv_cl.bank.io``).

        A code bank writes its formula (format version 2, a few kilobytes), never its rows.
        """
        if self.code is not None:
            meta = self.metadata()
            meta["coherence_exact"] = self.stats().coherence_exact
            return write_formula_file(path, self.code.formula(), meta,
                                      code_sha256=self.code.sha256(), sequences_sha256=self.code.sequences_sha256())
        return write_bank_file(path, self.vectors.numpy(), self.metadata())

    @classmethod
    def load(cls, path: str | os.PathLike, *, mmap: bool = False, verify: bool = True) -> "EBVBank":
        """Load a bank written by ``save``.

        Args:
            path: The bank file.
            mmap: Memory-map the vectors (read-only) instead of reading them into memory.
            verify: Check the sha256 of the vectors.

        Raises:
            BankFileError: if the file is missing, truncated, corrupt, tampered with or of another version, or a
                code bank's formula is invalid or does not reproduce the recorded sequences.
        """
        header, _ = read_bank_header(path)
        if header.get("format_version") == FORMULA_VERSION:
            return cls._load_code(path, header, verify=verify)
        vectors, header = read_bank_file(path, mmap=mmap, verify=verify)
        bank = cls.__new__(cls)
        bank.code = None
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
    def _load_code(cls, path: str | os.PathLike, header: dict[str, Any], *, verify: bool) -> "EBVBank":
        from .codes import SequenceCode
        from .io import read_formula_file

        header = read_formula_file(path)
        try:
            code = SequenceCode.from_formula(header["code"])
        except (ValueError, TypeError) as exc:
            raise BankFileError(f"{str(path)!r} holds an invalid code formula: {exc}") from None
        if code.sha256() != header["code_sha256"]:
            raise BankFileError(f"{str(path)!r}: the checksum of its code formula does not match")
        if (header["n"], header["dim"]) != (code.n_rows, code.dim):
            raise BankFileError(f"{str(path)!r}: header n={header['n']}, dim={header['dim']} disagree with its formula "
                                f"(n={code.n_rows}, dim={code.dim})")
        if verify and code.sequences_sha256() != header["sequences_sha256"]:
            raise BankFileError(
                f"{str(path)!r}: the formula does not reproduce the sequences it was saved with (sha256 mismatch); "
                f"the file was altered or written by an incompatible ebv-cl"
            )
        bank = cls.from_code(code, seed=header.get("seed"), method=header.get("method"), alpha=header.get("alpha"),
                             info=header.get("info"))
        if header.get("coherence_exact", True):
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
        if result.code is not None:
            return cls.from_code(result.code, seed=seed, method=result.method, alpha=alpha, info=result.info)
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
