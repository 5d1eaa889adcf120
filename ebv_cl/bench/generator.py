"""``ebv-cl bench generator``: the paper's all-pairs generator against ``sparse``, side by side.

For every size ``N x d`` each method runs in its own spawned process (so peak memory is its own) with the
same time budget and seed; the table shows time, exact final coherence, its ratio to the Welch/Levenstein
bound and to a random bank, peak memory, time per step and per neighbour refresh. Anchor rows put ebv-cl next
to the official EBV banks for N = 1000 (coherence measured from the EBV authors' files). Timings taken on a
shared machine vary with its load: compare the methods of one run, not runs of different days.

``--codes`` runs the code-bank table instead: for (N, d) = (16,383, 128), (10^5, 512), (262,143, 512),
(10^6, 512), (10^6, 1024), (10^7, 1024) (``--code-sizes``) the method ``auto`` (a Gold/Kasami code bank there)
with its exact structural coherence, the Welch/Levenstein bound and the ratio, seconds, bytes of the bank file
and peak memory; next to it ``sparse`` with a time budget of ``max(code seconds, --code-sparse-budget)`` where
it can run at all (N <= ``--sparse-max-n``; above that a single exact ``N^2 d`` neighbour refresh of ``sparse``
takes minutes, so the row says it was skipped and why).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["OFFICIAL_EBV_COHERENCE", "DEFAULT_SIZES", "CODE_SIZES", "add_arguments", "main", "run_one", "run_code_one"]

# Coherence of the EBV authors' released banks, N = 1000 classes, by dimension (measured from their files).
OFFICIAL_EBV_COHERENCE = {100: 0.135, 200: 0.080, 300: 0.058, 400: 0.044, 500: 0.035}
DEFAULT_SIZES = "1000x128,1000x512,10000x128,10000x512,100000x512"
CODE_SIZES = "16383x128,100000x512,262143x512,1000000x512,1000000x1024,10000000x1024"


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        try:
            n, d = (int(float(x)) for x in item.lower().split("x"))
        except ValueError:
            raise ValueError(f"--sizes must look like '1000x128,10000x512', got item {item!r}") from None
        if n < 2 or d < 1:
            raise ValueError(f"--sizes needs N >= 2 and d >= 1, got {item!r}")
        sizes.append((n, d))
    return sizes


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """Run one generation (or the random baseline) in this process and measure it; returns a JSON-ready row."""
    import torch

    from ebv_cl.bank import coherence_lower_bound, levenstein_bound, welch_bound
    from ebv_cl.bank.generate import generate_vectors, random_bank
    from ebv_cl.bank.generate.neighbours import coherence

    torch.set_num_threads(job.get("threads") or torch.get_num_threads())
    n, d, method = job["n"], job["dim"], job["method"]
    start_rss = _rss_mib()
    start = time.perf_counter()
    if method == "random":
        vec = random_bank(n, d, seed=job["seed"]).to(job["device"])
        coh, info = coherence(vec), {}
    else:
        result = generate_vectors(n, d, method=method, seed=job["seed"], time_budget=job["budget"],
                                  device=job["device"], progress=job.get("progress", False))
        coh, info = result.info["final_coherence"], result.info
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {
        "n": n, "dim": d, "method": method, "concrete_method": info.get("method", method), "seed": job["seed"],
        "budget_s": job.get("budget"), "seconds": round(seconds, 2), "coherence": coh,
        "welch_bound": welch_bound(n, d), "levenstein_bound": levenstein_bound(n, d),
        "to_bound": coh / coherence_lower_bound(n, d) if coherence_lower_bound(n, d) > 0 else None,
        "peak_rss_mib": round(peak, 1), "extra_rss_mib": round(peak - start_rss, 1),
        "steps": info.get("steps"), "seconds_per_step": info.get("seconds_per_step"),
        "seconds_per_refresh": info.get("seconds_per_refresh"), "refreshes": info.get("refreshes"),
        "stop_reason": info.get("stop_reason"), "objective": info.get("objective"),
    }
    if job["device"].startswith("cuda"):
        row["cuda_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return row


def run_code_one(job: dict[str, Any]) -> dict[str, Any]:
    """Generate one bank with ``EBVBank.generate`` (a code bank for ``auto`` at large N), save it to a temporary
    folder and measure time (generation with its exact coherence, plus the save), bytes on disk and memory."""
    import tempfile

    import torch

    from ebv_cl.bank import EBVBank, coherence_lower_bound, levenstein_bound, welch_bound

    torch.set_num_threads(job.get("threads") or torch.get_num_threads())
    n, d = job["n"], job["dim"]
    start_rss = _rss_mib()
    start = time.perf_counter()
    cpu = time.process_time()
    bank = EBVBank.generate(n, d, method=job["method"], seed=job["seed"], time_budget=job.get("budget"))
    coh = bank.info.get("final_coherence")
    exact = bank.info.get("coherence_exact", True)
    if coh is None:
        coh = bank.coherence
    with tempfile.TemporaryDirectory() as tmp:
        path = bank.save(Path(tmp) / "bank.ebv")
        size = path.stat().st_size
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu
        verify = time.perf_counter()
        reloaded = EBVBank.load(path)  # checks the formula's sequences (code) or the vectors' sha256 (dense)
        verified = reloaded.stats().coherence if reloaded.code is not None else None
        verify_seconds = time.perf_counter() - verify
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    bound = coherence_lower_bound(n, d)
    code = bank.code
    return {
        "n": n, "dim": d, "method": job["method"], "concrete_method": bank.method, "seed": job["seed"],
        "budget_s": job.get("budget"), "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2),
        "coherence": coh, "coherence_exact": bool(exact), "welch_bound": welch_bound(n, d),
        "levenstein_bound": levenstein_bound(n, d), "to_bound": coh / bound if bound > 0 else None,
        "bytes": size, "peak_rss_mib": round(peak, 1), "extra_rss_mib": round(peak - start_rss, 1),
        "code": f"{code.family} m={code.m} n={code.length}" if code is not None else None,
        "verify_seconds": round(verify_seconds, 2) if verified is not None else None, "verified_coherence": verified,
        "steps": bank.info.get("steps"), "stop_reason": bank.info.get("stop_reason"),
    }


def _spawned(job: dict[str, Any], fn: Any = None) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn or run_one, (job,))


def _jobs(args: argparse.Namespace, cuda: bool) -> list[dict[str, Any]]:
    sizes = _parse_sizes(args.sizes)
    if cuda and args.device.startswith("cuda") and (1_000_000, 512) not in sizes:
        sizes.append((1_000_000, 512))
    base = {"seed": args.seed, "device": args.device, "threads": args.threads, "progress": args.progress}
    jobs = []
    for n, d in sizes:
        jobs.append({**base, "n": n, "dim": d, "method": "random", "group": "size"})
        for method in args.methods.split(","):
            if method == "allpairs" and n > args.allpairs_max_n:
                continue
            jobs.append({**base, "n": n, "dim": d, "method": method, "budget": args.budget, "group": "size"})
    if args.anchors:
        for d in sorted(OFFICIAL_EBV_COHERENCE):
            jobs.append({**base, "n": 1000, "dim": d, "method": "random", "group": "anchor"})
            jobs.append({**base, "n": 1000, "dim": d, "method": args.anchor_method, "budget": args.anchor_budget,
                         "group": "anchor", "official_coherence": OFFICIAL_EBV_COHERENCE[d]})
    return jobs


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'N':>8} {'d':>4} {'method':<10} {'budget':>6} {'time s':>7} {'coher.':>7} {'/bound':>6} "
            f"{'/random':>7} {'official':>8} {'peak MiB':>8} {'s/step':>7} {'s/refr':>7} {'steps':>6}  stop")
    lines = [head, "-" * len(head)]
    for r in rows:
        official = r.get("official_coherence")
        lines.append(
            f"{r['n']:>8} {r['dim']:>4} {r['concrete_method'][:10]:<10} {_fmt(r['budget_s'], '.0f'):>6} "
            f"{r['seconds']:>7.1f} {r['coherence']:>7.4f} {_fmt(r['to_bound'], '.2f'):>6} "
            f"{_fmt(r.get('to_random'), '.3f'):>7} {_fmt(official, '.3f'):>8} {r['peak_rss_mib']:>8.0f} "
            f"{_fmt(r['seconds_per_step'], '.3f'):>7} {_fmt(r['seconds_per_refresh'], '.2f'):>7} "
            f"{_fmt(r['steps'], 'd'):>6}  {r['stop_reason'] or ''}"
        )
    return "\n".join(lines)


def _code_table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'N':>9} {'d':>5} {'method':<7} {'code / budget':<24} {'time s':>7} {'cpu s':>6} {'coher.':>7} "
            f"{'exact':>5} {'bound':>7} {'/bound':>6} {'bytes':>9} {'peak MiB':>8} {'stats s':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.get("skipped"):
            lines.append(f"{r['n']:>9} {r['dim']:>5} {r['method']:<7} skipped: {r['skipped']}")
            continue
        what = r.get("code") or f"{r['concrete_method']} {_fmt(r.get('budget_s'), '.0f')} s"
        lines.append(
            f"{r['n']:>9} {r['dim']:>5} {r['concrete_method'][:7]:<7} {what[:24]:<24} {r['seconds']:>7.1f} "
            f"{_fmt(r.get('cpu_seconds'), '.1f'):>6} {r['coherence']:>7.4f} "
            f"{'yes' if r.get('coherence_exact', True) else 'UB':>5} "
            f"{max(r['welch_bound'], r['levenstein_bound'] or 0):>7.4f} {_fmt(r['to_bound'], '.3f'):>6} "
            f"{_fmt(r.get('bytes'), 'd'):>9} {r['peak_rss_mib']:>8.0f} {_fmt(r.get('verify_seconds'), '.1f'):>7}"
        )
    lines.append("time s: generation with its exact coherence + save; stats s: load (formula checks) + structural "
                 "coherence; exact UB = upper bound")
    return "\n".join(lines)


def _run_codes(args: argparse.Namespace) -> list[dict[str, Any]]:
    from ebv_cl.bank import coherence_lower_bound

    rows: list[dict[str, Any]] = []
    base = {"seed": args.seed, "device": args.device, "threads": args.threads, "progress": False}
    for n, d in _parse_sizes(args.code_sizes):
        job = {**base, "n": n, "dim": d, "method": args.code_method, "budget": args.code_sparse_budget}
        print(f"running {args.code_method} n={n} d={d} ...", file=sys.stderr, flush=True)
        row = _spawned(job, run_code_one) if args.isolate else run_code_one(job)
        row["group"] = "code"
        rows.append(row)
        if row["concrete_method"] == "sparse":
            continue  # auto already chose sparse here: the row above is the comparison
        if n > args.sparse_max_n:
            rows.append({"n": n, "dim": d, "method": "sparse", "group": "code", "bound": coherence_lower_bound(n, d),
                         "skipped": f"N > --sparse-max-n {args.sparse_max_n} (one exact N^2 d neighbour refresh of "
                                    f"sparse takes minutes: 135-662 s at 10^5 x 512)"})
            continue
        budget = max(row["seconds"], args.code_sparse_budget)
        sjob = {**base, "n": n, "dim": d, "method": "sparse", "budget": budget}
        print(f"running sparse n={n} d={d} budget {budget:.0f} s ...", file=sys.stderr, flush=True)
        srow = _spawned(sjob, run_code_one) if args.isolate else run_code_one(sjob)
        srow["group"] = "code"
        rows.append(srow)
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to ``parser``."""
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated NxD (default {DEFAULT_SIZES}); "
                        "1000000x512 is added when --device is cuda and CUDA is available")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per method and size (default 60)")
    parser.add_argument("--methods", default="allpairs,sparse", help="methods to compare (default allpairs,sparse)")
    parser.add_argument("--allpairs-max-n", type=int, default=20000, help="skip allpairs above this N (default 20000)")
    parser.add_argument("--anchors", action=argparse.BooleanOptionalAction, default=True,
                        help="add the official EBV bank rows, N=1000, d=100..500 (default on)")
    parser.add_argument("--anchor-method", default="auto", help="method for the anchor rows (default auto)")
    parser.add_argument("--anchor-budget", type=float, default=60.0, help="seconds per anchor row (default 60)")
    parser.add_argument("--codes", action="store_true",
                        help="run the code-bank table instead (auto = Gold/Kasami at large N, against sparse)")
    parser.add_argument("--code-sizes", default=CODE_SIZES, help=f"NxD for --codes (default {CODE_SIZES})")
    parser.add_argument("--code-method", default="auto", help="method of the code rows (default auto)")
    parser.add_argument("--code-sparse-budget", type=float, default=10.0,
                        help="least seconds for the sparse comparison of --codes (default 10; it gets "
                             "max(code seconds, this))")
    parser.add_argument("--sparse-max-n", type=int, default=20000,
                        help="--codes: skip sparse above this N (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per run (default torch's)")
    parser.add_argument("--quick", action="store_true", help="1000x128 and 2000x64 at 10 s, anchors d=100,200 at 10 s")
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=True,
                        help="run each generation in a spawned process so peak memory is its own (default on)")
    parser.add_argument("--progress", action="store_true", help="show each run's progress bar")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--out", default=None, help="write the rows as JSON to this path")


