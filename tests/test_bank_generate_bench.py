"""The generator benchmark runs end to end on a tiny size and writes its JSON."""

from __future__ import annotations

import argparse
import json

import pytest

from ebv_cl.bench import generator


def _args(**overrides) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    generator.add_arguments(parser)
    args = parser.parse_args([])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_bench_generator_tiny(tmp_path, capsys) -> None:
    out = tmp_path / "gen.json"
    args = _args(sizes="300x16", budget=0.5, anchors=False, out=str(out), isolate=False)
    assert generator.main(args) == 0
    table = capsys.readouterr().out
    assert "allpairs" in table and "sparse" in table and "random" in table
    record = json.loads(out.read_text())
    rows = {r["method"]: r for r in record["rows"]}
    assert set(rows) == {"random", "allpairs", "sparse"}
    assert rows["sparse"]["coherence"] < rows["random"]["coherence"]
    assert rows["sparse"]["to_random"] == pytest.approx(rows["sparse"]["coherence"] / rows["random"]["coherence"])
    assert rows["sparse"]["peak_rss_mib"] > 0 and rows["sparse"]["welch_bound"] > 0


def test_bench_generator_jobs_and_sizes() -> None:
    jobs = generator._jobs(_args(sizes="1000x128,100000x512", allpairs_max_n=20000), cuda=False)
    methods = [(j["n"], j["method"]) for j in jobs if j["group"] == "size"]
    assert (100000, "allpairs") not in methods and (100000, "sparse") in methods and (1000, "allpairs") in methods
    anchors = [j for j in jobs if j["group"] == "anchor" and j["method"] != "random"]
    assert [j["dim"] for j in anchors] == [100, 200, 300, 400, 500]
    with pytest.raises(ValueError, match="--sizes must look like"):
        generator._parse_sizes("1000by128")


def test_bench_generator_codes_tiny(tmp_path, capsys) -> None:
    out = tmp_path / "codes.json"
    args = _args(codes=True, code_sizes="1000x32,10000x128", code_method="gold", code_sparse_budget=0.5,
                 sparse_max_n=5000, out=str(out), isolate=False)
    assert generator.main(args) == 0
    table = capsys.readouterr().out
    assert "gold m=5 n=31" in table and "skipped: N > --sparse-max-n 5000" in table and "stats s" in table
    rows = json.loads(out.read_text())["rows"]
    gold = [r for r in rows if r.get("concrete_method") == "gold" and r["n"] == 1000][0]
    sparse = [r for r in rows if r.get("concrete_method") == "sparse"][0]
    assert gold["coherence"] == pytest.approx(9 / 31) and gold["bytes"] < 4096 and gold["coherence_exact"]
    assert sparse["n"] == 1000 and sparse["bytes"] > 4 * 1000 * 32 and sparse["budget_s"] >= 0.5
    big = [r for r in rows if r["n"] == 10000 and not r.get("skipped")][0]
    assert big["code"] == "gold m=7 n=127" and big["to_bound"] > 1
