"""Operator commands: `python -m bot COMMAND` (or `loaphuong COMMAND`). See DESIGN.md.

Every command turns a wrong setting or invalid content into one clear sentence on stderr and
a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import bot.cli.audience as cli_audience
import bot.cli.broadcast as cli_broadcast
import bot.cli.operations as cli_operations
import bot.cli.supervision as cli_supervision
import bot.cli.tickets as cli_tickets
from bot.cli.help import show_help
from bot.kernel import logs
from bot.kernel.config import ConfigError, Settings, load_settings
from bot.kernel.content import ContentError, load_content

log = logging.getLogger("bot")

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


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
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loaphuong", description="Loa Phường — trợ lý của Ủy ban MTTQ")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, func: Command, help_text: str, quiet: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func, quiet_logs=quiet, parser=p)  # `parser`: show_help prints it
        return p

    command("run", cmd_run, "chạy dịch vụ: các kênh đã cấu hình, lịch gửi, hàng đợi gửi tin", quiet=False)
    command("chat", cmd_chat, "trò chuyện với trợ lý ngay trong cửa sổ dòng lệnh (không cần token)")

    ask = command("ask", cmd_ask, "câu trả lời trợ lý sẽ đưa ra cho một câu hỏi (hoặc mỗi dòng từ stdin)")
    ask.add_argument("question", nargs="?", help="câu hỏi; bỏ trống để đọc từng dòng từ stdin")
    ask.add_argument("--json", action="store_true", help="mỗi dòng một đối tượng JSON")

    content = command("content", show_help, "kiểm tra nội dung")
    content_sub = content.add_subparsers(dest="content_command", metavar="ACTION")
    check = content_sub.add_parser("check", help="kiểm tra thư mục content/, báo lỗi theo tệp và dòng")
    check.set_defaults(func=cmd_content_check, quiet_logs=True)

    staff = command("staff", show_help, "quyền cán bộ")
    staff_sub = staff.add_subparsers(dest="staff_command", metavar="ACTION")
    add = staff_sub.add_parser("add", help="cấp quyền cán bộ cho một người dùng")
    add.add_argument("--channel", required=True, choices=["telegram", "zalo"])
    add.add_argument("--user-id", required=True)
    add.set_defaults(func=cmd_staff_add, quiet_logs=True)

    cli_audience.register(sub, command)
    cli_broadcast.register(sub, command)
    cli_tickets.register(sub, command)
    cli_supervision.register(sub, command)
    cli_operations.add_parser(sub)  # after audience: `localities import` hangs under its `localities`
    return parser


# ---------------------------------------------------------------------- commands


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.service import run_service

    return await run_service(settings)


async def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.wiring import build_core
    from bot.channels.console import ConsoleChannel

    core = await build_core(settings)
    try:
        console = ConsoleChannel(core.dialogue.handle, pick_prompt=core.dialogue.say("console_pick"))
        interactive = sys.stdin.isatty()
        if interactive:
            print(core.dialogue.say("console_welcome") + "\n")
        await console.run(first="/start" if interactive else None)
    finally:
        await core.close()
    return 0


async def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.wiring import build_index
    from bot.kernel.markup import to_plain

    content = load_content(settings.content_dir)
    index = build_index(content)

    def one(question: str) -> None:
        answer = index.search(question)
        best = answer.best
        confident = answer.decision == "answer" and best is not None
        if args.json:
            record = {
                "question": question,
                "id": best.entry.id if confident and best else None,
                "title": best.entry.title if confident and best else None,
                "score": round(best.confidence, 4) if best else 0.0,
                "answer": to_plain(best.entry.body) if confident and best else None,
                "decision": answer.decision,
                "choices": [h.entry.id for h in answer.hits] if answer.decision == "choices" else [],
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
        elif confident and best:
            print(f"[{best.entry.id}] {best.entry.title}\n{to_plain(best.entry.body)}\n", flush=True)
        elif answer.decision == "choices":
            print("(chưa chắc chắn, gợi ý) " + "; ".join(f"[{h.entry.id}] {h.entry.title}" for h in answer.hits))
        else:
            print("(từ chối) Trợ lý chưa có câu trả lời chắc chắn cho câu hỏi này.\n", flush=True)

    if args.question is not None:
        one(args.question)
        return 0
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip():
            one(line.strip())
    return 0


async def cmd_content_check(args: argparse.Namespace, settings: Settings) -> int:
    content = load_content(settings.content_dir, strict=False)
    extra = await _extra_content_checks(settings.content_dir)
    problems = content.problems + extra
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} lỗi trong {settings.content_dir}/", file=sys.stderr)
        return 1
    print(f"Nội dung hợp lệ: {len(content.entries)} mục kiến thức, {len(content.topics)} chủ đề.")
    return 0


async def _extra_content_checks(root: Path) -> list:
    """Checks that belong to other services' content (localities, announcements…), if present."""
    from bot.app import content_check as content_checks

    return content_checks.run_all(root)




async def cmd_staff_add(args: argparse.Namespace, settings: Settings) -> int:
    from bot.audiences.chats import Staff
    from bot.store.db import open_database

    if not args.user_id.lstrip("-").isdigit():
        print(f"--user-id {args.user_id!r} không hợp lệ: cần mã số người dùng.", file=sys.stderr)
        return 2
    db = await open_database(settings.database_path)
    try:
        added = await Staff(db, {}).add(args.channel, args.user_id)
    finally:
        await db.close()
    print("Đã cấp quyền cán bộ." if added else "Người dùng này đã có quyền cán bộ.")
    return 0
