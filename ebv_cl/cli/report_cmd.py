"""``ebv-cl report DIR [DIR ...] [--out FILE] [--baseline HEAD]``: one comparison from several run folders."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def _report(args: argparse.Namespace) -> int:
    from ..atomic import atomic_write_text
    from ..run.report import report_markdown

    if args.out and Path(args.out).is_dir():
        raise IsADirectoryError(f"--out {args.out!r} is a directory, expected the path of a Markdown file")
    text = report_markdown(args.folders, baseline=args.baseline)
    if args.out:
        atomic_write_text(args.out, text)
    print(text)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="merge results folders of one experiment into one comparison (Markdown)",
        description="Read results.json of each `ebv-cl run` folder, check that they ran the same experiment "
        "(scenario, bank and training settings; strategies and seeds may differ) and print the comparison table "
        "and, per method, the paired effect of swapping the baseline head for each other head.",
    )
    p.add_argument("folders", nargs="+", help="output folders of ebv-cl run (or their results.json)")
    p.add_argument("--out", default=None, help="also write the Markdown to this file (atomically)")
    p.add_argument("--baseline", default="fc", help="the head the others are compared with (default fc); each other strategy, "
                   "named variants of the baseline head included, is paired with its method's unnamed "
                   "<baseline>+<method> strategy")
    p.set_defaults(func=_report)
