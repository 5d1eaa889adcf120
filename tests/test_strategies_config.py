"""Strategy settings: names, combinations, strict option validation and the held-out split (no training)."""

from __future__ import annotations

import pytest
import torch

from ebv_cl.continual.strategies.names import (
    check_combination,
    head_names,
    method_names,
    parse_strategy_name,
    resolve_strategy_name,
)
from ebv_cl.continual.strategies.spec import StrategySpec
from ebv_cl.errors import ConfigError


@pytest.mark.parametrize(
    "name,expected",
    [
        ("ebv+der", ("ebv", "der")),
        ("fc", ("fc", None)),
        ("tau_norm+replay", ("tau_norm", "replay")),
        ({"head": "ebv", "method": "lwf"}, ("ebv", "lwf")),
        ({"head": "ncm"}, ("ncm", None)),
    ],
)
def test_parse_strategy_name(name, expected):
    assert parse_strategy_name(name) == expected


@pytest.mark.parametrize(
    "name,match",
    [
        ("ebv+", "must be 'head' or 'head\\+method'"),
        ("a+b+c", "must be 'head' or 'head\\+method'"),
        ("svm+der", "unknown head 'svm'; expected one of: .*ebv"),
        ("ebv+ewc", "unknown method 'ewc'; expected one of: naive, replay, der, lwf, icarl, gdumb, fscil"),
        ({"head": "ebv", "methd": "der"}, "unknown strategy key\\(s\\) \\['methd'\\]"),
        ({"method": "der"}, "needs a 'head'"),
        (3, "must be a name like 'ebv\\+der'"),
        ("ncm+icarl", "'ncm\\+icarl' is not supported: iCaRL"),
    ],
)
def test_parse_strategy_name_errors(name, match):
    with pytest.raises(ConfigError, match=match):
        parse_strategy_name(name)


@pytest.mark.parametrize("buffer_size,method", [(0, "naive"), (200, "replay")])
def test_short_names_default_to_replay_with_a_buffer(buffer_size, method):
    assert resolve_strategy_name("ebv", buffer_size=buffer_size) == ("ebv", method)
    assert resolve_strategy_name("fc+der", buffer_size=buffer_size) == ("fc", "der")


def test_every_head_and_method_is_checked():
    assert set(head_names()) == {"ebv", "fc", "ncm", "tau_norm", "hadamard", "angular"}
    rejected = []
    for h in head_names():
        for m in method_names():
            try:
                check_combination(h, m)
            except ConfigError:
                rejected.append((h, m))
    assert sorted(rejected) == [("ncm", "icarl"), ("tau_norm", "gdumb"), ("tau_norm", "icarl")]


def test_method_names_come_from_the_registry_in_registration_order():
    from ebv_cl.continual.strategies.methods import METHODS, method_defaults

    assert method_names() == ("naive", "replay", "der", "lwf", "icarl", "gdumb", "fscil")
    assert sorted(method_names()) == METHODS.names()
    assert method_defaults("der") == {"alpha": 0.1, "beta": 0.5, "batch_size_mem": None}
    assert method_defaults("naive") == {}
    assert [m for m in method_names() if METHODS.traits(m).get("buffer")] == ["replay", "der", "icarl", "gdumb"]


def test_validating_a_spec_does_not_import_avalanche():
    import subprocess
    import sys

    code = ("import sys; from ebv_cl.continual.strategies import StrategySpec; "
            "StrategySpec(head='tau_norm', method='fscil', method_options={'schedule': 'step'}); "
            "from ebv_cl.run.config import config_from_dict; "
            "config_from_dict({'scenario': 'digits', 'strategies': ['ebv+der', 'ncm']}); "
            "print([m for m in sys.modules if m.startswith('avalanche')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_spec_fills_defaults_and_round_trips():
    spec = StrategySpec(head="ebv", method="der", buffer_size=50,
                        method_options={"alpha": 0.3}, head_options={"temperature": 0.1})
    assert spec.method_options == {"alpha": 0.3, "beta": 0.5, "batch_size_mem": None}
    d = spec.to_dict()
    assert d["name"] == "ebv+der" and d["head_options"] == {"temperature": 0.1}
    again = StrategySpec(**{k: v for k, v in d.items() if k != "name"})
    assert again == spec


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"method_options": {"alpha": 1, "gamma": 2}}, r"unknown option\(s\) \['gamma'\] for method 'der'; valid options: alpha, beta, batch_size_mem"),
        ({"head_options": {"temprature": 1}}, r"unknown option\(s\) \['temprature'\] for head 'ebv'; valid options: .*temperature"),
        ({"buffer_size": 0}, "method 'der' keeps a replay memory: buffer_size must be >= 1"),
        ({"optimizer": "rmsprop"}, "optimizer = 'rmsprop': expected one of sgd, adam"),
        ({"lr": 0}, r"lr = 0: expected a finite number > 0.0"),
        ({"momentum": 1.0}, r"momentum = 1.0: expected a finite number >= 0.0 and < 1.0"),
        ({"epochs": 1.5}, "epochs = 1.5: expected an int >= 1"),
        ({"batch_size": True}, "batch_size = True: expected an int >= 1"),
        ({"method_options": {"beta": -1}}, r"beta of method 'der' = -1: expected a finite number >= 0.0"),
    ],
)
def test_spec_rejects_bad_settings(kwargs, match):
    args = {"head": "ebv", "method": "der", "buffer_size": 20, **kwargs}
    with pytest.raises(ConfigError, match=match):
        StrategySpec(**args)


