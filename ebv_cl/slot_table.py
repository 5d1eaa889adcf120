"""The compact label <-> slot table behind ``SlotAllocator``: NumPy arrays instead of Python dicts.

Slots are handed out in arrival order, so the table only ever appends. It keeps four kinds of entries:

* an **identity prefix**: while every label so far equals its slot (labels ``0, 1, 2, ...`` arriving in order,
  the usual dataset targets), nothing is stored at all;
* the **label of every later slot** in one ``int64`` array (grown geometrically);
* **label -> slot** for non-negative ``int`` labels in a dense lookup array (``int32``, ``-1`` = free) that never
  holds more than about two entries per label, and for other ``int64`` labels (negative, or too large for the
  dense array) in a sorted key array searched with ``np.searchsorted``, fed by a small dict of recent keys;
* ``str`` labels and ints beyond ``int64`` in dicts (they cost what Python objects cost).

About 0 bytes per label for labels in order, 12 for any other order of small ints, 20 for arbitrary ``int64``
ids. The table is not thread-safe: ``SlotAllocator`` holds its lock around every call. Appending never writes
below the current count, so a ``LabelSnapshot`` taken earlier stays valid without copying.
"""

from __future__ import annotations

from typing import Hashable

import numpy as np

__all__ = ["SlotTable", "LabelSnapshot", "INT64_MIN", "INT64_MAX", "increasing"]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INT32_MAX = 2**31 - 1
_DENSE_MIN = 1 << 16  # the dense lookup may always cover labels up to this size
_RECENT_MIN = 1 << 12  # recent sparse keys held in a dict before they are merged into the sorted arrays


def _grown(array: np.ndarray, size: int, *, fill: int = 0, limit: int | None = None) -> np.ndarray:
    """``array`` if it holds ``size`` entries, else a copy grown by 1.5x (at least to ``size``, at most ``limit``)."""
    if size <= array.size:
        return array
    new = max(size, array.size * 3 // 2, 16)
    if limit is not None:
        new = max(size, min(new, limit))
    out = np.full(new, fill, dtype=array.dtype) if fill else np.zeros(new, dtype=array.dtype)
    out[: array.size] = array
    return out


def increasing(values: np.ndarray) -> bool:
    """Whether a 1-d array is strictly increasing (so also free of duplicates)."""
    return values.size < 2 or bool((values[1:] > values[:-1]).all())


def _labels_at(slots: np.ndarray, ident: int, slot_label: np.ndarray, other_slots: np.ndarray,
               other_labels: list[Hashable]) -> list[Hashable]:
    """The labels of valid slots (``-1`` -> ``None``); the caller has checked ``-1 <= slot < count``."""
    values = slots
    if slot_label.size:
        values = np.where(slots < ident, slots, slot_label[np.maximum(slots - ident, 0)])
    values = values.tolist()
    if other_slots.size:
        pos = np.minimum(np.searchsorted(other_slots, slots), other_slots.size - 1)
        hits = np.flatnonzero(other_slots[pos] == slots)
        for i, j in zip(hits.tolist(), pos[hits].tolist()):
            values[i] = other_labels[j]
    for i in np.flatnonzero(slots < 0).tolist():
        values[i] = None
    return values


class LabelSnapshot:
    """The labels of slots ``0 .. len-1`` as they were when ``SlotAllocator.snapshot`` was called (no copy)."""

    def __init__(self, table: "SlotTable") -> None:
        self._n, self._ident = table.n, table.ident
        self._slot_label = table.slot_label[: table.n - table.ident]
        self._other_slots = table.other_slots[: table.other_count]
        self._other_labels = table.other_labels  # append-only: the first other_count entries never change

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, slot: int) -> Hashable:
        if not 0 <= slot < self._n:
            raise IndexError(f"slot {slot} is not in the snapshot; its slots are 0..{self._n - 1}")
        return self.labels_of(np.array([slot], dtype=np.int64))[0]

    def labels_of(self, slots: np.ndarray) -> list[Hashable]:
        """Labels of an ``int64`` array of slots in ``[-1, len)`` (``-1`` -> ``None``), in order."""
        return _labels_at(slots, self._ident, self._slot_label, self._other_slots, self._other_labels)

    def tolist(self) -> list[Hashable]:
        """All labels in slot order."""
        return self.labels_of(np.arange(self._n, dtype=np.int64))


