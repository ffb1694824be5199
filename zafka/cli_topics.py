"""The `zafka topics` subcommand (being built)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `topics` subcommand to `commands` (the `zafka` parser's subparsers)."""
