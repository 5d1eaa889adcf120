"""EBVBank save/load: round trip, metadata, and every kind of bad file raising BankFileError."""

import json
import struct

import numpy as np
import pytest
import torch

from ebv_cl import BankFileError, BankMismatchError, EBVBank
from ebv_cl.bank.io import MAGIC, read_bank_file


@pytest.fixture
def bank(random_unit_vectors):
    return EBVBank(random_unit_vectors(50, 16), seed=3, method="custom", alpha=0.5, info={"steps": 7})


@pytest.fixture
def saved(bank, tmp_path):
    path = tmp_path / "b.ebv"
    bank.save(path)
    return path


def test_round_trip_keeps_vectors_and_metadata(bank, saved):
    loaded = EBVBank.load(saved)
    assert torch.equal(loaded.vectors, bank.vectors)
    assert loaded.vectors.dtype == torch.float32 and loaded.vectors.shape == (50, 16)
    assert torch.allclose(loaded.vectors.norm(dim=1), torch.ones(50), atol=1e-6)
    assert (loaded.seed, loaded.method, loaded.alpha, loaded.info) == (3, "custom", 0.5, {"steps": 7})
    assert loaded.coherence == pytest.approx(bank.coherence)
    assert loaded.sha256() == bank.sha256()


def test_memory_mapped_load_equals_full_load(saved):
    assert torch.equal(EBVBank.load(saved, mmap=True).vectors, EBVBank.load(saved).vectors)


def test_header_records_format_version_shape_and_checksum(saved):
    _, header = read_bank_file(saved)
    for key in ("format_version", "n", "dim", "seed", "method", "alpha", "coherence", "vectors_sha256"):
        assert key in header
    assert (header["n"], header["dim"], header["format_version"]) == (50, 16, 1)


def test_vectors_are_normalised_on_construction():
    bank = EBVBank(torch.tensor([[3.0, 4.0], [0.0, 2.0]]))
    assert torch.allclose(bank.vectors, torch.tensor([[0.6, 0.8], [0.0, 1.0]]))


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(3, 4), "zero norm"),
        (torch.tensor([[float("nan"), 1.0]]), "NaN or inf"),
        (torch.ones(4), None),
        (torch.ones(2, 3, 4), "shape"),
        (torch.ones(3, 4, dtype=torch.int64), "floating dtype"),
    ],
)
def test_bad_vectors_are_rejected(bad, match):
    if match is None:  # a single vector is accepted as a bank of one
        assert EBVBank(bad).n == 1
        return
    with pytest.raises((ValueError, TypeError), match=match):
        EBVBank(bad)


def _header_span(path):
    raw = path.read_bytes()
    (length,) = struct.unpack("<I", raw[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    return raw, start, start + length


def test_missing_file(tmp_path):
    with pytest.raises(BankFileError, match="does not exist"):
        EBVBank.load(tmp_path / "nope.ebv")


def test_not_a_bank_file(tmp_path):
    path = tmp_path / "x.ebv"
    path.write_bytes(b"hello world, definitely not a bank")
    with pytest.raises(BankFileError, match="not an ebv-cl bank file"):
        EBVBank.load(path)


@pytest.mark.parametrize("keep", [5, 12, 100, -1, -4])
def test_truncated_file(saved, keep):
    raw = saved.read_bytes()
    saved.write_bytes(raw[:keep])
    with pytest.raises(BankFileError, match="truncated|not an ebv-cl"):
        EBVBank.load(saved)


def test_extra_bytes(saved):
    saved.write_bytes(saved.read_bytes() + b"\0" * 8)
    with pytest.raises(BankFileError, match="longer than its metadata"):
        EBVBank.load(saved)


def test_bit_flip_in_vectors(saved):
    raw = bytearray(saved.read_bytes())
    raw[-7] ^= 0x01
    saved.write_bytes(bytes(raw))
    with pytest.raises(BankFileError, match="sha256 of its vectors"):
        EBVBank.load(saved)


def test_bit_flip_in_header(saved):
    raw, start, stop = _header_span(saved)
    raw = bytearray(raw)
    raw[start + 2] ^= 0x40
    saved.write_bytes(bytes(raw))
    with pytest.raises(BankFileError, match="corrupt header|checksum|required keys"):
        EBVBank.load(saved)


def _rewrite_header(path, edit):
    raw, start, stop = _header_span(path)
    header = json.loads(raw[start:stop])
    edit(header)
    body = json.dumps(header, sort_keys=True).encode()
    body += b" " * (stop - start - len(body)) if len(body) <= stop - start else b""
    assert len(body) == stop - start, "test edit must keep the header length"
    path.write_bytes(raw[:start] + body + raw[stop:])


def test_tampered_metadata_is_detected(saved):
    _rewrite_header(saved, lambda h: h.update(coherence=0.0001))
    with pytest.raises(BankFileError, match="metadata was altered"):
        EBVBank.load(saved)


def test_other_format_version(saved):
    _rewrite_header(saved, lambda h: h.update(format_version=9))
    with pytest.raises(BankFileError, match="format version 9"):
        EBVBank.load(saved)


def test_shape_disagreeing_with_metadata(saved, tmp_path):
    from ebv_cl.bank import io

    def edit(h):
        h["dim"] = 8  # half the real dim: the size no longer matches
        h["header_sha256"] = io._header_digest(h)

    _rewrite_header(saved, edit)
    with pytest.raises(BankFileError, match="n=50, dim=8"):
        EBVBank.load(saved)


def test_non_unit_vectors_in_file_are_rejected(tmp_path):
    from ebv_cl.bank.io import write_bank_file

    path = tmp_path / "raw.ebv"
    write_bank_file(path, np.full((4, 3), 2.0, dtype=np.float32), {"seed": None, "method": "x"})
    with pytest.raises(BankFileError, match="not unit length"):
        EBVBank.load(path)


def test_check_compatible(bank):
    bank.check_compatible(n=50, dim=16, sha256=bank.sha256())
    with pytest.raises(BankMismatchError, match="dim=16, expected dim=8"):
        bank.check_compatible(dim=8)
    with pytest.raises(BankMismatchError, match="sha256"):
        bank.check_compatible(sha256="0" * 64)


def test_save_is_atomic_and_leaves_no_temp_files(bank, tmp_path):
    path = tmp_path / "sub" / "b.ebv"
    bank.save(path)
    bank.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["b.ebv"]
