"""``ebv-cl bench search``: nearest-class search, FAISS and torch against every ebv-cl exact path, in one process.

On one bank (random unit vectors, or ``--bank PATH``) and one query batch (half random unit vectors, half
bank vectors plus noise, cosine about 0.7 to their class), it times: ``faiss_flat`` (``IndexFlatIP``),
``torch`` (blocked float32 matmul + topk) and the ``flat`` paths of ``BankIndex`` (``ebv_int8``, ``ebv_fp32``,
``ebv_wht`` on Kerdock banks), ``ebv_sharded`` with ``--shard-devices`` and ``hnsw``/``ivf`` with ``--approx``. Methods run round-robin, ``--repeats``
rounds after one warm-up (which also builds each index), so that load from other processes hits them alike;
the best round is reported, with the median beside it. Agreement is measured against FAISS flat's top-k and,
unless ``--no-truth``, against the exact float64 top-1. Timings taken on a loaded machine are only meaningful
as ratios within one run.

``--code`` searches a code bank (``ebv_cl.bank.codes``, the family ``choose_code`` picks for ``--n``/``--dim``,
stored as a formula): ``ebv_fft`` (the structured path, through ``BankIndex``) against the dense paths run on
its rows materialised (``ebv_int8`` on int8 rows, re-ranking with ``bank.rows``; ``ebv_fp32``, ``faiss_flat``
by ``faiss.knn`` without a copy and ``torch`` on one float32 copy), each only when its memory fits
``--memory-limit-gb`` with what the process already holds (else listed as skipped with the reason).
Every method also reports its CPU time and the peak resident memory added while it searched (RSS sampled
every 2 ms). The float64 truth is brute force over the rows in blocks while ``N d q <= 10^12``; above that
(``N = 10^7``) it is an independent float64 FFT (numpy, circular length ``n``, error below 1e-12) followed by a
float64 re-rank of every slot within ``1e-9`` of the best.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import threading
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
    parser.add_argument("--code", action="store_true",
                        help="search a code bank (family chosen for --n/--dim) with path fft against the dense paths")
    parser.add_argument("--memory-limit-gb", type=float, default=3.0,
                        help="--code: skip dense methods whose rows/encodings would exceed this many GB")
    parser.add_argument("--code-scorers", default="auto,fft",
                        help="--code: comma-separated scorers of path fft to time: 'auto' (through BankIndex: 'wht' "
                             "where bf16 products are fast, else 'fft'), 'wht', 'fft', 'circulant' (default auto,fft; "
                             "a scorer equal to auto's choice is not timed twice)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(func=main)


def _problem(args: argparse.Namespace) -> tuple[Any, torch.Tensor]:
    from .. import EBVBank
    from ..validation import check_positive_int

    g = torch.Generator().manual_seed(args.seed)
    if getattr(args, "code", False):
        from ..bank.codes import SequenceCode, choose_code

        n, dim = check_positive_int(args.n, name="--n"), check_positive_int(args.dim, name="--dim")
        choice = choose_code(n, dim)
        if choice is None:
            raise ValueError(f"--code: no code family holds --n {n} vectors at --dim {dim}")
        bank = EBVBank.from_code(SequenceCode(choice.family, choice.m, n, dim))
    elif args.bank:
        bank = EBVBank.load(args.bank)
    else:
        n, dim = check_positive_int(args.n, name="--n"), check_positive_int(args.dim, name="--dim")
        bank = EBVBank(torch.randn(n, dim, generator=g))
    q = check_positive_int(args.queries, name="--queries")
    check_positive_int(args.k, name="--k", maximum=bank.n)
    queries = torch.randn(q, bank.dim, generator=g)
    near = q // 2
    rows = torch.randint(0, bank.n, (near,), generator=g)
    queries[:near] = bank.rows(rows) + torch.randn(near, bank.dim, generator=g) / bank.dim**0.5
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


def _dense_rows(bank: Any) -> torch.Tensor:
    """The bank's rows as one float32 tensor, filled in blocks (a code bank's ``vectors`` stop at 1 GiB)."""
    out = torch.empty(bank.n, bank.dim, dtype=torch.float32)
    step = 16384  # bounds bank.rows' temporaries
    for j0 in range(0, bank.n, step):
        out[j0 : j0 + step] = bank.rows(slice(j0, min(bank.n, j0 + step)))
    return out


class _RowSource:
    """A code bank's rows as the dense int8 path reads them (slices and ``index_select``), made on demand."""

    def __init__(self, bank: Any) -> None:
        self.bank, self.shape = bank, (bank.n, bank.dim)

    def __getitem__(self, rows: slice) -> torch.Tensor:
        return self.bank.rows(slice(rows.start or 0, min(self.bank.n, rows.stop or self.bank.n)))

    def index_select(self, dim: int, slots: torch.Tensor) -> torch.Tensor:
        return self.bank.rows(slots)


