"""The few-shot class-incremental protocol: imprinting, alignment, session updates, the ``fscil`` method."""

from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("avalanche")

from ebv_cl.bank import EBVBank  # noqa: E402
from ebv_cl.continual.sessions import HEAD_UPDATES, apply_session_update, resolve_session_update  # noqa: E402
from ebv_cl.continual.strategies import build_strategy, find_headed_model  # noqa: E402
from ebv_cl.errors import ConfigError  # noqa: E402
from ebv_cl.heads import create_head, list_heads  # noqa: E402
from ebv_cl.heads.align import align_head, solve_alignment  # noqa: E402
from ebv_cl.heads.imprint import class_means, imprint_classes  # noqa: E402
from ebv_cl.models import create_backbone  # noqa: E402

from test_strategies import one_thread, stacked, tiny_digits  # noqa: E402,F401  (one_thread: autouse fixture)


@pytest.fixture(scope="module")
def bank():
    g = torch.Generator().manual_seed(0)
    return EBVBank(torch.nn.functional.normalize(torch.randn(16, 8, generator=g), dim=1))


@pytest.fixture(scope="module")
def bench():
    return tiny_digits()


def _feats(n=12, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g)


# ------------------------------------------------------------------------------------------ imprinting
def test_class_means_by_hand():
    classes, means = class_means(torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]]), torch.tensor([7, 7, 2]))
    assert classes.tolist() == [2, 7]
    assert torch.allclose(means, torch.tensor([[5.0, 5.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="at least one sample"):
        class_means(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize("name", ["fc", "tau_norm", "angular"])
def test_imprint_sets_normalised_means_at_the_old_rows_norm(name):
    torch.manual_seed(0)
    head = create_head(name, 6)
    head.add_classes([10, 11, 12])
    old = head.weight.detach().clone()
    head.add_classes([13, 14])
    x, y = _feats(), torch.tensor([13, 14] * 6)
    assert imprint_classes(head, x, y) == [3, 4]
    assert torch.equal(head.weight[:3], old)  # trained rows untouched
    scale = old.norm(dim=1).mean()
    for col, label in ((3, 13), (4, 14)):
        mean = torch.nn.functional.normalize(x[y == label], dim=1).mean(0)
        assert torch.allclose(head.weight[col], torch.nn.functional.normalize(mean, dim=0) * scale, atol=1e-6)
    if head.bias is not None:
        assert torch.allclose(head.bias[3:], head.bias[:3].mean().expand(2))


def test_imprint_calibrates_a_linear_head_against_the_trained_classes():
    torch.manual_seed(0)
    head = create_head("fc", 8)
    head.add_classes([0, 1, 2])
    anchors = (torch.rand(3, 8), torch.tensor([0, 1, 2]))
    head.add_classes([3, 4])
    x, y = torch.rand(10, 8), torch.tensor([3, 4] * 5)  # non-negative, like ReLU features
    imprint_classes(head, x, y, anchors=anchors)
    with torch.no_grad():
        target = head(anchors[0])[torch.arange(3), torch.arange(3)].mean()
        means = torch.stack([x[y == c].mean(0) for c in (3, 4)])
        own = head(means)[torch.arange(2), torch.tensor([3, 4])]
    assert torch.allclose(own, target.expand(2), atol=1e-5)


@pytest.mark.parametrize("name", ["ncm", "ebv"])
def test_imprint_refuses_heads_without_rows(name, bank):
    head = create_head(name, 8, bank=bank)
    head.add_classes([0])
    with pytest.raises(TypeError, match="one weight row per class"):
        imprint_classes(head, torch.randn(2, 8), torch.tensor([0, 0]))


# ------------------------------------------------------------------------------------------- alignment
def test_align_lowers_the_loss_and_touches_only_the_head(bank):
    torch.manual_seed(0)
    head = create_head("ebv", 6, bank=bank)
    head.add_classes([0, 1, 2])
    x, y = _feats(), torch.tensor([0, 1, 2] * 4)
    head.eval()  # alignment runs in eval mode (batch-norm statistics of the base session kept)
    before = head.training_loss(x, head.columns_of(y)).item()
    head.train()
    losses = align_head(head, x, y, steps=30, lr=0.01)
    assert len(losses) == 30 and losses[0] == pytest.approx(before)
    assert losses[-1] < before
    assert not x.requires_grad and head.training is True
    frozen = [p.detach().clone() for p in head.parameters()]
    assert align_head(head, x, y, steps=0, lr=0.01) == []
    assert all(torch.equal(a, b) for a, b in zip(frozen, head.parameters()))


@pytest.mark.parametrize("kwargs, match", [({"steps": -1, "lr": 0.1}, "steps"), ({"steps": 1, "lr": 0.0}, "lr"),
                                           ({"steps": 1, "lr": 0.1, "weight_decay": -1.0}, "weight_decay")])
def test_align_rejects_bad_arguments(kwargs, match, bank):
    head = create_head("ebv", 6, bank=bank)
    head.add_classes([0])
    with pytest.raises(ValueError, match=match):
        align_head(head, _feats(2), torch.tensor([0, 0]), **kwargs)


def test_align_proximity_keeps_the_projection_nearer_its_start(bank):
    moved = []
    for proximity in (0.0, 10.0):
        torch.manual_seed(0)
        head = create_head("ebv", 6, bank=bank, projection="linear", feature_bn=False)
        head.add_classes([0, 1, 2])
        start = [p.detach().clone() for p in head.parameters()]
        losses = align_head(head, _feats(), torch.tensor([0, 1, 2] * 4), steps=20, lr=0.05, proximity=proximity)
        assert len(losses) == 20
        moved.append(sum(float(((p.detach() - p0) ** 2).sum()) for p, p0 in zip(head.parameters(), start)))
    assert 0 < moved[1] < moved[0] / 2
    with pytest.raises(ValueError, match="proximity must be >= 0, got -1"):
        align_head(head, _feats(), torch.tensor([0, 1, 2] * 4), steps=1, lr=0.1, proximity=-1)


def _bn_ready(head, classes, d=6):
    head.add_classes(classes)
    head.train()
    with torch.no_grad():
        head(_feats(64, d, seed=5) * 2 + 1)  # batch-norm running statistics away from (0, 1)
    head.eval()
    return head


@pytest.mark.parametrize("options", [{"projection": "linear", "feature_bn": False},
                                     {"projection": "linear", "feature_bn": True, "bias": False},
                                     {"projection": "mlp", "hidden": 16}])
def test_solve_alignment_without_ridge_puts_every_mean_on_its_vector(options, bank):
    torch.manual_seed(0)
    head = _bn_ready(create_head("ebv", 6, bank=bank, **options), [10, 11, 12, 13, 14])
    means = _feats(5, seed=1)
    before = torch.nn.functional.normalize(head.embed(means), dim=1)
    cos = solve_alignment(head, means, [10, 11, 12, 13, 14], ridge=0.0)
    # 5 means, 6 or 7 free weights per output: an exact fit
    assert cos.shape == (5,) and torch.allclose(cos, torch.ones(5), atol=1e-4)
    z = head.embed(means)
    assert torch.allclose((z * head.class_vectors).sum(1), torch.ones(5), atol=1e-4)
    assert head.predict(means) == [10, 11, 12, 13, 14]
    assert not torch.allclose(before, z)
    assert head.training is False


def test_solve_alignment_is_the_ridge_solution_towards_the_old_weights(bank):
    torch.manual_seed(0)
    head = create_head("ebv", 6, bank=bank, projection="linear", feature_bn=False)
    head.add_classes(list(range(12)))
    means, labels = _feats(12, seed=2), list(range(12))
    w0, b0 = head.projection.weight.detach().clone(), head.projection.bias.detach().clone()
    with torch.no_grad():
        norms = head.projection(means).norm(dim=1, keepdim=True)
    ridge = 0.3
    solve_alignment(head, means, labels, ridge=ridge)
    # by hand: stack [H; sqrt(lam) I] theta^T = [T; sqrt(lam) theta0^T] and solve by least squares
    h = torch.cat([means, torch.ones(12, 1)], 1).double()
    lam = ridge * float((h * h).sum()) / h.shape[1]
    t = (head.class_vectors * norms).double()
    theta0 = torch.cat([w0, b0[:, None]], 1).double()
    a = torch.cat([h, lam ** 0.5 * torch.eye(7, dtype=torch.float64)])
    rhs = torch.cat([t, lam ** 0.5 * theta0.T])
    theta = torch.linalg.lstsq(a, rhs).solution.T.float()
    assert torch.allclose(head.projection.weight, theta[:, :6], atol=1e-4)
    assert torch.allclose(head.projection.bias, theta[:, 6], atol=1e-4)


def test_solve_alignment_with_a_large_ridge_keeps_the_layer(bank):
    torch.manual_seed(0)
    head = create_head("ebv", 6, bank=bank, projection="linear", feature_bn=False)
    head.add_classes([0, 1, 2])
    w0 = head.projection.weight.detach().clone()
    solve_alignment(head, _feats(3), [0, 1, 2], ridge=1e9)
    assert torch.allclose(head.projection.weight, w0, atol=1e-5)


def test_solve_alignment_keep_holds_the_older_outputs(bank):
    torch.manual_seed(0)
    head = _bn_ready(create_head("ebv", 6, bank=bank, projection="mlp", hidden=16), [0, 1, 2, 3])
    means = _feats(4, seed=4)
    with torch.no_grad():
        old = head.projection(means[:2]).clone()
    cos = solve_alignment(head, means, [0, 1, 2, 3], ridge=0.0, keep=[0, 1])
    with torch.no_grad():
        assert torch.allclose(head.projection(means[:2]), old, atol=1e-4)  # the kept classes did not move
    assert torch.allclose(cos[2:], torch.ones(2), atol=1e-4)  # the others sit on their vectors


def test_solve_alignment_rejects_bad_input(bank):
    head = create_head("ebv", 6, bank=bank)
    head.add_classes([0, 1])
    with pytest.raises(ValueError, match="ridge must be >= 0, got -0.5"):
        solve_alignment(head, _feats(2), [0, 1], ridge=-0.5)
    with pytest.raises(ValueError, match="one entry per mean"):
        solve_alignment(head, _feats(3), [0, 1], ridge=0.1)
    fc = create_head("fc", 6)
    fc.add_classes([0, 1])
    with pytest.raises(TypeError, match="projection and fixed class_vectors"):
        solve_alignment(fc, _feats(2), [0, 1], ridge=0.1)
    none = create_head("ebv", 8, bank=bank, projection="none")
    none.add_classes([0, 1])
    with pytest.raises(TypeError, match="ends in nn.Linear, got Identity"):
        solve_alignment(none, _feats(2, 8), [0, 1], ridge=0.1)


# ------------------------------------------------------------------------------------ session updates
def test_every_head_has_a_session_update():
    assert {"fc", "ncm", "tau_norm", "ebv", "hadamard", "angular"} <= set(HEAD_UPDATES) | set(list_heads())
    assert all(resolve_session_update(h, "auto") in HEAD_UPDATES.get(h, ("none",)) for h in list_heads())
    assert resolve_session_update("fc", "auto") == "imprint"
    assert resolve_session_update("ncm", "auto") == "means"
    assert resolve_session_update("ebv", "auto") == "solve"
    assert resolve_session_update("hadamard", "auto") == "align"
    assert resolve_session_update("ebv", "none") == "none"
    assert resolve_session_update("ebv", "solve") == "solve"
    with pytest.raises(ConfigError, match="'solve' does not apply to head 'fc'"):
        resolve_session_update("fc", "solve")
    with pytest.raises(ConfigError, match="'imprint' does not apply to head 'ebv'; it allows: solve, align, none"):
        resolve_session_update("ebv", "imprint")
    with pytest.raises(ConfigError, match="session_update must be 'auto' or one of"):
        resolve_session_update("fc", "magic")


def test_means_update_is_idempotent():
    head = create_head("ncm", 6)
    head.add_classes([0, 1])
    x, y = _feats(), torch.tensor([0, 1] * 6)
    apply_session_update("means", head, x, y)
    first = head.means.clone()
    apply_session_update("means", head, x, y)
    assert torch.allclose(head.means, first)


def test_align_update_uses_the_anchors(bank):
    torch.manual_seed(0)
    head = create_head("ebv", 6, bank=bank)
    head.add_classes([0, 1, 2, 3])
    anchors = (torch.randn(2, 6), torch.tensor([0, 1]))
    opts = {"align_steps": 40, "align_lr": 0.05}
    apply_session_update("align", head, _feats(8), torch.tensor([2, 3] * 4), anchors=anchors, options=opts)
    assert head.prediction_logits(anchors[0]).argmax(1).tolist() == [0, 1]  # the old classes' means still land on their vectors


def test_solve_update_places_the_anchors_and_the_new_means(bank):
    torch.manual_seed(0)
    head = _bn_ready(create_head("ebv", 6, bank=bank), [0, 1, 2, 3])
    anchors = (_feats(2, seed=3), torch.tensor([0, 1]))
    x, y = _feats(8), torch.tensor([2, 3] * 4)
    means = torch.cat([anchors[0], torch.stack([x[y == c].mean(0) for c in (2, 3)])])
    with torch.no_grad():
        old = head.projection(anchors[0]).clone()
    apply_session_update("solve", head, x, y, anchors=anchors, options={"align_ridge": 0.0})  # targets "new"
    with torch.no_grad():
        assert torch.allclose(head.projection(anchors[0]), old, atol=1e-4)
    assert torch.allclose((head.embed(means[2:]) * head.class_vectors[2:]).sum(1), torch.ones(2), atol=1e-4)
    apply_session_update("solve", head, x, y, anchors=anchors, options={"align_ridge": 0.0, "align_targets": "all"})
    assert head.predict(means) == [0, 1, 2, 3]
    z = head.embed(means)
    assert torch.allclose((z * head.class_vectors).sum(1), torch.ones(4), atol=1e-4)


# ------------------------------------------------------------------------------------- the fscil method
def _fscil(head, bank, **method_options):
    torch.manual_seed(0)
    backbone = create_backbone("mlp", input_shape=(1, 8, 8), hidden_sizes=(32,))
    return build_strategy(head=head, method="fscil", backbone=backbone, n_classes_total=4, bank=bank, epochs=2,
                          batch_size=16, eval_batch_size=64, lr=0.05, optimizer="sgd", momentum=0.9, seed=0,
                          method_options=method_options)


@pytest.mark.parametrize("head", ["fc", "ebv", "ncm", "tau_norm"])
def test_fscil_trains_the_base_session_and_freezes_the_backbone_after(head, bench, bank):
    strategy, model = _fscil(head, bank, base_epochs=3, schedule="cosine", align_lr=0.01)
    from avalanche.core import SupervisedPlugin

    class Count(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.epochs = 0

        def after_training_epoch(self, strategy, **kwargs):
            self.epochs += 1

    counter = Count()
    strategy.plugins.append(counter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strategy.train(bench.train_stream[0])
        assert counter.epochs == 3
        assert strategy.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine to 0
        headed = find_headed_model(model)
        backbone = {k: v.clone() for k, v in headed.backbone.state_dict().items()}
        strategy.train(bench.train_stream[1])
    assert counter.epochs == 3  # no epoch in the few-shot session
    assert all(torch.equal(backbone[k], v) for k, v in headed.backbone.state_dict().items())
    assert headed.head.classes == [0, 1, 2, 3]
    x, y = stacked(bench.test_stream[1].dataset)
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1)
    assert (pred == y).float().mean() > 0.5, "the session's classes must be learnt from their samples alone"


def test_fscil_imprints_fc_rows_from_the_session(bench, bank):
    strategy, model = _fscil("fc", bank, base_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strategy.train(bench.train_stream[0])
        strategy.train(bench.train_stream[1])
    headed = find_headed_model(model)
    x, y = stacked(bench.train_stream[1].dataset.eval())
    with torch.no_grad():
        feats = headed.backbone.eval()(x)
    w = headed.head.weight.detach()
    for c in (2, 3):
        mean = torch.nn.functional.normalize(feats[y == c], dim=1).mean(0)
        cos = torch.nn.functional.cosine_similarity(w[headed.head.columns_of([c])[0]], mean, dim=0)
        assert cos > 0.999


def _session_one_changes(strategy, bench, parameters) -> bool:
    """Train the base session and session 1; whether session 1 changed any of ``parameters()``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strategy.train(bench.train_stream[0])
        before = [p.detach().clone() for p in parameters()]
        strategy.train(bench.train_stream[1])
    return any(not torch.equal(a, b) for a, b in zip(before, parameters()))


@pytest.mark.parametrize("update", ["solve", "align"])
def test_fscil_ebv_session_update_end_to_end(update, bench, bank):
    strategy, model = _fscil("ebv", bank, base_epochs=3, session_update=update, align_ridge=0.01,
                             align_proximity=0.1, align_lr=0.01)
    plugin = next(p for p in strategy.plugins if type(p).__name__ == "FewShotSessionsPlugin")
    assert plugin.options["align_ridge"] == 0.01 and plugin.options["align_proximity"] == 0.1
    headed = find_headed_model(model)
    assert _session_one_changes(strategy, bench, lambda: headed.head.parameters())
    assert plugin.history[-1]["update"] == update
    x, y = stacked(bench.test_stream[1].dataset)
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1)
    assert (pred == y).float().mean() > 0.5, "the session's classes must be learnt from their samples alone"


def test_fscil_session_epochs_fine_tune_the_backbone(bench, bank):
    strategy, model = _fscil("fc", bank, base_epochs=1, session_epochs=1, session_lr=0.01)
    headed = find_headed_model(model)
    assert _session_one_changes(strategy, bench, lambda: headed.backbone.parameters())
    assert strategy.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_tau_is_chosen_in_the_base_session_only(bench, bank):
    strategy, _ = _fscil("tau_norm", bank, base_epochs=1)
    from ebv_cl.continual.plugins import TauCalibrationPlugin

    plugin = next(p for p in strategy.plugins if isinstance(p, TauCalibrationPlugin))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strategy.train(bench.train_stream[0])
        strategy.train(bench.train_stream[1])
    assert len(plugin.history) == 1 and set(plugin.held_out) == {0, 1}


@pytest.mark.parametrize("options, match", [
    ({"schedule": "linear"}, "schedule of method 'fscil' = 'linear': expected one of cosine, step, none"),
    ({"base_epochs": 0}, "base_epochs of method 'fscil' = 0: expected an int >= 1"),
    ({"align_lr": 0}, "align_lr of method 'fscil' = 0: expected a finite number > 0"),
    ({"align_ridge": -1}, "align_ridge of method 'fscil' = -1: expected a finite number >= 0"),
    ({"align_proximity": -1}, "align_proximity of method 'fscil' = -1: expected a finite number >= 0"),
    ({"align_targets": "old"}, "align_targets of method 'fscil' = 'old': expected one of new, all"),
    ({"session_update": "imprint"}, "'imprint' does not apply to head 'ebv'"),
    ({"shots": 5}, r"unknown option\(s\) \['shots'\] for method 'fscil'"),
])
def test_fscil_options_are_checked(options, match, bank):
    with pytest.raises(ConfigError, match=match):
        _fscil("ebv", bank, **options)


def test_fscil_plugin_checks_the_alignment_options():
    from ebv_cl.continual.plugins.fscil import FewShotSessionsPlugin

    with pytest.raises(ConfigError, match="align_targets must be 'all' or 'new', got 'old'"):
        FewShotSessionsPlugin(update="solve", base_epochs=1, align_targets="old")
    with pytest.raises(ConfigError, match="align_ridge=-1"):
        FewShotSessionsPlugin(update="solve", base_epochs=1, align_ridge=-1)
    plugin = FewShotSessionsPlugin(update="solve", base_epochs=1)
    assert plugin.options["align_targets"] == "new" and plugin.options["align_ridge"] == 0.1
