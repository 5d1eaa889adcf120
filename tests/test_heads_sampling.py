"""The sampled softmax of the EBV head, against brute force and the full softmax."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebv_cl import EBVBank
from ebv_cl.heads import EBVHead
from ebv_cl.heads.sampling import (
    blocked_topk,
    draw_excluding,
    hardest_candidates,
    sample_class_set,
    sampled_softmax_loss,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


@pytest.mark.parametrize("n,k,block", [(50, 1, 7), (50, 5, 16), (50, 5, 1000), (3, 5, 2)])
def test_blocked_topk_equals_brute_force(n, k, block):
    q, v = _unit(9, 6, 0), _unit(n, 6, 1)
    exclude = torch.randint(n, (9,), generator=torch.Generator().manual_seed(2))
    scores, idx = blocked_topk(q, v, k, exclude=exclude, block=block)
    full = q @ v.T
    full[torch.arange(9), exclude] = float("-inf")
    kk = min(k, n - 1)
    ref_s, ref_i = full.topk(kk, dim=1)
    torch.testing.assert_close(scores[:, :kk], ref_s)
    assert torch.equal(idx[:, :kk], ref_i)
    assert (idx[:, kk:] == -1).all() and torch.isinf(scores[:, kk:]).all()


def test_hardest_candidates_ranks_distinct_non_excluded_classes():
    idx = torch.tensor([[3, 5, -1], [5, 7, 2]])
    sc = torch.tensor([[0.9, 0.5, 0.0], [0.8, 0.7, 0.95]])
    exclude = torch.tensor([2])
    assert hardest_candidates(idx, sc, exclude, 2).tolist() == [3, 5]
    assert hardest_candidates(idx, sc, exclude, 10).tolist() == [3, 5, 7]


def _hardest_by_brute_force(idx: torch.Tensor, sc: torch.Tensor, exclude: torch.Tensor, k: int) -> list[int]:
    best: dict[int, float] = {}
    for i, s in zip(idx.reshape(-1).tolist(), sc.reshape(-1).tolist()):
        if i >= 0 and i not in set(exclude.tolist()):
            best[i] = max(best.get(i, float("-inf")), s)
    return sorted(best, key=lambda c: -best[c])[:k]


@pytest.mark.parametrize("classes,k,seed", [(5, 3, 0), (40, 10, 1), (40, 60, 2), (10000, 16, 3), (12, 1, 4)])
def test_hardest_candidates_equals_brute_force_with_and_without_repeats(classes, k, seed):
    # Few classes: the k best entries repeat classes (exact dedupe path); many: they do not (fast path).
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(-1, classes, (30, 8), generator=g)
    sc = torch.rand(30, 8, generator=g)
    exclude = torch.randint(classes, (7,), generator=g)
    assert hardest_candidates(idx, sc, exclude, k).tolist() == _hardest_by_brute_force(idx, sc, exclude, k)


def test_hardest_candidates_with_everything_excluded_is_empty():
    idx = torch.tensor([[1, 2], [2, -1]])
    assert hardest_candidates(idx, torch.rand(2, 2), torch.tensor([2, 1]), 4).numel() == 0


@pytest.mark.parametrize("n,taken,count", [(100000, 300, 128), (1000, 10, 500), (50, 49, 5), (64, 0, 64)])
def test_draw_excluding_gives_distinct_free_classes(n, taken, count):
    g = torch.Generator().manual_seed(0)
    taken_set = torch.randperm(n, generator=g)[:taken].sort().values
    drawn = draw_excluding(n, taken_set, count, generator=g)
    assert drawn.numel() == min(count, n - taken)
    assert drawn.unique().numel() == drawn.numel()
    assert not set(drawn.tolist()) & set(taken_set.tolist())
    assert drawn.min() >= 0 and drawn.max() < n


def test_draw_excluding_is_uniform_over_the_free_classes():
    taken = torch.tensor([0, 7, 8])
    draws = torch.cat([draw_excluding(40, taken, 4, generator=torch.Generator().manual_seed(s)) for s in range(2000)])
    counts = np.bincount(draws.numpy(), minlength=40)
    assert counts[[0, 7, 8]].sum() == 0
    free = np.delete(counts, [0, 7, 8])
    expected = 2000 * 4 / 37
    chi2 = float(((free - expected) ** 2 / expected).sum())
    assert chi2 < 80, f"chi-square {chi2:.1f} over 36 degrees of freedom"  # p < 1e-4 beyond ~75


@pytest.mark.parametrize(
    "n,required,extra", [(100, [3, 3, 50, -1], 10), (100, [1, 2], 60), (20, [0], 50), (1000, [], 0)]
)
def test_sample_class_set_contains_required_and_the_right_count(n, required, extra):
    g = torch.Generator().manual_seed(0)
    s = sample_class_set(n, torch.tensor(required, dtype=torch.int64), extra, generator=g)
    req = {r for r in required if r >= 0}
    assert req <= set(s.tolist())
    assert s.numel() == min(n, len(req) + extra)
    assert torch.equal(s, s.unique())  # sorted and distinct


def test_sample_class_set_is_seeded_and_roughly_uniform():
    draws = [sample_class_set(50, torch.tensor([0]), 5, generator=torch.Generator().manual_seed(s)) for s in range(400)]
    again = sample_class_set(50, torch.tensor([0]), 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws[0], again)
    counts = np.bincount(torch.cat(draws).numpy(), minlength=50)[1:]
    expected = 400 * 5 / 49
    assert counts.min() > expected * 0.5 and counts.max() < expected * 1.6


def test_sampled_loss_over_all_classes_equals_full_cross_entropy():
    z, v = _unit(8, 5, 0), _unit(30, 5, 1)
    t = torch.randint(30, (8,), generator=torch.Generator().manual_seed(3))
    full = torch.nn.functional.cross_entropy(z @ v.T / 0.1, t)
    torch.testing.assert_close(sampled_softmax_loss(z, v, t, torch.arange(30), temperature=0.1), full)


def _head(mode: str = "bank", sampled: int | None = 20, hard: int = 6, n: int = 300) -> EBVHead:
    torch.manual_seed(0)
    head = EBVHead(6, EBVBank(_unit(n, 8, 5)), temperature=0.1, sampled_negatives=sampled, hard_negatives=hard,
                   hard_negative_mode=mode)
    head.add_classes(range(n))
    return head


def test_sampled_head_loss_equals_full_loss_when_the_sample_covers_all_classes():
    x, t = torch.randn(16, 6), torch.randint(300, (16,))
    full = torch.nn.functional.cross_entropy(_head(sampled=None)(x), t)
    covering = _head(sampled=300)
    assert not covering.uses_sampling(16)
    torch.testing.assert_close(covering.training_loss(x, t), full)


@pytest.mark.parametrize("mode", ["bank", "scan", "index"])
def test_sampled_head_loss_matches_an_oracle_over_its_class_set(mode):
    head = _head(mode)
    x, t = torch.randn(16, 6, generator=torch.Generator().manual_seed(1)), torch.randint(300, (16,))
    state = head._generator.get_state()
    loss = head.training_loss(x, t)
    # Oracle: the hard negatives by brute force, the random draw replayed from the same generator state.
    with torch.no_grad():
        z = head.embed(x)
        v = head.class_vectors
        queries = v[t.unique()] if mode == "bank" else z
        scores = queries @ v.T
        if mode == "bank":
            scores[torch.arange(queries.shape[0]), t.unique()] = float("-inf")
        else:
            scores[torch.arange(16), t] = float("-inf")
        cand_s, cand_i = scores.topk(8, dim=1)
        if mode == "index":  # the index returns the 9 nearest of each embedding, positives are dropped later
            cand_s, cand_i = (z @ v.T).topk(9, dim=1)
        hard = hardest_candidates(cand_i, cand_s, t, 6)
    g = torch.Generator()
    g.set_state(state)
    class_set = sample_class_set(300, torch.cat([t, hard]), 20, generator=g)
    assert class_set.numel() == t.unique().numel() + 6 + 20
    logits = (z @ v[class_set].T / 0.1).double()
    expect = torch.nn.functional.cross_entropy(logits, torch.searchsorted(class_set, t))
    torch.testing.assert_close(loss.double(), expect, rtol=1e-5, atol=1e-5)
    full = torch.nn.functional.cross_entropy(head(x), t)
    assert loss <= full + 1e-5  # a subset of the classes can only lower the log-partition


def test_sampled_head_trains_to_separate_many_classes():
    # Features are a fixed linear image of each class's bank vector, so a linear projection can undo it.
    n = 400
    torch.manual_seed(0)
    head = EBVHead(16, EBVBank(_unit(n, 8, 5)), temperature=0.1, sampled_negatives=32, hard_negatives=16)
    head.add_classes(range(n))
    mix = torch.randn(8, 16, generator=torch.Generator().manual_seed(7))
    centers = head.class_vectors @ mix
    opt = torch.optim.Adam(head.parameters(), lr=0.02)
    g = torch.Generator().manual_seed(8)
    for _ in range(200):
        t = torch.randint(n, (64,), generator=g)
        x = centers[t] + 0.01 * torch.randn(64, 16, generator=g)
        assert head.uses_sampling(64)
        opt.zero_grad()
        head.training_loss(x, t).backward()
        opt.step()
    acc = float((head.predict_columns(centers) == torch.arange(n)).float().mean())
    assert acc > 0.9, f"accuracy {acc:.3f}"
