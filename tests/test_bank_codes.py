"""Code banks (Gold, Kasami): families against brute force, row order, the contract surface, the formula file."""

import numpy as np
import pytest
import torch

from ebv_cl import BankFileError, EBVBank
from ebv_cl.bank.codes import SequenceCode, build_family, code_coherence, nominal_max_abs_sum, sample_check
from ebv_cl.bank.codes.choose import choose_code, family_size
from ebv_cl.bank.codes.gf2 import is_primitive, m_sequence, primitive_polynomial
from ebv_cl.errors import BankTooLargeError


def _all_rows(fam):
    s = 1 - 2 * fam.bits(fam.members).astype(np.int64)
    return np.concatenate([np.roll(s, -t, axis=1) for t in range(fam.length)])


def _brute_coherence(rows: torch.Tensor, block: int = 1024) -> float:
    """Largest |cos| of distinct rows by dense products, in row blocks (memory O(block * N))."""
    rows = rows.double()
    best = 0.0
    for start in range(0, rows.shape[0], block):
        g = rows[start : start + block] @ rows.T
        g[torch.arange(g.shape[0]), torch.arange(start, start + g.shape[0])] = 0
        best = max(best, float(g.abs().max()))
    return best


@pytest.mark.parametrize("m", [3, 4, 5, 6, 7, 8])
def test_m_sequence_has_two_level_autocorrelation(m):
    poly = primitive_polynomial(m)
    assert is_primitive(poly, m)
    u = 1 - 2 * m_sequence(poly, m).astype(np.int64)
    n = (1 << m) - 1
    auto = np.array([u @ np.roll(u, -s) for s in range(n)])
    assert auto[0] == n and np.all(auto[1:] == -1)


def test_non_primitive_polynomials_are_refused():
    assert not is_primitive(0b11111, 4)  # x^4+x^3+x^2+x+1 is irreducible but of order 5
    with pytest.raises(ValueError, match="not a primitive polynomial"):
        m_sequence(0b11111, 4)


@pytest.mark.parametrize(
    "family,m",
    [("gold", 3), ("gold", 5), ("gold", 6), ("kasami_small", 4), ("kasami_small", 6), ("kasami_large", 4)],
)
def test_family_rows_are_distinct_and_coherence_matches_theory_and_structure(family, m):
    fam = build_family(family, m)
    assert fam.size == family_size(family, m)
    rows = _all_rows(fam)
    assert len({r.tobytes() for r in rows.astype(np.int8)}) == rows.shape[0]  # no two rows equal
    brute = _brute_coherence(torch.from_numpy(rows).double() / np.sqrt(fam.length))
    code = SequenceCode(family, m, fam.size * fam.length, fam.length)
    coh = code_coherence(code)
    assert coh.exact and coh.value == pytest.approx(brute, abs=1e-12)
    assert brute == pytest.approx(nominal_max_abs_sum(family, m) / fam.length, abs=1e-12)


def test_large_kasami_m6_sampled_rows_against_all_rows():
    fam = build_family("kasami_large", 6)
    code = SequenceCode("kasami_large", 6, fam.size * fam.length, 63)
    rows = code.rows(slice(None)).double()
    picked = torch.from_numpy(np.random.default_rng(0).choice(rows.shape[0], 300, replace=False))
    g = rows[picked] @ rows.T
    g[torch.arange(300), picked] = 0
    assert float(g.abs().max()) == pytest.approx(17 / 63) == pytest.approx(code_coherence(code).value)


def test_large_kasami_m_0_mod_4_excludes_short_period_members():
    fam = build_family("kasami_large", 8)
    assert fam.size == 16 * 257 - 1
    assert fam.short.shape[0] > 0
    seqs = 1 - 2 * fam.bits(fam.members).astype(np.int8)
    # every member has full period 255: no proper divisor shift maps it to itself
    for p in (85, 51, 17, 15, 5, 3):
        assert not np.any(np.all(seqs == np.roll(seqs, -p, axis=1), axis=1))


@pytest.mark.parametrize("n_rows", [5, 40, 63, 100, 1000, 4095])
def test_prefix_coherence_matches_brute_force(n_rows):
    code = SequenceCode("gold", 6, n_rows, 70)
    rows = code.rows(slice(None))
    coh = code_coherence(code)
    brute = _brute_coherence(rows) if n_rows > 1 else 0.0
    assert coh.value == pytest.approx(brute, abs=1e-6)


def test_prefix_exact_all_pairs_path_matches_brute_force():
    # kasami_large m=6 prefix past the small set: force the all-pairs FFT by passing a huge pair budget
    code = SequenceCode("kasami_large", 6, 700, 64)
    brute = _brute_coherence(code.rows(slice(None)))
    coh = code_coherence(code, pair_budget=1e12)
    assert coh.exact and coh.value == pytest.approx(brute, abs=1e-6)
    assert coh.lower <= coh.value <= coh.upper + 1e-12


