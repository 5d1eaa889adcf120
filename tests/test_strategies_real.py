"""Slow strategy tests: whole streams on the embedded digits and on real Fashion-MNIST, and the example script.

Deselected by default (``-m slow``). Fashion-MNIST skips with a reason when the data root is absent.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

pytest.importorskip("avalanche")

from ebv_cl.bank import EBVBank  # noqa: E402
from ebv_cl.continual.strategies import build_strategy, head_param_count, predict_logits  # noqa: E402
from ebv_cl.models import create_backbone  # noqa: E402

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "avalanche_ebv_plugin.py"


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def accuracy_on_seen(strategy, built, upto):
    correct = total = 0
    for j in range(upto + 1):
        ds = built.benchmark.test_stream[j].dataset
        loader = torch.utils.data.DataLoader(ds, batch_size=512)
        for x, y, *_ in loader:
            correct += int((predict_logits(strategy, x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def run_stream(built, head, method, *, bank, epochs, hidden=(128,), **kw):
    torch.manual_seed(0)
    backbone = create_backbone("mlp", input_shape=built.input_shape, hidden_sizes=hidden)
    strategy, model = build_strategy(head=head, method=method, backbone=backbone, n_classes_total=built.n_classes,
                                     bank=bank, buffer_size=200, epochs=epochs, batch_size=32, lr=2e-3,
                                     optimizer="adam", seed=0, **kw)
    accs, params = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, exp in enumerate(built.benchmark.train_stream):
            strategy.train(exp)
            accs.append(accuracy_on_seen(strategy, built, i))
            params.append(head_param_count(model))
    return accs, params


@pytest.mark.parametrize("method", ["replay", "der", "icarl", "lwf", "gdumb", "naive"])
@pytest.mark.parametrize("head", ["fc", "ebv"])
def test_split_digits_every_method(head, method):
    from ebv_cl.continual.scenarios import build_scenario

    built = build_scenario({"preset": "split_digits"}, seed=0)
    bank = EBVBank.generate(built.n_classes, 32, seed=0, time_budget=2.0)
    accs, params = run_stream(built, head, method, bank=bank, epochs=5)
    assert accs[0] > 0.9  # two classes, learned
    floor = {"naive": 0.1, "lwf": 0.1}.get(method, 0.5)  # without memory, class-IL forgetting is expected
    assert accs[-1] > floor, accs
    if head == "ebv":
        assert len(set(params)) == 1


def test_split_fashion_mnist_replay(real_data_root):
    from ebv_cl.continual.scenarios import build_scenario

    spec = {"preset": "split_fashion_mnist", "subsample": {"max_per_class_train": 300, "max_per_class_test": 100}}
    built = build_scenario(spec, seed=0, root=real_data_root)
    bank = EBVBank.generate(built.n_classes, 32, seed=0, time_budget=2.0)
    final = {}
    for head in ("fc", "ebv", "ncm", "tau_norm"):
        accs, _ = run_stream(built, head, "replay", bank=bank, epochs=3, hidden=(256,))
        final[head] = accs[-1]
    assert all(a > 0.3 for a in final.values()), final  # 10 classes: chance is 0.1


def test_example_script_runs():
    result = subprocess.run([sys.executable, str(EXAMPLE), "--epochs", "3"], capture_output=True, text=True,
                            timeout=300, check=True)
    last = [line for line in result.stdout.splitlines() if line.startswith("experience 4")]
    assert last, result.stdout
    acc = float(last[0].split("seen so far ")[1].split(",")[0])
    assert acc > 0.6
