"""`zafka groups list|describe|reset-offsets|delete`: consumer-group administration over
`Admin`."""

from __future__ import annotations

import argparse

from zafka.cli_common import (
    EXIT_CODES_EPILOG,
    HelpFormatter,
    add_connection_arguments,
    fail,
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `groups` subcommand to `commands` (the `zafka` parser's subparsers)."""
    groups = commands.add_parser(
        "groups",
        help="list, describe, reset the offsets of and delete consumer groups",
        description="List, describe, reset the committed offsets of and delete consumer "
        "groups on a running cluster.",
        epilog=EXIT_CODES_EPILOG,
        formatter_class=HelpFormatter,
    )
    actions = groups.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name in ("list", "describe", "reset-offsets", "delete"):
        parser = actions.add_parser(name, formatter_class=HelpFormatter)
        parser.set_defaults(func=_not_yet)
        add_connection_arguments(parser)


def _not_yet(args: argparse.Namespace) -> int:
    return fail(f"`zafka groups {args.action}` is not available yet")