def test_row_order_contract():
    code = SequenceCode("gold", 5, 100, 40)
    n = code.length
    assert (code.length, code.n_members, code.family) == (31, 4, "gold")
    seqs = code.sequences(np.arange(code.n_members))
    assert seqs.dtype == np.int8 and seqs.shape == (4, 31) and set(np.unique(seqs)) == {-1, 1}
    rows = code.rows(np.arange(100)).numpy()
    for i in (0, 1, 30, 31, 45, 99):
        m, t = divmod(i, n)
        expect = np.roll(seqs[m], -t) / np.sqrt(n)
        assert np.allclose(rows[i, :n], expect) and np.all(rows[i, n:] == 0)
    x = torch.randn(3, 40, dtype=torch.float64)
    i = 45
    m, t = divmod(i, n)
    lhs = x @ torch.from_numpy(rows[i]).double()
    rhs = code.to_code_space(x) @ torch.from_numpy(np.roll(seqs[m], -t) / np.sqrt(n))
    assert torch.allclose(lhs, rhs)
    with pytest.raises(ValueError, match="slots must be in"):
        code.rows(np.array([100]))
    with pytest.raises(ValueError, match="members must be in"):
        code.sequences([4])


def test_code_bank_surface_and_lazy_vectors():
    bank = EBVBank.generate(3000, 128, method="gold")
    assert bank.code is not None and (bank.n, bank.dim, bank.method) == (3000, 128, "gold")
    idx = torch.tensor([0, 5, 2999])
    assert torch.equal(bank.rows(idx), bank.vectors[idx])
    assert torch.allclose(bank.vectors.norm(dim=1), torch.ones(3000))
    assert bank.coherence == pytest.approx(_brute_coherence(bank.vectors), abs=1e-6)
    dense = EBVBank(bank.vectors.clone())
    assert dense.code is None and torch.allclose(dense.rows(idx), bank.rows(idx))
    assert torch.allclose(dense.rows(slice(10, 12)), bank.rows(slice(10, 12)))


def test_huge_code_bank_refuses_vectors_but_serves_rows():
    bank = EBVBank.generate(10_000_000, 1024, method="kasami")
    assert bank.code.family == "kasami_large" and bank.code.length == 1023
    with pytest.raises(BankTooLargeError, match="bank.rows"):
        _ = bank.vectors
    rows = bank.rows(np.array([0, 9_999_999]))
    assert rows.shape == (2, 1024) and torch.allclose(rows.norm(dim=1), torch.ones(2))


def test_formula_file_round_trip_is_small_and_checked(tmp_path):
    bank = EBVBank.generate(262143, 512, method="gold")
    path = tmp_path / "g.ebv"
    bank.save(path)
    assert path.stat().st_size < 4096
    loaded = EBVBank.load(path)
    assert loaded.code.formula() == bank.code.formula() and loaded.sha256() == bank.sha256()
    assert loaded.coherence == pytest.approx(33 / 511)
    assert torch.equal(loaded.rows(np.arange(0, 262143, 9999)), bank.rows(np.arange(0, 262143, 9999)))


def test_choose_code_picks_the_lowest_coherence():
    assert choose_code(262143, 512).family == "gold"
    assert choose_code(1_000_000, 512).family == "kasami_large"
    assert choose_code(10**9, 1024) is None


def test_sample_check_agrees_with_structure():
    code = SequenceCode("gold", 7, 16383, 128)
    check = sample_check(code, 50, seed=1)
    assert check["max_abs_cos"] <= code_coherence(code).value + 1e-9
    assert check["unit_norm_error"] < 1e-6


def test_tampered_formula_file_is_refused(tmp_path):
    import json
    import struct

    bank = EBVBank.generate(5000, 128, method="gold")
    path = tmp_path / "c.ebv"
    bank.save(path)
    raw = path.read_bytes()
    (hlen,) = struct.unpack("<I", raw[8:12])
    header = json.loads(raw[12 : 12 + hlen])
    header["code"]["feedback_polynomial"] = 0b10001001  # x^7 + x^3 + 1: another primitive polynomial
    body = json.dumps(header, sort_keys=True).encode()
    path.write_bytes(raw[:8] + struct.pack("<I", len(body)) + body)
    with pytest.raises(BankFileError, match="checksum"):
        EBVBank.load(path)
    path.write_bytes(raw + b"x")
    with pytest.raises(BankFileError, match="unexpected bytes"):
        EBVBank.load(path)


