"""``ebv-cl bench search``: nearest-class search, FAISS and torch against every ebv-cl exact path, in one process.

On one bank (random unit vectors, or ``--bank PATH``) and one query batch (half random unit vectors, half
bank vectors plus noise, cosine about 0.7 to their class), it times: ``faiss_flat`` (``IndexFlatIP``),
``torch`` (blocked float32 matmul + topk) and the ``flat`` paths of ``BankIndex`` (``ebv_int8``, ``ebv_fp32``,
``ebv_wht`` on Kerdock banks), ``ebv_sharded`` with ``--shard-devices`` and ``hnsw``/``ivf`` with ``--approx``. Methods run round-robin, ``--repeats``
rounds after one warm-up (which also builds each index), so that load from other processes hits them alike;
the best round is reported, with the median beside it. Agreement is measured against FAISS flat's top-k and,
unless ``--no-truth``, against the exact float64 top-1. Timings taken on a loaded machine are only meaningful
as ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["add_arguments", "main", "run"]

_TORCH_BLOCK = 65536


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``ebv-cl bench search``."""
    parser.add_argument("--n", type=int, default=100_000, help="bank size N (random unit bank)")
    parser.add_argument("--dim", type=int, default=512, help="dimension d (random unit bank)")
    parser.add_argument("--queries", type=int, default=1024, help="queries per search call")
    parser.add_argument("--k", type=int, default=1, help="classes per query")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bank", default=None, help="search this bank file instead of a random bank")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (after one warm-up round)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OpenMP threads for torch and FAISS (default: leave both as they are)")
    parser.add_argument("--approx", action="store_true", help="also time hnsw and ivf (slow to build)")
    parser.add_argument("--shard-devices", default=None,
                        help="also time the exact 'sharded' kind over these comma-separated devices "
                             "(e.g. cuda:0,cuda:1 or cpu,cpu)")
    parser.add_argument("--no-truth", action="store_true", help="skip the float64 ground truth")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(func=main)


def _problem(args: argparse.Namespace) -> tuple[Any, torch.Tensor]:
    from .. import EBVBank
    from ..validation import check_positive_int

    g = torch.Generator().manual_seed(args.seed)
    if args.bank:
        bank = EBVBank.load(args.bank)
    else:
        n, dim = check_positive_int(args.n, name="--n"), check_positive_int(args.dim, name="--dim")
        bank = EBVBank(torch.randn(n, dim, generator=g))
    q = check_positive_int(args.queries, name="--queries")
    check_positive_int(args.k, name="--k", maximum=bank.n)
    queries = torch.randn(q, bank.dim, generator=g)
    near = q // 2
    rows = torch.randint(0, bank.n, (near,), generator=g)
    queries[:near] = bank.vectors[rows] + torch.randn(near, bank.dim, generator=g) / bank.dim**0.5
    return bank, torch.nn.functional.normalize(queries, dim=1)


