"""Reliability of heads and indexes (issue 15): concurrent add_classes on every head, an index that follows
its head through load_state_dict, labels that round-trip through a weights-only load."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch

from ebv_cl import BankIndex, EBVBank
from ebv_cl.heads import create_head

_THREADS, _PER_THREAD = 8, 200


@pytest.mark.parametrize("name", ["fc", "tau_norm", "angular", "ncm", "ebv"])
def test_concurrent_add_classes_keep_every_head_consistent(name):
    total = _THREADS * _PER_THREAD
    bank = EBVBank.generate(total, 16, method="sparse", seed=0, max_steps=1) if name == "ebv" else None
    kwargs = {"bank": bank} if bank is not None else {}
    head = create_head(name, 16, **kwargs)
    if head.capacity < total:
        pytest.skip(f"{name} holds {head.capacity} classes")
    barrier = threading.Barrier(_THREADS)
    errors: list[BaseException] = []

    def add(t: int) -> None:
        try:
            barrier.wait()
            for i in range(_PER_THREAD):
                head.add_classes([t * _PER_THREAD + i])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(t,)) for t in range(_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert head.num_classes == total and sorted(head.classes) == list(range(total))
    for pname, p in list(head.named_parameters()) + list(head.named_buffers()):
        if p.dim() >= 1 and pname in ("weight", "bias", "sums", "counts"):
            assert p.shape[0] == total, (pname, tuple(p.shape))
    if name != "ncm":  # NCM has no mean yet
        assert head(torch.randn(3, 16)).shape == (3, total)


def test_ncm_sums_and_counts_stay_in_step_with_concurrent_updates():
    head = create_head("ncm", 4)
    barrier = threading.Barrier(4)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(100):
            label = t * 100 + i
            head.add_classes([label])
            head.update_means(torch.ones(1, 4), [label])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert head.sums.shape == (400, 4) and head.counts.shape == (400,)
    assert torch.equal(head.counts, torch.ones(400, dtype=head.counts.dtype))


def test_an_index_follows_its_head_through_load_state_dict():
    bank = EBVBank.generate(8, 16, method="sparse", seed=0, max_steps=1)
    head = create_head("ebv", 16, bank=bank)
    head.add_classes(["a", "b", "c"])
    index = BankIndex(bank, head.slots)
    other = create_head("ebv", 16, bank=bank)
    other.add_classes(["x", "y"])
    head.load_state_dict(other.state_dict())
    assert head.classes == ["x", "y"]
    labels = index.search_labels(bank.vectors[:3], k=1) if hasattr(index, "search_labels") else None
    found = index.search(bank.vectors[:2], k=1)[1] if labels is None else labels
    assert [row[0] for row in found] == ["x", "y"]  # never the head's old "a", "b"
    head.add_classes(["z"])
    found = index.search(bank.vectors[2:3], k=1)[1] if labels is None else index.search_labels(bank.vectors[2:3], k=1)
    assert found[0][0] == "z"  # and sees classes added later


def test_numpy_string_labels_round_trip_through_a_weights_only_load():
    head = create_head("fc", 4)
    head.add_classes([np.str_("cat"), np.int64(3)])
    assert [type(c) for c in head.classes] == [str, int]
    buf = io.BytesIO()
    torch.save(head.state_dict(), buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    fresh = create_head("fc", 4)
    fresh.load_state_dict(loaded)
    assert fresh.classes == ["cat", 3]


def test_a_bank_header_with_a_string_version_says_so(tmp_path):
    from test_bank_file import _rewrite_header

    from ebv_cl.errors import BankFileError

    path = tmp_path / "b.ebv"
    EBVBank.generate(8, 16, method="sparse", seed=0, max_steps=1).save(path)
    _rewrite_header(path, lambda h: h.update(format_version="1"))
    with pytest.raises(BankFileError, match="version '1' \\(a str; the version is an int\\)"):
        EBVBank.load(path)


def test_a_memory_mapped_bank_is_unaffected_when_its_file_is_replaced(tmp_path):
    path = tmp_path / "b.ebv"
    EBVBank.generate(8, 16, method="sparse", seed=0, max_steps=1).save(path)
    mapped = EBVBank.load(path, mmap=True)
    before = mapped.vectors.clone()
    EBVBank.generate(8, 16, method="sparse", seed=1, max_steps=1).save(path)  # atomic rename: a new inode
    assert torch.equal(mapped.vectors, before)
    assert not torch.equal(EBVBank.load(path).vectors, before)
