"""The EBV head on a code bank: never materialises the bank, samples rows with ``bank.rows``, hard negatives and
predictions through the structured index, and agrees with the same head on the dense copy of the bank."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebv_cl import EBVBank
from ebv_cl.heads import create_head

codes = pytest.importorskip("ebv_cl.bank.codes")


def _code_bank(family, m, n, dim):
    return EBVBank.from_code(codes.SequenceCode(family, m, n, dim))


@pytest.fixture
def no_dense(monkeypatch):
    """Make any read of ``EBVBank.vectors`` on a code bank fail the test."""
    original = EBVBank.vectors

    def guarded(self):
        if getattr(self, "code", None) is not None:
            raise AssertionError("a code bank's dense vectors were read")
        return original.fget(self)

    monkeypatch.setattr(EBVBank, "vectors", property(guarded, original.fset))


def _pair(n=31 * 33, dim=40, **kw):
    bank = _code_bank("gold", 5, n, dim)
    dense = EBVBank(bank.rows(slice(0, n)))
    heads = []
    for b in (bank, dense):
        torch.manual_seed(0)
        head = create_head("ebv", 24, bank=b, **kw)
        head.add_classes(range(n))
        heads.append(head)
    heads[1].projection.load_state_dict(heads[0].projection.state_dict())
    return heads


def test_code_head_matches_the_dense_head(no_dense):
    code_head, dense_head = _pair(sampled_negatives=100, hard_negatives=0)
    x = torch.randn(16, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(code_head(x), dense_head(x))
        assert torch.equal(code_head.predict_columns(x), dense_head.predict_columns(x))
        assert code_head.predict(x) == dense_head.predict(x)
    t = torch.randint(0, 1023, (16,), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(code_head.training_loss(x, t), dense_head.training_loss(x, t))
    assert code_head.last_class_set_size == dense_head.last_class_set_size


@pytest.mark.parametrize("mode", ["bank", "scan", "index"])
def test_code_head_hard_negatives_are_the_nearest_classes(mode, no_dense):
    code_head, _ = _pair(sampled_negatives=50, hard_negatives=5, hard_negative_mode=mode)
    bank = code_head._bank
    targets = torch.tensor([3, 3, 700, 1000])
    x = torch.randn(4, 24, generator=torch.Generator().manual_seed(3))
    z = code_head._scaled_embed(x)
    positives = targets.unique()
    hard = code_head._hard_negatives(z, targets, positives)
    assert hard.numel() == 5 and not set(hard.tolist()) & set(positives.tolist())
    rows = bank.rows(slice(0, bank.n)).double()
    queries = rows[positives] if mode == "bank" else torch.nn.functional.normalize(z.detach().double(), dim=1)
    scores = queries @ rows.T
    scores[:, positives] = -np.inf
    best = scores.max(dim=0).values  # each class at its best score over the candidates' queries
    chosen = best[hard]
    others = best.clone()
    others[hard] = -np.inf
    assert float(chosen.min()) >= float(others.max()) - 1e-6 or mode != "bank"
    if mode == "bank":  # the cache holds 8 other classes of each positive as near as the 8 nearest (ties: any)
        err = 2 * 0.02  # twice a bound of the raw structured scores' error (bf16 wht; fft's is ~1e-6)
        for c in positives.tolist():
            s = rows[c] @ rows.T
            s[c] = -np.inf
            got = code_head._neighbors[c]
            assert len(set(got.tolist())) == 8 and c not in got.tolist() and int(got.min()) >= 0
            eighth = float(s.sort(descending=True).values[7])
            assert float(s[got].min()) >= eighth - err


@pytest.mark.parametrize("classes", [100_000, pytest.param(1_000_000, marks=pytest.mark.slow)])
def test_training_at_many_classes_never_materialises_the_bank(classes, no_dense):
    bank = _code_bank("kasami_large", 8, classes, 256)
    head = create_head("ebv", 32, bank=bank, sampled_negatives=256, hard_negatives=16)
    head.add_classes(range(bank.n))
    assert head.bank_vectors.numel() == 0
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(8, 32, generator=g)
    targets = torch.randint(0, bank.n, (8,), generator=g)
    losses = []
    for _ in range(3):
        loss = head.training_loss(x, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert head.last_class_set_size <= 8 + 16 + 256  # positives (distinct) + hard + sampled
    pred = head.predict_columns(x)
    assert pred.shape == (8,) and int(pred.max()) < bank.n
