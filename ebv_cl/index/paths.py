"""Exact search paths of the ``flat`` index kind, in a registry so a YAML file can name one.

Every path answers ``search(queries, n, k) -> (scores, slots)`` over the first ``n`` rows of the fixed bank
(the allocated slots), keeps no state that changes with ``n``, and so is safe to call from several threads.

========  ======================================================================  =========================
path      how                                                                     exact
========  ======================================================================  =========================
int8      int8 scoring (exact int32 sums, oneDNN VNNI) + certified float64 re-rank  yes, proven (CPU)
fp32      float32 matmul (TF32/bf16 inputs allowed) + certified float64 re-rank   yes, proven (CPU, CUDA)
wht       Kerdock banks: fast Walsh-Hadamard scoring + certified re-rank          yes, proven
fft       code banks: all shifts of a sequence by one FFT or WHT (``walsh``) + re-rank  yes, proven (``structured``)
float64   brute force in float64 (the oracle; slow)                               yes, by definition
faiss     FAISS exhaustive inner product in float32 (GPU when faiss has one)      float32 ranking
========  ======================================================================  =========================

"Exact" is defined in ``rerank``: float64 inner products of the float32 unit vectors, lower slot first on ties.
``choose_path`` picks ``fft`` for code banks, ``wht`` for Kerdock banks, ``fp32`` on CUDA and ``int8`` on the CPU.
Path ``fft`` never forms the bank's rows (it fetches candidates with ``bank.rows``); the others take the bank's
float32 ``vectors`` (for a code bank, materialised by ``bank.vectors`` while that fits its limit).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch

from ..registry import Registry
from .certified import certified_search
from .rerank import exact_search
from .stages import KerdockStage, MatmulStage
from .structured import ShiftPath, is_code_bank

__all__ = [
    "SEARCH_PATHS", "search_paths", "choose_path", "matmul_path", "CertifiedPath", "Float64Path", "FaissPath",
    "needs_vectors",
]

SEARCH_PATHS: Registry[Any] = Registry("search path")

_INT8_MAX_DIM = (2**31 - 1) // (127 * 127)


class CertifiedPath:
    """Low-precision scoring by a stage, then the certified exact re-rank (``certified.certified_search``)."""

    exact = True

    def __init__(self, name: str, stage: Any, vectors: torch.Tensor) -> None:
        self.name, self.stage, self.vectors = name, stage, vectors
        norms = [float(vectors[i : i + 65536].double().norm(dim=1).max()) for i in range(0, vectors.shape[0], 65536)]
        self.vector_norm = max(norms, default=1.0) * (1 + 1e-12) + 1e-12

    @property
    def nbytes(self) -> int:
        """Extra bytes held beyond the bank vectors."""
        return int(self.stage.nbytes)

    def search(self, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact ``(scores, slots)`` of shape ``(q, k)`` over rows ``0 .. n-1``."""
        return certified_search(queries, self.vectors, self.stage, n=n, k=k, vector_norm=self.vector_norm)


