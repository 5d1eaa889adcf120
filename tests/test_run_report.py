"""``ebv-cl report``: merging results folders of one experiment, and refusing folders of different ones."""

from __future__ import annotations

import json

import pytest

from ebv_cl.cli import main
from ebv_cl.errors import ConfigError
from ebv_cl.run.report import merge_results, report_markdown
from ebv_cl.run.results import ResultsFolder

SCENARIO = {"dataset": "digits", "kind": "class_incremental", "n_experiences": 5}


def _record(strategy: str, seed: int, final: float) -> dict:
    head, method = strategy.split("+")
    return {"strategy": strategy, "head": head, "method": method, "seed": seed, "accuracy_matrix": [[final]],
            "seen_accuracy": [final], "avg_incremental_accuracy": final, "final_accuracy": final,
            "forgetting": 0.1, "trainable_head_params": [10], "wall_time_s": 1.0}


def _folder(path, strategies, *, epochs=2, scenario=SCENARIO, seeds=(0, 1, 2), base=0.5):
    config = f"name: demo\nepochs: {epochs}\nlr: 0.01\nstrategies: {list(strategies)}\nseeds: {list(seeds)}\n"
    folder = ResultsFolder(path, config_text=config, name="demo")
    folder.scenario = scenario
    folder.start(resume=False)
    for i, strategy in enumerate(strategies):
        for seed in seeds:
            folder.add(_record(strategy, seed, base + 0.1 * i + 0.01 * seed), plot=False)
    return path


def test_report_merges_folders_and_pairs_heads_across_them(tmp_path, capsys):
    a = _folder(tmp_path / "a", ["fc+replay"])
    b = _folder(tmp_path / "b", ["ncm+replay", "ebv+replay"])
    title, runs = merge_results([a, b])
    assert title == "demo" and len(runs) == 9
    text = report_markdown([a, b])
    assert "| fc+replay |" in text and "| ebv+replay |" in text
    assert "| replay | ebv | 3 | +10.00 ± 0.00 |" in text  # paired across the two folders
    assert text.index("| fc+replay") < text.index("| ebv+replay") < text.index("| ncm+replay")  # baseline first
    out = tmp_path / "report.md"
    assert main(["report", str(a), str(b / "results.json"), "--out", str(out)]) == 0
    assert out.read_text() in capsys.readouterr().out


def test_report_refuses_folders_of_different_experiments(tmp_path):
    a = _folder(tmp_path / "a", ["fc+replay"])
    with pytest.raises(ConfigError, match=r"settings differ .*epochs: 2 vs 3"):
        merge_results([a, _folder(tmp_path / "b", ["ebv+replay"], epochs=3)])
    other = dict(SCENARIO, dataset="mnist")
    with pytest.raises(ConfigError, match=r"its scenario .*'mnist'.* differs"):
        merge_results([a, _folder(tmp_path / "c", ["ebv+replay"], scenario=other)])
    with pytest.raises(ConfigError, match=r"fc\+replay seed 0 is in both"):
        merge_results([a, _folder(tmp_path / "d", ["fc+replay"], seeds=(0,))])


def test_report_reads_a_setting_an_older_folder_lacks_as_its_default(tmp_path):
    """A folder written before a setting existed (no ``cpus_per_job``, no ``bank.max_steps``) merges with a newer
    one that names the default, and still refuses a newer one that changed it."""
    old = _folder(tmp_path / "old", ["fc+replay"])
    new = tmp_path / "new"
    config = ("name: demo\nepochs: 2\nlr: 0.01\nstrategies: ['ebv+replay']\nseeds: [0, 1, 2]\n"
              "cpus_per_job: 1.0\nbank: {dim: 64, max_steps: null}\n")
    (tmp_path / "old" / "resolved_config.yaml").write_text(
        (tmp_path / "old" / "resolved_config.yaml").read_text() + "bank: {dim: 64}\n")
    folder = ResultsFolder(new, config_text=config, name="demo")
    folder.scenario = SCENARIO
    folder.start(resume=False)
    for seed in (0, 1, 2):
        folder.add(_record("ebv+replay", seed, 0.6), plot=False)
    assert len(merge_results([old, new])[1]) == 6
    changed = _folder(tmp_path / "changed", ["ncm+replay"])
    (changed / "resolved_config.yaml").write_text((changed / "resolved_config.yaml").read_text() + "cpus_per_job: 2.0\n")
    with pytest.raises(ConfigError, match=r"settings differ .*cpus_per_job: 1.0 vs 2.0"):
        merge_results([old, changed])


