"""Path ``fft`` (structured exact search of code banks) against brute force: ties, sign flips, near-ties,
partial allocation, hypothesis-generated queries, and the FFT error bound its certificate rests on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from code_bank_double import FakeCodeBank
from ebv_cl import BankIndex, SlotAllocator
from ebv_cl.index import choose_path
from ebv_cl.index.rerank import exact_search, unit_queries
from ebv_cl.index.structured import ShiftPath
from ebv_cl.index.walsh import walsh_applies
from index_oracle import brute_force


def _index(bank, allocated=None, **kw):
    allocator = SlotAllocator(bank.n)
    allocator.allocate(range(bank.n if allocated is None else allocated))
    return BankIndex(bank, allocator, device="cpu", **kw)


def _check(bank, queries, k, allocated=None):
    allocated = bank.n if allocated is None else allocated
    index = _index(bank, allocated)
    assert index.engine.name == "fft"
    scores, slots = index.search_slots(queries, k)
    vectors = bank.rows(np.arange(allocated))
    ref_scores, ref_slots = brute_force(vectors, queries, k)
    assert (slots.numpy() == ref_slots).all(), (slots, ref_slots)
    assert (scores.numpy() == ref_scores.astype(np.float32)).all()
    ex_scores, ex_slots = exact_search(vectors, unit_queries(queries.float()), k)
    assert torch.equal(slots, ex_slots) and torch.equal(scores, ex_scores)
    scorers = ("fft", "circulant") + (("wht",) if walsh_applies(bank.code) else ())
    for scorer in scorers:  # every scorer of the path, whichever auto picked
        got_scores, got_slots = ShiftPath(bank, scorer=scorer).search(unit_queries(queries.float()), allocated, k)
        assert torch.equal(got_slots, ex_slots), scorer
        assert torch.equal(got_scores, ex_scores), scorer


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("n,dim,length", [(31 * 20, 32, 31), (63 * 7 + 5, 80, 63), (127 * 3, 127, 127), (15, 16, 15)])
@pytest.mark.parametrize("k", [1, 3])
def test_random_and_near_row_queries_match_brute_force(n, dim, length, k):
    bank = FakeCodeBank(n, dim, length, seed=n)
    rows = bank.rows(np.arange(0, n, max(1, n // 9)))
    queries = torch.cat([_randn(12, dim, seed=1), rows + 0.05 * _randn(*rows.shape, seed=2)])
    _check(bank, queries, min(k, n))


@pytest.mark.parametrize("k", [1, 2, 5])
def test_rows_sign_flips_and_duplicate_queries_tie_lower_slot_first(k):
    bank = FakeCodeBank(31 * 12, 40, 31, seed=3)
    rows = bank.rows(np.array([0, 5, 31, 200, 371]))
    queries = torch.cat([rows, -rows, rows, 7 * rows, rows + rows[[1, 0, 3, 2, 4]]])
    _check(bank, queries, k)


def test_exact_ties_across_every_shift_and_padding_only_queries():
    bank = FakeCodeBank(31 * 10, 40, 31, seed=4)
    const = torch.zeros(3, 40)
    const[:, :31] = 1.0  # the same score for all 31 shifts of a member: ties across whole orbits
    const[1, :31] = -1.0
    pad_only = torch.zeros(2, 40)
    pad_only[:, 31:] = _randn(2, 9, seed=5)  # no component in the code space: every score is exactly 0
    mixed = const[:1] + pad_only[:1]
    _check(bank, torch.cat([const, pad_only, mixed]), 4)


@pytest.mark.parametrize("eps", [1e-7, -1e-7, 3e-8])
def test_near_ties_perturbed_by_1e_7(eps):
    bank = FakeCodeBank(63 * 6, 64, 63, seed=6)
    rows = bank.rows(np.array([3, 64, 200]))
    twin = (rows[0] + rows[1]) / 2  # equidistant from two rows, then nudged
    nudges = _randn(6, 64, seed=7) * eps
    queries = torch.cat([twin[None] + nudges, rows + nudges[:3]])
    _check(bank, queries, 2)


@pytest.mark.parametrize("allocated", [1, 2, 30, 31, 32, 95, 248])
def test_partially_allocated_bank_searches_only_allocated_slots(allocated):
    bank = FakeCodeBank(31 * 8, 32, 31, seed=8)
    rows = bank.rows(np.array([0, 40, 247]))
    queries = torch.cat([rows, _randn(5, 32, seed=9)])
    _check(bank, queries, min(3, allocated), allocated)


def test_index_follows_the_allocator_without_rebuild():
    bank = FakeCodeBank(31 * 4, 32, 31, seed=10)
    allocator = SlotAllocator(bank.n)
    allocator.allocate(range(10))
    index = BankIndex(bank, allocator, device="cpu")
    target = bank.rows(np.array([100]))
    assert int(index.search_slots(target)[1][0, 0]) < 10
    allocator.allocate(range(10, 124))
    assert int(index.search_slots(target)[1][0, 0]) == 100


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e20]),
    k=st.integers(1, 4),
    allocated=st.integers(4, 93),
    sparse=st.booleans(),
)
def test_hypothesis_queries_match_brute_force(seed, scale, k, allocated, sparse):
    bank = FakeCodeBank(31 * 3, 36, 31, seed=11)
    g = np.random.default_rng(seed)
    q = g.integers(-2, 3, size=(4, 36)).astype(np.float32) if sparse else g.standard_normal((4, 36)).astype(np.float32)
    q[np.abs(q).sum(axis=1) == 0, 0] = 1.0
    _check(bank, torch.from_numpy(q) * scale, k, allocated)


def test_auto_path_never_materialises_the_code_bank():
    class NoDense(FakeCodeBank):
        @property
        def vectors(self):
            raise AssertionError("the fft path must not ask for the dense vectors")

    bank = NoDense(127 * 40, 128, 127, seed=12)
    assert choose_path(bank, torch.device("cpu")) == "fft"
    index = _index(bank).build()
    assert index.dim == 128 and index.exact
    bank.rows_fetched = 0  # the build checked the code against a few members' rows
    query = bank.rows(np.array([4321])) + 0.01 * _randn(1, 128, seed=13)
    _, slots = index.search_slots(query, 2)
    assert int(slots[0, 0]) == 4321
    assert bank.rows_fetched < 50  # a handful of re-ranked candidates
    spectra = bank.code.n_members * (index.engine.size // 2 + 1) * 8
    assert index.memory_bytes() == spectra


def test_dense_paths_still_work_on_small_code_banks():
    bank = FakeCodeBank(31 * 5, 32, 31, seed=14)
    queries = _randn(6, 32, seed=15)
    want = _index(bank).search_slots(queries, 2)
    for path in ["int8", "float64"]:
        got = _index(bank, path=path).search_slots(queries, 2)
        assert torch.equal(got[1], want[1]) and torch.equal(got[0], want[0])


def test_fft_scores_within_the_unscaled_bound():
    bank = FakeCodeBank(255 * 6, 256, 255, seed=16)
    path = ShiftPath(bank)
    rows = bank.rows(np.arange(bank.n)).double()
    x = torch.cat([_randn(8, 256, seed=17), bank.rows(np.array([0, 700])), torch.ones(1, 256)])
    x = unit_queries(x)
    blocks = path._fft_blocks(path._code_space(x), bank.n)
    got = torch.cat([b.reshape(x.shape[0], -1) for _, b, _, _ in blocks], dim=1)
    err = (got.double() - x.double() @ rows.T).abs().amax(dim=1)
    assert bool((err <= path._raw_error * x[:, :255].double().norm(dim=1)).all()), (err, path._raw_error)
    assert path.error == pytest.approx(16 * path._raw_error, rel=0.2)


def test_path_refuses_a_code_that_does_not_describe_the_rows():
    bank = FakeCodeBank(31 * 3, 32, 31, seed=18)
    other = FakeCodeBank(31 * 3, 32, 31, seed=19)
    bank.code = other.code
    bank.rows = FakeCodeBank(31 * 3, 32, 31, seed=18).rows
    with pytest.raises(ValueError, match="does not describe its rows"):
        ShiftPath(bank)


def test_scorer_choice_and_bad_scorer():
    assert ShiftPath(FakeCodeBank(31 * 3, 32, 31)).scorer == "fft"
    assert ShiftPath(FakeCodeBank(31 * 3, 32, 31), scorer="circulant").scorer == "circulant"
    with pytest.raises(ValueError, match="scorer must be"):
        ShiftPath(FakeCodeBank(31 * 3, 32, 31), scorer="int4")


def test_path_fft_on_a_dense_bank_is_a_clear_error():
    from ebv_cl import EBVBank

    bank = EBVBank(_randn(20, 8, seed=20))
    with pytest.raises(ValueError, match="path 'fft' needs a code bank"):
        _index(bank, path="fft").build()


def _real(family, m, n_rows, dim):
    codes = pytest.importorskip("ebv_cl.bank.codes")
    from ebv_cl import EBVBank

    return EBVBank.from_code(codes.SequenceCode(family, m, n_rows, dim))


@pytest.mark.parametrize("family,m,n_rows,dim", [("gold", 5, 31 * 33, 40), ("gold", 6, 63 * 20 + 7, 64),
                                                 ("kasami_small", 6, 63 * 8, 70), ("kasami_large", 4, 15 * 40, 16)])
def test_real_code_banks_match_brute_force(family, m, n_rows, dim):
    bank = _real(family, m, n_rows, dim)
    rows = bank.rows(np.array([0, 17, n_rows - 1]))
    queries = torch.cat([_randn(8, dim, seed=21), rows, -rows, rows + 1e-7 * _randn(3, dim, seed=22)])
    for allocated in (n_rows, n_rows // 2 + 3):
        _check(bank, queries, 3, allocated)
