"""Strategies: every head under every method on tiny digits data, with the evaluation contract checked.

The contract: after ``strategy.train(experience)``, ``model.eval(); model(x).argmax(1)`` is a class id, the
model's output at class id ``c`` is the head's prediction logit of ``c``'s column, and nothing predicts a
class the strategy has not seen. Tiny data (4 classes, 2 experiences, 1 epoch) keeps the whole grid fast.
"""

from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("avalanche")

from ebv_cl.bank import EBVBank  # noqa: E402
from ebv_cl.continual.strategies import (  # noqa: E402
    HeadedModel,
    build_strategy,
    check_combination,
    find_headed_model,
    head_names,
    head_param_count,
    method_names,
    predict_logits,
)
from ebv_cl.errors import ConfigError  # noqa: E402
from ebv_cl.models import create_backbone  # noqa: E402

REJECTED = {("ncm", "icarl"), ("tau_norm", "icarl"), ("tau_norm", "gdumb")}
GRID = [(h, m) for h in head_names() for m in method_names() if (h, m) not in REJECTED]


def tiny_digits(order=(0, 1, 2, 3), per_class=24, test_per_class=8):
    """A 2-experience nc_benchmark on 4 digit classes (ids remapped in arrival order unless noted)."""
    from avalanche.benchmarks import nc_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as make
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y)
    tr, te = [], []
    for c in order:
        idx = (y == c).nonzero().flatten()
        tr.append(idx[:per_class])
        te.append(idx[per_class : per_class + test_per_class])
    tr, te = torch.cat(tr), torch.cat(te)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nc_benchmark(make(x[tr], y[tr]), make(x[te], y[te]), n_experiences=2, task_labels=False,
                            fixed_class_order=list(order), class_ids_from_zero_from_first_exp=True)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a loaded 2-core machine: intra-op threads cost ~10x more than they give."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def bench():
    return tiny_digits()


@pytest.fixture(scope="module")
def bank():
    g = torch.Generator().manual_seed(0)
    return EBVBank(torch.nn.functional.normalize(torch.randn(16, 8, generator=g), dim=1))


def make_strategy(head, method, bank, **kw):
    torch.manual_seed(0)
    backbone = create_backbone("mlp", input_shape=(1, 8, 8), hidden_sizes=(32,))
    args = dict(head=head, method=method, backbone=backbone, n_classes_total=4, bank=bank, buffer_size=16,
                epochs=1, batch_size=16, eval_batch_size=64, lr=0.01, optimizer="adam", seed=0)
    args.update(kw)
    return build_strategy(**args)


def stacked(dataset):
    xs, ys = zip(*[(dataset[i][0], int(dataset[i][1])) for i in range(len(dataset))])
    return torch.stack(xs), torch.tensor(ys)


@pytest.mark.parametrize("head,method", GRID, ids=[f"{h}+{m}" for h, m in GRID])
def test_every_head_under_every_method(head, method, bench, bank):
    strategy, model = make_strategy(head, method, bank)
    seen: list[int] = []
    for exp in bench.train_stream:
        strategy.train(exp)
        seen += sorted(exp.classes_in_this_experience)
        assert model is strategy.model, "the returned model must stay the strategy's model"
        headed = find_headed_model(model)
        assert headed.head.classes == seen
        x, y = stacked(bench.test_stream[0].dataset)
        model.eval()
        with torch.no_grad():
            out = model(x)
        assert out.shape == (len(x), 4) and bool(torch.isfinite(out).all())
        assert set(out.argmax(1).tolist()) <= set(seen)
        assert torch.equal(out, predict_logits(strategy, x))
        if method != "icarl":  # iCaRL predicts by nearest mean of exemplars, not by the head
            with torch.no_grad():
                col_logits = headed.head.prediction_logits(headed.backbone(x))
            ids = torch.tensor(seen)
            assert torch.allclose(out[:, ids], col_logits[:, headed.head.columns_of(seen)])
    assert head_param_count(model) == headed.head.trainable_head_params


@pytest.mark.parametrize("head,method", sorted(REJECTED))
def test_nonsensical_combinations_are_config_errors(head, method, bank):
    with pytest.raises(ConfigError, match=rf"'{head}\+{method}' is not supported: .*"):
        check_combination(head, method)
    with pytest.raises(ConfigError, match="is not supported"):
        make_strategy(head, method, bank)


