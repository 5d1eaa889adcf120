"""Every catalogue entry (scenarios/, strategies/) and every example config parses, resolves and validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from ebv_cl.errors import ConfigError
from ebv_cl.run import config_from_dict, default_config, load_config
from ebv_cl.run.catalogue import catalogue_names

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml"))
STRATEGIES = sorted(p.stem for p in (REPO / "strategies").glob("*.yaml"))
EXAMPLES = sorted((REPO / "examples" / "configs").glob("*.yaml"))


def test_catalogue_is_not_empty_and_listed():
    assert len(SCENARIOS) >= 8 and len(STRATEGIES) >= 10 and len(EXAMPLES) >= 2
    assert set(SCENARIOS) <= set(catalogue_names("scenarios"))
    assert set(STRATEGIES) <= set(catalogue_names("strategies"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_entry_validates(name):
    config = config_from_dict({"scenario": name, "strategies": ["fc+naive"]})
    assert config.scenario and "include" not in config.scenario


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_entry_validates(name):
    config = config_from_dict({"scenario": "digits", "strategies": [name], "buffer_size": 20})
    s = config.strategies[0]
    assert s.head and s.method and (s.name or f"{s.head}+{s.method}") == s.label


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_config_validates(path):
    config = load_config(path)
    assert config.strategies and config.seeds


def test_peers_config_covers_the_issue():
    config = load_config(REPO / "examples" / "configs" / "peers-digits.yaml")
    pairs = {(s.head, s.method) for s in config.strategies}
    assert {(h, m) for h in ("fc", "ebv") for m in ("naive", "replay", "der")} <= pairs
    assert {m for _, m in pairs} >= {"icarl", "lwf"} and len(config.seeds) == 2 and config.buffer_size > 0


def test_default_config_validates():
    config = config_from_dict(default_config())
    assert config.scenario["dataset"] == "digits" and len(config.strategies) == 6


def test_digits_entry_builds_the_expected_stream():
    from ebv_cl.continual.scenarios import build_scenario

    built = build_scenario(config_from_dict({"scenario": "digits", "strategies": ["fc"]}).scenario, seed=0)
    assert built.n_classes == 10 and [len(c) for c in built.classes_per_experience] == [2] * 5


@pytest.mark.parametrize(
    "scenario, match",
    [
        ({"include": "digits", "n_experiments": 5}, r"scenario: unknown key\(s\) \['n_experiments'\]"),
        ({"include": "digits", "dataset": "nope"}, r"scenario: unknown dataset 'nope'; expected one of"),
        ({"include": "digits", "kind": "sideways"}, r"scenario: .*kind.*'sideways'"),
        ({"include": "digits", "dataset_options": {"zoom": 2}}, r"scenario: unknown option\(s\) \['zoom'\] for dataset 'digits'"),
        ({"preset": "nope"}, r"unknown scenario preset 'nope'"),
    ],
)
def test_scenario_section_is_validated_by_its_owner(scenario, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"scenario": scenario, "strategies": ["fc+naive"]})


@pytest.mark.parametrize(
    "strategy, match",
    [
        ({"head": "fc", "method": "der", "method_options": {"gamma": 1}}, r"strategies\[0\] \(fc\+der\): unknown option"),
        ({"head": "ebv", "method": "naive", "head_options": {"temp": 1}}, r"strategies\[0\] \(ebv\+naive\)"),
        ("tau_norm+icarl", r"'tau_norm\+icarl' is not supported"),
    ],
)
def test_strategy_options_are_validated_by_their_owner(strategy, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"scenario": "digits", "strategies": [strategy], "buffer_size": 10})


def test_replay_without_buffer_is_an_error():
    with pytest.raises(ConfigError, match=r"buffer_size"):
        config_from_dict({"scenario": "digits", "strategies": ["fc+replay"], "buffer_size": 0})
