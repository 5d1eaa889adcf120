"""One command for small-bank quality: ``python benchmarks/bench_packings.py [--budget S] [--seeds 0,1,2] [--quick]``.

Twelve line-packing shapes (d, N) with a known optimal coherence, each solved side by side in one process, one
thread, with the same wall-time budget per method and seed:

- ``reference``: the plain optimiser of issue 12 (one start, Adam in float64 with autograd on the log-sum-exp
  of ``|cos|`` over all pairs, sharpness ``beta`` annealed 10 -> 10^4, learning rate 0.01), written here;
- ``smooth``: this library's optimiser (``ebv_cl.bank.generate.smooth``);
- ``auto``: what ``generate_vectors(method="auto")`` picks (an exact construction where one applies).

Columns: coherence over the optimum for each method (median over seeds), the method ``auto`` chose, and CPU
seconds per run (the budget is wall time; on a loaded machine the CPU seconds show what each method got).

Optima (the value, not code, taken from the literature):

- (3, 5): ``1/sqrt 5`` (63.4349 degrees), Conway, Hardin and Sloane, "Packing lines, planes, etc.:
  packings in Grassmannian spaces", Experimental Math. 5 (1996), table of line packings in R^3 (five and six
  lines share the angle of the icosahedron's diagonals);
- (3, 7) ``1/sqrt 3``, (4, 11) and (4, 12) ``1/2``: the orthoplex bound of the same paper (``N > d(d+1)/2``
  lines have coherence at least ``1/sqrt d``), met by the 3 axes and 4 cube diagonals in R^3 and by the 12
  lines of the D4 root system in R^4;
- the other eight are real equiangular tight frames, optimal because they meet the Welch bound: (5, 10)
  Petersen two-graph, (6, 16) and (28, 64), (120, 256), (496, 1024) Steiner ETFs of Fickus, Mixon and Tremain
  (2012), (7, 28) Steiner ETF of the Fano plane, (15, 36) the Latin-square two-graph, (23, 276) the Leech
  lattice's equiangular lines (Lemmens and Seidel, 1973).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import torch

__all__ = ["SHAPES", "reference_packing", "run"]

# (d, N, optimal coherence, where the optimum comes from)
SHAPES: list[tuple[int, int, float, str]] = [
    (3, 5, 1 / math.sqrt(5), "CHS 1996 table"),
    (3, 7, 1 / math.sqrt(3), "orthoplex bound"),
    (4, 11, 0.5, "orthoplex bound"),
    (4, 12, 0.5, "orthoplex bound"),
    (5, 10, 1 / 3, "ETF"),
    (6, 16, 1 / 3, "ETF"),
    (7, 28, 1 / 3, "ETF"),
    (15, 36, 1 / 5, "ETF"),
    (28, 64, 1 / 7, "ETF"),
    (23, 276, 1 / 5, "ETF"),
    (120, 256, 1 / 15, "ETF"),
    (496, 1024, 1 / 31, "ETF"),
]
QUICK = [(3, 7, 1 / math.sqrt(3), "orthoplex bound"), (15, 36, 1 / 5, "ETF")]


def reference_packing(n: int, dim: int, seconds: float, seed: int = 0) -> float:
    """The issue's reference optimiser; returns the best exact coherence it saw (float64)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, dtype=torch.float64, generator=gen).requires_grad_()
    opt = torch.optim.Adam([x], lr=0.01)
    iu = torch.triu_indices(n, n, 1)
    best, start = math.inf, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        beta = 10.0 * 1000.0 ** (elapsed / seconds)
        w = torch.nn.functional.normalize(x, dim=1)
        c = (w @ w.T)[iu[0], iu[1]].abs()
        best = min(best, float(c.detach().max()))
        loss = torch.logsumexp(beta * c, 0) / beta
        opt.zero_grad()
        loss.backward()
        opt.step()
    return best


def _timed(fn) -> tuple[float, float, str]:
    t0 = time.process_time()
    coherence, method = fn()
    return coherence, time.process_time() - t0, method


def run(shapes, budget: float, seeds: list[int]) -> list[dict]:
    """Every method on every shape and seed; one row per shape."""
    from ebv_cl.bank.generate import generate_vectors

    def library(n: int, d: int, method: str, seed: int):
        result = generate_vectors(n, d, method=method, seed=seed, time_budget=budget)
        return result.info["final_coherence"], result.method

    reference_packing(4, 2, 0.05)  # warm-up: the first Adam step imports torch internals for seconds
    rows = []
    for d, n, optimum, source in shapes:
        runs: dict[str, list[tuple[float, float, str]]] = {"reference": [], "smooth": [], "auto": []}
        for seed in seeds:
            runs["reference"].append(_timed(lambda: (reference_packing(n, d, budget, seed), "reference")))
            runs["smooth"].append(_timed(lambda: library(n, d, "smooth", seed)))
            runs["auto"].append(_timed(lambda: library(n, d, "auto", seed)))
        row = {"d": d, "n": n, "optimum": optimum, "source": source, "budget_s": budget, "seeds": seeds}
        for name, results in runs.items():
            row[name] = statistics.median(r[0] / optimum for r in results)
            row[f"{name}_cpu_s"] = round(statistics.median(r[1] for r in results), 2)
        row["auto_method"] = runs["auto"][0][2]
        rows.append(row)
        print(_line(row), file=sys.stderr, flush=True)
    return rows


HEADER = ("| d | N | optimum | source | reference / opt (cpu s) | smooth / opt (cpu s) | auto / opt (cpu s) "
          "| auto method |\n|---|---|---|---|---|---|---|---|")


def _line(row: dict) -> str:
    return (f"| {row['d']} | {row['n']} | {row['optimum']:.5f} | {row['source']} | {row['reference']:.4f} "
            f"({row['reference_cpu_s']:.1f}) | {row['smooth']:.4f} ({row['smooth_cpu_s']:.1f}) | "
            f"{row['auto']:.4f} ({row['auto_cpu_s']:.1f}) | {row['auto_method']} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_packings", description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=10.0, help="wall seconds per method, shape and seed")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (median reported)")
    parser.add_argument("--quick", action="store_true", help="two shapes only")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(HEADER, file=sys.stderr, flush=True)
    rows = run(QUICK if args.quick else SHAPES, args.budget, seeds)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print("\n".join([HEADER] + [_line(r) for r in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
