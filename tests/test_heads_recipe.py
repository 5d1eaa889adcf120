"""The training-recipe options of the EBV and Hadamard heads (learned scale, margin, BN, MLP projection, ...)."""

from __future__ import annotations

import math

import pytest
import torch

from ebv_cl import EBVBank
from ebv_cl.errors import BankMismatchError, ConfigError
from ebv_cl.heads import EBVHead, HadamardHead, create_head
from ebv_cl.heads.projection import MLP_MIN_CLASSES, default_projection


def _bank(n: int = 30, dim: int = 8) -> EBVBank:
    return EBVBank.generate(n, dim, seed=0, max_steps=50)


def _x(n: int, d: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _head(**kw) -> EBVHead:
    torch.manual_seed(0)
    head = EBVHead(6, _bank(), **kw)
    head.add_classes(range(12))
    return head


def _cosines(head: EBVHead, x: torch.Tensor) -> torch.Tensor:
    return head.embed(x) @ head.class_vectors.T


def test_learned_scale_starts_at_one_over_temperature_and_is_trained():
    head = _head(temperature=0.05, learn_scale=True, feature_bn=False)
    x, y = _x(16, 6), torch.arange(16) % 12
    assert isinstance(head.logit_scale, torch.nn.Parameter) and float(head.logit_scale.detach()) == pytest.approx(20.0)
    torch.testing.assert_close(head(x), 20.0 * _cosines(head, x))
    head.training_loss(x, y).backward()
    assert head.logit_scale.grad is not None and float(head.logit_scale.grad) != 0.0
    fixed = _head(temperature=0.05, learn_scale=False, feature_bn=False)
    assert fixed.logit_scale is None and fixed.scale == pytest.approx(20.0)


def test_cosface_margin_lowers_only_the_target_logit_in_the_loss():
    m, t = 0.3, 0.1
    head = _head(temperature=t, margin=m, learn_scale=False, feature_bn=False)
    x, y = _x(10, 6), torch.arange(10)
    cos = _cosines(head, x)
    expected = -torch.log_softmax((cos - m * torch.nn.functional.one_hot(y, 12)) / t, dim=1)[torch.arange(10), y]
    torch.testing.assert_close(head.training_loss(x, y), expected.mean())
    torch.testing.assert_close(head(x), cos / t)  # prediction logits carry no margin


def test_label_smoothing_matches_the_formula():
    eps, t = 0.2, 0.1
    head = _head(temperature=t, label_smoothing=eps, learn_scale=False, feature_bn=False)
    x, y = _x(10, 6), torch.arange(10)
    logp = torch.log_softmax(_cosines(head, x) / t, dim=1)
    expected = -((1 - eps) * logp[torch.arange(10), y] + eps * logp.mean(dim=1))
    torch.testing.assert_close(head.training_loss(x, y), expected.mean())


def test_feature_bn_normalises_before_the_l2_norm_and_round_trips():
    head = _head(feature_bn=True)
    x = _x(32, 6)
    head.train()
    z = head.projection(x)
    bn = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + head.feature_bn.eps)
    torch.testing.assert_close(head.embed(x), torch.nn.functional.normalize(bn, dim=1))
    head.eval()
    other = EBVHead(6, head._bank, feature_bn=True)
    other.load_state_dict(head.state_dict())
    other.eval()
    torch.testing.assert_close(other(x), head(x))
    plain = EBVHead(6, head._bank, feature_bn=False)
    with pytest.raises((BankMismatchError, RuntimeError), match="feature_bn"):
        plain.load_state_dict(head.state_dict())


def test_mlp_projection_and_orthogonal_init():
    head = _head(projection="mlp", hidden=20)
    layers = [m for m in head.projection.modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in layers] == [(6, 20), (20, 8)]
    assert head.hidden == 20
    ortho = EBVHead(8, _bank(), projection="linear", projection_init="orthogonal")
    w = ortho.projection.weight
    torch.testing.assert_close(w @ w.T, torch.eye(8), atol=1e-5, rtol=0)
    assert float(ortho.projection.bias.detach().abs().max()) == 0.0
    with pytest.raises(BankMismatchError, match="projection"):
        EBVHead(6, head._bank, projection="linear").load_state_dict(head.state_dict())


