"""Every head trained on real data: EMNIST ByClass (62 strongly imbalanced classes, labels as characters).

Slow (deselected by default); skips when ``EBV_CL_DATA`` or the file is absent. The features are the raw
pixels, so every head is a linear model of them and must clearly beat the majority-class rate; the numbers
are printed (``pytest -s``) for the report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import require_data_root
from ebv_cl import EBVBank
from ebv_cl.heads import NCMHead, TauNormHead, create_head, list_heads

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

_FILE = "emnist-byclass-test.npz"


@pytest.fixture(scope="module")
def emnist():
    root = require_data_root()
    if not (root / _FILE).is_file():
        pytest.skip(f"needs {root / _FILE}")
    data = np.load(Path(root) / _FILE)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data["labels"]))[:40000]
    x = torch.from_numpy(data["images"][order].reshape(len(order), -1).astype(np.float32) / 255.0)
    x = x - x[:30000].mean(0)
    labels = [chr(int(data["mapping"][i])) for i in data["labels"][order]]
    return x[:30000], labels[:30000], x[30000:], labels[30000:]




def _train(name: str, x, labels, **kwargs):
    torch.manual_seed(0)
    bank = EBVBank.generate(62, 64, seed=0)  # hadamard takes its capacity (62) from the bank
    head = create_head(name, x.shape[1], bank=bank, **kwargs)
    head.add_classes(sorted(set(labels)))  # str labels, arrival order = sorted characters
    y = head.columns_of(labels)
    if isinstance(head, NCMHead):
        head.update_means(x, labels)
        return head
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    batch = kwargs.get("sampled_negatives") and 32 or 256
    for _ in range(3):
        for idx in torch.randperm(len(y), generator=g).split(batch):
            opt.zero_grad()
            head.training_loss(x[idx], y[idx]).backward()
            opt.step()
    return head


def _accuracy(head, x, labels) -> tuple[float, float]:
    head.eval()
    y = head.columns_of(labels)
    pred = head.predict_columns(x)
    per_class = [float((pred[y == c] == c).float().mean()) for c in y.unique()]
    return float((pred == y).float().mean()), float(np.mean(per_class))


_SAMPLED = {"sampled_negatives": 8, "hard_negatives": 8}


@pytest.mark.parametrize("name,kwargs", [(n, {}) for n in list_heads()] + [("ebv", _SAMPLED)])
def test_head_learns_emnist(emnist, name, kwargs):
    xtr, ltr, xte, lte = emnist
    head = _train(name, xtr, ltr, **kwargs)
    if name == "ebv" and kwargs:
        assert head.uses_sampling(32)
    acc, balanced = _accuracy(head, xte, lte)
    majority = max(lte.count(c) for c in set(lte)) / len(lte)
    print(f"\nEMNIST byclass {name}{kwargs or ''}: accuracy {acc:.3f}, balanced {balanced:.3f} (majority {majority:.3f})")
    assert acc > majority + 0.2


def test_tau_norm_calibration_on_emnist_raises_balanced_accuracy(emnist):
    xtr, ltr, xte, lte = emnist
    head = _train("tau_norm", xtr, ltr)
    assert isinstance(head, TauNormHead)
    _, before = _accuracy(head, xte, lte)
    tau = head.calibrate(xtr[:5000], ltr[:5000])
    acc, after = _accuracy(head, xte, lte)
    print(f"\nEMNIST tau_norm: tau={tau:.2f}, balanced accuracy {before:.3f} -> {after:.3f}, accuracy {acc:.3f}")
    assert 0.0 <= tau <= 1.0 and after >= before - 0.02
