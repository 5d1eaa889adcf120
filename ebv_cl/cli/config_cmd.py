"""``ebv-cl config --schema`` and ``ebv-cl config CONFIG``: the config reference, or one config resolved.

``--schema`` prints every key a run config takes (type, default, what it does), generated from the strict
schema and the registries (``ebv_cl.run.schema``); the README's "Config reference" is the same text.
``ebv-cl config CONFIG [key=value ...]`` checks a config without running it and prints it resolved.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def _config(args: argparse.Namespace) -> int:
    if args.schema:
        from ..run.schema import schema_markdown

        sys.stdout.write(schema_markdown())
        return 0
    if args.config is None:
        raise ValueError("ebv-cl config needs CONFIG (a run config to check and resolve) or --schema")
    from ..run import dump_config, load_config

    sys.stdout.write(dump_config(load_config(args.config, overrides=args.overrides)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``config`` subcommand."""
    p = subparsers.add_parser(
        "config",
        help="print the config reference (--schema), or check and resolve a run config",
        description="With --schema, print every key a run config takes (type, default, meaning), generated from "
        "the code. With CONFIG, check it (and its overrides) as `ebv-cl run` would, without running it, and "
        "print the resolved config.",
    )
    p.add_argument("config", nargs="?", default=None, help="a run config (YAML) to check and resolve")
    p.add_argument("overrides", nargs="*", default=[], help="overrides such as epochs=2")
    p.add_argument("--schema", action="store_true", help="print the reference of every config key (Markdown)")
    p.set_defaults(func=_config)
