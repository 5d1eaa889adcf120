"""The class-label to bank-slot allocator.

A bank holds ``capacity`` fixed vectors; each class label that arrives takes the next unused slot (slot ``i`` is
row ``i`` of the bank), in arrival order. Allocating a known label returns its slot; allocating past capacity
raises ``BankFullError`` before anything changes, so a full bank is never silently reused. The allocator is
thread-safe: ``allocate`` is atomic and ``version`` increases with every change, so an index can stay in step.
"""

from __future__ import annotations

import threading
from typing import Any, Hashable, Iterable, Sequence

import torch

from .errors import BankFullError, BankMismatchError, UnknownLabelError
from .validation import check_positive_int, normalize_label

__all__ = ["SlotAllocator"]

_STATE_VERSION = 1


class SlotAllocator:
    """Maps class labels (``int`` or ``str``) to bank slots ``0 .. capacity-1`` in arrival order.

    Args:
        capacity: The number of vectors in the bank, i.e. the most classes that can be allocated.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = check_positive_int(capacity, name="capacity")
        self._labels: list[Hashable] = []
        self._slot_of: dict[Hashable, int] = {}
        self._lock = threading.RLock()
        self.version = 0

    def __len__(self) -> int:
        return len(self._labels)

    def __contains__(self, label: object) -> bool:
        try:
            return normalize_label(label) in self._slot_of
        except TypeError:
            return False

    def __repr__(self) -> str:
        return f"SlotAllocator(capacity={self.capacity}, allocated={len(self)})"

    def __getstate__(self) -> dict[str, Any]:
        # A lock can be neither pickled nor deep-copied (Avalanche deep-copies models): drop it, rebuild it.
        with self._lock:
            state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    @property
    def labels(self) -> list[Hashable]:
        """The allocated labels in slot order (a copy)."""
        with self._lock:
            return list(self._labels)

    @property
    def free(self) -> int:
        """How many slots are still unused."""
        return self.capacity - len(self._labels)

    def allocate(self, labels: Iterable[Any]) -> list[int]:
        """Give every new label the next free slot and return the slots of all ``labels`` in order.

        Labels already allocated keep their slot; duplicates within ``labels`` get one slot. Either every new
        label is allocated or none is.

        Raises:
            TypeError: if a label is not an ``int`` or ``str``.
            BankFullError: if the new labels do not fit in the free slots.
        """
        if isinstance(labels, (str, bytes)):
            raise TypeError(f"labels must be an iterable of labels, got the string {labels!r}; wrap it in a list")
        normalized = [normalize_label(label, name="labels[]") for label in labels]
        with self._lock:
            new = list(dict.fromkeys(label for label in normalized if label not in self._slot_of))
            if len(new) > self.free:
                raise BankFullError(self.capacity, len(self._labels), len(new))
            for label in new:
                self._slot_of[label] = len(self._labels)
                self._labels.append(label)
            if new:
                self.version += 1
            return [self._slot_of[label] for label in normalized]

    def slot_of(self, label: Any) -> int:
        """The slot of one allocated label.

        Raises:
            UnknownLabelError: if the label was never allocated.
        """
        key = normalize_label(label)
        try:
            return self._slot_of[key]
        except KeyError:
            raise UnknownLabelError(key, len(self._labels)) from None

    def slots_of(self, labels: Iterable[Any]) -> torch.Tensor:
        """The slots of allocated labels as an ``int64`` tensor of shape ``(len(labels),)``.

        Raises:
            UnknownLabelError: if any label was never allocated.
        """
        if isinstance(labels, torch.Tensor):
            labels = labels.reshape(-1).tolist()
        return torch.tensor([self.slot_of(label) for label in labels], dtype=torch.int64)

    def label_of(self, slot: int) -> Hashable:
        """The label held by an allocated slot.

        Raises:
            IndexError: if ``slot`` is not allocated.
        """
        if not 0 <= int(slot) < len(self._labels):
            raise IndexError(f"slot {slot} is not allocated; allocated slots are 0..{len(self._labels) - 1}")
        return self._labels[int(slot)]

    def labels_of(self, slots: Sequence[int] | torch.Tensor) -> list[Hashable]:
        """The labels of allocated slots, in the order given; ``-1`` maps to ``None``."""
        if isinstance(slots, torch.Tensor):
            slots = slots.reshape(-1).tolist()
        return [None if int(s) == -1 else self.label_of(s) for s in slots]

    def state_dict(self) -> dict[str, Any]:
        """A picklable snapshot: capacity and the labels in slot order."""
        with self._lock:
            return {"format": _STATE_VERSION, "capacity": self.capacity, "labels": list(self._labels)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot taken by ``state_dict``.

        Raises:
            BankMismatchError: if the snapshot is for a bank of another capacity or is malformed.
        """
        if not isinstance(state, dict) or {"capacity", "labels"} - set(state):
            raise BankMismatchError(f"state must be a dict with keys 'capacity' and 'labels', got {state!r:.200}")
        if state.get("format", _STATE_VERSION) != _STATE_VERSION:
            raise BankMismatchError(f"slot state format {state['format']!r} is not supported (expected {_STATE_VERSION})")
        if int(state["capacity"]) != self.capacity:
            raise BankMismatchError(
                f"slot state is for a bank of capacity {state['capacity']}, this allocator has capacity {self.capacity}"
            )
        labels = [normalize_label(label, name="state['labels'][]") for label in state["labels"]]
        if len(set(labels)) != len(labels) or len(labels) > self.capacity:
            raise BankMismatchError("slot state has duplicate labels or more labels than the capacity")
        with self._lock:
            self._labels = labels
            self._slot_of = {label: slot for slot, label in enumerate(labels)}
            self.version += 1