def _torch_topk(vectors: torch.Tensor, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    best_s = best_i = None
    for j0 in range(0, vectors.shape[0], _TORCH_BLOCK):
        s, i = (queries @ vectors[j0 : j0 + _TORCH_BLOCK].T).topk(min(k, vectors.shape[0] - j0), dim=1)
        i += j0
        if best_s is not None:
            s, order = torch.cat([best_s, s], 1).topk(k, dim=1)
            i = torch.cat([best_i, i], 1).gather(1, order)
        best_s, best_i = s, i
    return best_s, best_i


_Method = tuple[Callable[[torch.Tensor], Any], dict[str, Any]]


def _methods(bank: Any, allocator: Any, k: int, approx: bool, shard_devices: str | None = None) -> dict[str, _Method]:
    import faiss

    from ..index import BankIndex, choose_path

    vectors = bank.vectors
    flat = faiss.IndexFlatIP(bank.dim)
    flat.add(np.ascontiguousarray(vectors.numpy()))
    methods: dict[str, _Method] = {
        "faiss_flat": (lambda q: torch.from_numpy(flat.search(q.numpy(), k)[1]),
                       {"exact": True, "certified": False, "index_bytes": bank.n * bank.dim * 4}),
        "torch": (lambda q: _torch_topk(vectors, q, k)[1], {"exact": True, "certified": False, "index_bytes": 0}),
    }
    paths = ["int8", "fp32"] + (["wht"] if choose_path(bank, torch.device("cpu")) == "wht" else [])
    for path in paths:
        index = BankIndex(bank, allocator, path=path, device="cpu")
        methods[f"ebv_{path}"] = (lambda q, index=index: index.search_slots(q, k)[1],
                                  {"exact": True, "certified": True, "index": index})
    if shard_devices:
        devices = [d.strip() for d in shard_devices.split(",") if d.strip()]
        index = BankIndex(bank, allocator, kind="sharded", devices=devices)
        methods["ebv_sharded"] = (lambda q, index=index: index.search_slots(q, k)[1],
                                  {"exact": True, "certified": True, "index": index})
    if approx:
        for kind in ("hnsw", "ivf"):
            index = BankIndex(bank, allocator, kind=kind, device="cpu")
            methods[kind] = (lambda q, index=index: index.search_slots(q, k)[1],
                             {"exact": False, "certified": False, "index": index})
    return methods


def _truth_top1(vectors: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    q64 = queries.double()
    best_s = torch.full((queries.shape[0],), float("-inf"), dtype=torch.float64)
    best_i = torch.zeros(queries.shape[0], dtype=torch.int64)
    for j0 in range(0, vectors.shape[0], _TORCH_BLOCK):
        s, i = (q64 @ vectors[j0 : j0 + _TORCH_BLOCK].double().T).max(dim=1)
        better = s > best_s  # strict: the lower slot wins ties
        best_s, best_i = torch.where(better, s, best_s), torch.where(better, i + j0, best_i)
    return best_i


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return the JSON-ready report."""
    import faiss

    from .. import SlotAllocator

    if args.threads is not None:
        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    bank, queries = _problem(args)
    allocator = SlotAllocator(bank.n)
    allocator.allocate(range(bank.n))
    methods = _methods(bank, allocator, args.k, args.approx, getattr(args, "shard_devices", None))
    times: dict[str, list[float]] = {name: [] for name in methods}
    answers: dict[str, torch.Tensor] = {}
    for round_ in range(1 + max(1, args.repeats)):
        for name, (search, _) in methods.items():
            start = time.perf_counter()
            answers[name] = search(queries)
            if round_:  # round 0 warms up and builds
                times[name].append(time.perf_counter() - start)
    truth = None if args.no_truth else _truth_top1(bank.vectors, queries)
    ref = answers["faiss_flat"]
    results = []
    for name, (_, meta) in methods.items():
        best, got = min(times[name]), answers[name]
        index = meta.get("index")
        record = {
            "method": name,
            "exact": meta["exact"],
            "certified": meta["certified"],
            "ms_per_1k_queries": 1000 * best / queries.shape[0] * 1000,
            "median_ms_per_1k_queries": 1000 * statistics.median(times[name]) / queries.shape[0] * 1000,
            "queries_per_s": queries.shape[0] / best,
            "top1_agreement": float((got[:, 0] == ref[:, 0]).float().mean()),
            "topk_agreement": float(np.mean([len(set(a) & set(b)) / args.k for a, b in zip(got.tolist(), ref.tolist())])),
            "index_bytes": meta["index_bytes"] if index is None else index.memory_bytes(),
        }
        if truth is not None:
            record["top1_exact_agreement"] = float((got[:, 0] == truth).float().mean())
        results.append(record)
    faiss_ms = results[0]["ms_per_1k_queries"]
    for record in results:
        record["speedup_vs_faiss_flat"] = faiss_ms / record["ms_per_1k_queries"]
    return {
        "benchmark": "search",
        "n": bank.n,
        "dim": bank.dim,
        "queries": int(queries.shape[0]),
        "k": args.k,
        "seed": args.seed,
        "bank": args.bank or "random unit vectors",
        "bank_method": bank.method,
        "torch_threads": torch.get_num_threads(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "repeats": max(1, args.repeats),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "note": "best of the timed rounds; compare methods within one run (other load hits all alike)",
        "results": results,
    }


def _table(report: dict[str, Any]) -> str:
    head = (f"bench search: N={report['n']} d={report['dim']} queries={report['queries']} k={report['k']} "
            f"threads={report['torch_threads']} ({report['bank']})")
    cols = f"{'method':<12}{'exact':>7}{'cert.':>7}{'ms/1k q':>10}{'median':>10}{'q/s':>10}{'x faiss':>9}" \
           f"{'top1 agr':>10}{'topk agr':>10}{'truth':>8}{'MiB':>8}"
    lines = [head, cols]
    for r in report["results"]:
        lines.append(
            f"{r['method']:<12}{str(r['exact']):>7}{str(r['certified']):>7}{r['ms_per_1k_queries']:>10.1f}"
            f"{r['median_ms_per_1k_queries']:>10.1f}{r['queries_per_s']:>10.0f}{r['speedup_vs_faiss_flat']:>9.2f}"
            f"{r['top1_agreement']:>10.4f}{r['topk_agreement']:>10.4f}{r.get('top1_exact_agreement', float('nan')):>8.4f}"
            f"{r['index_bytes'] / 2**20:>8.1f}"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Entry point of ``ebv-cl bench search``; returns the exit status."""
    report = run(args)
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 0
