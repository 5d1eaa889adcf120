"""``ebv-cl bench {search,head,generator}``: benchmarks that compare methods side by side in one run.

Each benchmark is a module in ``ebv_cl.bench`` exposing ``add_arguments(parser)`` and ``main(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["register"]

_BENCHMARKS = {
    "search": "nearest-class search: faiss flat, torch and every ebv-cl exact path",
    "head": "training step of FC and EBV heads (full and sampled softmax) per class count",
    "generator": "bank generation: all-pairs against sparse and algebraic methods",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand and one sub-subcommand per available benchmark module."""
    bench = subparsers.add_parser("bench", help="run a benchmark and print a table (or JSON)")
    sub = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for name, help_text in _BENCHMARKS.items():
        try:
            module = importlib.import_module(f"ebv_cl.bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ebv_cl.bench.{name}":
                continue
            raise
        parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(parser)
        parser.set_defaults(func=module.main)
