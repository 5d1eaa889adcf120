"""Run config: strict keys and types, catalogue includes, CLI overrides, resolved-config round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ebv_cl.errors import ConfigError
from ebv_cl.run import config_from_dict, default_config, dump_config, load_config
from ebv_cl.run.catalogue import catalogue_names, find_entry
from ebv_cl.run.overrides import apply_overrides, parse_override

REPO = Path(__file__).resolve().parents[1]


def _base(**extra):
    data = {"scenario": {"dataset": "digits", "n_experiences": 5}, "strategies": ["fc+naive"]}
    data.update(extra)
    return data


@pytest.mark.parametrize(
    "data, match",
    [
        (_base(epoch=3), r"unknown key 'epoch' in top level; valid keys: name, scenario, .*epochs"),
        (_base(bank={"size": 3}), r"unknown key 'size' in bank; valid keys: n, dim, method"),
        (_base(backbone={"name": "mlp", "width": 3}), r"unknown key 'width' in backbone; valid keys: name, options"),
        (_base(strategies=[{"head": "fc", "metod": "der"}]), r"unknown key 'metod' in strategies\[0\]"),
        (_base(epochs="two"), r"epochs = 'two': expected int, got str"),
        (_base(epochs=2.5), r"epochs = 2.5: expected int, got float"),
        (_base(lr="fast"), r"lr = 'fast': expected float, got str"),
        (_base(lr=True), r"lr = True: expected float, got bool"),
        (_base(seeds=[0, "a"]), r"seeds\[1\] = 'a': expected int, got str"),
        (_base(seeds=0), r"seeds = 0: expected list of int, got int"),
        (_base(bank={"n": "x"}), r"bank.n = 'x': expected int or null, got str"),
        (_base(progress="yes"), r"progress = 'yes': expected bool, got str"),
        (_base(strategies=[{"method": "der"}]), r"missing key 'head' in strategies\[0\]"),
        (_base(strategies=[{"head": "fc", "head_options": [1]}]), r"strategies\[0\].head_options = \[1\]: expected mapping"),
        (_base(epochs=0), r"epochs = 0: expected an int >= 1"),
        (_base(optimizer="rmsprop"), r"optimizer = 'rmsprop': expected one of sgd, adam"),
        (_base(seeds=[1, 1]), r"expected distinct seeds"),
        (_base(strategies=[]), r"expected at least one strategy"),
        (_base(strategies=["fc+naive", {"head": "fc", "method": "naive"}]), r"'fc\+naive' appears twice"),
        ({"strategies": ["fc"]}, r"missing key 'scenario' in top level"),
        (_base(scenario="no_such_scenario"), r"unknown scenario 'no_such_scenario'.*available: .*split_fashion_mnist"),
        (_base(scenario={"include": "nope"}), r"unknown scenario 'nope'"),
        (_base(strategies=[{"include": "no_such_strategy"}]), r"unknown strategy 'no_such_strategy'"),
        (_base(scenario="../etc/passwd"), r"scenario name must be a plain catalogue name"),
        ([1, 2], r"a run config must be a mapping"),
    ],
)
def test_config_errors_name_key_value_and_expectation(data, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(data, validate=False)


def test_unknown_strategy_name_is_config_error():
    with pytest.raises(ConfigError, match=r"strategies\[0\]|unknown (head|method)"):
        config_from_dict(_base(strategies=["bogus+naive"]))


def test_defaults_and_types():
    c = config_from_dict(_base(lr=1, seeds=[3, 4]), validate=False)
    assert c.lr == 1.0 and isinstance(c.lr, float)
    assert c.seeds == [3, 4] and c.epochs == 1 and c.bank.method == "auto"
    assert c.strategies[0].head == "fc" and c.strategies[0].method == "naive" and c.strategies[0].label == "fc+naive"
    short = config_from_dict(_base(strategies=["fc"], buffer_size=0), validate=False).strategies[0]
    assert short.label == "fc+naive"  # a short name without memory is plain fine-tuning


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("fc+der", ("fc", "der", "fc+der")),
        ({"head": "ebv", "method": "der", "name": "mine"}, ("ebv", "der", "mine")),
        ({"head": "ebv"}, ("ebv", "replay", "ebv+replay")),  # short: replay since buffer_size > 0
        ("ebv", ("ebv", "replay", "ebv+replay")),
    ],
)
def test_strategy_forms(entry, expected):
    s = config_from_dict(_base(strategies=[entry]), validate=False).strategies[0]
    assert (s.head, s.method, s.label) == expected


def test_catalogue_include_and_merge(tmp_path):
    c = config_from_dict(_base(scenario={"include": "split_fashion_mnist", "seed_note": None}), validate=False)
    base = yaml.safe_load(find_entry("scenarios", "split_fashion_mnist").read_text())
    assert c.scenario["dataset"] == "fashion_mnist" and "seed_note" in c.scenario and "include" not in c.scenario
    by_name = config_from_dict(_base(scenario="split_fashion_mnist"), validate=False)
    assert by_name.scenario == {"dataset": "fashion_mnist", "kind": "class_incremental", "n_experiences": 5}


@pytest.mark.parametrize(
    "overrides, check",
    [
        (["epochs=3"], lambda c: c.epochs == 3),
        (["lr=1e-3"], lambda c: c.lr == 1e-3),
        (["seeds=[0, 1, 2]"], lambda c: c.seeds == [0, 1, 2]),
        (["bank.dim=32", "bank.path=null"], lambda c: c.bank.dim == 32 and c.bank.path is None),
        (["strategies.0.method=der"], lambda c: c.strategies[0].label == "fc+der"),
        (["strategies=[ebv+replay, fc+replay]"], lambda c: [s.label for s in c.strategies] == ["ebv+replay", "fc+replay"]),
        (["scenario=split_cifar10"], lambda c: "cifar" in str(c.scenario["dataset"]).lower()),
        (["scenario.n_experiences=2"], lambda c: c.scenario["n_experiences"] == 2),
        (["epochs=2", "epochs=4"], lambda c: c.epochs == 4),
    ],
)
def test_overrides(overrides, check):
    assert check(config_from_dict(_base(), overrides=overrides, validate=False))


@pytest.mark.parametrize(
    "override, match",
    [
        ("epoch=3", r"unknown key 'epoch' in top level"),
        ("bank.size=3", r"unknown key 'size' in bank"),
        ("epochs", r"must look like key.sub=value"),
        ("=3", r"empty key part"),
        ("epochs.x=1", r"'epochs' is 1, not a mapping or list"),
        ("strategies.5.method=der", r"indexes a list of 1 item"),
        ("epochs=[1", r"not a valid YAML scalar"),
        ("epochs=abc", r"epochs = 'abc': expected int"),
    ],
)
def test_bad_overrides(override, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(_base(epochs=1), overrides=[override], validate=False)


def test_parse_override_types():
    assert parse_override("a.b=1") == (["a", "b"], 1)
    assert parse_override("x=null") == (["x"], None)
    assert parse_override("x=a=b") == (["x"], "a=b")
    data = {"a": {"b": 1}}
    assert apply_overrides(data, ["a.b=2"]) == {"a": {"b": 2}} and data == {"a": {"b": 1}}  # input untouched


def test_resolved_config_round_trip(tmp_path):
    c = config_from_dict(default_config(), overrides=["epochs=2"], validate=False)
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_config(c))
    assert load_config(path, validate=False) == c


def test_top_level_include_relative_to_file(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(_base(epochs=7, lr=0.5)))
    (tmp_path / "child.yaml").write_text("include: base.yaml\nlr: 0.1\n")
    c = load_config(tmp_path / "child.yaml", validate=False)
    assert (c.epochs, c.lr) == (7, 0.1)


@pytest.mark.parametrize(
    "text, exc, match",
    [
        ("", ConfigError, r"is empty"),
        ("a: [1\n", ConfigError, r"is not valid YAML"),
    ],
)
def test_bad_files(tmp_path, text, exc, match):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(exc, match=match):
        load_config(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match=r"config file .*nope.yaml' does not exist"):
        load_config("nope.yaml")


def test_catalogue_lists_the_repository_entries():
    assert {"digits", "split_fashion_mnist", "split_cifar10", "der_seq_cifar10"} <= set(catalogue_names("scenarios"))
    assert {"fc_er_reservoir", "ebv_er_reservoir"} <= set(catalogue_names("strategies"))


def test_unknown_bank_method_fails_validation():
    with pytest.raises(ConfigError, match=r"bank.method = 'sprase': unknown bank generation method; expected one of"):
        config_from_dict({"scenario": "digits", "strategies": ["ebv"], "bank": {"method": "sprase"}})


def test_run_config_and_strategy_spec_share_one_set_of_training_settings():
    from ebv_cl.continual.strategies import StrategySpec, TrainingSettings

    c = config_from_dict(_base(strategies=["fc+naive", {"head": "fc", "method": "der", "lr": 0.5}]), validate=False)
    defaults = TrainingSettings().training()
    assert defaults["momentum"] == 0.9 and defaults["buffer_size"] == 200
    assert StrategySpec(head="fc", method="naive").training() == defaults
    assert c.specs[0].training() == c.training()  # the run's settings, built once into each strategy's spec
    assert c.specs[1].training() == {**c.training(), "lr": 0.5} and c.specs[1].method_options["beta"] == 0.5


def test_resolved_config_keeps_its_key_order():
    keys = list(config_from_dict(_base(), validate=False).to_dict())
    assert keys == ["name", "scenario", "backbone", "strategies", "seeds", "epochs", "batch_size", "eval_batch_size",
                    "optimizer", "lr", "momentum", "weight_decay", "buffer_size", "bank", "device", "threads",
                    "data_root", "progress", "checkpoint", "loggers", "cpus_per_job", "gpus_per_job"]
