"""Results math on hand-made count matrices, the results folder, atomic writes and checkpoint files."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch

from ebv_cl.errors import ConfigError
from ebv_cl.run.checkpoints import CheckpointError, checkpoint_path, load_checkpoint, save_checkpoint
from ebv_cl.run.metrics import accuracy_matrix, class_accuracy, forgetting, seen_accuracy, summarize
from ebv_cl.run.results import ResultsFolder, comparison_table, plot_accuracy
from ebv_cl.run.seeding import capture_rng, local_rng

CLASSES = [[0, 1], [2, 3], [4, 5]]
TOTAL = np.array([10, 10, 10, 10, 20, 20])
CORRECT = np.array(
    [
        [10, 4, 0, 0, 0, 0],
        [5, 9, 9, 10, 0, 0],
        [2, 8, 4, 6, 20, 10],
    ]
)


def test_accuracy_matrix_by_hand():
    m = accuracy_matrix(CORRECT, TOTAL, CLASSES)
    expected = np.array([[14 / 20, np.nan, np.nan], [14 / 20, 19 / 20, np.nan], [10 / 20, 10 / 20, 30 / 40]])
    np.testing.assert_allclose(m, expected)


def test_seen_accuracy_is_sample_weighted():
    np.testing.assert_allclose(seen_accuracy(CORRECT, TOTAL, CLASSES), [14 / 20, 33 / 40, 50 / 80])


def test_forgetting_is_per_class_not_per_experience():
    acc = class_accuracy(CORRECT, TOTAL, CLASSES)
    assert np.isnan(acc[0, 2]) and acc[1, 1] == pytest.approx(0.9)
    # classes 0..3: best earlier minus final = 1.0-0.2, 0.9-0.8, 0.9-0.4, 1.0-0.6
    assert forgetting(acc, CLASSES) == pytest.approx((0.8 + 0.1 + 0.5 + 0.4) / 4)
    # the per-experience version would be ((0.7-0.5) + (0.95-0.5)) / 2 = 0.325: a different number
    assert forgetting(acc, CLASSES) != pytest.approx(0.325)


@pytest.mark.parametrize(
    "correct, total, classes, avg, final, forget",
    [
        (CORRECT, TOTAL, CLASSES, (14 / 20 + 33 / 40 + 50 / 80) / 3, 50 / 80, 0.45),
        (np.array([[3, 1]]), np.array([4, 4]), [[0, 1]], 0.5, 0.5, None),  # one experience: no forgetting
        (np.array([[5, 0], [2, 5]]), np.array([5, 5]), [[0], [1]], (1.0 + 0.7) / 2, 0.7, 0.6),
        (np.array([[1, 0], [5, 5]]), np.array([5, 5]), [[0], [1]], (0.2 + 1.0) / 2, 1.0, -0.8),  # improved
    ],
)
def test_summarize(correct, total, classes, avg, final, forget):
    s = summarize(correct, total, classes)
    assert s["avg_incremental_accuracy"] == pytest.approx(avg)
    assert s["final_accuracy"] == pytest.approx(final)
    assert s["forgetting"] == (None if forget is None else pytest.approx(forget))
    json.dumps(s)  # JSON-ready: no NaN, no numpy types
    assert s["accuracy_matrix"][0][-1] is None or len(classes) == 1


def test_shape_errors():
    with pytest.raises(ValueError, match=r"correct must have shape \(experiences, classes\)"):
        summarize(np.zeros((2, 3)), np.zeros(4), CLASSES)
    with pytest.raises(ValueError, match=r"lists only 1 experiences"):
        summarize(np.zeros((2, 2)), np.ones(2), [[0, 1]])


def _record(strategy, seed, avg, final=0.5, forget=0.1):
    head, method = strategy.split("+")
    return {
        "strategy": strategy, "head": head, "method": method, "seed": seed,
        "accuracy_matrix": [[final]], "seen_accuracy": [avg, final], "avg_incremental_accuracy": avg,
        "final_accuracy": final, "forgetting": forget, "trainable_head_params": [10, 20], "wall_time_s": 1.0,
    }


def test_comparison_table_mean_and_std():
    runs = [_record("fc+replay", 0, 0.5), _record("fc+replay", 1, 0.7), _record("ebv+replay", 0, 0.9, forget=None)]
    table = comparison_table(runs, title="t")
    fc = next(line for line in table.splitlines() if line.startswith("| fc+replay"))
    std = float(np.std([50.0, 70.0], ddof=1))
    assert f"| 2 | 60.00 ± {std:.2f} |" in fc and "| 20 |" in fc
    ebv = next(line for line in table.splitlines() if line.startswith("| ebv+replay"))
    assert "| 1 | 90.00 |" in ebv and "n/a" in ebv


def test_plot_is_png():
    png = plot_accuracy([_record("fc+replay", 0, 0.5), _record("fc+replay", 1, 0.6)], title="x")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_folder_writes_and_refuses_to_overwrite(tmp_path):
    with pytest.raises(ConfigError, match=r"--resume: .* holds no run to continue"):
        ResultsFolder(tmp_path / "out", config_text="a: 1\n").start(resume=True)
    folder = ResultsFolder(tmp_path / "out", config_text="a: 1\n", name="demo")
    folder.start(resume=False)
    folder.add(_record("fc+replay", 0, 0.5))
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["strategy"] for r in data["runs"]] == ["fc+replay"] and data["name"] == "demo"
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "resolved_config.yaml", "results.json", "results.md", "accuracy.png", ".lock"}
    folder.close()  # the lock is held until then (another process would be refused)
    with pytest.raises(ConfigError, match=r"already holds a run; pass --resume"):
        ResultsFolder(tmp_path / "out", config_text="a: 1\n").start(resume=False)
    with pytest.raises(ConfigError, match=r"--resume: the config differs"):
        ResultsFolder(tmp_path / "out", config_text="a: 2\n").start(resume=True)
    again = ResultsFolder(tmp_path / "out", config_text="a: 1\n")
    again.start(resume=True)
    assert again.finished("fc+replay", 0) and not again.finished("fc+replay", 1)


def test_failed_write_keeps_previous_results_and_leaves_no_temp_file(tmp_path):
    folder = ResultsFolder(tmp_path, config_text="a: 1\n")
    folder.start(resume=False)
    folder.add(_record("fc+replay", 0, 0.5))
    before = (tmp_path / "results.json").read_bytes()
    bad = _record("fc+replay", 1, 0.5)
    bad["not_json"] = object()
    with pytest.raises(TypeError):
        folder.add(bad)
    assert (tmp_path / "results.json").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_checkpoint_round_trip_and_errors(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    holder = type("Holder", (), {})()
    holder.model, holder.optimizer, holder.fn, holder.dataloader = model, opt, (lambda v: v + 1), iter([1])
    path = checkpoint_path(tmp_path, strategy="ebv+der", seed=3)
    assert path.name.startswith("ebv_der-seed3-") and path.suffix == ".ckpt"
    save_checkpoint(path, strategy=holder, state={"next_experience": 2, "rng": capture_rng()})
    assert holder.dataloader is not None  # the caller's object is untouched
    loaded = load_checkpoint(path)
    back = loaded["strategy"]
    assert loaded["state"]["next_experience"] == 2 and back.fn(1) == 2 and back.dataloader is None
    torch.testing.assert_close(back.model.weight, model.weight)
    assert back.optimizer.state_dict()["state"][0]["momentum_buffer"].shape == (2, 3)
    assert back.optimizer.param_groups[0]["params"][0] is back.model.weight  # references survive
    assert load_checkpoint(tmp_path / "missing.ckpt") is None
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match=r"cannot be read"):
        load_checkpoint(path)


def test_local_rng_restores_caller_state_and_replays():
    random.seed(123)
    torch.manual_seed(123)
    outside = (random.random(), torch.rand(1).item())
    random.seed(123)
    torch.manual_seed(123)
    with local_rng(7):
        first = (random.random(), np.random.rand(), torch.rand(1).item())
        state = capture_rng()
        after = (random.random(), np.random.rand(), torch.rand(1).item())
    assert (random.random(), torch.rand(1).item()) == outside  # the caller's stream continues untouched
    with local_rng(7):
        assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    with local_rng(state=state):
        assert (random.random(), np.random.rand(), torch.rand(1).item()) == after
    assert not math.isnan(first[0])


def test_progress_plugin_pickles_without_its_bar():
    import pickle

    from ebv_cl.run.progress import ProgressBars

    bars = ProgressBars("fc+replay seed 0", enabled=True)
    bars._bar = object()  # stands for a live tqdm bar, which cannot be pickled
    back = pickle.loads(pickle.dumps(bars))
    assert back._bar is None and back.label == "fc+replay seed 0" and bars._bar is not None
    quiet = ProgressBars("x", enabled=False)
    quiet.before_training_epoch(object())
    quiet.after_training_iteration(object())
    assert quiet._bar is None


def test_head_effect_table_pairs_seeds_and_tests_the_difference():
    from ebv_cl.run.results import head_effect_table

    runs = []
    for seed, (fc, ebv, ncm) in enumerate([(0.50, 0.60, 0.51), (0.70, 0.81, 0.69), (0.40, 0.49, 0.42)]):
        runs += [_record("fc+replay", seed, 0.5, final=fc), _record("ebv+replay", seed, 0.5, final=ebv, forget=0.05),
                 _record("ncm+replay", seed, 0.5, final=ncm)]
    runs += [_record("ebv+der", 0, 0.5, final=0.9), _record("fc+der", 0, 0.5, final=0.8)]
    runs.append(_record("ebv+lwf", 0, 0.5))  # no fc+lwf: no row
    table = head_effect_table(runs)
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in table.splitlines() if line.startswith("| ")}
    # ebv - fc = +10, +11, +9 points: spread 1, large against it; the unpaired stds (~15) would hide it
    assert "| 3 | +10.00 ± 1.00 | -5.00 ± 0.00 | better |" in rows[("replay", "ebv")]
    assert "no clear difference" in rows[("replay", "ncm")]  # +1, -1, +2
    assert "| 1 | +10.00 |" in rows[("der", "ebv")] and "n/a (fewer than 3 seeds)" in rows[("der", "ebv")]
    assert ("lwf", "ebv") not in rows
    worse = [_record("fc+naive", s, 0.5, final=0.6 + 0.01 * s) for s in range(3)]
    worse += [_record("ebv+naive", s, 0.5, final=0.5 + 0.012 * s) for s in range(3)]
    assert "| worse |" in head_effect_table(worse)
    assert head_effect_table([_record("ebv+replay", 0, 0.5)]) == ""
    two = [_record(s, seed, 0.5, final=f) for seed in range(2) for s, f in (("fc+lwf", 0.5), ("ebv+lwf", 0.49))]
    assert "| 2 | -1.00 ± 0.00 | +0.00 ± 0.00 | n/a (fewer than 3 seeds) |" in head_effect_table(two)


def test_head_effect_table_gives_each_variant_of_a_head_its_own_row():
    """Two strategies of one head under one method (the second with its own name) are paired with the
    baseline separately, not mixed into one row keyed by the head."""
    from ebv_cl.run.results import head_effect_table

    runs = []
    for seed in range(3):
        runs.append(_record("fc+replay", seed, 0.5, final=0.50 + 0.01 * seed))
        runs.append(_record("ebv+replay", seed, 0.5, final=0.60 + 0.01 * seed))
        mlp = _record("ebv+replay", seed, 0.5, final=0.40 + 0.01 * seed)
        runs.append(dict(mlp, strategy="ebv-mlp+replay"))
    table = head_effect_table(runs)
    rows = {line.split("|")[2].strip(): line for line in table.splitlines() if line.startswith("| replay")}
    assert set(rows) == {"ebv", "ebv (ebv-mlp+replay)"}
    assert "| 3 | +10.00 ± 0.00 |" in rows["ebv"] and "| better |" in rows["ebv"]
    assert "| 3 | -10.00 ± 0.00 |" in rows["ebv (ebv-mlp+replay)"] and "| worse |" in rows["ebv (ebv-mlp+replay)"]
    against_ebv = head_effect_table(list(reversed(runs)), baseline="ebv")  # the unnamed ebv+replay is the reference
    rows = {line.split("|")[2].strip(): line for line in against_ebv.splitlines() if line.startswith("| replay")}
    assert set(rows) == {"fc", "ebv (ebv-mlp+replay)"}
    assert "| 3 | -20.00 ± 0.00 |" in rows["ebv (ebv-mlp+replay)"] and "| -10.00 ± 0.00 |" in rows["fc"]


def test_results_md_includes_the_head_effect_table(tmp_path):
    folder = ResultsFolder(tmp_path / "out", config_text="a: 1\n", name="x")
    folder.start(resume=False)
    for seed in range(2):
        folder.add(_record("fc+replay", seed, 0.5, final=0.5), plot=False)
        folder.add(_record("ebv+replay", seed, 0.5, final=0.6 + 0.01 * seed), plot=False)
    text = (tmp_path / "out" / "results.md").read_text()
    assert "## Swapping fc for another head, per method" in text and "| replay | ebv | 2 |" in text


@pytest.mark.parametrize(
    "curves, expected",
    [
        ([[74.0, 100.0]], (72.7, 100.0)),          # fitted to the data, not 0-100
        ([[10.0, 30.0]], (9.0, 31.0)),
        ([[50.0, 51.0]], (45.5, 55.5)),            # at least a 10-point span
        ([[0.0, 2.0]], (0.0, 10.0)),               # kept inside [0, 100]
        ([[99.0, 100.0]], (90.0, 100.0)),
        ([[float("nan")]], (0.0, 100.0)),
        ([], (0.0, 100.0)),
    ],
)
def test_accuracy_axis_fits_the_lines(curves, expected):
    import numpy as np

    from ebv_cl.run.results import accuracy_axis_limits

    lo, hi = accuracy_axis_limits([np.asarray(c) for c in curves])
    assert lo == pytest.approx(expected[0]) and hi == pytest.approx(expected[1])
