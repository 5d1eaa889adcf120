"""Optimising generators (allpairs, sparse), the registry, ``auto``, budgets and validation."""

from __future__ import annotations

import pytest
import torch

from ebv_cl.bank import EBVBank, bank_statistics
from ebv_cl.bank.generate import choose_method, generate_vectors, method_names, random_bank
from ebv_cl.bank.generate.budget import DEFAULT_TIME_BUDGET, Budget
from ebv_cl.bank.generate.neighbours import coherence, top_pairs
from ebv_cl.bank.generate.sparse import SparseConfig, sparse_vectors


def test_method_names() -> None:
    assert method_names() == ["allpairs", "auto", "etf", "gold", "kasami", "kerdock", "orthogonal", "simplex",
                              "smooth", "sparse"]


def test_random_bank_is_seeded_unit_and_leaves_global_rng() -> None:
    state = torch.random.get_rng_state()
    a, b, c = random_bank(50, 8, seed=1), random_bank(50, 8, seed=1), random_bank(50, 8, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.allclose(a.norm(dim=1), torch.ones(50), atol=1e-6)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize(
    "method, n, dim, steps",
    [("allpairs", 200, 16, 40), ("sparse", 200, 16, 40)],
)
def test_optimisers_beat_random_and_are_deterministic(method: str, n: int, dim: int, steps: int) -> None:
    state = torch.random.get_rng_state()
    first = generate_vectors(n, dim, method=method, seed=5, max_steps=steps)
    second = generate_vectors(n, dim, method=method, seed=5, max_steps=steps)
    assert torch.equal(first.vectors, second.vectors)
    assert torch.equal(state, torch.random.get_rng_state())
    exact = bank_statistics(first.vectors).coherence
    assert first.info["final_coherence"] == pytest.approx(exact, abs=1e-5)
    assert exact < 0.9 * coherence(random_bank(n, dim, seed=5))
    assert first.method == method and first.info["steps"] <= steps
    assert first.info["stop_reason"] in {"max steps", "plateau"}
    assert first.vectors.dtype == torch.float32 and first.vectors.device.type == "cpu"


def test_sparse_path_tracks_neighbours_and_reports_refreshes() -> None:
    result = generate_vectors(2100, 8, method="sparse", seed=0, max_steps=4)
    info = result.info
    assert info["mode"] == "sparse" and info["refreshes"] == 3 and info["seconds_per_refresh"] > 0
    assert info["k"] == 64 and info["refresh_every"] == 2
    assert info["final_coherence"] == pytest.approx(bank_statistics(result.vectors).coherence, abs=1e-5)
    assert info["final_coherence"] < coherence(random_bank(2100, 8, seed=0))


def test_sparse_beats_allpairs_at_equal_steps_small() -> None:
    sparse = generate_vectors(200, 16, method="sparse", seed=0, max_steps=60)
    allpairs = generate_vectors(200, 16, method="allpairs", seed=0, max_steps=60)
    assert sparse.info["final_coherence"] < allpairs.info["final_coherence"]


def test_alpha_stop_and_best_bank() -> None:
    result = generate_vectors(100, 32, method="sparse", alpha=0.45, seed=0, max_steps=500)
    assert result.info["stop_reason"] == "alpha reached"
    assert bank_statistics(result.vectors).coherence <= 0.45 + 1e-6


def test_time_budget_and_default_budget() -> None:
    result = generate_vectors(400, 16, method="allpairs", time_budget=0.5)
    assert result.info["stop_reason"] in {"time budget", "plateau"}
    assert result.info["seconds"] < 5.0
    assert Budget.create().time_budget == DEFAULT_TIME_BUDGET
    assert Budget.create(max_steps=3).time_budget is None


@pytest.mark.parametrize(
    "n, dim, expected",
    [(5, 8, "orthogonal"), (8, 8, "orthogonal"), (9, 8, "simplex"), (2112, 64, "kerdock"), (1000, 64, "kerdock"),
     (70, 64, "smooth"), (150, 64, "smooth"), (300, 64, "kerdock"), (3000, 64, "sparse"), (1000, 128, "sparse"), (33024, 256, "kerdock")],
)
def test_auto_choice(n: int, dim: int, expected: str) -> None:
    assert choose_method(n, dim) == expected


def test_auto_returns_concrete_method() -> None:
    result = generate_vectors(20, 9, seed=0, max_steps=5)
    assert result.method == "smooth" and result.info["requested_method"] == "auto"
    assert generate_vectors(1, 7).method == "orthogonal"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n": 0, "dim": 4}, ValueError, "n must be >= 1"),
        ({"n": 4, "dim": 2.0}, TypeError, "dim must be an int"),
        ({"n": 4, "dim": 4, "method": "nope"}, ValueError, "unknown bank generation method 'nope'; expected one of"),
        ({"n": 4, "dim": 4, "alpha": 1.0}, ValueError, "alpha must be in \\(0, 1\\)"),
        ({"n": 4, "dim": 4, "alpha": "x"}, TypeError, "alpha must be a number"),
        ({"n": 4, "dim": 4, "time_budget": 0}, ValueError, "time_budget must be > 0"),
        ({"n": 4, "dim": 4, "max_steps": 0}, ValueError, "max_steps must be >= 1"),
        ({"n": 4, "dim": 4, "seed": 1.5}, TypeError, "seed must be an int"),
    ],
)
def test_validation(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        generate_vectors(**kwargs)


def test_top_pairs_matches_brute_force(random_unit_vectors) -> None:
    v = random_unit_vectors(50, 6)
    values, idx = top_pairs(v, 4, block=7)
    g = (v @ v.T).abs()
    g.fill_diagonal_(-1)
    ref_values, _ = g.topk(4, dim=1)
    assert torch.allclose(values, ref_values, atol=1e-6)
    assert torch.allclose(g.gather(1, idx), ref_values, atol=1e-6)
    assert coherence(v, block=7) == pytest.approx(float(ref_values.max()), abs=1e-6)
    with pytest.raises(ValueError, match="k must be in \\[1, n - 1\\]"):
        top_pairs(v, 50)


def test_sparse_mode_is_deterministic_and_uses_config() -> None:
    def run() -> tuple[torch.Tensor, dict]:
        return sparse_vectors(600, 8, seed=0, budget=Budget.create(max_steps=7), device=torch.device("cpu"),
                              config=SparseConfig(k=8, refresh_every=3, dense_below=10))

    (vectors, info), (again, _) = run(), run()
    assert torch.equal(vectors, again)
    assert vectors.shape == (600, 8) and info["k"] == 8 and info["refreshes"] == 3 and info["mode"] == "sparse"
    assert info["final_coherence"] == pytest.approx(coherence(vectors), abs=1e-6)
    assert info["final_coherence"] < coherence(random_bank(600, 8, seed=0))


def test_ebvbank_generate_and_progress(capsys) -> None:
    bank = EBVBank.generate(64, 8, method="sparse", seed=1, max_steps=10, progress=True)
    assert bank.method == "sparse" and bank.n == 64 and bank.coherence == pytest.approx(
        bank.info["final_coherence"], abs=1e-5)


def test_int8_top_pairs_finds_nearly_the_same_partners(random_unit_vectors) -> None:
    v = random_unit_vectors(400, 13)  # 13 columns: padded to 16 for the int8 product
    ref_values, ref_idx = top_pairs(v, 8)
    values, idx = top_pairs(v, 8, dtype=torch.int8)
    overlap = sum(len(set(a) & set(b)) for a, b in zip(idx.tolist(), ref_idx.tolist())) / idx.numel()
    assert overlap > 0.9
    assert (values - ref_values).abs().max() < 0.03  # int8 rounding, cosine units
    g = (v @ v.T).abs()
    assert torch.allclose(g.gather(1, idx), values, atol=0.03)  # the values belong to the returned partners
    assert not (idx == torch.arange(400)[:, None]).any()  # never the row itself


def test_sparse_int8_refresh_reports_the_exact_coherence() -> None:
    vectors, info = sparse_vectors(3000, 16, seed=0, budget=Budget.create(max_steps=6), device=torch.device("cpu"),
                                   config=SparseConfig(k=8, refresh_every=2, refresh_dtype="int8"))
    assert info["final_coherence"] == pytest.approx(coherence(vectors), abs=1e-6)
    assert info["refreshes"] == 4  # at steps 0, 2, 4 and 6 (the last evaluates the final bank)
    with pytest.raises(ValueError, match="refresh_dtype must be 'auto', 'bfloat16', 'int8', 'float32', got 'fp8'"):
        sparse_vectors(3000, 16, seed=0, budget=Budget.create(max_steps=1), device=torch.device("cpu"),
                       config=SparseConfig(refresh_dtype="fp8"))
