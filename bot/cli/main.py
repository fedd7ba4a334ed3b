"""Operator commands: `python -m bot COMMAND` (or `loaphuong COMMAND`). See DESIGN.md.

Every command turns a wrong setting or invalid content into one clear sentence on stderr and
a non-zero exit, never a traceback. The commands themselves live in the group modules beside
this one; each adds its own with `add_parser`, in the order the help lists them.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys

import bot.cli.assistant as assistant
import bot.cli.audience as audience
import bot.cli.broadcast as broadcast
import bot.cli.content as content
import bot.cli.operations as operations
import bot.cli.summary as summary
import bot.cli.supervision as supervision
import bot.cli.tickets as tickets
import bot.cli.web as web
import bot.cli.zalo_oa as zalo_oa
from bot.kernel import logs
from bot.kernel.config import ConfigError, load_settings
from bot.kernel.content import ContentError
from bot.store.db import StorageError, describe

# `import bot.cli.x as x`, not `from bot.cli import x`: that would import this package's __init__ (main) back
# operations after audience
GROUPS = (assistant, content, audience, broadcast, tickets, supervision, operations, zalo_oa, summary, web)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"Lỗi cấu hình: {exc}", file=sys.stderr)
        return 2
    logs.setup("WARNING" if args.quiet_logs else settings.log_level, settings.log_format)
    logs.add_secret(settings.telegram_bot_token)
    logs.add_secret(settings.zalo_bot_token)
    for secret in (settings.zalo_oa_secret_key, settings.zalo_oa_webhook_secret, settings.zalo_oa_refresh_token):
        logs.add_secret(secret)
    try:
        return asyncio.run(args.func(args, settings))
    except ContentError as exc:
        print("Nội dung trong thư mục content/ có lỗi, chưa thể chạy:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"Lỗi cấu hình: {exc}", file=sys.stderr)
        return 2
    except (StorageError, sqlite3.DatabaseError) as exc:  # an unusable database file: one sentence
        print(describe(settings.database_path, exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loaphuong", description="Loa Phường — trợ lý của Ủy ban MTTQ")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.add_parser(sub)
    return parser
