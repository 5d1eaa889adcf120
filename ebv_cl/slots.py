"""The class-label to bank-slot allocator.

A bank holds ``capacity`` fixed vectors; each class label that arrives takes the next unused slot (slot ``i`` is
row ``i`` of the bank), in arrival order. Allocating a known label returns its slot; allocating past capacity
raises ``BankFullError`` before anything changes, so a full bank is never silently reused. The allocator is
thread-safe: ``allocate`` is atomic and ``version`` increases with every change, so an index can stay in step.
The mapping lives in NumPy arrays (``slot_table.py``): nothing for labels ``0, 1, 2, ...`` arriving in order,
about 12 bytes per label for small ints in any order, 20 for arbitrary 64-bit ids; arrays of labels are
allocated and looked up in vectorised steps.
"""

from __future__ import annotations

import threading
from typing import Any, Hashable, Iterable, NamedTuple, Sequence

import numpy as np
import torch

from .errors import BankFullError, BankMismatchError, UnknownLabelError
from .slot_table import INT64_MAX, INT64_MIN, LabelSnapshot, SlotTable, increasing
from .validation import check_positive_int, normalize_label

__all__ = ["SlotAllocator", "LabelSnapshot"]

_STATE_VERSION = 2  # 2: int labels as one int64 tensor; 1 (still loaded): every label in one list


class _Labels(NamedTuple):
    """Normalised labels: ``int64`` ones at ``int_pos`` (``None``: at every position), the others at ``other_pos``."""

    count: int
    int_pos: np.ndarray | None
    int_values: np.ndarray
    other_pos: list[int]
    other_values: list[Hashable]


def _as_int64(values: np.ndarray) -> np.ndarray | None:
    """A 1-d integer array as ``int64``, or ``None`` if it is not one (or holds values beyond ``int64``)."""
    if values.ndim != 1 or values.dtype.kind not in "iu":
        return None
    if values.dtype == np.uint64 and values.size and int(values.max()) > INT64_MAX:
        return None
    return values.astype(np.int64, copy=False)


def _split(labels: Iterable[Any], *, name: str, flatten: bool) -> _Labels:
    """Normalise labels (ranges, integer arrays and tensors in one step); ``flatten``: any tensor shape."""
    values = None
    if isinstance(labels, range) and INT64_MIN <= min(labels.start, labels.stop) \
            and max(labels.start, labels.stop) <= INT64_MAX:
        values = np.arange(labels.start, labels.stop, labels.step, dtype=np.int64)
    elif isinstance(labels, torch.Tensor):
        if flatten:
            labels = labels.reshape(-1)
        if labels.ndim == 1 and not labels.dtype.is_floating_point and not labels.dtype.is_complex \
                and labels.dtype != torch.bool:
            values = labels.detach().cpu().numpy().astype(np.int64, copy=False)
        else:
            labels = labels.tolist() if flatten else labels
    elif isinstance(labels, np.ndarray):
        values = _as_int64(labels.reshape(-1) if flatten else labels)
    if values is not None:
        return _Labels(values.size, None, values, [], [])
    normalized = [normalize_label(label, name=name) for label in labels]
    if all(type(v) is int for v in normalized):
        try:
            return _Labels(len(normalized), None, np.array(normalized, dtype=np.int64), [], [])
        except OverflowError:
            pass
    int_pos, int_values, other_pos, other_values = [], [], [], []
    for i, v in enumerate(normalized):
        if type(v) is int and INT64_MIN <= v <= INT64_MAX:
            int_pos.append(i)
            int_values.append(v)
        else:
            other_pos.append(i)
            other_values.append(v)
    return _Labels(len(normalized), np.array(int_pos, dtype=np.int64), np.array(int_values, dtype=np.int64),
                   other_pos, other_values)


def _duplicated(values: np.ndarray) -> bool:
    ordered = np.sort(values)
    return bool((ordered[1:] == ordered[:-1]).any())


