"""``ebv-cl bank generate`` and ``ebv-cl bank stats``: make a bank file and report its quality."""

from __future__ import annotations

import argparse
import json
import sys
import time

__all__ = ["register"]


def _generate(args: argparse.Namespace) -> int:
    from ..bank import EBVBank

    start = time.perf_counter()
    bank = EBVBank.generate(
        args.n,
        args.dim,
        method=args.method,
        seed=args.seed,
        alpha=args.alpha,
        time_budget=args.time_budget,
        max_steps=args.max_steps,
        device=args.device,
        progress=not args.no_progress,
    )
    seconds = time.perf_counter() - start
    stats = bank.stats()
    path = bank.save(args.out)
    record = {"path": str(args.out), "method": bank.method, "seed": bank.seed, "seconds": round(seconds, 3),
              "bytes": path.stat().st_size}
    if bank.code is not None:
        record["code"] = bank.code.formula()
    record.update(stats.to_dict())
    if args.json:
        print(json.dumps(record))
    else:
        bound = stats.lower_bound
        ratio = f"{stats.coherence / bound:.3f}x the bound {bound:.4f}" if bound > 0 else "bound 0"
        kind = ""
        if bank.code is not None:
            code = bank.code
            exact = "" if stats.coherence_exact else " (upper bound)"
            kind = f" ({code.family} m={code.m}, length {code.length}, {code.n_members} sequences){exact}"
        print(
            f"wrote {args.out}: n={bank.n} dim={bank.dim} method={bank.method}{kind} coherence={stats.coherence:.4f} "
            f"({ratio}), min angle {stats.min_angle_deg:.2f} deg, {seconds:.1f} s, {record['bytes']} bytes"
            f"{_stopped(bank.info)}"
        )
    return 0


def _stopped(info: dict) -> str:
    """Why an optimising method stopped (`` (stopped: time budget of 60 s)``); empty for exact constructions."""
    reason = info.get("stop_reason")
    if not reason:
        return ""
    budget = info.get("budget", {}).get("time_budget")
    return f" (stopped: {reason}" + (f" of {budget:g} s" if reason == "time budget" and budget else "") + ")"


def _stats(args: argparse.Namespace) -> int:
    from ..bank import EBVBank

    start = time.perf_counter()
    bank = EBVBank.load(args.path, mmap=args.mmap)
    stats = bank.stats()
    record = {"path": str(args.path), "method": bank.method, "seed": bank.seed, "alpha": bank.alpha}
    if bank.code is not None:
        record["code"] = bank.code.formula()
    record.update(stats.to_dict())
    if args.sample is not None:
        from ..bank.codes import sample_check

        check = sample_check(bank, args.sample, seed=args.sample_seed)
        check["consistent"] = check["max_abs_cos"] <= stats.coherence + 1e-6 and check["unit_norm_error"] < 1e-4
        record["sample"] = check
    record["seconds"] = round(time.perf_counter() - start, 3)
    if args.json:
        print(json.dumps(record))  # full precision; print ends the line
    else:
        width = max(len(k) for k in record)
        for key, value in record.items():
            print(f"{key:<{width}}  {_readable(key, value, bank.n, bank.dim)}")
    return 0


def _readable(key: str, value: object, n: int, dim: int) -> str:
    """A stats value for people: 6 significant digits, and why a bound or field is absent."""
    if value is None and key == "levenstein_bound":
        return f"n/a (the real Levenstein bound applies only when n > dim (dim + 1) / 2 = {dim * (dim + 1) // 2})"
    if value is None and key == "alpha":
        return "n/a (no target coherence was set)"
    if value is None and key == "coherence_to_bound":
        return "n/a (the lower bound is 0: the vectors can be orthogonal)"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bank`` subcommand with ``generate`` and ``stats``."""
    from ..bank.generate import method_names
    from ..bank.generate.budget import DEFAULT_TIME_BUDGET
    from . import DefaultsHelpFormatter

    bank = subparsers.add_parser("bank", help="generate a bank file or report its statistics")
    sub = bank.add_subparsers(dest="bank_command", metavar="ACTION")

    gen = sub.add_parser("generate", help="generate a bank of N unit vectors in R^D and save it",
                         formatter_class=DefaultsHelpFormatter)
    gen.add_argument("--n", type=_positive_int, required=True, help="number of vectors (classes)")
    gen.add_argument("--dim", type=_positive_int, required=True, help="dimension of each vector")
    gen.add_argument("--alpha", type=float, default=None, help="target coherence (max |cos|); stop once reached")
    gen.add_argument("--seed", type=int, default=0, help="random seed")
    gen.add_argument("--method", choices=method_names(), default="auto", help="generation method")
    gen.add_argument("--time-budget", type=float, default=None,
                     help=f"seconds the optimisation may run (default: {DEFAULT_TIME_BUDGET:g} s unless --max-steps is "
                     "given; the exact constructions ignore it)")
    gen.add_argument("--max-steps", type=_positive_int, default=None, help="optimisation steps at most")
    gen.add_argument("--device", default="cpu", help="torch device for the optimisation (cpu, cuda, cuda:1)")
    gen.add_argument("--out", required=True, help="path of the bank file to write")
    gen.add_argument("--json", action="store_true", help="print one JSON object instead of a sentence")
    gen.add_argument("--no-progress", action="store_true",
                     help="hide the progress bar (it is off anyway when stderr is not a terminal)")
    gen.set_defaults(func=_generate)

    st = sub.add_parser("stats", help="exact coherence, angles and bounds of a bank file (code banks: from their "
                        "structure)", formatter_class=DefaultsHelpFormatter)
    st.add_argument("path", help="a bank file written by 'ebv-cl bank generate'")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    st.add_argument("--mmap", action="store_true", help="memory-map the vectors (large banks)")
    st.add_argument("--sample", type=_positive_int, default=None, metavar="K",
                    help="also check K random rows by brute force against every row (at most 262,144 random "
                         "rows on larger banks); reports their largest |cos|, which must not exceed the coherence")
    st.add_argument("--sample-seed", type=int, default=0, help="seed of --sample (default 0)")
    st.set_defaults(func=_stats)
    bank.set_defaults(func=lambda args: (bank.print_help(sys.stderr), 2)[1])
