"""The `zafka produce` subcommand (being built)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `produce` subcommand to `commands` (the `zafka` parser's subparsers)."""