class SlotAllocator:
    """Maps class labels (``int`` or ``str``) to bank slots ``0 .. capacity-1`` in arrival order.

    Args:
        capacity: The number of vectors in the bank, i.e. the most classes that can be allocated.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = check_positive_int(capacity, name="capacity")
        self._table = SlotTable()
        self._lock = threading.RLock()
        self.version = 0

    def __len__(self) -> int:
        return self._table.n

    def __contains__(self, label: object) -> bool:
        try:
            key = normalize_label(label)
        except TypeError:
            return False
        with self._lock:
            return self._table.lookup_one(key) >= 0

    def __repr__(self) -> str:
        return f"SlotAllocator(capacity={self.capacity}, allocated={len(self)})"

    def __getstate__(self) -> dict[str, Any]:
        # A lock can be neither pickled nor deep-copied (Avalanche deep-copies models): drop it, rebuild it. The
        # table is copied under the lock, so a copy never sees half of a concurrent allocate.
        with self._lock:
            return {"capacity": self.capacity, "version": self.version, "slots": self.state_dict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.capacity, self.version = state["capacity"], state.get("version", 0)
        self._table, self._lock = SlotTable(), threading.RLock()
        if "_labels" in state:  # pickled before the table existed: a list of labels and a dict
            self._table = self._built({"capacity": self.capacity, "labels": state["_labels"]})
        else:
            self._table = self._built(state["slots"])

    @property
    def labels(self) -> list[Hashable]:
        """The allocated labels in slot order (a copy)."""
        return self.snapshot().tolist()

    @property
    def free(self) -> int:
        """How many slots are still unused."""
        return self.capacity - len(self)

    @property
    def nbytes(self) -> int:
        """Bytes the label <-> slot arrays hold (``str`` labels and labels beyond ``int64`` not counted)."""
        return self._table.nbytes

    def snapshot(self) -> LabelSnapshot:
        """The labels of the slots allocated now, unaffected by later allocations (taken without copying)."""
        with self._lock:
            return LabelSnapshot(self._table)

    def allocate(self, labels: Iterable[Any], *, as_tensor: bool = False) -> list[int] | torch.Tensor:
        """Give every new label the next free slot and return the slots of all ``labels`` in order.

        Labels already allocated keep their slot; duplicates within ``labels`` get one slot. Either every new
        label is allocated or none is. Ranges and 1-d integer arrays or tensors are handled in vectorised steps.

        Args:
            labels: Class labels (``int``/``str``; NumPy ints and 0-d integer tensors are accepted).
            as_tensor: Return an ``int64`` tensor instead of a list (cheaper for millions of labels).

        Raises:
            TypeError: if a label is not an ``int`` or ``str``.
            BankFullError: if the new labels do not fit in the free slots.
        """
        if isinstance(labels, (str, bytes)):
            raise TypeError(f"labels must be an iterable of labels, got the string {labels!r}; wrap it in a list")
        split = _split(labels, name="labels[]", flatten=False)
        with self._lock:
            slots = self._allocate(split)
        return torch.from_numpy(slots) if as_tensor else slots.tolist()

    def _allocate(self, split: _Labels) -> np.ndarray:
        """Slots of ``split`` (``int64``), allocating the new labels; the caller holds the lock."""
        table, start = self._table, len(self)
        values = split.int_values
        if split.int_pos is None and table.ident == start and values.size and values[0] == start \
                and values[-1] == start + values.size - 1 and increasing(values):
            if values.size > self.free:  # labels start, start+1, ... in order: they extend the identity prefix
                raise BankFullError(self.capacity, start, values.size)
            table.insert(values, values, [], np.zeros(0, dtype=np.int64))
            self.version += 1
            return values.copy()
        int_slots = table.lookup_ints(values)
        gaps = int_slots < 0
        missing = None if gaps.all() else np.flatnonzero(gaps)  # positions of unknown ints (None: all)
        new, inverse = values if missing is None else values[missing], None
        if not increasing(new) and _duplicated(new):
            new, first, inverse = np.unique(new, return_index=True, return_inverse=True)
            missing = first if missing is None else missing[first]  # the first position of each new value
        new_others: dict[Hashable, int] = {}
        other_slots = [table.other_slot.get(v, -1) for v in split.other_values]
        for pos, v, slot in zip(split.other_pos, split.other_values, other_slots):
            if slot < 0 and v not in new_others:
                new_others[v] = pos
        m = new.size + len(new_others)
        if m > self.free:
            raise BankFullError(self.capacity, start, m)
        if not m:
            return self._merge(split, int_slots, other_slots)
        if new_others or inverse is not None:  # order the new labels by first position
            first_pos = np.arange(new.size) if missing is None else missing
            first_pos = first_pos if split.int_pos is None else split.int_pos[first_pos]
            first_pos = np.concatenate([first_pos, np.fromiter(new_others.values(), np.int64, len(new_others))])
            assigned = np.empty(m, dtype=np.int64)
            assigned[np.argsort(first_pos, kind="stable")] = np.arange(start, start + m)
        else:  # distinct new ints, already in order of position
            assigned = np.arange(start, start + m, dtype=np.int64)
        new_slots, new_other_slots = assigned[: new.size], assigned[new.size :]
        table.insert(new, new_slots, list(new_others), new_other_slots)
        self.version += 1
        int_slots[gaps] = new_slots if inverse is None else new_slots[inverse]
        if new_others:
            known = table.other_slot
            other_slots = [s if s >= 0 else known[v] for v, s in zip(split.other_values, other_slots)]
        return self._merge(split, int_slots, other_slots)

    @staticmethod
    def _merge(split: _Labels, int_slots: np.ndarray, other_slots: list[int]) -> np.ndarray:
        if split.int_pos is None:
            return int_slots
        out = np.empty(split.count, dtype=np.int64)
        out[split.int_pos] = int_slots
        out[split.other_pos] = other_slots
        return out

    def slot_of(self, label: Any) -> int:
        """The slot of one allocated label.

        Raises:
            UnknownLabelError: if the label was never allocated.
        """
        key = normalize_label(label)
        with self._lock:
            slot = self._table.lookup_one(key)
        if slot < 0:
            raise UnknownLabelError(key, len(self))
        return slot

    def slots_of(self, labels: Iterable[Any]) -> torch.Tensor:
        """The slots of allocated labels as an ``int64`` tensor of shape ``(len(labels),)``.

        A tensor or array of labels is flattened; integer ones are looked up in one vectorised step.

        Raises:
            TypeError: if a label is not an ``int`` or ``str``.
            UnknownLabelError: if any label was never allocated.
        """
        split = _split(labels, name="label", flatten=True)
        with self._lock:
            int_slots = self._table.lookup_ints(split.int_values)
            other_slots = [self._table.other_slot.get(v, -1) for v in split.other_values]
        slots = self._merge(split, int_slots, other_slots)
        unknown = np.flatnonzero(slots < 0)
        if unknown.size:
            i = int(unknown[0])
            if split.int_pos is None:
                label = int(split.int_values[i])
            else:
                label = split.other_values[split.other_pos.index(i)] if i in split.other_pos \
                    else int(split.int_values[int(np.searchsorted(split.int_pos, i))])
            raise UnknownLabelError(label, len(self))
        return torch.from_numpy(slots)

    def label_of(self, slot: int) -> Hashable:
        """The label held by an allocated slot.

        Raises:
            IndexError: if ``slot`` is not allocated.
        """
        with self._lock:
            if not 0 <= int(slot) < len(self):
                raise IndexError(f"slot {slot} is not allocated; allocated slots are 0..{len(self) - 1}")
            return self._table.labels_of(np.array([int(slot)], dtype=np.int64))[0]

    def labels_of(self, slots: Sequence[int] | torch.Tensor) -> list[Hashable]:
        """The labels of allocated slots, in the order given; ``-1`` maps to ``None``.

        Raises:
            IndexError: if a slot (other than ``-1``) is not allocated.
        """
        if isinstance(slots, torch.Tensor):
            slots = slots.detach().reshape(-1).cpu().numpy()
        array = _as_int64(slots) if isinstance(slots, np.ndarray) else None
        if array is None:
            array = np.array([int(s) for s in slots], dtype=np.int64)
        with self._lock:
            n = len(self)
            bad = np.flatnonzero((array < -1) | (array >= n))
            if bad.size:
                slot = int(array[bad[0]])
                raise IndexError(f"slot {slot} is not allocated; allocated slots are 0..{n - 1}")
            return self._table.labels_of(array)

    def state_dict(self) -> dict[str, Any]:
        """A picklable snapshot: capacity and the labels in slot order.

        ``int64`` labels after the leading ``0, 1, ..., identity_prefix - 1`` are one ``int64`` tensor
        (``int_labels``, one entry per slot, 0 at slots of other labels); ``str`` labels and larger ints are
        listed with their slots. Loads with ``torch.load(..., weights_only=True)``.
        """
        with self._lock:
            table = self._table
            stored = table.slot_label[: table.n - table.ident].copy()
            other_slots = table.other_slots[: table.other_count].tolist()
            other_labels = list(table.other_labels)
            return {
                "format": _STATE_VERSION,
                "capacity": self.capacity,
                "count": table.n,
                "identity_prefix": table.ident,
                "int_labels": torch.from_numpy(stored),
                "other_slots": other_slots,
                "other_labels": other_labels,
            }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot taken by ``state_dict`` (this format or the format-1 list of labels).

        Raises:
            BankMismatchError: if the snapshot is for a bank of another capacity or is malformed.
        """
        table = self._built(state)
        with self._lock:
            self._table = table
            self.version += 1

    def _built(self, state: Any) -> SlotTable:
        """A table holding the labels of a state dict (validated; ``self`` is not changed)."""
        if not isinstance(state, dict) or "capacity" not in state:
            raise BankMismatchError(f"state must be a dict with keys 'capacity' and 'labels', got {state!r:.200}")
        form = state.get("format", 1)
        keys = {1: {"labels"}, 2: {"count", "identity_prefix", "int_labels", "other_slots", "other_labels"}}
        if form not in keys:
            raise BankMismatchError(f"slot state format {form!r} is not supported (expected 1 or {_STATE_VERSION})")
        if keys[form] - set(state):
            raise BankMismatchError(f"state must be a dict with keys 'capacity' and {sorted(keys[form])}, "
                                    f"got {state!r:.200}")
        if int(state["capacity"]) != self.capacity:
            raise BankMismatchError(
                f"slot state is for a bank of capacity {state['capacity']}, this allocator has capacity {self.capacity}"
            )
        if form == 1:  # a label that is not an int or str raises TypeError, as it always did
            split = _split(state["labels"], name="state['labels'][]", flatten=False)
        else:
            try:
                split = self._state_labels(state)
            except (TypeError, ValueError, IndexError, AttributeError) as exc:
                raise BankMismatchError(f"slot state is malformed: {exc}") from None
        if split.count > self.capacity:
            raise BankMismatchError("slot state has duplicate labels or more labels than the capacity")
        fresh = SlotAllocator(self.capacity)
        fresh._allocate(split)
        if len(fresh) != split.count:
            raise BankMismatchError("slot state has duplicate labels or more labels than the capacity")
        return fresh._table

    @staticmethod
    def _state_labels(state: dict[str, Any]) -> _Labels:
        """The labels of a format-2 state, in slot order."""
        count, ident = int(state["count"]), int(state["identity_prefix"])
        stored = state["int_labels"]
        stored = stored.numpy() if isinstance(stored, torch.Tensor) else np.asarray(stored)
        other_slots = [int(s) for s in state["other_slots"]]
        others = [normalize_label(v, name="state['other_labels'][]") for v in state["other_labels"]]
        if not 0 <= ident <= count or stored.shape != (count - ident,) or _as_int64(stored) is None \
                or len(others) != len(other_slots) or any(not ident <= s < count for s in other_slots) \
                or len(set(other_slots)) != len(other_slots):
            raise ValueError(f"count {count}, identity_prefix {ident}, {tuple(stored.shape)} int_labels and "
                             f"{len(other_slots)} other slots for {len(others)} other labels do not agree")
        values = np.concatenate([np.arange(ident, dtype=np.int64), _as_int64(stored)])
        if not other_slots:
            return _Labels(count, None, values, [], [])
        is_int = np.ones(count, dtype=bool)
        is_int[other_slots] = False
        return _Labels(count, np.flatnonzero(is_int), values[is_int], other_slots, others)
