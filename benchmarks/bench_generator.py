"""One command for the generator benchmark: ``python benchmarks/bench_generator.py [--quick] [--out FILE]``.

The same as ``ebv-cl bench generator``: the paper's all-pairs generator and ``sparse`` side by side at equal
time budgets, plus the official EBV banks as reference rows. See ``ebv_cl.bench.generator``.
"""

from __future__ import annotations

import argparse
import sys

from ebv_cl.bench.generator import add_arguments, main

__all__ = []

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench_generator", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