@pytest.mark.parametrize(
    "method,options,match",
    [
        ("replay", {"storage": "fifo"}, "storage of method 'replay' = 'fifo': expected one of class_balanced"),
        ("lwf", {"temperature": 0}, "temperature of method 'lwf' = 0: expected a finite number > 0.0"),
        ("icarl", {"fixed_memory": "yes"}, "fixed_memory of method 'icarl' = 'yes': expected true or false"),
        ("fscil", {"schedule": "linear"}, "schedule of method 'fscil' = 'linear': expected one of cosine, step"),
        ("fscil", {"session_update": "means"}, "session_update 'means' does not apply to head 'fc'"),
        ("naive", {"alpha": 1}, r"unknown option\(s\) \['alpha'\] for method 'naive'; valid options: none"),
    ],
)
def test_method_option_values_are_checked(method, options, match):
    with pytest.raises(ConfigError, match=match):
        StrategySpec(head="fc", method=method, buffer_size=8, method_options=options)


def test_tau_norm_plugin_options_are_head_options():
    spec = StrategySpec(head="tau_norm", method="replay", buffer_size=8,
                        head_options={"holdout_fraction": 0.2, "bias": True})
    assert spec.head_kwargs() == {"bias": True}
    assert spec.plugin_options() == {"holdout_fraction": 0.2, "holdout_max_per_class": 50, "taus": None}
    for bad, match in [({"holdout_fraction": 1.0}, r"holdout_fraction of head 'tau_norm' = 1.0: expected a finite "
                                                 r"number > 0.0 and < 1.0"),
                       ({"holdout_max_per_class": 0}, "holdout_max_per_class of head 'tau_norm' = 0: expected an int"),
                       ({"taus": []}, r"taus of head 'tau_norm' = \[\]: expected a non-empty list")]:
        with pytest.raises(ConfigError, match=match):  # refused with the config, before any output is written
            StrategySpec(head="tau_norm", method="replay", head_options=bad)
    spec = StrategySpec(head="tau_norm", method="naive", head_options={"taus": [0, 1]})
    assert spec.plugin_options()["taus"] == [0.0, 1.0]
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['holdout_fraction'\] for head 'fc'"):
        StrategySpec(head="fc", method="replay", buffer_size=8,
                     head_options={"holdout_fraction": 0.2})


@pytest.mark.parametrize(
    "counts,fraction,cap,held",
    [
        ({0: 10, 1: 20}, 0.1, 50, {0: 1, 1: 2}),
        ({0: 10, 1: 20}, 0.5, 3, {0: 3, 1: 3}),
        ({0: 1, 1: 2}, 0.9, 50, {1: 1}),  # at least one sample of every class is left to train on
        ({5: 7}, 0.3, 50, {5: 3}),
    ],
)
def test_holdout_indices_split_per_class(counts, fraction, cap, held):
    pytest.importorskip("avalanche")
    from ebv_cl.continual.plugins import holdout_indices

    targets = [c for c, n in counts.items() for _ in range(n)]
    gen = torch.Generator().manual_seed(0)
    train, out = holdout_indices(targets, fraction=fraction, max_per_class=cap, generator=gen)
    assert {c: len(v) for c, v in out.items()} == held
    all_held = sorted(i for v in out.values() for i in v)
    assert sorted(train + all_held) == list(range(len(targets)))
    assert all(targets[i] == c for c, v in out.items() for i in v)
    again = holdout_indices(targets, fraction=fraction, max_per_class=cap, generator=torch.Generator().manual_seed(0))
    assert again == (train, out)


@pytest.mark.parametrize("buffer_size,method", [(0, "naive"), (8, "replay")])
def test_build_strategy_resolves_a_short_name(buffer_size, method):
    pytest.importorskip("avalanche")
    from ebv_cl.continual.strategies import build_strategy
    from ebv_cl.models import create_backbone

    backbone = create_backbone("mlp", input_shape=(1, 8, 8), hidden_sizes=(16,))
    strategy, _ = build_strategy(head="fc", method=None, backbone=backbone, n_classes_total=4,
                                 buffer_size=buffer_size)
    has_replay = any(type(p).__name__ == "ReplayPlugin" for p in strategy.plugins)
    assert has_replay == (method == "replay")
