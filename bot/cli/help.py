"""Help for a command group typed without its action (`python -m bot groups`)."""

from __future__ import annotations

import argparse

from bot.kernel.config import Settings


async def show_help(args: argparse.Namespace, settings: Settings) -> int:
    """Print the help of the group the command names: `main.command` stores it as `parser`."""
    args.parser.print_help()
    return 0
