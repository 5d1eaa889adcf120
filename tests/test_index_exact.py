"""Exactness of the certified paths on adversarial queries (ties, sign flips, near-ties), property tests
against brute force, and the error bound the certificate rests on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebv_cl import BankIndex, EBVBank, SlotAllocator
from ebv_cl.index.encoding import encode_bank, encode_queries, error_bound
from index_oracle import brute_force

CERTIFIED = ["int8", "fp32", "float64"]




def _check(vectors: torch.Tensor, queries: torch.Tensor, k: int, path: str, allocated: int | None = None) -> None:
    bank = EBVBank(vectors)
    allocated = bank.n if allocated is None else allocated
    allocator = SlotAllocator(bank.n)
    allocator.allocate(range(allocated))
    scores, slots = BankIndex(bank, allocator, path=path).search_slots(queries, k)
    ref_scores, ref_slots = brute_force(bank.vectors[:allocated], queries, k)
    assert (slots.numpy() == ref_slots).all(), (slots, ref_slots)
    assert (scores.numpy() == ref_scores.astype(np.float32)).all()


def _random(n: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("path", CERTIFIED)
@pytest.mark.parametrize("k", [1, 2, 4])
def test_duplicate_bank_rows_tie_lower_slot_first(path, k):
    v = _random(400, 32, 0)
    v[[17, 40, 333]] = v[5].clone()
    queries = torch.cat([v[[5]], v[[5]] + 0.01 * _random(6, 32, 1)])
    _check(v, queries, k, path)


@pytest.mark.parametrize("path", CERTIFIED)
def test_bank_rows_equal_up_to_sign(path):
    v = _random(300, 16, 2)
    v[150:] = -v[:150]
    queries = torch.cat([v[:20], -v[:20], v[:20] + v[150:170] * 0.999])
    _check(v, queries, 3, path)


@pytest.mark.parametrize("path", CERTIFIED)
def test_duplicate_direction_queries_get_identical_answers(path):
    v = _random(500, 24, 3)
    q = _random(10, 24, 4)
    queries = torch.cat([q, 2 * q, 1024 * q, q / 8, 3 * q, 1e-20 * q, 1e20 * q])
    _check(v, queries, 5, path)


@pytest.mark.parametrize("path", CERTIFIED)
def test_near_ties_within_1e7(path):
    v = _random(256, 32, 5)
    base = v[0] / v[0].norm()
    for i in range(1, 40):  # rows whose cosine with the query differs from row 0's by ~1e-7 .. 1e-8
        v[i] = base + (i * 1e-8) * _random(1, 32, 100 + i)[0]
    queries = torch.cat([base[None], base[None] + 1e-7 * _random(8, 32, 6)])
    _check(v, queries, 10, path)


@pytest.mark.parametrize("path", CERTIFIED)
def test_exact_ties_across_a_whole_basis(path):
    dim = 16
    v = torch.cat([torch.eye(dim), -torch.eye(dim), _random(100, dim, 7)])
    queries = torch.cat([torch.ones(1, dim), torch.ones(1, dim) * torch.tensor([1.0, -1.0] * 8), torch.eye(dim)[:3]])
    for k in (1, 5, 16, 20):
        _check(v, queries, k, path)


@pytest.mark.parametrize("path", CERTIFIED)
def test_dense_cluster_many_candidates(path):
    v = _random(2000, 32, 8)
    v[:600] = v[0].clone() + 1e-3 * _random(600, 32, 9)  # 600 rows inside any low-precision window
    queries = torch.cat([v[:5] + 1e-4 * _random(5, 32, 10), _random(5, 32, 11)])
    _check(v, queries, 7, path)


@pytest.mark.parametrize("path", CERTIFIED)
def test_prefix_of_the_bank_only(path):
    v = _random(1000, 16, 12)
    queries = v[700:720]  # rows beyond the allocated prefix must never be returned
    _check(v, queries, 3, path, allocated=500)


@pytest.mark.parametrize("k", [1, 6])
def test_wht_path_on_kerdock_bank_with_massive_ties(k):
    bank = EBVBank.generate(144, 16, method="kerdock")
    allocator = SlotAllocator(144)
    allocator.allocate(range(140))
    index = BankIndex(bank, allocator)
    assert index.engine.name == "wht"
    queries = torch.cat([torch.eye(16)[:4], bank.vectors[[20, 77, 139]], _random(20, 16, 13), torch.ones(1, 16)])
    scores, slots = index.search_slots(queries, k)
    ref_scores, ref_slots = brute_force(bank.vectors[:140], queries, k)
    assert (slots.numpy() == ref_slots).all()
    assert (scores.numpy() == ref_scores.astype(np.float32)).all()


@pytest.mark.parametrize("precision", ["high", "medium"])
def test_fp32_path_stays_exact_under_reduced_matmul_precision(precision):
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        v = _random(800, 64, 14)
        _check(v, torch.cat([v[:10] + 0.3 * _random(10, 64, 15), _random(30, 64, 16)]), 3, "fp32")
    finally:
        torch.set_float32_matmul_precision(before)


@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_error_bound_holds_for_every_pair(dtype):
    v = torch.nn.functional.normalize(_random(3000, 96, 17), dim=1)
    q = torch.nn.functional.normalize(torch.cat([_random(50, 96, 18), v[:50] + 0.1 * _random(50, 96, 19)]), dim=1)
    bank, enc = encode_bank(v, dtype), encode_queries(q, dtype)
    if dtype == "int8":
        approx = torch._int_mm(enc.data, bank.data.T).double() * enc.scale[:, None] * bank.scale
    else:
        approx = (enc.data @ bank.data.T).double()
    exact = q.double() @ v.double().T
    bound = error_bound(enc, bank, dim=96)
    assert ((approx - exact).abs() <= bound[:, None]).all()
    assert float(bound.max()) < (0.05 if dtype == "int8" else 1e-4)  # and it is tight enough to be useful


_entries = st.integers(min_value=-3, max_value=3)


@st.composite
def _problems(draw):
    n = draw(st.integers(1, 40))
    dim = draw(st.integers(1, 10))
    rows = draw(st.lists(st.lists(_entries, min_size=dim, max_size=dim), min_size=n, max_size=n))
    queries = draw(st.lists(st.lists(_entries, min_size=dim, max_size=dim), min_size=1, max_size=6))
    allocated = draw(st.integers(1, n))
    k = draw(st.integers(1, allocated))
    v, q = torch.tensor(rows, dtype=torch.float32), torch.tensor(queries, dtype=torch.float32)
    v[(v == 0).all(dim=1), 0] = 1.0  # integer vectors: exact ties, sign flips and duplicates abound
    q[(q == 0).all(dim=1), -1] = -2.0
    return v, q, allocated, k


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=_problems(), path=st.sampled_from(CERTIFIED))
def test_property_index_equals_brute_force_on_allocated_vectors(problem, path):
    v, q, allocated, k = problem
    _check(v, q, k, path, allocated=allocated)


@settings(max_examples=40, deadline=None)
@given(labels=st.lists(st.one_of(st.integers(-5, 30), st.sampled_from(["a", "b", "cat", "7"])), max_size=40))
def test_property_every_label_maps_to_one_slot_and_back_and_is_found(labels):
    allocator = SlotAllocator(64)
    slots = allocator.allocate(labels)
    distinct = list(dict.fromkeys(labels))
    assert allocator.labels == distinct and len(allocator) == len(distinct)
    assert all(allocator.label_of(allocator.slot_of(label)) == label for label in distinct)
    assert slots == [distinct.index(label) for label in labels]
    if distinct:
        index = BankIndex(EBVBank(_random(64, 32, 20)), allocator)
        _, found = index.search(index.bank.vectors[: len(distinct)], 1)
        assert [row[0] for row in found] == distinct


@pytest.mark.parametrize("dim", [1, 2, 3, 13])
def test_int8_path_on_odd_small_dimensions(dim):
    # regression: torch._int_mm returns wrong products on the CPU for an inner dimension of 1
    v = torch.cat([torch.ones(4, dim), _random(60, dim, 21)])
    queries = torch.cat([-2 * torch.ones(3, dim), _random(20, dim, 22)])
    for _ in range(5):
        _check(v, queries, 2, "int8", allocated=50)
