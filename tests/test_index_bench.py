"""``ebv-cl bench search``: runs end to end, JSON keys and agreement on a small problem."""

from __future__ import annotations

import json

import pytest

from ebv_cl.cli import main


def test_bench_search_json(capsys):
    assert main(["bench", "search", "--n", "3000", "--dim", "32", "--queries", "64", "--k", "2", "--repeats", "1",
                 "--threads", "1", "--shard-devices", "cpu,cpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    methods = {r["method"]: r for r in report["results"]}
    assert {"faiss_flat", "torch", "ebv_int8", "ebv_fp32", "ebv_sharded"} <= set(methods)
    for r in report["results"]:
        assert {"method", "exact", "ms_per_1k_queries", "top1_agreement", "queries_per_s", "index_bytes"} <= set(r)
        assert r["ms_per_1k_queries"] > 0
    for name in ("ebv_int8", "ebv_fp32", "ebv_sharded"):
        assert methods[name]["exact"] is True and methods[name]["certified"] is True
        assert methods[name]["top1_exact_agreement"] == 1.0
    assert methods["faiss_flat"]["top1_agreement"] == 1.0
    assert (report["n"], report["dim"], report["queries"], report["k"]) == (3000, 32, 64, 2)


def test_bench_search_table_on_a_kerdock_bank_file_includes_wht(tmp_path, capsys):
    from ebv_cl import EBVBank

    path = tmp_path / "kerdock.ebv"
    EBVBank.generate(144, 16, method="kerdock").save(path)
    assert main(["bench", "search", "--bank", str(path), "--queries", "32", "--repeats", "1", "--approx"]) == 0
    out = capsys.readouterr().out
    for name in ("faiss_flat", "torch", "ebv_int8", "ebv_fp32", "ebv_wht", "hnsw", "ivf"):
        assert name in out


@pytest.mark.parametrize("argv, match", [(["--n", "0"], "--n must be >= 1"), (["--k", "0"], "--k must be >= 1")])
def test_bench_search_bad_arguments(argv, match, capsys):
    assert main(["bench", "search", "--dim", "8", "--queries", "4", *argv]) == 2
    assert match in capsys.readouterr().err