def test_report_compares_banks_by_their_hash_not_the_last_bits_of_their_coherence(tmp_path):
    bank = {"n": 10, "dim": 128, "method": "orthogonal", "seed": 0, "coherence": 8.12462406379888e-09, "sha256": "ab"}
    folders = []
    for name, strategy, changes in (("a", "fc+replay", {}), ("b", "ebv+replay", {"coherence": 8.124624094404847e-09}),
                                    ("c", "ncm+replay", {"sha256": "cd"})):
        folder = _folder(tmp_path / name, [strategy])
        data = json.loads((folder / "results.json").read_text())
        data["bank"] = dict(bank, **changes)
        (folder / "results.json").write_text(json.dumps(data))
        folders.append(folder)
    assert len(merge_results(folders[:2])[1]) == 6
    with pytest.raises(ConfigError, match=r"its bank .*differs"):
        merge_results([folders[0], folders[2]])


def test_report_errors_name_the_bad_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "missing' has no results.json" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text(json.dumps({"format": 99, "runs": []}))
    assert main(["report", str(bad)]) == 2
    assert "not an ebv-cl results file of format 1" in capsys.readouterr().err


def _full_folder(path, strategy, extra):
    config = ("name: demo\nscenario: {dataset: digits, kind: class_incremental, n_experiences: 5}\n"
              f"strategies: [{strategy}]\nseeds: [0, 1, 2]\nepochs: 2\n{extra}")
    folder = ResultsFolder(path, config_text=config, name="demo")
    folder.scenario = SCENARIO
    folder.start(resume=False)
    for seed in (0, 1, 2):
        folder.add(_record(strategy, seed, 0.5 + 0.01 * seed), plot=False)
    return path


def test_report_reads_older_configs_through_the_schema_and_ignores_the_bank_path(tmp_path):
    # an older folder: written before eval_batch_size was spelled out, bank loaded from another path
    old = _full_folder(tmp_path / "old", "fc+replay", "bank: {n: 16, dim: 8, path: /old/bank.ebv}\n")
    new = _full_folder(tmp_path / "new", "ebv+replay",
                       "eval_batch_size: 256\nbank: {n: 16, dim: 8, path: /new/bank.ebv}\n")
    assert len(merge_results([old, new])[1]) == 6
    other = _full_folder(tmp_path / "other", "ncm+replay", "eval_batch_size: 64\nbank: {n: 16, dim: 8}\n")
    with pytest.raises(ConfigError, match=r"settings differ .*eval_batch_size: 256 vs 64"):
        merge_results([old, other])


def test_report_compares_bank_settings_only_between_folders_whose_heads_used_a_bank(tmp_path):
    """FC, NCM and tau-norm runs need no bank: their bank settings cannot block a merge (the fscil table merges
    them with an EBV run on a larger bank), but two folders that did use banks must agree on them."""
    fc = _full_folder(tmp_path / "fc", "fc+fscil", "bank: {n: 1623, dim: 128}\n")
    wide = _full_folder(tmp_path / "wide", "ebv+fscil", "bank: {n: 1623, dim: 1024}\n")
    narrow = _full_folder(tmp_path / "narrow", "ebv+replay", "bank: {n: 1623, dim: 128}\n")
    for folder, dim in ((wide, 1024), (narrow, 128)):
        data = json.loads((folder / "results.json").read_text())
        data["bank"] = {"n": 1623, "dim": dim, "method": "auto", "seed": 0, "sha256": f"hash{dim}"}
        (folder / "results.json").write_text(json.dumps(data))
    assert len(merge_results([fc, wide])[1]) == 6
    assert len(merge_results([wide, fc])[1]) == 6
    with pytest.raises(ConfigError, match=r"narrow: its bank .*differs from .*wide"):
        merge_results([fc, wide, narrow])
    (narrow / "results.json").write_text(
        (narrow / "results.json").read_text().replace('"hash128"', '"hash1024"').replace('"dim": 128', '"dim": 1024'))
    with pytest.raises(ConfigError, match=r"narrow: settings differ from .*wide \(bank: .*'dim': 1024.* vs .*'dim': 128"):
        merge_results([fc, wide, narrow])
