"""Boundary checks shared by every public function that takes embeddings, labels or counts.

One helper per contract, so each public function converts dtype, device and contiguity in one place and
raises the same clear ``TypeError``/``ValueError`` (naming the argument, the bad value and what was expected).
"""

from __future__ import annotations

import numbers
import os
from typing import Any, Hashable

import numpy as np
import torch

__all__ = ["as_embeddings", "check_positive_int", "normalize_label", "check_dense_bank_size", "FORMULA_BANK_METHODS"]

# Bank generation methods whose banks are stored as a formula (a few kilobytes whatever n), not as n x dim rows;
# ``check_dense_bank_size`` lets them through. A method that stores its bank that way adds its name here.
FORMULA_BANK_METHODS: set[str] = {"gold", "kasami"}


def _physical_memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 2**40


def check_dense_bank_size(n: int, dim: int, *, method: str = "auto", name: str = "n/dim",
                          limit_bytes: int | None = None) -> None:
    """Refuse a bank whose rows would not fit in memory, before anything is allocated.

    Args:
        n: Vectors in the bank.
        dim: Their dimension.
        method: The generation method (``auto``: the one it would choose); methods in ``FORMULA_BANK_METHODS``
            store no rows and are not checked.
        name: The argument(s) named in the error.
        limit_bytes: The most the float32 rows may take (default: the machine's physical memory).

    Raises:
        ValueError: naming ``n``, ``dim``, the bytes the rows need and the limit.
    """
    shown = repr(method)
    if method == "auto":
        from .bank.generate.methods import choose_method  # lazy: the bank package imports this module

        method = choose_method(int(n), int(dim))
        shown = f"{method!r} (what 'auto' picks here)"
    if method in FORMULA_BANK_METHODS:
        return
    need = int(n) * int(dim) * 4
    limit = _physical_memory_bytes() if limit_bytes is None else int(limit_bytes)
    if need > limit:
        raise ValueError(
            f"{name} = {n} x {dim}: a bank of method {shown} stores its rows densely and would need {need:,} bytes "
            f"({need / 2**30:.1f} GiB) for them alone, more than the {limit:,} bytes ({limit / 2**30:.1f} GiB) of "
            "memory here; use fewer vectors or a smaller dim"
        )


def _describe(x: Any) -> str:
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return f"{type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__}"


def as_embeddings(
    x: Any,
    *,
    dim: int | None,
    name: str = "embeddings",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    allow_zero: bool = False,
) -> torch.Tensor:
    """Check and convert a batch of embeddings to a contiguous ``(n, dim)`` floating tensor.

    Args:
        x: A ``torch.Tensor`` or ``numpy.ndarray`` of shape ``(n, dim)`` (or ``(dim,)`` for one embedding)
            with a floating dtype.
        dim: The expected second dimension, or ``None`` to accept any.
        name: The argument name used in error messages.
        dtype: The dtype of the returned tensor.
        device: The device of the returned tensor (``None`` keeps the input's device).
        allow_zero: Whether all-zero rows are accepted (cosine scores need a non-zero norm).

    Returns:
        A contiguous tensor of shape ``(n, dim)`` and dtype ``dtype``.

    Raises:
        TypeError: if ``x`` is not a tensor/array or not of a floating dtype.
        ValueError: on a wrong shape, NaN or infinite values, or zero-norm rows.
    """
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{name} must have a floating dtype (float16/32/64), got {_describe(x)}")
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray of shape (n, dim), got {_describe(x)}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"{name} must have a floating dtype (float16/bfloat16/32/64), got {_describe(x)}")
    if x.ndim == 1:
        x = x.unsqueeze(0)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n, {dim if dim is not None else 'dim'}), got {_describe(x)}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}), got {_describe(x)}: dimension {x.shape[1]} != {dim}")
    x = x.to(device=device if device is not None else x.device, dtype=dtype).contiguous()
    finite = torch.isfinite(x).all(dim=1)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0, 0])
        raise ValueError(f"{name} must be finite, but row {bad} contains NaN or inf")
    if not allow_zero and x.shape[0] > 0:
        zero = (x == 0).all(dim=1)
        if bool(zero.any()):
            bad = int(zero.nonzero()[0, 0])
            raise ValueError(f"{name} row {bad} has zero norm; cosine scores need non-zero embeddings")
    return x


def check_positive_int(value: Any, *, name: str, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` after checking ``1 <= value <= maximum``.

    Raises:
        TypeError: if ``value`` is not an integer (``bool`` is rejected).
        ValueError: if it is out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def normalize_label(label: Any, *, name: str = "label") -> Hashable:
    """Return a class label as a plain ``int`` or ``str``.

    NumPy integers and 0-d integer tensors become ``int``; ``bool``, floats and other types are rejected
    because they would silently alias (``1.0 == 1 == True``).

    Raises:
        TypeError: if the label is not an integer or a string.
    """
    if isinstance(label, torch.Tensor):
        if label.ndim != 0 or label.dtype.is_floating_point or label.dtype == torch.bool:
            raise TypeError(f"{name} must be an int or str, got a tensor of shape {tuple(label.shape)}, {label.dtype}")
        return int(label.item())
    if isinstance(label, str):
        return str(label)  # numpy.str_ -> str, so state dicts load with torch.load(weights_only=True)
    if isinstance(label, bool) or not isinstance(label, numbers.Integral):
        raise TypeError(f"{name} must be an int or str, got {label!r} ({type(label).__name__})")
    return int(label)
