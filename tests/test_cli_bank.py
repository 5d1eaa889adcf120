"""`ebv-cl bank generate` and `ebv-cl bank stats`: output contract and one-line user errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ebv_cl import EBVBank
from ebv_cl.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ebv_cl", *args], capture_output=True, text=True, timeout=300)


def test_stats_json_agrees_with_brute_force(tmp_path, random_unit_vectors, capsys):
    v = random_unit_vectors(200, 12, seed=1)
    EBVBank(v).save(tmp_path / "b.ebv")
    assert main(["bank", "stats", str(tmp_path / "b.ebv"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    w = v.double().numpy()
    gram = np.abs(w @ w.T)
    np.fill_diagonal(gram, 0)
    theta = np.degrees(np.arccos(np.clip(w @ w.T, -1, 1)))[np.triu_indices(200, 1)]
    assert record["n"] == 200 and record["dim"] == 12
    assert record["coherence"] == pytest.approx(gram.max(), abs=1e-6)
    assert record["min_angle_deg"] == pytest.approx(np.degrees(np.arccos(gram.max())), abs=1e-3)
    assert record["mean_abs_dev_deg"] == pytest.approx(np.abs(theta - 90).mean(), abs=1e-4)
    assert record["welch_bound"] == pytest.approx(np.sqrt((200 - 12) / (12 * 199)))


def test_generate_then_stats_round_trip(tmp_path, capsys):
    out = tmp_path / "s.ebv"
    assert main(["bank", "generate", "--n", "9", "--dim", "8", "--method", "simplex", "--out", str(out), "--json", "--no-progress"]) == 0
    generated = json.loads(capsys.readouterr().out)
    assert generated["coherence"] == pytest.approx(1 / 8, abs=1e-6)
    assert main(["bank", "stats", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["coherence"] == pytest.approx(generated["coherence"])


@pytest.mark.parametrize(
    "args, match",
    [
        (["bank", "stats", "/nonexistent/bank.ebv"], "does not exist"),
        (["bank", "generate", "--n", "10", "--dim", "4", "--method", "orthogonal", "--out", "{tmp}/x.ebv"], "orthogonal"),
        (["bank", "generate", "--n", "10", "--dim", "4", "--alpha", "1.5", "--out", "{tmp}/x.ebv"], "alpha"),
    ],
)
def test_user_errors_are_one_line_without_traceback(tmp_path, args, match):
    result = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ebv-cl: error:"), result.stderr
    assert "Traceback" not in result.stderr
    assert match in lines[0]


def test_corrupt_bank_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "b.ebv"
    EBVBank(torch.eye(4)).save(path)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF
    path.write_bytes(bytes(raw))
    result = run_cli("bank", "stats", str(path))
    assert result.returncode == 2 and "sha256" in result.stderr and "Traceback" not in result.stderr


def test_bad_argument_values_exit_non_zero(tmp_path):
    result = run_cli("bank", "generate", "--n", "0", "--dim", "4", "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and "expected an integer >= 1" in result.stderr


def test_stats_text_is_readable_and_says_why_a_bound_is_absent(tmp_path, capsys):
    path = tmp_path / "b.ebv"
    assert main(["bank", "generate", "--n", "20", "--dim", "8", "--max-steps", "5", "--out", str(path)]) == 0
    capsys.readouterr()
    assert main(["bank", "stats", str(path)]) == 0
    out = capsys.readouterr().out
    assert "levenstein_bound    n/a (the real Levenstein bound applies only when n > dim (dim + 1) / 2 = 36)" in out
    coherence = next(line for line in out.splitlines() if line.startswith("coherence "))
    assert len(coherence.split()[-1]) <= 8  # 6 significant digits, not 17
    assert main(["bank", "stats", str(path), "--json"]) == 0
    text = capsys.readouterr().out
    assert text.endswith("}\n") and json.loads(text)["levenstein_bound"] is None


def test_generate_says_why_it_stopped_and_help_shows_the_default_budget(tmp_path, capsys):
    path = tmp_path / "b.ebv"
    assert main(["bank", "generate", "--n", "20", "--dim", "8", "--time-budget", "0.2", "--out", str(path)]) == 0
    assert "(stopped: " in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["bank", "generate", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: 60 s unless --max-steps" in help_text and "random seed (default: 0)" in help_text


def test_generation_progress_bar_has_a_total_and_stays_off_without_a_terminal(capsys):
    from ebv_cl.bank.generate.budget import Budget, Tracker

    tracker = Tracker(Budget.create(time_budget=30.0), progress=True)
    assert tracker._bar is not None and tracker._bar.total == 30.0 and tracker._bar.disable  # pytest: no tty
    tracker.advance(3)
    tracker.close()
    assert "\r" not in capsys.readouterr().err
    stepped = Tracker(Budget.create(max_steps=40), progress=True)
    assert stepped._bar.total == 40
    stepped.close()


def test_code_bank_generate_and_stats_with_sample(tmp_path, capsys):
    out = tmp_path / "g.ebv"
    assert main(["bank", "generate", "--n", "16383", "--dim", "128", "--out", str(out), "--json"]) == 0
    generated = json.loads(capsys.readouterr().out)
    assert generated["method"] == "gold" and generated["code"]["m"] == 7 and generated["bytes"] < 4096
    assert generated["coherence"] == pytest.approx(17 / 127) and generated["coherence_exact"]
    assert main(["bank", "stats", str(out), "--json", "--sample", "40"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["coherence"] == pytest.approx(17 / 127) and record["code"]["family"] == "gold"
    assert record["sample"]["all_rows"] and record["sample"]["consistent"]
    assert record["sample"]["max_abs_cos"] <= record["coherence"] + 1e-9


def test_stats_sample_on_a_dense_bank(tmp_path, random_unit_vectors, capsys):
    v = random_unit_vectors(300, 8, seed=2)
    EBVBank(v).save(tmp_path / "d.ebv")
    assert main(["bank", "stats", str(tmp_path / "d.ebv"), "--json", "--sample", "300"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["sample"]["max_abs_cos"] == pytest.approx(record["coherence"], abs=1e-6)


def test_tampered_code_bank_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "c.ebv"
    EBVBank.generate(2000, 64, method="kasami").save(path)
    raw = path.read_bytes().replace(b'"padding": "zero"', b'"padding": "zeRo"')
    path.write_bytes(raw)
    assert main(["bank", "stats", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ebv-cl: error:") and "checksum" in err[0]
