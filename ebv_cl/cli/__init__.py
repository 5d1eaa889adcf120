"""The ``ebv-cl`` command line: ``bank``, ``run``, ``bench`` and ``report`` subcommands.

This module only parses arguments and dispatches; each subcommand lives in its own module exposing
``register(subparsers)``. User errors (ebv-cl's own errors, bad values, missing files) print one line to
stderr and exit with status 2, without a traceback; set ``EBV_CL_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from typing import Sequence

__all__ = ["main", "build_parser", "DefaultsHelpFormatter"]

#: Built-in exceptions that a user's bad input raises: one ``ebv-cl: error:`` line, exit status 2.
_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, PermissionError, IsADirectoryError)
_SUBCOMMAND_MODULES = ("ebv_cl.cli.bank_cmd", "ebv_cl.cli.run_cmd", "ebv_cl.cli.bench_cmd", "ebv_cl.cli.report_cmd",
                       "ebv_cl.cli.config_cmd")


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` shows each option's default, except where there is none (``None``, flags off)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS or (
                "default" in text or not action.option_strings):
            return text
        return text + " (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="ebv-cl", description="Class-incremental learning with fixed Equiangular Basis Vector banks."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; ``key=value`` overrides may also follow the options (``run CONFIG --out DIR epochs=1``)."""
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "overrides", None), list):
        if all("=" in a and not a.startswith("-") for a in extra):
            args.overrides.extend(extra)
            return args
    if extra:
        parser.parse_args(argv)  # argparse's own "unrecognized arguments" error (exit status 2)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from ..errors import EbvClError

    argv = list(sys.argv[1:] if argv is None else argv)
    # Avalanche imports qpsolvers (for GEM, which ebv-cl does not use); its "no QP solver found" warning is noise.
    warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)
    if not argv:
        argv = ["run"]  # the embedded default job
    try:
        parser = build_parser()
        args = _parse(parser, argv)
        if not hasattr(args, "func"):
            parser.print_help(sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("ebv-cl: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("EBV_CL_DEBUG"):
            raise
        if isinstance(exc, _USER_ERRORS + (EbvClError,)):
            message = str(exc).replace("\n", " ")
        elif isinstance(exc, (ImportError, OSError, RuntimeError, AttributeError)):
            from .environment import diagnose

            message = diagnose()  # a torchvision built for another torch fails at import, with a long traceback
            if message is None:
                raise
        else:
            raise
        print(f"ebv-cl: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
