"""``ebv-cl bench head`` on tiny sizes: record layout, constant EBV parameters, argument errors."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from ebv_cl.bench import head as bench


def _args(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(["--classes", "20,300", "--batch", "16", "--in-features", "16", "--dim", "8",
                              "--sampled-negatives", "16", "--hard-negatives", "8", "--steps", "3",
                              "--seconds", "0.2", "--warmup", "1", "--no-memory", "--threads", "1", *extra])


def test_bench_head_records_every_method_and_class_count(capsys):
    before = torch.get_num_threads()
    try:
        assert bench.main(_args("--json")) == 0
    finally:
        torch.set_num_threads(before)
    result = json.loads(capsys.readouterr().out)
    rows = {(r["method"], r["classes"]): r for r in result["results"]}
    assert set(rows) == {(m, c) for m in ("fc", "ebv_full", "ebv_sampled") for c in (20, 300)}
    assert rows[("fc", 300)]["trainable_params"] == 300 * 17
    assert rows[("ebv_full", 20)]["trainable_params"] == rows[("ebv_sampled", 300)]["trainable_params"] == 16 * 8 + 8
    assert rows[("ebv_sampled", 300)]["sampling_active"] and not rows[("ebv_sampled", 20)]["sampling_active"]
    assert rows[("ebv_sampled", 300)]["classes_scored"] <= 16 + 8 + 16
    assert rows[("fc", 20)]["optimizer_state_bytes"] == 2 * 20 * 17 * 4 + 2 * 4  # Adam: two moments + a step each
    assert result["checks"]["ebv_full_params_constant"] and result["checks"]["ebv_sampled_params_constant"]
    for r in result["results"]:
        assert 0 < r["ms_min"] <= r["ms_per_step"] and r["peak_memory_bytes"] is None


def test_memory_probe_sees_the_fc_head_grow():
    cfg = {**vars(_args()), "threads": 1}
    before = torch.get_num_threads()
    try:
        small = bench.measure_memory("fc", cfg, 50, 64)
        if small is None:
            pytest.skip("no /proc/self/clear_refs on this system: the CPU memory probe reports nothing")
    finally:
        torch.set_num_threads(before)
    # In a fresh process, as the benchmark runs it: a long-lived one reuses freed pages without growing its RSS.
    big = bench._memory_subprocess("fc", cfg, 50_000, 64)
    fc_state = 4 * 50_000 * 16 * 4  # weight, gradient and Adam's two moments, float32, 16 features
    assert big >= 0.9 * fc_state


@pytest.mark.parametrize("text", ["", "1", "a,b", "100,-5"])
def test_bad_class_list_is_rejected(text):
    with pytest.raises(ValueError, match="--classes must"):
        bench._parse_classes(text)


def test_methods_subset_and_unknown_method(capsys):
    before = torch.get_num_threads()
    try:
        assert bench.main(_args("--methods", "ebv_sampled", "--clock", "cpu")) == 0
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert "ebv_sampled_params_constant: True" in out and " fc " not in out
    with pytest.raises(ValueError, match="--methods must be a comma-separated subset of fc,ebv_full,ebv_sampled"):
        bench._parse_methods("fc,svm")
    with pytest.raises(ValueError, match="--clock cpu needs --device cpu and --threads 1"):
        bench.run(_args("--clock", "cpu", "--threads", "2"))