def test_der_with_growing_fc_pads_stored_logits(bench, bank):
    from ebv_cl.continual.strategies import PAD_LOGIT

    strategy, model = make_strategy("fc", "der", bank)
    for exp in bench.train_stream:  # the second would fail with a size mismatch without fixed-width logits
        strategy.train(exp)
    buffer = strategy.storage_policy.buffer
    rows = {}
    for i in range(len(buffer)):
        rows.setdefault(int(buffer[i][1]), []).append(buffer[i][3])
    assert sorted(rows) == [0, 1, 2, 3]
    old = torch.stack(rows[0] + rows[1])
    assert old.shape[1] == 4 and bool((old[:, 2:] == PAD_LOGIT).all()) and bool((old[:, :2] > PAD_LOGIT).all())
    new = torch.stack(rows[2] + rows[3])
    assert bool((new > PAD_LOGIT).all())


def test_ebv_head_params_constant_fc_grows(bench, bank):
    counts = {}
    for head in ("ebv", "fc"):
        strategy, model = make_strategy(head, "naive", bank)
        counts[head] = []
        for exp in bench.train_stream:
            strategy.train(exp)
            counts[head].append(head_param_count(model))
    assert counts["ebv"][0] == counts["ebv"][1] > 0
    dim = 32
    assert counts["fc"] == [2 * (dim + 1), 4 * (dim + 1)]


def test_fc_rows_of_new_classes_are_optimised(bench, bank):
    from avalanche.core import SupervisedPlugin

    class Watch(SupervisedPlugin):
        def before_training_exp(self, strategy, **kwargs):
            self.before = find_headed_model(strategy.model).head.weight.detach().clone()

        def after_training_exp(self, strategy, **kwargs):
            self.after = find_headed_model(strategy.model).head.weight.detach().clone()

    watch = Watch()
    plugins = [watch]
    strategy, _ = make_strategy("fc", "replay", bank, plugins=plugins)
    assert plugins == [watch], "the caller's plugin list must not be modified"
    for exp in bench.train_stream:
        strategy.train(exp)
    assert watch.before.shape == (4, 32)
    assert not torch.allclose(watch.before[2:], watch.after[2:])


@pytest.mark.parametrize("arrivals", [[[3, 1], [0, 2]], [[0, 1], [2, 3]], [[2], [0, 3, 1]]])
def test_outputs_are_indexed_by_class_id_whatever_the_arrival_order(arrivals):
    from ebv_cl.continual.strategies import PAD_LOGIT
    from ebv_cl.heads import create_head

    torch.manual_seed(0)
    model = HeadedModel(torch.nn.Identity(), create_head("fc", 5), num_outputs=4).eval()
    x = torch.randn(7, 5)
    seen = []
    for group in arrivals:
        model.head.add_classes(group)
        seen += group
        out = model(x)
        cols = model.head(x)
        for c in range(4):
            expected = cols[:, model.head.columns_of([c])[0]] if c in seen else torch.full((7,), PAD_LOGIT)
            assert torch.equal(out[:, c], expected)


def test_der_logits_plugin_neutralises_only_padded_entries():
    from types import SimpleNamespace

    from ebv_cl.continual.plugins import DERLogitsPlugin
    from ebv_cl.continual.strategies import PAD_LOGIT

    stored = torch.tensor([[1.0, 2.0, PAD_LOGIT], [3.0, PAD_LOGIT, PAD_LOGIT]])
    output = torch.tensor([[9.0, 9.0, 7.0], [8.0, 6.0, 5.0], [0.0, 0.0, 0.0]], requires_grad=True)
    strategy = SimpleNamespace(batch_logits=stored, replay_loader=object(), mb_output=output)
    DERLogitsPlugin().after_forward(strategy)
    assert torch.equal(strategy.batch_logits, torch.tensor([[1.0, 2.0, 7.0], [3.0, 6.0, 5.0]]))
    assert not strategy.batch_logits.requires_grad
    idle = SimpleNamespace(batch_logits=stored, replay_loader=None, mb_output=output)
    DERLogitsPlugin().after_forward(idle)
    assert idle.batch_logits is stored


