"""``HeadedModel.training_output`` and ``HeadLoss``: the training step forms no full logits under a sampled loss.

Methods that read nothing but the criterion train on features (the head's loss scores only its sampled
classes); DER, LwF and iCaRL read the class-id logits and get them; ``HeadLoss`` takes what the model's mode
says and refuses anything else with an error naming the expected shape.
"""

from __future__ import annotations

import copy
import pickle
import types
import warnings

import pytest
import torch

pytest.importorskip("avalanche")

from ebv_cl.bank import EBVBank  # noqa: E402
from ebv_cl.continual.plugins import HeadEpochAccuracy, HeadLoss  # noqa: E402
from ebv_cl.continual.strategies import HeadedModel, build_strategy, find_headed_model  # noqa: E402
from ebv_cl.continual.strategies.methods import METHODS, training_output_of  # noqa: E402
from ebv_cl.errors import ConfigError  # noqa: E402
from ebv_cl.heads import create_head  # noqa: E402

from test_strategies import one_thread  # noqa: E402,F401  (autouse fixture: one torch thread)

CLASSES = 48
SAMPLED = {"sampled_negatives": 4, "hard_negatives": 4}


class Backbone(torch.nn.Module):
    feature_dim = 12

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(6, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


@pytest.fixture(scope="module")
def stream():
    """Two experiences of 24 classes each, 4 training samples per class, class ids kept."""
    from avalanche.benchmarks import nc_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as make

    g = torch.Generator().manual_seed(0)
    y = torch.arange(CLASSES).repeat_interleave(4)
    x = torch.randn(len(y), 6, generator=g) + torch.nn.functional.one_hot(y % 6, 6).float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nc_benchmark(make(x, y), make(x[::4], y[::4]), n_experiences=2, task_labels=False,
                            fixed_class_order=list(range(CLASSES)), class_ids_from_zero_from_first_exp=True)


@pytest.fixture(scope="module")
def bank():
    g = torch.Generator().manual_seed(0)
    return EBVBank(torch.nn.functional.normalize(torch.randn(CLASSES, 8, generator=g), dim=1))


def _build(method, bank, **kw):
    torch.manual_seed(0)
    opts = {"storage": "reservoir"} if method == "replay" else {}
    return build_strategy(head="ebv", method=method, backbone=Backbone(), n_classes_total=CLASSES, bank=bank,
                          head_options={**SAMPLED, "feature_bn": False}, method_options=opts, buffer_size=32,
                          batch_size=8, optimizer="adam", lr=1e-3, seed=0, **kw)


def _count_full_logits(head, monkeypatch):
    """Count calls of the EBV head's full-logits path made while the head is in training mode."""
    calls = {"train": 0, "eval": 0}
    full = head._logits

    def counted(x):
        calls["train" if head.training else "eval"] += 1
        return full(x)

    monkeypatch.setattr(head, "_logits", counted)
    return calls


def test_methods_that_read_no_logits_train_on_features(stream, bank, monkeypatch):
    strategy, model = _build("replay", bank)
    headed = find_headed_model(model)
    assert headed.training_output == "features"
    calls = _count_full_logits(headed.head, monkeypatch)
    sampled = []
    loss = headed.head.training_loss
    monkeypatch.setattr(headed.head, "training_loss",
                        lambda f, c: (sampled.append(headed.head.uses_sampling(f.shape[0])), loss(f, c))[1])
    for experience in stream.train_stream:
        strategy.train(experience)
    assert sampled and all(sampled)  # the sampled softmax ran on every step...
    assert calls["train"] == 0  # ...and no step formed the logits of every class
    strategy.eval(stream.test_stream[:1])
    assert calls["eval"] > 0  # evaluation still scores every class


def test_training_output_follows_the_method():
    for method in ("naive", "replay", "gdumb", "fscil"):
        assert METHODS.traits(method)["training_output"] == "features" and training_output_of(method) == "features"
    for method in ("der", "lwf", "icarl", "a_method_registered_later"):
        assert training_output_of(method) == "logits"


@pytest.mark.parametrize("method", ["der", "lwf"])
def test_methods_that_read_logits_get_them(method, stream, bank, monkeypatch):
    strategy, model = _build(method, bank)
    headed = find_headed_model(model)
    assert headed.training_output == "logits"
    outputs = []
    forward = headed.forward
    monkeypatch.setattr(headed, "forward", lambda x: (outputs.append(forward(x)), outputs[-1])[1])
    for experience in stream.train_stream:
        strategy.train(experience)
    train_out = [o for o in outputs if o.requires_grad]
    assert train_out and all(o.shape[1] == CLASSES for o in train_out)  # class-id logits, DER's fixed width


def test_icarl_classifier_gets_logits(bank):
    strategy, _ = _build("icarl", bank)
    assert strategy.model.train_classifier.training_output == "logits"


def test_head_loss_refuses_an_output_of_the_wrong_shape(bank):
    head = create_head("ebv", 12, bank=bank, feature_bn=False)
    head.add_classes(range(10))
    model = HeadedModel(Backbone(), head, num_outputs=CLASSES, training_output="features").train()
    loss = HeadLoss(model)
    x, y = torch.randn(5, 6), torch.arange(5)
    assert loss(model(x), y).ndim == 0
    with pytest.raises(ValueError, match=r"backbone features .*training_output='features'.* \(5, 12\).*got \(5, 48\)"):
        loss(torch.randn(5, CLASSES), y)
    model.training_output = "logits"
    assert loss(model(x), y).ndim == 0
    with pytest.raises(ValueError, match=r"class-id logits \(training mode.*\(5, 48\).*got \(5, 12\)"):
        loss(torch.randn(5, 12), y)
    with pytest.raises(ValueError, match=r"\(5, 48\).*got \(4, 48\)"):
        loss(torch.randn(4, CLASSES), y)  # a batch that is not the targets' batch
    model.eval()
    with pytest.raises(ValueError, match=r"evaluation mode.*\(5, 48\).*got \(5, 12\)"):
        loss(torch.randn(5, 12), y)
    assert torch.isfinite(loss(model(x), y))


def test_training_output_is_checked_and_survives_copies(bank):
    head = create_head("ebv", 12, bank=bank)
    with pytest.raises(ConfigError, match="training_output must be one of logits, features, got 'feats'"):
        HeadedModel(Backbone(), head, training_output="feats")
    model = HeadedModel(Backbone(), head, num_outputs=CLASSES, training_output="features")
    with pytest.raises(ConfigError, match="training_output"):
        model.training_output = "all"
    assert copy.deepcopy(model).training_output == "features"
    assert pickle.loads(pickle.dumps(model)).training_output == "features"
    old = model.__dict__.copy()  # a model pickled before the option existed
    del old["_training_output"]
    old["last_features"] = None
    again = HeadedModel.__new__(HeadedModel)
    again.__setstate__(old)
    assert again.training_output == "logits" and "last_features" not in again.__dict__


@pytest.mark.parametrize("mode", ["bank", "scan", "index"])
@pytest.mark.parametrize("margin", [0.0, 0.2])
def test_ebv_loss_from_logits_equals_training_loss(mode, margin, bank):
    kw = dict(feature_bn=False, margin=margin, label_smoothing=0.1, hard_negative_mode=mode, seed=3, **SAMPLED)
    heads = []
    for _ in range(2):
        torch.manual_seed(0)
        heads.append(create_head("ebv", 12, bank=bank, **kw))
        heads[-1].add_classes(range(40))
    x, t = torch.randn(6, 12), torch.tensor([0, 3, 3, 7, 21, 39])
    for _ in range(3):  # the same draws, step after step
        a = heads[0].training_loss(x, t)
        b = heads[1].loss_from_logits(heads[1](x), t)
        assert heads[0].uses_sampling(6) and heads[0].last_class_set_size == heads[1].last_class_set_size
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("name", ["fc", "ncm", "hadamard"])
def test_loss_from_logits_equals_training_loss(name, bank):
    torch.manual_seed(0)
    head = create_head(name, 12, **({"bank": bank} if name == "hadamard" else {}))
    head.add_classes(range(5))
    x, t = torch.randn(7, 12), torch.tensor([0, 1, 2, 3, 4, 0, 1])
    if name == "ncm":
        head.update_means(x, t)
    assert torch.allclose(head.training_loss(x, t), head.loss_from_logits(head(x), t))
    with pytest.raises(ValueError, match=r"logits must have shape \(B, 5\)"):
        head.loss_from_logits(torch.randn(7, 4), t)


def _strategy_after_a_step(model, output, targets):
    """The fields of an Avalanche strategy a metric reads after a training step."""
    return types.SimpleNamespace(model=model, mb_output=output, mb_y=targets)


def test_epoch_accuracy_scores_features_through_the_head(bank):
    head = create_head("ebv", 12, bank=bank, feature_bn=False)
    head.add_classes(range(CLASSES))
    model = HeadedModel(Backbone(), head, num_outputs=CLASSES, training_output="features").train()
    x, y = torch.randn(20, 6), torch.randint(CLASSES, (20,))
    s = _strategy_after_a_step(model, model(x), y)
    metric = HeadEpochAccuracy()
    metric.update(s)
    with torch.no_grad():
        expected = (model.scatter(head(model.backbone(x))).argmax(1) == y).float().mean().item()
    assert metric.result() == pytest.approx(expected)
    assert s.mb_output.shape == (20, 12)  # the output itself is features: Avalanche's argmax would be wrong


def test_epoch_accuracy_leaves_the_heads_batch_norm_statistics_alone(bank):
    """Scoring the features a second time must not update the head's running statistics a second time."""
    head = create_head("ebv", 12, bank=bank, projection="mlp", hidden=16, feature_bn=True)
    head.add_classes(range(CLASSES))
    model = HeadedModel(Backbone(), head, num_outputs=CLASSES, training_output="features").train()
    x, y = torch.randn(20, 6), torch.randint(CLASSES, (20,))
    s = _strategy_after_a_step(model, model(x), y)
    head.training_loss(s.mb_output, head.columns_of(y))  # the loss's own forward: one update, as in logits mode
    before = {k: v.clone() for k, v in head.state_dict().items() if "running" in k or "num_batches" in k}
    assert before, "the MLP head with feature_bn has batch norms"
    HeadEpochAccuracy().update(s)
    after = head.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
