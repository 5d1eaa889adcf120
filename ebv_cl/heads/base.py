"""``ClassifierHead``: the interface every classifier head shares, and its label bookkeeping.

A head maps backbone features ``(B, in_features)`` to logits ``(B, num_classes)``. Classes arrive over time
through ``add_classes``; each label takes the next output column in ARRIVAL order (the first label ever added
is column 0) and keeps it for good, so logits computed before a class was added stay valid afterwards. The
label list travels in the module's extra state, so ``state_dict()``/``load_state_dict()`` round-trip a head
with its classes, also into a freshly built head of the same configuration.

Heads that grow a ``Parameter`` when classes arrive (``fc``, ``tau_norm``, ``angular``) replace it by a larger
one; an optimizer built earlier still holds the old tensor. Pass ``optimizer=`` to ``add_classes`` to swap the
new tensor into the optimizer (its per-parameter state is kept for the old rows and zero for the new rows),
or rebuild the optimizer. Heads with a fixed set of parameters (``ebv``, ``hadamard``, ``ncm``) never do this.
``load_state_dict`` may grow such parameters too: build the optimizer after loading.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Hashable, Iterable, Sequence

import torch
from torch import nn

from ..errors import BankMismatchError, NotBuiltError
from ..slots import SlotAllocator
from ..validation import check_positive_int

__all__ = ["ClassifierHead", "UNBOUNDED_CLASSES"]

UNBOUNDED_CLASSES = 2**62
"""Capacity used by heads whose class count is not bounded by a bank."""

_EXTRA_FORMAT = 1
_LUT_MAX = 2**20


def _pad_state(value: Any, old: torch.Tensor, new: torch.Tensor) -> Any:
    """Grow one optimizer-state entry that has the parameter's shape; other entries are kept."""
    if not isinstance(value, torch.Tensor) or value.shape != old.shape or value.ndim == 0:
        return value
    grown = torch.zeros(new.shape, dtype=value.dtype, device=value.device)
    grown[: value.shape[0]] = value
    return grown