def test_build_does_not_touch_global_rng(bank):
    backbone = create_backbone("mlp", input_shape=(1, 8, 8), hidden_sizes=(32,))
    before = torch.get_rng_state()
    build_strategy(head="fc", method="replay", backbone=backbone, n_classes_total=4, buffer_size=8, seed=3)
    build_strategy(head="ebv", method="der", backbone=backbone, n_classes_total=4, bank=bank, buffer_size=8)
    assert torch.equal(before, torch.get_rng_state())


def test_head_init_is_seeded(bank):
    def weights(seed):
        backbone = create_backbone("mlp", input_shape=(1, 8, 8), hidden_sizes=(32,))
        _, model = build_strategy(head="ebv", method="naive", backbone=backbone, n_classes_total=4, bank=bank,
                                  seed=seed)
        return [p.detach().clone() for p in find_headed_model(model).head.parameters()]

    a, b, c = weights(1), weights(1), weights(2)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(p, q) for p, q in zip(a, c))


def test_gdumb_keeps_the_callers_model(bench, bank):
    strategy, model = make_strategy("fc", "gdumb", bank)
    for exp in bench.train_stream:
        strategy.train(exp)
        assert strategy.model is model and isinstance(model, HeadedModel)


def test_icarl_never_predicts_unseen_classes(bench, bank):
    strategy, model = make_strategy("fc", "icarl", bank)
    strategy.train(bench.train_stream[0])
    x, _ = stacked(bench.test_stream[1].dataset)  # only classes 2, 3: not seen yet
    assert set(predict_logits(strategy, x).argmax(1).tolist()) <= {0, 1}


def test_tau_norm_calibrates_on_held_out_data(bench, bank):
    strategy, model = make_strategy("tau_norm", "replay", bank, head_options={"holdout_fraction": 0.25})
    tau_plugin = next(p for p in strategy.plugins if type(p).__name__ == "TauCalibrationPlugin")
    for exp in bench.train_stream:
        strategy.train(exp)
    assert sorted(tau_plugin.held_out) == [0, 1, 2, 3]
    assert all(len(ds) == 6 for ds in tau_plugin.held_out.values())  # ceil(0.25 * 24)
    assert len(tau_plugin.history) == 2 and all(0.0 <= t <= 1.0 for t in tau_plugin.history)
    assert float(find_headed_model(model).head.tau) == tau_plugin.history[-1]


def test_ncm_means_cover_every_seen_class_with_replay(bench, bank):
    strategy, model = make_strategy("ncm", "replay", bank)
    for exp in bench.train_stream:
        strategy.train(exp)
    head = find_headed_model(model).head
    assert bool((head.counts > 0).all()) and head.counts.tolist()[2:] == [24.0, 24.0]


@pytest.mark.parametrize("head", ["fc", "ebv", "ncm", "tau_norm"])
def test_trained_model_state_dict_round_trips(head, bench, bank):
    strategy, model = make_strategy(head, "replay", bank)
    for exp in bench.train_stream:
        strategy.train(exp)
    _, fresh = make_strategy(head, "replay", bank)
    fresh.load_state_dict(model.state_dict())
    x, _ = stacked(bench.test_stream[1].dataset)
    assert torch.equal(predict_logits(fresh, x), predict_logits(model, x))


def test_replay_with_a_reservoir_buffer(bench, bank):
    strategy, _ = make_strategy("ebv", "replay", bank, method_options={"storage": "reservoir"})
    for exp in bench.train_stream:
        strategy.train(exp)
    replay = next(p for p in strategy.plugins if type(p).__name__ == "ReplayPlugin")
    assert type(replay.storage_policy).__name__ == "ReservoirSamplingBuffer"
    assert len(replay.storage_policy.buffer) == 16


def test_outputs_stay_finite_for_a_class_the_head_cannot_score_yet():
    from ebv_cl.continual.strategies import PAD_LOGIT
    from ebv_cl.heads import create_head

    model = HeadedModel(torch.nn.Identity(), create_head("ncm", 3), num_outputs=3).eval()
    model.head.add_classes([0, 1])
    model.head.update_means(torch.eye(3)[:1], [0])  # class 1 has no mean: the head says -inf
    out = model(torch.eye(3))
    assert bool(torch.isfinite(out).all())
    assert bool((out[:, 1] == PAD_LOGIT).all()) and bool((out[:, 2] == PAD_LOGIT).all())
    assert out.argmax(1).tolist() == [0, 0, 0]