def test_recipe_argument_errors_name_the_argument():
    bank = _bank()
    with pytest.raises(ConfigError, match="projection"):
        EBVHead(6, bank, projection="deep")
    with pytest.raises(ConfigError, match="projection_init"):
        EBVHead(6, bank, projection_init="xavier")
    with pytest.raises(ValueError, match="margin"):
        EBVHead(6, bank, margin=-0.1)
    with pytest.raises(ValueError, match="label_smoothing"):
        EBVHead(6, bank, label_smoothing=1.0)
    with pytest.raises(ValueError, match="hidden"):
        EBVHead(6, bank, projection="mlp", hidden=0)
    with pytest.raises(ConfigError, match="scale_learning"):
        create_head("ebv", 6, bank=bank, scale_learning=True)


def test_margin_applies_to_the_sampled_softmax_too():
    head = _head(temperature=0.1, margin=0.5, sampled_negatives=2, hard_negatives=0, learn_scale=False,
                 feature_bn=False)
    plain = _head(temperature=0.1, margin=0.0, sampled_negatives=2, hard_negatives=0, learn_scale=False,
                  feature_bn=False)
    plain.load_state_dict(head.state_dict())
    x, y = _x(3, 6), torch.tensor([0, 1, 2])
    assert head.uses_sampling(3)
    assert head.training_loss(x, y).item() > plain.training_loss(x, y).item()


def test_hadamard_feature_bn():
    torch.manual_seed(0)
    head = HadamardHead(6, max_classes=8, feature_bn=True)
    head.add_classes(range(8))
    x = _x(16, 6)
    z = head.feature_bn(head.projection(x))
    expected = head.scale * torch.nn.functional.normalize(z, dim=1) @ (head._dense_rows[:8].T)
    torch.testing.assert_close(head(x), expected)
    with pytest.raises((BankMismatchError, RuntimeError), match="feature_bn"):
        HadamardHead(6, max_classes=8, feature_bn=False).load_state_dict(head.state_dict())
    assert math.isclose(float(head.scale.detach()), 10.0)


def test_mlp_dropout_acts_in_training_only_and_needs_the_mlp():
    torch.manual_seed(0)
    head = _head(projection="mlp", hidden=32, dropout=0.5)
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in head.projection.modules())
    x = _x(16, 6)
    head.eval()
    torch.testing.assert_close(head(x), head(x))  # no dropout at evaluation
    plain = _head(projection="mlp", hidden=32)
    plain.load_state_dict(head.state_dict())  # dropout adds no state
    plain.eval()
    torch.testing.assert_close(plain(x), head(x))
    head.train()
    assert not torch.allclose(head.embed(x), head.embed(x))
    with pytest.raises(ValueError, match="dropout"):
        _head(projection="mlp", dropout=1.0)
    with pytest.raises(ValueError, match="dropout.*mlp"):
        _head(projection="linear", dropout=0.1)


@pytest.mark.parametrize("n, kind", [(MLP_MIN_CLASSES - 1, "linear"), (MLP_MIN_CLASSES, "mlp")])
def test_auto_projection_follows_the_bank_size(n, kind):
    head = EBVHead(6, EBVBank.generate(n, 8, seed=0, max_steps=5))
    assert head.projection_kind == kind == default_projection(n)
    mlp = kind == "mlp"
    assert isinstance(head.projection, torch.nn.Sequential) is mlp
    assert (head.feature_bn is not None) is mlp  # BN before the L2 norm comes with the MLP only
    assert head.hidden == (1024 if mlp else None)


def test_explicit_projection_and_feature_bn_override_auto():
    small = _bank()  # 30 vectors: auto would be linear without BN
    mlp = EBVHead(6, small, projection="mlp")
    assert mlp.projection_kind == "mlp" and mlp.feature_bn is not None
    assert EBVHead(6, small, projection="linear", feature_bn=True).feature_bn is not None
    assert EBVHead(6, small, projection="mlp", feature_bn=False).feature_bn is None
    assert EBVHead(6, small, projection="auto").projection_kind == "linear"


def test_default_projection_refuses_a_non_positive_count():
    with pytest.raises(ValueError, match="n_classes must be >= 1, got 0"):
        default_projection(0)
