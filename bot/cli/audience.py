"""Operator commands for the audience: `localities`, `groups add/import/list`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.audiences.chats import CHANNELS, check_chat_id
from bot.audiences.localities import load_strict, resolve_locality
from bot.cli.help import show_help
from bot.kernel.config import Settings


def register(sub: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    loc = command("localities", cmd_localities, "cây địa bàn (tỉnh → xã/phường → …) từ content/localities.yaml")
    loc.add_argument("--json", action="store_true", help='mảng JSON các {"code","name","parent"}')

    groups = command("groups", show_help, "nhóm chat cộng đồng: đăng ký, nhập từ CSV, liệt kê")
    groups_sub = groups.add_subparsers(dest="groups_command", metavar="ACTION")
    add = groups_sub.add_parser("add", help="đăng ký (hoặc cập nhật) một nhóm chat vào một địa bàn")
    add.add_argument("--channel", required=True, choices=CHANNELS)
    add.add_argument("--chat-id", required=True)
    add.add_argument("--locality", required=True, help="mã địa bàn (xem: localities)")
    add.add_argument("--title", default=None)
    add.set_defaults(func=cmd_groups_add, quiet_logs=True)
    imp = groups_sub.add_parser("import", help="đăng ký hàng loạt từ tệp CSV: channel,chat_id,locality,title")
    imp.add_argument("file", type=Path)
    imp.set_defaults(func=cmd_groups_import, quiet_logs=True)
    lst = groups_sub.add_parser("list", help="các nhóm chat đã biết")
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--unregistered", action="store_true", help="chỉ các nhóm chưa gắn địa bàn")
    lst.set_defaults(func=cmd_groups_list, quiet_logs=True)


async def cmd_localities(args: argparse.Namespace, settings: Settings) -> int:
    tree = load_strict(settings.content_dir)
    if args.json:
        print(json.dumps([{"code": i.code, "name": i.name, "parent": i.parent} for i in tree], ensure_ascii=False))
        return 0
    for item in tree:
        depth = len(tree.path(item.code)) - 1
        print(f"{'  ' * depth}{item.code:<{24 - 2 * depth}} {item.name}")
    return 0



async def cmd_groups_add(args: argparse.Namespace, settings: Settings) -> int:
    from bot.audiences.registration import GroupRecord, register_groups
    from bot.store.db import open_database

    tree = load_strict(settings.content_dir)
    chat_id = args.chat_id.strip()
    error = check_chat_id(args.channel, chat_id)
    code, lookup_error = resolve_locality(tree, args.locality.strip())
    if error or code is None:
        print(f"Lỗi: {error or lookup_error}", file=sys.stderr)
        return 2
    db = await open_database(settings.database_path)
    try:
        [created] = await register_groups(db, [GroupRecord(args.channel, chat_id, code, args.title)])
    finally:
        await db.close()
    verb = "Đã đăng ký" if created else "Đã cập nhật"
    print(f"{verb} nhóm {chat_id} ({args.channel}) vào địa bàn {tree.full_name(code)}.")
    return 0


async def cmd_groups_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.audiences.registration import parse_groups_csv, register_groups
    from bot.store.db import open_database

    tree = load_strict(settings.content_dir)
    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"Không đọc được tệp {args.file}: {exc}", file=sys.stderr)
        return 2
    records, problems = parse_groups_csv(text, tree)
    for line, message in problems:
        print(f"{args.file}:{line}: {message}", file=sys.stderr)
    created: list[bool] = []
    if records:
        db = await open_database(settings.database_path)
        try:
            created = await register_groups(db, records)
        finally:
            await db.close()
    new = sum(created)
    print(f"Đã nhập {len(records)} nhóm ({new} mới, {len(records) - new} cập nhật); {len(problems)} dòng lỗi.")
    return 1 if problems else 0


async def cmd_groups_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.audiences.registration import list_groups
    from bot.store.db import open_database

    tree = load_strict(settings.content_dir)
    db = await open_database(settings.database_path)
    try:
        groups = await list_groups(db, unregistered_only=args.unregistered)
    finally:
        await db.close()
    rows = [
        {
            "channel": g.channel, "chat_id": g.chat_id, "title": g.display_name or None, "locality": g.locality,
            "locality_name": tree.full_name(g.locality) if g.locality else None,
            "registered": g.locality is not None and g.consent, "active": g.active,
        }
        for g in groups
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("Chưa có nhóm nào." if not args.unregistered else "Không có nhóm nào chưa đăng ký.")
        return 0
    for row in rows:
        state = "" if row["active"] else " (đã rời nhóm)"
        where = row["locality_name"] or "— chưa đăng ký địa bàn —"
        print(f"{row['channel']:<9} {row['chat_id']:<16} {row['title'] or '':<30} {where}{state}")
    return 0