def _code_methods(bank: Any, allocator: Any, k: int, limit_gb: float,
                  scorers: str = "auto,fft") -> tuple[dict[str, _Method], dict[str, str]]:
    """Path ``fft`` (``ebv_fft[scorer]``, one per scorer) and the dense exact methods that fit ``limit_gb`` on a
    code bank; skipped ones with reasons.

    ``ebv_int8`` holds the int8 rows only (its float64 re-rank fetches candidate rows with ``bank.rows``); the
    float32 methods share one float32 copy of the rows. The int8 method (the fastest dense one) is given the
    memory first, then the float32 ones if the rest fits, counting the process's resident memory so far.
    """
    import faiss

    from ..index import BankIndex
    from ..index.paths import SEARCH_PATHS

    from ..index.structured import SCORERS, ShiftPath

    names = [s.strip() for s in scorers.split(",") if s.strip()]
    bad = [s for s in names if s not in SCORERS]
    if bad or not names:
        raise ValueError(f"--code-scorers must be a comma-separated list of {list(SCORERS)}, got {scorers!r}")
    methods: dict[str, _Method] = {}
    auto = None
    if "auto" in names:
        index = BankIndex(bank, allocator, device="cpu").build()
        auto = index.engine.scorer
        methods[f"ebv_fft[{auto}]"] = (lambda q: index.search_slots(q, k)[1],
                                       {"exact": True, "certified": True, "index": index})
    for name in dict.fromkeys(names):
        if name not in ("auto", auto):
            path = ShiftPath(bank, "cpu", scorer=name)
            methods[f"ebv_fft[{name}]"] = (lambda q, p=path: p.search(q, bank.n, k)[1],
                                           {"exact": True, "certified": True, "index_bytes": path.nbytes})
    skipped: dict[str, str] = {}
    free = limit_gb * 1e9 - _rss()
    i8 = bank.n * (bank.dim + (-bank.dim % 8)) * 1.1  # + the encoding's temporaries
    f32 = bank.n * bank.dim * 4 * 1.1
    cpu = torch.device("cpu")
    if i8 <= free:
        free -= i8
        engine = SEARCH_PATHS.create("int8", bank, _RowSource(bank), cpu)
        methods["ebv_int8"] = (lambda q, e=engine: e.search(q, bank.n, k)[1],
                               {"exact": True, "certified": True, "index_bytes": engine.nbytes})
    else:
        skipped["ebv_int8"] = f"needs {i8 / 1e9:.2f} GB of int8 rows; {free / 1e9:.2f} GB left of --memory-limit-gb {limit_gb:g}"
    if f32 > free:
        for name in ("ebv_fp32", "faiss_flat", "torch"):
            skipped[name] = (f"needs {f32 / 1e9:.2f} GB of float32 rows; {max(0.0, free) / 1e9:.2f} GB left of "
                             f"--memory-limit-gb {limit_gb:g}")
        return methods, skipped
    vectors = _dense_rows(bank)
    engine = SEARCH_PATHS.create("fp32", bank, vectors, cpu)
    methods["ebv_fp32"] = (lambda q, e=engine: e.search(q, bank.n, k)[1],
                           {"exact": True, "certified": True, "index_bytes": engine.nbytes})
    xb = vectors.numpy()
    methods["faiss_flat"] = (
        lambda q: torch.from_numpy(faiss.knn(np.ascontiguousarray(q.numpy()), xb, k, metric=faiss.METRIC_INNER_PRODUCT)[1]),
        {"exact": True, "certified": False, "index_bytes": 0},
    )
    methods["torch"] = (lambda q: _torch_topk(vectors, q, k)[1], {"exact": True, "certified": False, "index_bytes": 0})
    return methods, skipped


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


class _PeakRss:
    """The peak resident set size while the ``with`` block runs (sampled every 2 ms), minus that at entry."""

    def __enter__(self) -> "_PeakRss":
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def extra(self) -> int:
        return self.peak - self.start