class SlotTable:
    """Label <-> slot storage; ``insert`` appends slots ``n .. n+m-1``, lookups return ``-1`` for unknown labels."""

    def __init__(self) -> None:
        self.n = 0  # allocated slots
        self.ident = 0  # slots 0..ident-1 hold labels 0..ident-1 and are stored nowhere
        self.slot_label = np.zeros(0, dtype=np.int64)  # label of slot ident + i (0 for str / huge labels)
        self.dense = np.zeros(0, dtype=np.int32)  # slot of label ident + i, -1 if none
        self.keys = np.zeros(0, dtype=np.int64)  # other int64 labels, sorted ...
        self.key_slots = np.zeros(0, dtype=np.int32)  # ... and their slots
        self.recent: dict[int, int] = {}  # int64 labels not yet merged into keys
        self.other_slot: dict[Hashable, int] = {}  # str labels and ints outside int64 -> slot
        self.other_labels: list[Hashable] = []  # the same labels in slot order ...
        self.other_slots = np.zeros(0, dtype=np.int64)  # ... and their slots (the first other_count entries)
        self.other_count = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (the dicts not counted)."""
        arrays = (self.slot_label, self.dense, self.keys, self.key_slots, self.other_slots)
        return int(sum(a.nbytes for a in arrays))

    # ---------------------------------------------------------------------------------------------- lookup
    def lookup_one(self, label: Hashable) -> int:
        """The slot of one normalised label, ``-1`` if unknown."""
        if type(label) is not int or not INT64_MIN <= label <= INT64_MAX:
            return self.other_slot.get(label, -1)
        if 0 <= label < self.ident:
            return label
        if 0 <= label - self.ident < self.dense.size:
            return int(self.dense[label - self.ident])
        if self.keys.size:
            i = int(np.searchsorted(self.keys, label))
            if i < self.keys.size and int(self.keys[i]) == label:
                return int(self.key_slots[i])
        return self.recent.get(label, -1)

    def lookup_ints(self, labels: np.ndarray) -> np.ndarray:
        """Slots (``int64``, ``-1`` if unknown) of an ``int64`` array of labels."""
        out = np.full(labels.shape, -1, dtype=np.int64)
        rest = np.ones(labels.shape, dtype=bool)
        if self.ident:
            hit = (labels >= 0) & (labels < self.ident)
            out[hit] = labels[hit]
            rest &= ~hit
        if self.dense.size:
            offset = labels - self.ident
            hit = (offset >= 0) & (offset < self.dense.size)
            out[hit] = self.dense[offset[hit]]
            rest &= ~hit
            del offset
        if (self.keys.size or self.recent) and rest.any():
            where = np.arange(labels.size) if rest.all() else np.flatnonzero(rest)
            values = labels if rest.all() else labels[where]
            if self.keys.size:
                pos = np.minimum(np.searchsorted(self.keys, values), self.keys.size - 1)
                found = self.keys[pos] == values
                out[where[found]] = self.key_slots[pos[found]]
                where, values = where[~found], values[~found]
            if self.recent and where.size:
                out[where] = [self.recent.get(v, -1) for v in values.tolist()]
        return out

    def labels_of(self, slots: np.ndarray) -> list[Hashable]:
        """Labels of an ``int64`` array of slots in ``[-1, n)``."""
        return _labels_at(slots, self.ident, self.slot_label, self.other_slots[: self.other_count], self.other_labels)

    # ---------------------------------------------------------------------------------------------- insert
    def insert(self, int_labels: np.ndarray, int_slots: np.ndarray, others: list[Hashable],
               other_slots: np.ndarray) -> None:
        """Append new labels: together their slots are exactly ``n .. n+m-1``; none of them is known yet."""
        m = int_labels.size + len(others)
        if not m:
            return
        start, total = self.n, self.n + m
        if total > _INT32_MAX and self.dense.dtype != np.int64:
            self.dense, self.key_slots = self.dense.astype(np.int64), self.key_slots.astype(np.int64)
        int_labels, int_slots = self._extend_identity(int_labels, int_slots)
        stored = total - self.ident
        if stored > 0:
            self.slot_label = _grown(self.slot_label, stored)
            lo = int(int_slots[0]) - self.ident if int_slots.size else 0
            if int_slots.size and int(int_slots[-1]) - lo - self.ident == int_slots.size - 1 and increasing(int_slots):
                # consecutive slots (the usual case): no index array
                self.slot_label[lo : lo + int_slots.size] = int_labels
            else:
                self.slot_label[int_slots - self.ident] = int_labels
            if others:
                self.slot_label[other_slots - self.ident] = 0
        self.n = total
        if others:
            self._insert_others(others, other_slots)
        if int_labels.size:
            self._insert_ints(int_labels, int_slots)
        assert self.n == start + m

    def _extend_identity(self, labels: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grow the identity prefix with the leading new labels that equal their slots; return the rest."""
        if self.n != self.ident or not labels.size or int(labels[int(np.argmin(slots))]) != self.n:
            return labels, slots
        order = None if labels.size < 2 or bool((slots[1:] > slots[:-1]).all()) else np.argsort(slots)
        by_slot, s = (labels, slots) if order is None else (labels[order], slots[order])
        fits = (by_slot == s) & (s == np.arange(self.n, self.n + s.size))
        k = s.size if bool(fits.all()) else int(np.argmin(fits))
        if not k:
            return labels, slots
        self.ident += k
        if k == s.size:
            return labels[:0], slots[:0]
        return by_slot[k:], s[k:]

    def _insert_others(self, labels: list[Hashable], slots: np.ndarray) -> None:
        order = np.argsort(slots, kind="stable")
        for i in order.tolist():
            self.other_slot[labels[i]] = int(slots[i])
            self.other_labels.append(labels[i])
        count = self.other_count + len(labels)
        self.other_slots = _grown(self.other_slots, count)
        self.other_slots[self.other_count : count] = slots[order]
        self.other_count = count

    def _insert_ints(self, labels: np.ndarray, slots: np.ndarray) -> None:
        offset = labels - self.ident if self.ident else labels
        allowed = max(_DENSE_MIN, 2 * (self.n - self.ident))  # dense entries stay <= ~2 per stored label
        fit = (offset >= 0) & (offset < allowed)
        top = int(offset.max()) if fit.all() else int(offset[fit].max()) if fit.any() else -1
        del fit
        old = self.dense.size
        size = min(allowed, max(top + 1, old * 3 // 2, 16))
        if top >= old and (size > int(offset.max()) or size >= old * 3 // 2):  # geometric steps: O(n) copies
            self._grow_dense(size)
        dense = (offset >= 0) & (offset < self.dense.size)
        if dense.all():
            self.dense[offset] = slots
        elif not dense.any():
            self._insert_sparse(labels, slots)
        else:
            self.dense[offset[dense]] = slots[dense]
            self._insert_sparse(labels[~dense], slots[~dense])

    def _grow_dense(self, size: int) -> None:
        old = self.dense.size
        self.dense = _grown(self.dense, size, fill=-1, limit=size)
        lo, hi = self.ident + old, self.ident + self.dense.size  # sparse keys now inside the dense range move
        if self.keys.size:
            a, b = np.searchsorted(self.keys, [lo, hi])
            if b > a:
                self.dense[self.keys[a:b] - self.ident] = self.key_slots[a:b]
                self.keys = np.concatenate([self.keys[:a], self.keys[b:]])
                self.key_slots = np.concatenate([self.key_slots[:a], self.key_slots[b:]])
        for label in [v for v in self.recent if lo <= v < hi]:
            self.dense[label - self.ident] = self.recent.pop(label)

    def _insert_sparse(self, labels: np.ndarray, slots: np.ndarray) -> None:
        if len(self.recent) + labels.size <= max(_RECENT_MIN, self.keys.size // 8):
            self.recent.update(zip(labels.tolist(), slots.tolist()))
            return
        if self.recent:
            labels = np.concatenate([labels, np.fromiter(self.recent.keys(), np.int64, len(self.recent))])
            slots = np.concatenate([slots, np.fromiter(self.recent.values(), np.int64, len(self.recent))])
            self.recent = {}
        order = np.argsort(labels)
        labels, slots = labels[order], slots[order].astype(self.key_slots.dtype)
        del order
        if not self.keys.size:
            self.keys, self.key_slots = labels, slots
            return
        at = np.searchsorted(self.keys, labels)
        self.keys, self.key_slots = np.insert(self.keys, at, labels), np.insert(self.key_slots, at, slots)
