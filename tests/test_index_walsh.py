"""The Walsh-Hadamard scorer of code banks (``ebv_cl.index.walsh``) against brute force: the LFSR state map, every
family's products and their error bound (m = 3..6, and the butterfly of m = 9, 10), and exact search through
``ShiftPath(scorer="wht")`` with masses of exact ties, near-ties and partial allocation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebv_cl import EBVBank
from ebv_cl.bank.codes import SequenceCode
from ebv_cl.bank.codes.gf2 import is_primitive, m_sequence, primitive_polynomial
from ebv_cl.index.rerank import exact_search, unit_queries
from ebv_cl.index.structured import ShiftPath
from ebv_cl.index.walsh import WalshPlan, bf16_matmul_is_fast, row_max, state_order

FAMILIES = [("gold", 3), ("gold", 5), ("gold", 6), ("kasami_small", 4), ("kasami_small", 6), ("kasami_large", 4),
            ("kasami_large", 6)]


def _randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("m", [3, 4, 5, 6])
def test_state_order_gives_every_shift_as_a_linear_functional(m):
    u = m_sequence(primitive_polynomial(m), m)
    n = u.shape[0]
    sigma, y = state_order(u)
    assert sorted(sigma.tolist()) == list(range(1, n + 1))
    assert sorted(y.tolist()) == list(range(1, n + 1))  # the n shifts are the n non-zero functionals
    i, a = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    parity = np.array([bin(v).count("1") & 1 for v in range(1 << m)])
    assert (u[(i + a) % n] == parity[y[a] & sigma[i]]).all()


def test_state_order_refuses_a_sequence_that_is_not_an_m_sequence():
    with pytest.raises(ValueError, match="not an m-sequence"):
        state_order(np.array([1, 1, 0, 1, 1, 0, 0], dtype=np.uint8))
    with pytest.raises(ValueError, match="length 2\\^m - 1"):
        state_order(np.ones(6, dtype=np.uint8))


def _plan_scores(code, n_rows, x64):
    """Every output of the plan, scattered to its slot (NaN where the FFT scorer takes over), and the bound."""
    plan = WalshPlan(code, code.n_members, torch.device("cpu"))
    xb, err = plan.fold(x64)
    got = torch.full((x64.shape[0], n_rows), float("nan"), dtype=torch.float64)
    outputs = 0
    for _, scores, to_slot, mask in plan.blocks_for(xb, n_rows):
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        idx = torch.nonzero(torch.isfinite(scores.float()), as_tuple=True)
        slots = to_slot(*idx[1:])
        assert int(slots.min()) >= 0 and int(slots.max()) < n_rows
        got[idx[0], slots] = scores[idx].double()
        outputs += idx[0].numel()
    return plan, got, err, outputs


def _check_plan(family, m, n_rows, seed):
    n = (1 << m) - 1
    code = SequenceCode(family, m, n_rows, n + 2)
    x64 = torch.cat([_randn(3, n, seed=seed, dtype=torch.float64), torch.ones(1, n, dtype=torch.float64)])
    plan, got, err, outputs = _plan_scores(code, n_rows, x64)
    want = x64 @ code.rows(slice(None)).double()[:, :n].T
    covered = ~torch.isnan(got[0])
    assert outputs == x64.shape[0] * int(covered.sum())  # no slot scored twice
    fft_rows = sum(min(stop * n, n_rows) - first * n for first, stop in plan.fft_ranges)
    assert int(covered.sum()) + fft_rows == n_rows  # the plan and the FFT ranges cover the bank exactly once
    for first, stop in plan.fft_ranges:
        assert not covered[first * n : stop * n].any()
    dev = (got[:, covered] - want[:, covered]).abs().amax(dim=1)
    assert bool((dev <= err).all()), (dev, err)
    return plan


@pytest.mark.parametrize("family,m", FAMILIES)
@pytest.mark.parametrize("fraction", [1.0, 0.55])
def test_walsh_products_equal_brute_force_within_the_bound(family, m, fraction):
    capacity = SequenceCode(family, m, 1, (1 << m) - 1).capacity
    plan = _check_plan(family, m, max(1, int(capacity * fraction)), seed=m)
    assert plan.groups > 0 and plan.top == 1


def test_walsh_butterfly_above_m_8_equals_brute_force_within_the_bound():
    plan = _check_plan("kasami_small", 10, 1023 * 12 + 5, seed=3)
    assert plan.top == 4  # two bf16 butterfly stages after the inner-256 products


@pytest.mark.slow
def test_walsh_butterfly_at_m_9_equals_brute_force_within_the_bound():
    plan = _check_plan("gold", 9, 511 * 300 + 17, seed=4)
    assert plan.top == 2


def test_sparse_partial_block_goes_to_the_fft_scorer():
    # gold m=6: u, v, then 63 members u + T^j v; 5 members use 3 of those 63, too few for 63 transforms
    plan = WalshPlan(SequenceCode("gold", 6, 63 * 5, 64), 5, torch.device("cpu"))
    assert plan.fft_ranges == [(1, 2), (2, 5)] and plan.groups == 1


def test_row_max_of_bf16_blocks_handles_negative_rows_and_inf():
    block = torch.tensor([[[-3.0, -0.5], [-1.0, -2.0]], [[0.0, -1.0], [float("-inf"), 2.5]],
                          [[float("-inf"), float("-inf")], [-0.0, -7.0]]]).to(torch.bfloat16)
    assert row_max(block).tolist() == [-0.5, 2.5, 0.0]
    assert row_max(block.float()).tolist() == [-0.5, 2.5, 0.0]


def _bank(family, m, n_rows, dim):
    return EBVBank.from_code(SequenceCode(family, m, n_rows, dim))


def _exact(bank, queries, k, allocated, two_pass=None):
    path = ShiftPath(bank, scorer="wht")
    if two_pass is not None:
        path.two_pass = two_pass
    q = unit_queries(queries.float())
    got = path.search(q, allocated, k)
    want = exact_search(bank.rows(np.arange(allocated)), q, k)
    assert torch.equal(got[1], want[1]), (got[1], want[1])
    assert torch.equal(got[0], want[0])


@pytest.mark.parametrize("family,m,n_rows,two_pass", [
    ("gold", 5, 31 * 33, None), ("kasami_large", 4, 15 * 67, True), ("kasami_large", 4, 15 * 67, False),
    ("kasami_small", 6, 63 * 8, None),
    pytest.param("kasami_large", 6, 63 * 300 + 11, True, marks=pytest.mark.slow),
    pytest.param("kasami_large", 6, 63 * 300 + 11, False, marks=pytest.mark.slow),
])
def test_wht_search_is_exact_with_ties_and_near_ties(family, m, n_rows, two_pass):
    n = (1 << m) - 1
    dim = n + 5
    bank = _bank(family, m, n_rows, dim)
    rows = bank.rows(np.array([0, 17, n_rows // 2, n_rows - 1]))
    const = torch.zeros(2, dim)
    const[0, :n] = 1.0  # every row scores (sum of its sequence) / sqrt(n): a few values, thousands of ties
    const[1, :n] = -1.0
    pad_only = torch.zeros(1, dim)
    pad_only[0, n:] = 1.0  # no code-space part: every score is exactly 0, the answer is the lowest slots
    twin = (rows[0] + rows[1]) / 2  # equidistant from two rows, then nudged by 1e-7
    queries = torch.cat([_randn(6, dim, seed=m), rows, -rows, rows[:2] + rows[2:], const, pad_only,
                         twin[None] + 1e-7 * _randn(2, dim, seed=1), twin[None]])
    for allocated in (n_rows, n_rows // 2 + 3, 5):
        for k in (1, 4):
            _exact(bank, queries, k, allocated, two_pass)


def test_wht_path_refuses_rows_that_its_code_does_not_describe():
    bank = _bank("gold", 5, 31 * 33, 40)
    poly = next(p for p in range(primitive_polynomial(5) + 2, 64, 2) if is_primitive(p, 5))
    other = EBVBank.from_code(SequenceCode("gold", 5, 31 * 33, 40, poly=poly))
    bank.rows = other.rows
    with pytest.raises(ValueError, match="does not describe its rows"):
        ShiftPath(bank, scorer="wht")


def test_auto_scorer_is_wht_up_to_m_8_where_bf16_is_fast():
    fast = bf16_matmul_is_fast(torch.device("cpu"))
    assert ShiftPath(_bank("kasami_large", 4, 15 * 30, 16)).scorer == ("wht" if fast else "fft")
    assert ShiftPath(_bank("gold", 9, 511 * 3, 512)).scorer == "fft"  # m = 9: measured no faster than fft
    assert ShiftPath(_bank("gold", 9, 511 * 3, 512), scorer="wht").walsh.top == 2


def test_wht_scorer_needs_a_real_code_family():
    from code_bank_double import FakeCodeBank

    with pytest.raises(ValueError, match="scorer 'wht' needs a Gold/Kasami code"):
        ShiftPath(FakeCodeBank(31 * 3, 32, 31), scorer="wht")


@pytest.mark.parametrize("scorer", ["wht", "fft"])
def test_search_approx_returns_raw_top_k_within_twice_the_bound(scorer):
    bank = _bank("kasami_large", 6, 63 * 200, 64)
    rows = bank.rows(np.array([5, 777, 9000]))
    queries = unit_queries(torch.cat([rows, _randn(3, 64, seed=8)]))
    path = ShiftPath(bank, scorer=scorer)
    for allocated in (bank.n, 1000):
        scores, slots = path.search_approx(queries, allocated, 9)
        exact = queries.double() @ bank.rows(np.arange(allocated)).double().T
        ninth = exact.sort(dim=1, descending=True).values[:, 8]
        got = exact.gather(1, slots)
        assert int(slots.max()) < allocated and all(len(set(r)) == 9 for r in slots.tolist())
        assert bool((got >= ninth[:, None] - 0.04).all())
        assert bool(((scores.double() - got).abs() <= 0.02).all())
        assert slots[:3, 0].tolist() == ([5, 777, 9000] if allocated == bank.n else slots[:3, 0].tolist())


def test_bank_index_candidate_slots_uses_the_raw_path_and_falls_back_to_exact():
    from ebv_cl import BankIndex, SlotAllocator

    bank = _bank("gold", 5, 31 * 33, 40)
    allocator = SlotAllocator(bank.n)
    allocator.allocate(range(bank.n))
    rows = bank.rows(np.array([3, 400]))
    index = BankIndex(bank, allocator, device="cpu")
    scores, slots = index.candidate_slots(rows, 4)
    assert slots.shape == (2, 4) and slots[:, 0].tolist() == [3, 400]
    dense = BankIndex(EBVBank(bank.rows(slice(None))), allocator, device="cpu")
    assert torch.equal(dense.candidate_slots(rows, 4)[1], dense.search_slots(rows, 4)[1])
