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
    assert len(SCENARIOS) >= 8 and len(STRATEGIES) >= 2 and len(EXAMPLES) >= 2
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


def test_catalogue_lookup_ignores_the_working_directory(tmp_path, monkeypatch):
    """A name means the same entry wherever ebv-cl runs: a stray ./scenarios/ folder neither adds nor hides one."""
    from ebv_cl.run.catalogue import catalogue_roots, find_entry

    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "digits.yaml").write_text("dataset: mnist\n", encoding="utf-8")
    (tmp_path / "scenarios" / "only_here.yaml").write_text("dataset: mnist\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EBV_CL_CATALOGUE", raising=False)
    assert tmp_path not in catalogue_roots()
    assert find_entry("scenarios", "digits").parent.parent != tmp_path
    assert "only_here" not in catalogue_names("scenarios")
    monkeypatch.setenv("EBV_CL_CATALOGUE", str(tmp_path))
    assert find_entry("scenarios", "only_here") == tmp_path / "scenarios" / "only_here.yaml"


def test_build_copies_the_catalogue_into_the_package(tmp_path):
    """setup.py's build_py ships scenarios/ and strategies/ as ebv_cl/_catalogue/ (what the wheel installs)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
        cwd=root, check=True, capture_output=True,
    )
    for kind in ("scenarios", "strategies"):
        shipped = sorted(p.name for p in (tmp_path / "ebv_cl" / "_catalogue" / kind).glob("*.yaml"))
        assert shipped == sorted(p.name for p in (root / kind).glob("*.yaml")) and shipped


def test_default_run_has_enough_seeds_for_paired_verdicts():
    """The embedded default shows the paired fc-versus-head verdicts, which need 3 seeds."""
    from ebv_cl.run.results import head_effect_table  # noqa: F401  (the table the verdicts are in)

    config = config_from_dict(default_config())
    assert len(config.seeds) >= 3
    assert any(s.head == "fc" for s in config.strategies) and any(s.head == "ebv" for s in config.strategies)


def test_catalogue_entries_do_not_restate_what_the_code_already_names():
    """One source: a scenario entry equal to a preset says `preset: <name>`; a strategy entry says something that
    `head+method` with the defaults does not."""
    from ebv_cl.continual.scenarios.presets import PRESETS
    from ebv_cl.continual.strategies.methods import method_defaults
    from ebv_cl.run.catalogue import load_entry

    for name in SCENARIOS:
        entry = load_entry("scenarios", name)
        restated = [p for p, spec in PRESETS.items() if entry == spec]
        assert not restated, f"scenarios/{name}.yaml restates preset {restated[0]!r}: write `preset: {restated[0]}`"
    for name in STRATEGIES:
        entry = load_entry("strategies", name)
        defaults = method_defaults(entry["method"]) if entry.get("method") else {}
        extra = {k: v for k, v in entry.items() if k not in ("head", "method", "method_options")}
        changed = {k: v for k, v in entry.get("method_options", {}).items() if defaults.get(k) != v}
        assert extra or changed, f"strategies/{name}.yaml equals {entry['head']}+{entry.get('method')}: delete it"