class Float64Path:
    """Brute force in float64 (``rerank.exact_search``): the definition of exact, for tests and tiny banks."""

    exact = True
    nbytes = 0
    name = "float64"

    def __init__(self, vectors: torch.Tensor) -> None:
        self.vectors = vectors

    def search(self, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact ``(scores, slots)`` of shape ``(q, k)`` over rows ``0 .. n-1``."""
        return exact_search(self.vectors, queries, k, n=n)


_FAISS_LOCK = threading.Lock()


@contextmanager
def _faiss_blas_threshold(faiss: Any, rows: int, dim: int) -> Iterator[None]:
    """Let FAISS use its BLAS path for small batches too (it needs ``rows * dim >= threshold``, 128,000).

    Below that FAISS scans row by row, e.g. 2.5 s instead of 0.46 s for 256 queries at N = 10^6, d = 128. The
    threshold is process-global, so it is lowered under a lock and restored afterwards; single queries keep
    the scan, which is memory-bound either way.
    """
    cvar = getattr(faiss, "cvar", None)
    current = getattr(cvar, "distance_compute_blas_threshold", None)
    if current is None or rows < 8 or rows * dim >= current:
        yield
        return
    with _FAISS_LOCK:
        cvar.distance_compute_blas_threshold = rows * dim
        try:
            yield
        finally:
            cvar.distance_compute_blas_threshold = current


class FaissPath:
    """FAISS exhaustive inner-product search in float32 (``faiss.knn``, or ``knn_gpu`` when FAISS has GPUs).

    Its ranking is FAISS's float32 one: it can differ from the exact order where two scores are within about
    1e-6, and ties are not guaranteed to favour the lower slot.
    """

    exact = False
    nbytes = 0
    name = "faiss"

    def __init__(self, vectors: torch.Tensor) -> None:
        import faiss

        self._faiss = faiss
        self.vectors = vectors.detach().cpu().contiguous()
        self._numpy = self.vectors.numpy()
        self._gpu = faiss.get_num_gpus() > 0 and hasattr(faiss, "knn_gpu")
        self._resources = faiss.StandardGpuResources() if self._gpu else None

    def search(self, queries: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scores, slots)`` of shape ``(q, k)`` over rows ``0 .. n-1`` (float32 ranking)."""
        faiss = self._faiss
        xq = np.ascontiguousarray(queries.detach().cpu().numpy(), dtype=np.float32)
        xb = self._numpy[:n]
        if self._gpu:
            scores, slots = faiss.knn_gpu(self._resources, xq, xb, k, metric=faiss.METRIC_INNER_PRODUCT)
        else:
            with _faiss_blas_threshold(faiss, xq.shape[0], xq.shape[1]):
                scores, slots = faiss.knn(xq, xb, k, metric=faiss.METRIC_INNER_PRODUCT)
        return torch.from_numpy(scores), torch.from_numpy(slots)


def _kerdock_decoder(bank: Any) -> Any:
    from ..bank.generate.kerdock import KerdockDecoder

    return KerdockDecoder.from_bank_info(bank.n, bank.dim, bank.info)


@SEARCH_PATHS.register("int8")
def _int8(bank: Any, vectors: torch.Tensor, device: torch.device) -> CertifiedPath:
    return CertifiedPath("int8", MatmulStage(vectors, dtype="int8", device=device), vectors)


@SEARCH_PATHS.register("fp32")
def _fp32(bank: Any, vectors: torch.Tensor, device: torch.device) -> CertifiedPath:
    return CertifiedPath("fp32", MatmulStage(vectors, dtype="float32", device=device), vectors)


@SEARCH_PATHS.register("wht")
def _wht(bank: Any, vectors: torch.Tensor, device: torch.device) -> CertifiedPath:
    try:
        decoder = _kerdock_decoder(bank)
    except (ValueError, ImportError) as exc:
        raise ValueError(f"path 'wht' needs a bank made by method 'kerdock' (got method {bank.method!r}): {exc}") from None
    return CertifiedPath("wht", KerdockStage(decoder, vectors), vectors)


@SEARCH_PATHS.register("fft")
def _fft(bank: Any, vectors: torch.Tensor | None, device: torch.device) -> ShiftPath:
    return ShiftPath(bank, device)


@SEARCH_PATHS.register("float64")
def _float64(bank: Any, vectors: torch.Tensor, device: torch.device) -> Float64Path:
    return Float64Path(vectors)


@SEARCH_PATHS.register("faiss")
def _faiss(bank: Any, vectors: torch.Tensor, device: torch.device) -> FaissPath:
    return FaissPath(vectors)


def search_paths() -> list[str]:
    """The registered exact path names (``"auto"`` is accepted too)."""
    return SEARCH_PATHS.names()


def choose_path(bank: Any, device: torch.device) -> str:
    """The fastest exact path for ``bank`` on ``device``: ``fft`` (code banks), ``wht`` (Kerdock banks), ``fp32``
    (CUDA) or ``int8`` (CPU)."""
    if is_code_bank(bank):
        return "fft"
    info = getattr(bank, "info", None)
    if getattr(bank, "method", None) == "kerdock" and isinstance(info, dict) and "kerdock" in info:
        try:
            _kerdock_decoder(bank)
            return "wht"
        except (ValueError, ImportError):
            pass
    return matmul_path(device, bank.dim)


def needs_vectors(kind: str, path: str, bank: Any, device: torch.device) -> bool:
    """Whether the engine of ``kind``/``path`` takes the bank's dense vectors (all but path ``fft`` do)."""
    if kind != "flat":
        return True
    return (choose_path(bank, device) if path == "auto" else path) != "fft"


def matmul_path(device: torch.device, dim: int) -> str:
    """The fastest matmul-scored exact path on ``device``: ``int8`` on the CPU (when its int32 sums cannot
    overflow at ``dim``), else ``fp32``."""
    return "int8" if device.type == "cpu" and dim <= _INT8_MAX_DIM else "fp32"
