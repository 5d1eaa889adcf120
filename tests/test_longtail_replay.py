"""Replay's long-tail options: the class-balanced head fine-tune (cRT) and the logit-adjusted loss."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("avalanche")

from ebv_cl.continual.plugins.balanced_finetune import BalancedFinetunePlugin, balanced_finetune  # noqa: E402
from ebv_cl.continual.plugins.logit_adjustment import LogitAdjustedLoss  # noqa: E402
from ebv_cl.continual.strategies import HeadedModel, StrategySpec  # noqa: E402
from ebv_cl.errors import ConfigError  # noqa: E402
from ebv_cl.heads import create_head  # noqa: E402
from test_strategies import bank, bench, make_strategy, one_thread  # noqa: E402,F401  (one_thread: autouse)


def _fc(n_classes: int = 2, dim: int = 4):
    torch.manual_seed(0)
    head = create_head("fc", dim)
    head.add_classes(list(range(n_classes)))
    return head


def test_balanced_finetune_draws_every_class_equally_often():
    head = _fc(2)
    feats = torch.randn(200, 4)
    cols = torch.tensor([0] * 190 + [1] * 10)
    seen: list[torch.Tensor] = []
    loss = head.training_loss

    def spy(f, c):
        seen.append(c.clone())
        return loss(f, c)

    head.training_loss = spy
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    steps = balanced_finetune(head, feats, cols, epochs=3, batch_size=50, optimizer=opt,
                              generator=torch.Generator().manual_seed(0))
    assert steps == 3 * 4 and len(seen) == 12
    share = torch.cat(seen).float().mean().item()  # share of the rare class 1 (5% of the data)
    assert 0.4 < share < 0.6


def test_balanced_finetune_moves_the_bias_towards_the_rare_class():
    head = _fc(2)
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(400, 4, generator=g)  # no signal: only the class frequencies can be learned
    cols = torch.tensor([0] * 380 + [1] * 20)
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    for _ in range(50):  # plain (imbalanced) training first: class 0 wins everywhere
        opt.zero_grad()
        head.training_loss(feats, cols).backward()
        opt.step()
    assert (head(feats).argmax(1) == 0).float().mean() > 0.95
    balanced_finetune(head, feats, cols, epochs=20, batch_size=64, optimizer=torch.optim.SGD(head.parameters(), lr=0.5),
                      generator=torch.Generator().manual_seed(0))
    share = (head(feats).argmax(1) == 1).float().mean().item()
    assert 0.15 < share < 0.85


def test_balanced_finetune_rejects_bad_arguments():
    head = _fc(2)
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="must match"):
        balanced_finetune(head, torch.randn(5, 4), torch.zeros(4, dtype=torch.long), epochs=1, batch_size=2,
                          optimizer=opt, generator=torch.Generator())
    with pytest.raises(ValueError, match="epochs must be >= 0"):
        balanced_finetune(head, torch.randn(5, 4), torch.zeros(5, dtype=torch.long), epochs=-1, batch_size=2,
                          optimizer=opt, generator=torch.Generator())
    assert balanced_finetune(head, torch.randn(5, 4), torch.zeros(5, dtype=torch.long), epochs=0, batch_size=2,
                             optimizer=opt, generator=torch.Generator()) == 0


@pytest.mark.parametrize("head", ["fc", "ebv", "tau_norm"])
def test_replay_finetune_trains_only_the_head_on_every_seen_class(bench, bank, head):
    strategy, model = make_strategy(head, "replay", bank, method_options={"finetune_epochs": 2})
    finetune = strategy.plugins[0]
    assert isinstance(finetune, BalancedFinetunePlugin)  # first: before the memory update and tau's calibration
    headed = model if isinstance(model, HeadedModel) else None
    assert headed is not None
    backbone_after_training = {}

    def keep_backbone(strategy_, **kwargs):
        backbone_after_training.update({k: v.clone() for k, v in headed.backbone.state_dict().items()})

    head_before = {}
    original = finetune.after_training_exp

    def wrapped(strategy_, **kwargs):
        keep_backbone(strategy_)
        head_before.update({k: v.clone() for k, v in headed.head.state_dict().items()
                            if isinstance(v, torch.Tensor) and v.dtype.is_floating_point})
        original(strategy_, **kwargs)

    finetune.after_training_exp = wrapped
    for exp in bench.train_stream:
        strategy.train(exp)
    # experience 2: its 2 classes from its own data, the first 2 from the memory (before its update)
    assert [h[1] for h in finetune.history] == [2, 4]
    per_class = 24 - 3 if head == "tau_norm" else 24  # tau-norm holds 10% (rounded up) out for its calibration
    assert finetune.history[1][0] == 2 * per_class + 16
    for k, v in headed.backbone.state_dict().items():
        assert torch.equal(v, backbone_after_training[k]), k
    changed = [k for k, v in headed.head.state_dict().items() if k in head_before and not torch.equal(v, head_before[k])]
    assert changed, "the fine-tune did not change the head"


def test_logit_adjusted_loss_formula_and_counts():
    torch.manual_seed(0)
    head = create_head("fc", 3)
    model = HeadedModel(torch.nn.Identity(), head, num_outputs=5)
    head.add_classes([3, 0, 4])  # arrival order: columns 0, 1, 2 are class ids 3, 0, 4
    loss = LogitAdjustedLoss(model, tau=1.5)
    loss.observe(torch.tensor([3, 3, 3, 0]))
    loss.observe(torch.tensor([3, 0, 1]))
    assert loss.counts.tolist() == [2, 1, 0, 4]
    x = torch.randn(6, 3)
    y = torch.tensor([3, 0, 4, 4, 3, 0])
    model.train()
    logits = model(x)
    prior = torch.tensor([4.0, 2.0, 1.0])  # class 4 was never counted: one sample
    expected = torch.nn.functional.cross_entropy(head(x) + 1.5 * torch.log(prior / prior.sum()),
                                                 head.columns_of(y))
    assert torch.allclose(loss(logits, y), expected, atol=1e-6)
    assert torch.allclose(LogitAdjustedLoss(model, tau=0.0)(model(x), y),
                          torch.nn.functional.cross_entropy(head(x), head.columns_of(y)), atol=1e-6)
    model.eval()
    out = model(x)
    assert torch.allclose(loss(out, y), torch.nn.functional.cross_entropy(out, y))
    loss.before_training_exp(None)
    assert loss.counts.numel() == 0
    with pytest.raises(ValueError, match="tau must be a number >= 0"):
        LogitAdjustedLoss(model, tau=-1.0)


@pytest.mark.parametrize("head", ["fc", "ebv"])
def test_replay_with_logit_adjustment_counts_the_training_batches(bench, bank, head):
    strategy, _ = make_strategy(head, "replay", bank, method_options={"logit_adjustment": 1.0})
    assert isinstance(strategy._criterion, LogitAdjustedLoss)
    adjusted = strategy._criterion
    assert adjusted in strategy.plugins
    for exp in bench.train_stream:
        strategy.train(exp)
    counts = adjusted.counts
    # the second experience's batches: its own 2 classes (24 each, 1 epoch) and replayed samples of the first 2
    assert counts[2].item() == 24 and counts[3].item() == 24
    assert counts[0].item() > 0 and counts[1].item() > 0


@pytest.mark.parametrize("options, message", [
    ({"finetune_epochs": -1}, r"finetune_epochs of method 'replay' = -1: expected an int >= 0"),
    ({"finetune_epochs": 1.5}, r"finetune_epochs of method 'replay' = 1.5: expected an int"),
    ({"finetune_lr": 0}, r"finetune_lr of method 'replay' = 0: expected a finite number > 0"),
    ({"logit_adjustment": -0.5}, r"logit_adjustment of method 'replay' = -0.5: expected a finite number >= 0"),
    ({"logit_adjustment": "x"}, r"logit_adjustment of method 'replay' = 'x': expected a finite number"),
])
def test_long_tail_options_are_validated(options, message):
    with pytest.raises(ConfigError, match=message):
        StrategySpec(head="fc", method="replay", buffer_size=10, method_options=options)


def test_long_tail_options_default_to_plain_replay(bench, bank):
    spec = StrategySpec(head="fc", method="replay", buffer_size=10)
    assert spec.method_options["finetune_epochs"] == 0 and spec.method_options["logit_adjustment"] == 0.0
    strategy, _ = make_strategy("fc", "replay", bank)
    assert not any(isinstance(p, (BalancedFinetunePlugin, LogitAdjustedLoss)) for p in strategy.plugins)