def _rewrite(path, change, *, rehash=True):
    import hashlib
    import json
    import struct

    raw = path.read_bytes()
    (hlen,) = struct.unpack("<I", raw[8:12])
    header = json.loads(raw[12 : 12 + hlen])
    change(header)
    if rehash:
        body = {k: v for k, v in header.items() if k != "header_sha256"}
        header["header_sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    out = json.dumps(header, sort_keys=True).encode()
    path.write_bytes(raw[:8] + struct.pack("<I", len(out)) + out)


@pytest.fixture
def code_file(tmp_path):
    path = tmp_path / "k.ebv"
    EBVBank.generate(600, 64, method="kasami").save(path)
    return path


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda h: h.update(sequences_sha256="0" * 64), "does not reproduce the sequences"),
        (lambda h: h["code"].update(family="gold"), "invalid code formula"),  # decimations differ
        (lambda h: h["code"].update(m=5), "invalid code formula"),
        (lambda h: h["code"].update(n=10**9), "invalid code formula"),
        (lambda h: h["code"].update(feedback_polynomial=0b1000001), "invalid code formula"),
        (lambda h: h["code"].update(padding="spread"), "invalid code formula"),
        (lambda h: h.update(n=601), "disagree with its formula"),
        (lambda h: h.pop("sequences_sha256"), "required keys"),
    ],
)
def test_mismatched_formula_files_are_clear_errors(code_file, change, match):
    _rewrite(code_file, change)
    with pytest.raises(BankFileError, match=match):
        EBVBank.load(code_file)


def test_formula_with_consistent_but_altered_checksums_is_still_refused(code_file):
    # a forger who also rewrites code_sha256 still fails on the sequence checksum
    def change(h):
        h["code"]["feedback_polynomial"] = 0b1100111  # another primitive polynomial of degree 6
        h["code_sha256"] = SequenceCode.from_formula(h["code"]).sha256()

    _rewrite(code_file, change)
    with pytest.raises(BankFileError, match="does not reproduce"):
        EBVBank.load(code_file)


def test_dense_reader_names_the_formula_format(code_file):
    from ebv_cl.bank.io import read_bank_file

    with pytest.raises(BankFileError, match="code bank"):
        read_bank_file(code_file)


def test_kasami_large_prefix_inside_the_small_set_has_the_small_set_coherence():
    small = build_family("kasami_small", 8)
    code = SequenceCode("kasami_large", 8, small.size * 255, 255)
    assert code_coherence(code).value == pytest.approx(17 / 255)
    assert np.array_equal(code.sequences(slice(None)), SequenceCode("kasami_small", 8, small.size * 255, 255).sequences(slice(None)))


def test_code_methods_refuse_sizes_they_cannot_hold():
    with pytest.raises(ValueError, match="no gold code"):
        EBVBank.generate(5000, 64, method="gold")
    with pytest.raises(ValueError, match="n_rows must be"):
        SequenceCode("gold", 5, 40_000, 31)
    with pytest.raises(ValueError, match="dim must be"):
        SequenceCode("gold", 5, 40, 30)
    with pytest.raises(ValueError, match="m = 2 mod 4"):
        SequenceCode("gold", 8, 40, 300)


@pytest.mark.parametrize(
    "n, dim, expected",
    [(16383, 128, "gold"), (100_000, 512, "gold"), (262_143, 512, "gold"), (1_000_000, 512, "kasami"),
     (1_000_000, 1024, "gold"), (10_000_000, 1024, "kasami"), (1000, 100, "sparse"), (1000, 200, "sparse"),
     (1000, 300, "sparse"), (1000, 400, "sparse"), (1000, 500, "sparse"), (1000, 128, "sparse"),
     (100_000, 1024, "kerdock")],
)
def test_auto_picks_codes_at_large_n_only(n, dim, expected):
    from ebv_cl.bank.generate import choose_method

    assert choose_method(n, dim) == expected


def test_auto_code_bank_meets_the_issue_targets():
    from ebv_cl.bank import coherence_lower_bound

    for (n, d), ratio in {(1_000_000, 512): 1.8, (1_000_000, 1024): 1.5, (10_000_000, 1024): 1.25}.items():
        choice = choose_code(n, d)
        assert choice.coherence <= ratio * coherence_lower_bound(n, d)
    assert choose_code(100_000, 512).coherence <= 0.065


def test_head_uses_a_small_code_bank():
    from ebv_cl import create_head

    bank = EBVBank.generate(5000, 128, method="gold")
    head = create_head("ebv", 16, bank=bank)
    head.add_classes(["a", "b"])
    assert head(torch.randn(3, 16)).shape[0] == 3


def test_prefix_reported_as_labelled_upper_bound_when_not_certified(monkeypatch):
    from ebv_cl.bank.codes import coherence as coh_mod

    code = SequenceCode("gold", 6, 1000, 64)
    monkeypatch.setattr(coh_mod, "_corr_with", lambda code, f_a, members: np.zeros((len(members), code.length), np.int64))
    monkeypatch.setattr(coh_mod, "EXACT_PAIR_BUDGET", 0)
    result = coh_mod.code_coherence(code)
    assert not result.exact and result.value == result.upper == pytest.approx(17 / 63) and result.lower == 0
    stats = coh_mod.code_statistics(code)
    assert not stats.coherence_exact and "UPPER BOUND" in stats.note