def _code_truth_top1(bank: Any, queries: torch.Tensor) -> torch.Tensor:
    """Float64 top-1 of a code bank by an independent float64 FFT (numpy) and a float64 re-rank within 1e-9."""
    from ..index.rerank import pair_scores, topk_of_pairs

    code, n = bank.code, bank.code.length
    x = np.asarray(code.to_code_space(queries.double().numpy()), dtype=np.float64)
    fx = np.conj(np.fft.rfft(x, axis=1))
    members = -(-bank.n // n)
    best = np.full(queries.shape[0], -np.inf)
    cand: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    step = max(1, (1 << 22) // (queries.shape[0] * n))
    for m0 in range(0, members, step):
        fs = np.fft.rfft(code.sequences(slice(m0, min(members, m0 + step))).astype(np.float64), axis=1)
        r = np.fft.irfft(fx[:, None, :] * fs[None], n=n, axis=2).reshape(queries.shape[0], -1) / math.sqrt(n)
        r = r[:, : bank.n - m0 * n]
        best = np.maximum(best, r.max(axis=1))
        qi, col = np.nonzero(r >= best[:, None] - 1e-9)
        cand.append((qi, col + m0 * n, r[qi, col]))
    qi, slots, raw = (np.concatenate(c) for c in zip(*cand))
    keep = raw >= best[qi] - 1e-9
    qi, slots = torch.from_numpy(qi[keep]), torch.from_numpy(slots[keep])
    uniq, inverse = torch.unique(slots, return_inverse=True)
    exact = pair_scores(queries, bank.rows(uniq), qi, inverse)
    return topk_of_pairs(qi, slots, exact, n_queries=queries.shape[0], k=1)[1][:, 0]


def _bank_truth_top1(bank: Any, queries: torch.Tensor) -> tuple[torch.Tensor, str]:
    if getattr(bank, "code", None) is None:
        return _truth_top1(bank.vectors, queries), "brute force float64"
    if bank.n * bank.dim * queries.shape[0] <= 1e12:
        best_s = torch.full((queries.shape[0],), float("-inf"), dtype=torch.float64)
        best_i = torch.zeros(queries.shape[0], dtype=torch.int64)
        q64 = queries.double()
        for j0 in range(0, bank.n, _TORCH_BLOCK):
            s, i = (q64 @ bank.rows(slice(j0, min(bank.n, j0 + _TORCH_BLOCK))).double().T).max(dim=1)
            better = s > best_s
            best_s, best_i = torch.where(better, s, best_s), torch.where(better, i + j0, best_i)
        return best_i, "brute force float64 (rows in blocks)"
    return _code_truth_top1(bank, queries), "float64 FFT (numpy) + float64 re-rank within 1e-9"


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
    allocator.allocate(range(bank.n), as_tensor=True)  # no list of 10^7 Python ints
    skipped: dict[str, str] = {}
    if getattr(bank, "code", None) is not None:
        methods, skipped = _code_methods(bank, allocator, args.k, getattr(args, "memory_limit_gb", 3.0),
                                         getattr(args, "code_scorers", "auto,fft"))
    else:
        methods = _methods(bank, allocator, args.k, args.approx, getattr(args, "shard_devices", None))
    times: dict[str, list[float]] = {name: [] for name in methods}
    cpu: dict[str, list[float]] = {name: [] for name in methods}
    extra: dict[str, int] = {name: 0 for name in methods}
    answers: dict[str, torch.Tensor] = {}
    for round_ in range(1 + max(1, args.repeats)):
        for name, (search, _) in methods.items():
            with _PeakRss() as peak:
                start, start_cpu = time.perf_counter(), time.process_time()
                answers[name] = search(queries)
                wall, used = time.perf_counter() - start, time.process_time() - start_cpu
            if round_:  # round 0 warms up and builds
                times[name].append(wall)
                cpu[name].append(used)
                extra[name] = max(extra[name], peak.extra)
    peak_search = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    truth, truth_kind = (None, "none") if args.no_truth else _bank_truth_top1(bank, queries)
    ref = answers["faiss_flat" if "faiss_flat" in answers else next(iter(answers))]
    results = []
    for name, (_, meta) in methods.items():
        best, got = min(times[name]), answers[name]
        index = meta.get("index")
        record = {
            "method": name,
            "exact": meta["exact"],
            "certified": meta["certified"],
            "ms_per_1k_queries": 1000 * best / queries.shape[0] * 1000,
            "cpu_ms_per_1k_queries": 1000 * min(cpu[name]) / queries.shape[0] * 1000,
            "search_extra_rss_mib": extra[name] / 2**20,
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
    code = getattr(bank, "code", None)
    return {
        "benchmark": "search",
        "n": bank.n,
        "dim": bank.dim,
        "queries": int(queries.shape[0]),
        "k": args.k,
        "seed": args.seed,
        "bank": (f"code bank {code.family} m={code.m} length {code.length}" if code is not None
                 else args.bank or "random unit vectors"),
        "skipped": skipped,
        "truth": truth_kind,
        "peak_rss_mib_searches": peak_search,
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
    cols = f"{'method':<16}{'exact':>7}{'cert.':>7}{'ms/1k q':>10}{'median':>10}{'cpu ms':>10}{'q/s':>10}" \
           f"{'x first':>9}{'top1 agr':>10}{'topk agr':>10}{'truth':>8}{'MiB':>8}{'+RSS MiB':>10}"
    lines = [head, cols]
    for r in report["results"]:
        lines.append(
            f"{r['method']:<16}{str(r['exact']):>7}{str(r['certified']):>7}{r['ms_per_1k_queries']:>10.1f}"
            f"{r['median_ms_per_1k_queries']:>10.1f}{r['cpu_ms_per_1k_queries']:>10.1f}{r['queries_per_s']:>10.0f}"
            f"{r['speedup_vs_faiss_flat']:>9.2f}"
            f"{r['top1_agreement']:>10.4f}{r['topk_agreement']:>10.4f}{r.get('top1_exact_agreement', float('nan')):>8.4f}"
            f"{r['index_bytes'] / 2**20:>8.1f}{r['search_extra_rss_mib']:>10.1f}"
        )
    for name, reason in report.get("skipped", {}).items():
        lines.append(f"{name:<16}skipped: {reason}")
    lines.append(f"truth: {report['truth']}; peak RSS of the process during the searches: "
                 f"{report['peak_rss_mib_searches']:.0f} MiB")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Entry point of ``ebv-cl bench search``; returns the exit status."""
    report = run(args)
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 0