class ClassifierHead(nn.Module):
    """Base class of the classifier heads: arrival-ordered columns, boundary checks, state round trip.

    Subclasses implement ``_grow(old, new)`` (make room for columns ``old .. new-1``) and ``_logits(x)``
    (``(B, in_features)`` float -> ``(B, num_classes)``), and may extend ``_config()`` with the settings a
    state dict must agree on.

    Args:
        in_features: The size of the backbone features this head takes.
        capacity: The most classes the head can hold (``BankFullError`` past it).
        check_finite: Check every ``forward`` input for NaN/inf (one extra pass over the batch).
    """

    kind = "base"

    def __init__(self, in_features: int, *, capacity: int = UNBOUNDED_CLASSES, check_finite: bool = False) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, name="in_features")
        self.check_finite = bool(check_finite)
        self.slots = SlotAllocator(capacity)
        self._add_lock = threading.RLock()  # add_classes is atomic under concurrency (allocate + grow)

    # ----------------------------------------------------------------------------------------------- classes
    @property
    def classes(self) -> list[Hashable]:
        """The class labels in output-column order (arrival order)."""
        return self.slots.labels

    @property
    def num_classes(self) -> int:
        """How many classes (output columns) the head has."""
        return len(self.slots)

    @property
    def capacity(self) -> int:
        """The most classes the head can hold."""
        return self.slots.capacity

    def add_classes(self, labels: Iterable[Any], *, optimizer: torch.optim.Optimizer | None = None) -> list[int]:
        """Give each new label the next column and return the columns of all ``labels`` (in order).

        Known labels keep their column; duplicates get one column. Either every new label is added or none.

        Args:
            labels: Class labels (``int``/``str``; NumPy ints and 0-d integer tensors are accepted).
            optimizer: An optimizer holding this head's parameters; if a parameter is replaced by a larger
                one, the new tensor is swapped into it and its state grown with zeros for the new rows.

        Returns:
            The column of every label in ``labels``.

        Raises:
            TypeError: if a label is not an ``int`` or ``str``.
            BankFullError: if the new labels do not fit in the head's capacity.
            ValueError: if ``optimizer`` does not hold every trainable parameter of the head.
        """
        if optimizer is not None:
            held = {id(p) for group in optimizer.param_groups for p in group["params"]}
            if any(id(p) not in held for p in self.parameters() if p.requires_grad):
                raise ValueError("optimizer does not hold this head's parameters; build it from head.parameters()")
        with self._add_lock:  # one thread at a time grows the parameters to the allocator's size
            before = self.num_classes
            columns = self.slots.allocate(labels)
            if self.num_classes > before:
                swaps = self._grow(before, self.num_classes) or []
                if optimizer is not None:
                    for old, new in swaps:
                        self._swap_in_optimizer(optimizer, old, new)
        return columns

    def columns_of(self, labels: Iterable[Any] | torch.Tensor) -> torch.Tensor:
        """The output columns of known labels as a CPU ``int64`` tensor of shape ``(len(labels),)``.

        An integer tensor of labels is looked up in one vectorised step when every class label is a small
        non-negative ``int`` (the usual dataset targets); other labels go through the allocator one by one.

        Raises:
            UnknownLabelError: if a label was never added.
        """
        if isinstance(labels, torch.Tensor) and not labels.dtype.is_floating_point and labels.dtype != torch.bool:
            lut = self._label_table()
            flat = labels.reshape(-1).cpu()
            if lut is not None and flat.numel() and int(flat.min()) >= 0 and int(flat.max()) < lut.numel():
                columns = lut[flat]
                if bool((columns >= 0).all()):
                    return columns
        return self.slots.slots_of(labels)

    def _label_table(self) -> torch.Tensor | None:
        """A dense label -> column table (``-1`` = unknown) when all labels are ints in ``[0, 2**20)``."""
        key = (id(self.slots), self.slots.version)
        cached = getattr(self, "_lut_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        table = None
        labels = self.slots.labels if len(self.slots) <= _LUT_MAX else []  # more labels cannot all be < _LUT_MAX
        if labels and all(isinstance(v, int) and 0 <= v < _LUT_MAX for v in labels):
            table = torch.full((max(labels) + 1,), -1, dtype=torch.int64)
            table[torch.tensor(labels)] = torch.arange(len(labels))
        self._lut_cache = (key, table)
        return table

    def labels_of(self, columns: Sequence[int] | torch.Tensor) -> list[Hashable]:
        """The labels of output columns, in the order given (``-1`` maps to ``None``)."""
        return self.slots.labels_of(columns)

    # -------------------------------------------------------------------------------------------- prediction
    def _check_features(self, features: Any) -> torch.Tensor:
        if not isinstance(features, torch.Tensor):
            raise TypeError(
                f"features must be a torch.Tensor of shape (B, {self.in_features}), got {type(features).__name__}"
            )
        if features.ndim != 2 or features.shape[1] != self.in_features:
            raise ValueError(
                f"features must have shape (B, {self.in_features}), got {tuple(features.shape)}"
            )
        if not features.dtype.is_floating_point:
            raise TypeError(f"features must have a floating dtype, got {features.dtype}")
        if self.check_finite and not bool(torch.isfinite(features).all()):
            raise ValueError("features contain NaN or inf")
        if self.num_classes == 0:
            raise NotBuiltError(f"{type(self).__name__} has no classes yet; call add_classes(labels) first")
        return features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` for features ``(B, in_features)``; column ``j`` is ``classes[j]``.

        Raises:
            TypeError: if ``features`` is not a floating tensor.
            ValueError: on a wrong shape (or non-finite values when ``check_finite`` is set).
            NotBuiltError: if the head has no classes yet.
        """
        return self._logits(self._check_features(features))

    def prediction_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The logits used for prediction (``forward`` unless a head calibrates them, like ``tau_norm``)."""
        return self(features)

    @torch.no_grad()
    def predict_columns(self, features: torch.Tensor) -> torch.Tensor:
        """The predicted output column (argmax of ``prediction_logits``) per row, ``int64`` of shape ``(B,)``.

        Column ``j`` is ``classes[j]``; ``predict`` gives the labels themselves.
        """
        return self.prediction_logits(features).argmax(dim=1)

    def predict(self, features: torch.Tensor) -> list[Hashable]:
        """The predicted class label per row (as scikit-learn's ``predict``), a list of length ``B``."""
        return self.labels_of(self.predict_columns(features))

    def training_loss(self, features: torch.Tensor, target_columns: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of ``forward(features)`` against ``target_columns`` (``int64``, shape ``(B,)``).

        Raises:
            ValueError: if ``target_columns`` is not a ``(B,)`` integer tensor of columns of this head.
        """
        targets = self._check_targets(target_columns, self._check_features(features).shape[0])
        return nn.functional.cross_entropy(self(features), targets)

    def loss_from_logits(self, logits: torch.Tensor, target_columns: torch.Tensor) -> torch.Tensor:
        """The training loss computed from training logits ``forward(features)`` already formed.

        For a caller that needs the full logits anyway (DER's stored logits, LwF's distillation): it equals
        ``training_loss(features, target_columns)`` when ``logits == forward(features)``.

        Args:
            logits: ``(B, num_classes)`` float logits, column ``j`` = ``classes[j]``.
            target_columns: ``(B,)`` int64 columns of the true classes.

        Raises:
            ValueError: if ``logits`` is not ``(B, num_classes)`` or the targets are not ``(B,)`` columns.
        """
        targets = self._check_targets(target_columns, self._check_logits(logits).shape[0])
        return nn.functional.cross_entropy(logits, targets)

    def _check_logits(self, logits: Any) -> torch.Tensor:
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[1] != self.num_classes:
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"logits must have shape (B, {self.num_classes}) (one column per class), got {got}")
        return logits

    def _check_targets(self, target: Any, batch: int) -> torch.Tensor:
        ok = isinstance(target, torch.Tensor) and target.dtype in (torch.int64, torch.int32)
        if not ok or target.shape != (batch,):
            got = f"{tuple(target.shape)} {target.dtype}" if isinstance(target, torch.Tensor) else type(target).__name__
            raise ValueError(f"target_columns must be an int64 tensor of shape ({batch},), got {got}")
        return target.long()

    @property
    def trainable_head_params(self) -> int:
        """The number of trainable parameters of the head."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ------------------------------------------------------------------------------------- subclass hooks
    def _grow(self, old: int, new: int) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Make room for columns ``old .. new-1``; return the (old, new) parameters replaced, if any."""
        return None

    def _logits(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _config(self) -> dict[str, Any]:
        """Settings that a loaded state dict must agree on (JSON-ready)."""
        return {"kind": self.kind, "in_features": self.in_features, "capacity": self.capacity}

    # ----------------------------------------------------------------------------------------- parameters
    def _replace_parameter(self, name: str, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        old = getattr(self, name)
        new = nn.Parameter(value, requires_grad=old.requires_grad)
        setattr(self, name, new)
        return old, new

    @staticmethod
    def _swap_in_optimizer(optimizer: torch.optim.Optimizer, old: torch.Tensor, new: torch.Tensor) -> None:
        found = False
        for group in optimizer.param_groups:
            for i, p in enumerate(group["params"]):
                if p is old:
                    group["params"][i] = new
                    found = True
        if not found:
            raise ValueError("optimizer does not hold this head's parameters; build it from head.parameters()")
        if old in optimizer.state:
            state = optimizer.state.pop(old)
            optimizer.state[new] = {k: _pad_state(v, old, new) for k, v in state.items()}

    @staticmethod
    def _uniform_rows(rows: int, cols: int, fan_in: int, like: torch.Tensor) -> torch.Tensor:
        """New rows initialised as ``nn.Linear`` does: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        bound = 1.0 / math.sqrt(fan_in)
        shape = (rows, cols) if cols else (rows,)
        return torch.empty(shape, dtype=like.dtype, device=like.device).uniform_(-bound, bound)

    # ------------------------------------------------------------------------------------------ state dict
    def get_extra_state(self) -> dict[str, Any]:
        return {"format": _EXTRA_FORMAT, "config": self._config(), "labels": self.slots.labels}

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, dict) or state.get("format") != _EXTRA_FORMAT or "labels" not in state:
            raise BankMismatchError(
                f"{type(self).__name__} extra state is malformed or of another format: {state!r:.200}"
            )
        mine, theirs = self._config(), state.get("config", {})
        diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
        if diff:
            detail = ", ".join(f"{k}: saved {a!r}, this head {b!r}" for k, (a, b) in diff.items())
            raise BankMismatchError(f"state dict was saved from a differently configured head ({detail})")
        labels = list(state["labels"])
        if labels[: self.num_classes] != self.classes:
            # A fresh (or differently grown) head: start from no classes and grow to the saved ones. The allocator
            # is emptied in place, so a BankIndex built on head.slots follows the loaded labels.
            self.slots.load_state_dict({"capacity": self.capacity, "labels": []})
            self._lut_cache = None
            self._grow(0, 0)
        before = self.num_classes
        self.slots.allocate(labels)
        if self.num_classes > before:
            self._grow(before, self.num_classes)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        key = prefix + "_extra_state"
        if key in state_dict:
            # Resize first, so the parameter copies below find tensors of the saved shapes.
            self.set_extra_state(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------------------ pickling and deepcopy
    def __getstate__(self) -> dict[str, Any]:
        # Copies get their own allocator (Avalanche deep-copies models); the copy must not share it.
        state = dict(self.__dict__)
        state["slots"] = self.slots.state_dict()
        state.pop("_lut_cache", None)
        state.pop("_add_lock", None)
        if "_index" in state:
            state["_index"] = None  # a search index holds locks and caches: rebuilt on first use
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        slots_state = state.pop("slots")
        super().__setstate__(state)
        self.slots = SlotAllocator(slots_state["capacity"])
        self.slots.load_state_dict(slots_state)
        self._add_lock = threading.RLock()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, num_classes={self.num_classes}"
