"""BankIndex: contract, errors, allocator tracking, and flat search against an independent brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebv_cl import BankIndex, BankMismatchError, EBVBank, NotBuiltError, SlotAllocator
from ebv_cl.index import index_kinds, search_paths
from index_oracle import brute_force

FLAT_PATHS = ["auto", "int8", "fp32", "float64", "faiss"]




def _index(n: int = 300, dim: int = 24, allocated: int = 200, seed: int = 0, **kwargs) -> BankIndex:
    g = torch.Generator().manual_seed(seed)
    bank = EBVBank(torch.randn(n, dim, generator=g))
    allocator = SlotAllocator(n)
    allocator.allocate([f"c{i}" if i % 3 == 0 else i for i in range(allocated)])
    return BankIndex(bank, allocator, **kwargs)


def _queries(index: BankIndex, count: int = 40, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(count, index.dim, generator=g)
    near = index.bank.vectors[torch.randint(0, len(index), (count // 2,), generator=g)]
    q[: count // 2] = near + 0.05 * torch.randn(count // 2, index.dim, generator=g)
    return q


def test_registries_list_kinds_and_paths():
    assert index_kinds() == ["flat", "hnsw", "ivf", "sharded"]
    assert set(search_paths()) == {"int8", "fp32", "float64", "faiss", "wht", "fft"}


@pytest.mark.parametrize("path", FLAT_PATHS)
@pytest.mark.parametrize("k", [1, 3, 200])
def test_flat_equals_brute_force(path, k):
    index = _index(path=path)
    q = _queries(index)
    scores, slots = index.search_slots(q, k)
    ref_scores, ref_slots = brute_force(index.bank.vectors[:200], q, k)
    assert scores.dtype == torch.float32 and slots.dtype == torch.int64
    assert scores.shape == slots.shape == (40, k)
    np.testing.assert_allclose(scores.numpy(), ref_scores, atol=1e-6)
    if path == "faiss":  # float32 ranking: compare where no near-tie can swap it
        assert (slots[:, 0].numpy() == ref_slots[:, 0]).all()
    else:
        assert (slots.numpy() == ref_slots).all()
        assert (scores.numpy() == ref_scores.astype(np.float32)).all()


def test_search_returns_labels_of_the_slots():
    index = _index()
    q = _queries(index)
    scores, labels = index.search(q, 4)
    _, slots = index.search_slots(q, 4)
    assert labels == [[index.allocator.label_of(s) for s in row] for row in slots.tolist()]
    assert isinstance(scores, torch.Tensor) and scores.shape == (40, 4)


def test_single_embedding_and_numpy_and_float64_inputs():
    index = _index()
    v = index.bank.vectors[5]
    for x in (v, v.numpy(), v.double(), 3.0 * v[None, :]):
        _, labels = index.search(x, 1)
        assert labels == [[5]]


def test_class_allocated_after_build_is_found_without_rebuild():
    index = _index(allocated=10).build()
    target = index.bank.vectors[150]
    _, labels = index.search(target, 1)
    assert labels[0][0] != "late"
    index.allocator.allocate([f"x{i}" for i in range(10, 150)] + ["late"])
    _, labels = index.search(target, 1)
    assert labels == [["late"]]


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_kinds_track_the_allocator_and_find_bank_vectors(kind):
    index = _index(n=2000, dim=32, allocated=100, kind=kind)
    _, labels = index.search(index.bank.vectors[:100], 1)
    assert labels == [[index.allocator.label_of(i)] for i in range(100)]
    index.allocator.allocate(range(1000, 1500))
    scores, labels = index.search(index.bank.vectors[100:600], 1)
    hits = sum(row[0] == index.allocator.label_of(100 + i) for i, row in enumerate(labels))
    assert hits >= 0.95 * 500 and not index.exact
    assert scores.shape == (500, 1)


@pytest.mark.parametrize(
    "embeddings, error, match",
    [
        (torch.ones(3, 5), ValueError, r"embeddings must have shape \(n, 24\).*dimension 5 != 24"),
        (torch.ones(2, 3, 24), ValueError, r"embeddings must have shape"),
        (torch.ones(3, 24, dtype=torch.int64), TypeError, r"embeddings must have a floating dtype"),
        ([[1.0] * 24], TypeError, r"embeddings must be a torch.Tensor or numpy.ndarray"),
        (torch.full((2, 24), float("nan")), ValueError, r"embeddings must be finite, but row 0"),
        (torch.cat([torch.ones(1, 24), torch.full((1, 24), float("inf"))]), ValueError, r"row 1 contains NaN or inf"),
        (torch.cat([torch.ones(1, 24), torch.zeros(1, 24)]), ValueError, r"embeddings row 1 has zero norm"),
    ],
)
def test_bad_embeddings_raise_clear_errors(embeddings, error, match):
    with pytest.raises(error, match=match):
        _index().search(embeddings, 1)


@pytest.mark.parametrize(
    "k, error, match",
    [
        (0, ValueError, r"k must be >= 1, got 0"),
        (-2, ValueError, r"k must be >= 1, got -2"),
        (201, ValueError, r"k must be <= the number of allocated classes \(200\), got k=201"),
        (1.5, TypeError, r"k must be an int, got 1.5"),
        (True, TypeError, r"k must be an int, got True"),
    ],
)
def test_bad_k_raises_naming_k(k, error, match):
    index = _index()
    for search in (index.search, index.search_slots):
        with pytest.raises(error, match=match):
            search(torch.ones(1, 24), k)


def test_search_with_no_class_allocated_raises_not_built():
    index = _index(allocated=0)
    with pytest.raises(NotBuiltError, match="no class to search"):
        index.search(torch.ones(1, 24), 1)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"kind": "annoy"}, ValueError, r"unknown index kind 'annoy'; expected one of: flat, hnsw, ivf"),
        ({"path": "int4"}, ValueError, r"unknown search path 'int4'; expected one of: faiss, fft, float64, fp32, int8, wht"),
        ({"kind": "hnsw", "path": "int8"}, ValueError, r"path='int8' only applies to kind 'flat'"),
        ({"kind": "hnsw", "nprobe": 3}, TypeError, r"unknown option\(s\) \['nprobe'\] for index kind 'hnsw'"),
        ({"kind": "flat", "m": 3}, TypeError, r"unknown option\(s\) \['m'\] for index kind 'flat'"),
        ({"kind": "ivf", "nprobe": 0}, ValueError, r"ivf option nprobe must be a positive int, got 0"),
    ],
)
def test_bad_kind_path_and_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        _index(**kwargs).build()


def test_wht_path_on_a_non_kerdock_bank_is_refused():
    with pytest.raises(ValueError, match="path 'wht' needs a bank made by method 'kerdock'"):
        _index(path="wht").build()


def test_constructor_type_and_capacity_checks():
    bank = EBVBank(torch.randn(10, 4))
    with pytest.raises(TypeError, match="bank must be an EBVBank"):
        BankIndex(torch.randn(10, 4), SlotAllocator(10))
    with pytest.raises(TypeError, match="allocator must be a SlotAllocator"):
        BankIndex(bank, {"a": 0})
    with pytest.raises(BankMismatchError, match="allocator capacity 11 exceeds the bank's 10 vectors"):
        BankIndex(bank, SlotAllocator(11))


def test_allocator_reset_to_fewer_classes_is_followed():
    for kind in ("flat", "hnsw"):
        index = _index(kind=kind)
        index.search(torch.ones(1, 24), 1)
        index.allocator.load_state_dict({"capacity": 300, "labels": ["only"]})
        scores, labels = index.search(torch.randn(3, 24), 1)
        assert labels == [["only"]] * 3


def test_int8_path_refuses_cuda_device():
    from ebv_cl.index.stages import MatmulStage

    with pytest.raises(ValueError, match="int8 scoring runs on the CPU"):
        MatmulStage(torch.randn(4, 4), dtype="int8", device=torch.device("cuda"))


def test_memory_and_repr():
    index = _index(path="int8")
    assert index.memory_bytes() == 300 * 24  # the int8 copy of the bank
    assert "BankIndex(kind='flat', path='int8', classes=200, dim=24" in repr(index)
    assert len(index) == 200 and index.exact


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("path", ["auto", "fp32", "float64", "faiss"])
def test_cuda_flat_equals_brute_force(path):
    index = _index(path=path, device="cuda")
    q = _queries(index)
    scores, slots = index.search_slots(q, 3)
    ref_scores, ref_slots = brute_force(index.bank.vectors[:200], q, 3)
    np.testing.assert_allclose(scores.numpy(), ref_scores, atol=1e-6)
    assert (slots[:, 0].numpy() == ref_slots[:, 0]).all()


def test_faiss_path_lowers_the_blas_threshold_only_during_small_batches():
    import faiss

    from ebv_cl.index.paths import _faiss_blas_threshold

    before = faiss.cvar.distance_compute_blas_threshold
    seen = []
    with _faiss_blas_threshold(faiss, 16, 24):
        seen.append(faiss.cvar.distance_compute_blas_threshold)
    with _faiss_blas_threshold(faiss, 1, 24):  # single queries keep the memory-bound scan
        seen.append(faiss.cvar.distance_compute_blas_threshold)
    assert seen == [16 * 24, before] and faiss.cvar.distance_compute_blas_threshold == before
    index = _index(path="faiss")
    _, slots = index.search_slots(index.bank.vectors[:16], 1)
    assert (slots[:, 0] == torch.arange(16)).all() and faiss.cvar.distance_compute_blas_threshold == before


@pytest.mark.parametrize("path", ["int8", "fp32", "faiss", "float64"])
def test_search_results_carry_no_autograd(path):
    """Embeddings straight from a model (requires_grad) give plain scores on every path, as faiss's do."""
    index = _index(path=path)
    q = _queries(index).clone().requires_grad_(True)
    scores, slots = index.search_slots(q * 2.0, 3)
    assert scores.grad_fn is None and not scores.requires_grad and not slots.requires_grad
    scores, _ = index.search(q * 2.0, 3)
    assert scores.grad_fn is None and not scores.requires_grad


def test_head_predict_gives_labels_and_predict_columns_gives_columns():
    from ebv_cl import create_head

    head = create_head("fc", 4)
    head.add_classes(["cat", "dog", "owl"])
    x = torch.randn(5, 4)
    columns = head.predict_columns(x)
    assert columns.dtype == torch.int64 and columns.shape == (5,)
    assert head.predict(x) == [head.classes[c] for c in columns.tolist()]
    assert isinstance(head.trainable_head_params, int) and head.trainable_head_params == 3 * 4 + 3
