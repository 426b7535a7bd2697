"""`finsentinel` subcommands of the `alerting` package (registered by finsentinel.cli)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to ``sub`` and its benchmarks to ``bench``.

    Each command sets ``func=(args, settings) -> int`` with ``set_defaults``; heavy imports go
    inside the command function so that ``finsentinel --help`` stays fast.
    """
