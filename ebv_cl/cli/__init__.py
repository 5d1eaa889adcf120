"""The ``ebv-cl`` command line: ``bank``, ``run``, ``bench`` and ``report`` subcommands.

This module only parses arguments and dispatches; each subcommand lives in its own module exposing
``register(subparsers)``. User errors (ebv-cl's own errors, bad values, missing files, failed writes) print one
line to stderr and exit with status 2, without a traceback; set ``EBV_CL_DEBUG=1`` to see the traceback. Ctrl-C
exits 130 and SIGTERM 143, each with one line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import Sequence

__all__ = ["main", "build_parser"]

_SUBCOMMAND_MODULES = ("ebv_cl.cli.bank_cmd", "ebv_cl.cli.run_cmd", "ebv_cl.cli.bench_cmd", "ebv_cl.cli.report_cmd")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="ebv-cl", description="Class-incremental learning with fixed Equiangular Basis Vector banks."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


class _Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C (files are written atomically, the folder lock is released)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from ..errors import EbvClError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["run"]  # the embedded default job
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return 2
    previous = None
    if _is_main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args) or 0)
    except (EbvClError, ValueError, TypeError, OSError) as exc:
        if os.environ.get("EBV_CL_DEBUG"):
            raise
        message = str(exc).replace("\n", " ")
        print(f"ebv-cl: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ebv-cl: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("ebv-cl: terminated (SIGTERM); finished results are kept, continue with --resume", file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _is_main_thread() -> bool:
    """Whether this is the main thread (the only one that may set signal handlers)."""
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