def main(args: argparse.Namespace) -> int:
    """Run the benchmark; prints a table (or JSON) and optionally writes JSON to ``--out``."""
    import torch

    cuda = torch.cuda.is_available()
    if getattr(args, "codes", False):
        rows = _run_codes(args)
        record = {"device": args.device, "cuda_available": cuda, "torch_threads": torch.get_num_threads(),
                  "suite": "codes", "rows": rows}
        if args.out:
            from ..atomic import atomic_write_json

            atomic_write_json(Path(args.out), record)
        print(json.dumps(record, indent=2) if args.json else _code_table(rows))
        return 0
    if args.quick:
        args.sizes, args.budget, args.anchor_budget = "1000x128,2000x64", 10.0, 10.0
    jobs = _jobs(args, cuda)
    if args.quick:
        jobs = [j for j in jobs if j["group"] == "size" or j["dim"] in (100, 200)]
    rows: list[dict[str, Any]] = []
    random_coherence: dict[tuple[int, int], float] = {}
    for job in jobs:
        print(f"running {job['method']} n={job['n']} d={job['dim']} ...", file=sys.stderr, flush=True)
        row = _spawned(job) if args.isolate else run_one(job)
        row["group"] = job["group"]
        if "official_coherence" in job:
            row["official_coherence"] = job["official_coherence"]
            row["beats_official"] = row["coherence"] < job["official_coherence"]
        if job["method"] == "random":
            random_coherence[(job["n"], job["dim"])] = row["coherence"]
        base = random_coherence.get((job["n"], job["dim"]))
        row["random_coherence"] = base
        row["to_random"] = row["coherence"] / base if base else None
        rows.append(row)
    record = {"device": args.device, "cuda_available": cuda, "torch_threads": torch.get_num_threads(),
              "budget_s": args.budget, "rows": rows}
    if args.out:
        from ..atomic import atomic_write_json

        atomic_write_json(Path(args.out), record)
    print(json.dumps(record, indent=2) if args.json else _table(rows))
    return 0
