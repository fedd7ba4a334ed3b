"""Operator commands for the audience: `staff add`, `localities`, `groups add/import/list`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.audiences.chats import CHANNELS, Staff, check_chat_id
from bot.audiences.localities import load_strict, resolve_locality
from bot.cli.common import Subparsers, add_action, add_command, add_group, database, fail, print_json
from bot.kernel.config import Settings


def add_parser(sub: Subparsers) -> None:
    staff = add_group(sub, "staff", "quyền cán bộ")
    add = add_action(staff, "add", cmd_staff_add, "cấp quyền cán bộ cho một người dùng")
    add.add_argument("--channel", required=True, choices=CHANNELS)
    add.add_argument("--user-id", required=True)

    loc = add_command(sub, "localities", cmd_localities,
                      "cây địa bàn (tỉnh → xã/phường → …) từ content/localities.yaml")
    loc.add_argument("--json", action="store_true", help='mảng JSON các {"code","name","parent"}')

    groups = add_group(sub, "groups", "nhóm chat cộng đồng: đăng ký, nhập từ CSV, liệt kê")
    add = add_action(groups, "add", cmd_groups_add, "đăng ký (hoặc cập nhật) một nhóm chat vào một địa bàn")
    add.add_argument("--channel", required=True, choices=CHANNELS)
    add.add_argument("--chat-id", required=True)
    add.add_argument("--locality", required=True, help="mã địa bàn (xem: localities)")
    add.add_argument("--title", default=None)
    imp = add_action(groups, "import", cmd_groups_import,
                     "đăng ký hàng loạt từ tệp CSV: channel,chat_id,locality,title")
    imp.add_argument("file", type=Path)
    lst = add_action(groups, "list", cmd_groups_list, "các nhóm chat đã biết")
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--unregistered", action="store_true", help="chỉ các nhóm chưa gắn địa bàn")


async def cmd_staff_add(args: argparse.Namespace, settings: Settings) -> int:
    if not args.user_id.lstrip("-").isdigit():
        return fail(f"--user-id {args.user_id!r} không hợp lệ: cần mã số người dùng.")
    async with database(settings) as db:
        added = await Staff(db, {}).add(args.channel, args.user_id)
    print("Đã cấp quyền cán bộ." if added else "Người dùng này đã có quyền cán bộ.")
    return 0


async def cmd_localities(args: argparse.Namespace, settings: Settings) -> int:
    tree = load_strict(settings.content_dir)
    if args.json:
        return print_json([{"code": i.code, "name": i.name, "parent": i.parent} for i in tree])
    for item in tree:
        depth = len(tree.path(item.code)) - 1
        print(f"{'  ' * depth}{item.code:<{24 - 2 * depth}} {item.name}")
    return 0


async def cmd_groups_add(args: argparse.Namespace, settings: Settings) -> int:
    from bot.audiences.registration import GroupRecord, register_groups

    tree = load_strict(settings.content_dir)
    chat_id = args.chat_id.strip()
    error = check_chat_id(args.channel, chat_id)
    code, lookup_error = resolve_locality(tree, args.locality.strip())
    if error or code is None:
        return fail(f"Lỗi: {error or lookup_error}")
    async with database(settings) as db:
        [created] = await register_groups(db, [GroupRecord(args.channel, chat_id, code, args.title)])
    verb = "Đã đăng ký" if created else "Đã cập nhật"
    print(f"{verb} nhóm {chat_id} ({args.channel}) vào địa bàn {tree.full_name(code)}.")
    return 0


async def cmd_groups_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.audiences.registration import parse_groups_csv, register_groups

    tree = load_strict(settings.content_dir)
    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return fail(f"Không đọc được tệp {args.file}: {exc}")
    records, problems = parse_groups_csv(text, tree)
    for line, message in problems:
        print(f"{args.file}:{line}: {message}", file=sys.stderr)
    created: list[bool] = []
    if records:
        async with database(settings) as db:
            created = await register_groups(db, records)
    new = sum(created)
    print(f"Đã nhập {len(records)} nhóm ({new} mới, {len(records) - new} cập nhật); {len(problems)} dòng lỗi.")
    return 1 if problems else 0


async def cmd_groups_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.audiences.registration import list_groups

    tree = load_strict(settings.content_dir)
    async with database(settings) as db:
        groups = await list_groups(db, unregistered_only=args.unregistered)
    rows = [
        {
            "channel": g.channel, "chat_id": g.chat_id, "title": g.display_name or None, "locality": g.locality,
            "locality_name": tree.full_name(g.locality) if g.locality else None,
            "registered": g.locality is not None and g.consent, "active": g.active,
        }
        for g in groups
    ]
    if args.json:
        return print_json(rows)
    if not rows:
        print("Chưa có nhóm nào." if not args.unregistered else "Không có nhóm nào chưa đăng ký.")
        return 0
    for row in rows:
        state = "" if row["active"] else " (đã rời nhóm)"
        where = row["locality_name"] or "— chưa đăng ký địa bàn —"
        print(f"{row['channel']:<9} {row['chat_id']:<16} {row['title'] or '':<30} {where}{state}")
    return 0
