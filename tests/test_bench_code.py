"""``ebv-cl bench search --code`` and ``ebv-cl bench head --code``: end to end on small code banks."""

from __future__ import annotations

import json

import pytest

from ebv_cl.cli import main

pytest.importorskip("ebv_cl.bank.codes")


def test_bench_search_code_bank_runs_every_fitting_method_exactly(capsys):
    assert main(["bench", "search", "--code", "--n", "4000", "--dim", "64", "--queries", "48", "--repeats", "1",
                 "--threads", "1", "--code-scorers", "wht,fft,circulant", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    methods = {r["method"]: r for r in report["results"]}
    scorers = {"ebv_fft[wht]", "ebv_fft[fft]", "ebv_fft[circulant]"}
    assert set(methods) == scorers | {"ebv_int8", "ebv_fp32", "faiss_flat", "torch"}
    assert report["bank"].startswith("code bank ") and report["skipped"] == {}
    assert report["truth"].startswith("brute force")
    for name in sorted(scorers) + ["ebv_int8", "ebv_fp32"]:
        assert methods[name]["top1_exact_agreement"] == 1.0
    for r in report["results"]:
        assert r["cpu_ms_per_1k_queries"] > 0 and r["search_extra_rss_mib"] >= 0


def test_bench_search_code_bank_skips_dense_methods_over_the_memory_limit(capsys):
    assert main(["bench", "search", "--code", "--n", "4000", "--dim", "64", "--queries", "16", "--repeats", "1",
                 "--memory-limit-gb", "0.0005"]) == 0
    out = capsys.readouterr().out
    assert "ebv_fft[" in out  # the scorer auto picked, then fft unless that was auto's choice
    for name in ("ebv_int8", "ebv_fp32", "faiss_flat", "torch"):
        assert f"{name:<16}skipped: needs" in out


def test_bench_search_code_bad_scorer_is_a_clear_error(capsys):
    assert main(["bench", "search", "--code", "--n", "400", "--dim", "64", "--queries", "4", "--repeats", "1",
                 "--code-scorers", "fast"]) == 2
    assert "--code-scorers must be a comma-separated list" in capsys.readouterr().err


def test_code_truth_by_float64_fft_equals_brute_force():
    import numpy as np
    import torch

    from ebv_cl import EBVBank
    from ebv_cl.bank.codes import SequenceCode
    from ebv_cl.bench.search import _code_truth_top1
    from ebv_cl.index.rerank import exact_search, unit_queries

    bank = EBVBank.from_code(SequenceCode("gold", 5, 31 * 30 + 4, 40))
    rows = bank.rows(np.arange(bank.n))
    queries = unit_queries(torch.cat([torch.randn(20, 40, generator=torch.Generator().manual_seed(0)), rows[:5]]))
    assert torch.equal(_code_truth_top1(bank, queries), exact_search(rows, queries, 1)[1][:, 0])


def test_bench_head_code_bank_records_sampled_steps(capsys):
    assert main(["bench", "head", "--code", "--dim", "64", "--classes", "100,3000", "--batch", "16",
                 "--in-features", "32", "--sampled-negatives", "32", "--hard-negatives", "8", "--steps", "3",
                 "--seconds", "0.2", "--warmup", "0", "--methods", "ebv_full,ebv_sampled", "--no-memory",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["code"] is True and report["config"]["bank"].startswith("code bank ")
    sampled = [r for r in report["results"] if r["method"] == "ebv_sampled" and r["classes"] == 3000]
    assert sampled and sampled[0]["sampling_active"] and sampled[0]["classes_scored"] < 3000


def test_bench_head_code_bank_too_small_dim_is_a_clear_error(capsys):
    assert main(["bench", "head", "--code", "--dim", "8", "--classes", "100000", "--methods", "ebv_sampled",
                 "--no-memory"]) == 2
    assert "no code family holds 100000 classes at --dim 8" in capsys.readouterr().err
