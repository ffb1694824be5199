"""`zafka bench produce|consume|e2e`: the perf tool (being built)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `bench` subcommand to `commands` (the `zafka` parser's subparsers)."""
