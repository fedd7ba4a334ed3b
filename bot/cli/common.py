"""What every command group shares: declaring commands, opening the database, printing.

A command is `async def cmd(args, settings) -> int` (the exit status); `main` loads the settings
and runs it. A group with actions (`groups add`, `broadcast send`…) shows its own help when
called without one, through the handler stored with `set_defaults`: no module needs the whole
parser back.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.kernel.config import Settings
from bot.store.db import Database, open_database

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]
Subparsers = argparse._SubParsersAction  # what `add_subparsers` returns


def add_command(sub: Subparsers, name: str, func: Command, help_text: str,
                quiet: bool = True) -> argparse.ArgumentParser:
    """A top-level command (`localities`, `run`…); `quiet` keeps the logs at WARNING."""
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=func, quiet_logs=quiet)
    return parser


def add_group(sub: Subparsers, name: str, help_text: str) -> Subparsers:
    """A top-level command made of actions; alone, it prints its own help."""
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=show_help(parser), quiet_logs=True)
    return parser.add_subparsers(dest=f"{name}_command", metavar="ACTION")


def add_action(actions: Subparsers, name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
    """One action of a group (`groups add`)."""
    parser = actions.add_parser(name, help=help_text)
    parser.set_defaults(func=func, quiet_logs=True)
    return parser


def show_help(parser: argparse.ArgumentParser) -> Command:
    """A handler printing `parser`'s help on stdout, exit status 0 (what `… --help` does)."""

    async def cmd_help(args: argparse.Namespace, settings: Settings) -> int:
        parser.print_help()
        return 0

    return cmd_help


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[Database]:
    """The SQLite file from the settings, closed on the way out."""
    db = await open_database(settings.database_path)
    try:
        yield db
    finally:
        await db.close()


def print_json(data: Any) -> int:
    print(json.dumps(data, ensure_ascii=False))
    return 0


def fail(message: str, status: int = 2) -> int:
    """One sentence on stderr; the exit status to return."""
    print(message, file=sys.stderr)
    return status


def local_time(epoch: float | None, tz: ZoneInfo) -> str:
    """dd/mm/yyyy HH:MM in the service's time zone; "" for no time."""
    return datetime.fromtimestamp(epoch, tz).strftime("%d/%m/%Y %H:%M") if epoch else ""


def local_iso(epoch: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, tz).isoformat(timespec="seconds")
