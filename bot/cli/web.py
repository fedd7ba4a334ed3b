"""Operator commands for the staff dashboard: `web login-link`, `web role`, `web token create/list/revoke`."""

from __future__ import annotations

import argparse

from bot.audiences.chats import CHANNELS, Staff
from bot.cli.common import Subparsers, add_action, add_group, database, fail, local_time, print_json, show_help
from bot.dashboard.accounts import ROLES, Accounts
from bot.dashboard.audit import Audit
from bot.dashboard.service import login_link
from bot.kernel.config import Settings


def add_parser(sub: Subparsers) -> None:
    web = add_group(sub, "web", "trang cán bộ: liên kết đăng nhập, vai trò, mã API")
    link = add_action(web, "login-link", cmd_login_link, "in liên kết đăng nhập dùng một lần (dòng cuối)")
    link.add_argument("--channel", required=True, choices=CHANNELS)
    link.add_argument("--user-id", required=True)
    role = add_action(web, "role", cmd_role, "đặt vai trò trên trang cán bộ của một cán bộ")
    role.add_argument("--channel", required=True, choices=CHANNELS)
    role.add_argument("--user-id", required=True)
    role.add_argument("--role", required=True, choices=ROLES)
    token = web.add_parser("token", help="mã API (Authorization: Bearer …)")
    token.set_defaults(func=show_help(token), quiet_logs=True)
    tokens = token.add_subparsers(dest="token_command", metavar="ACTION")
    create = add_action(tokens, "create", cmd_token_create, "tạo mã API; in ra một lần (dòng cuối)")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    lst = add_action(tokens, "list", cmd_token_list, "các mã API (không in mã)")
    lst.add_argument("--json", action="store_true")
    revoke = add_action(tokens, "revoke", cmd_token_revoke, "thu hồi một mã API")
    revoke.add_argument("name")


async def cmd_login_link(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as db:
        staff = Staff(db, {"telegram": settings.telegram_staff_ids})
        url = await login_link(settings, staff, Accounts(db), Audit(db), args.channel, args.user_id, "cli", "cli")
    if url is None:
        return fail(f"{args.channel}:{args.user_id} không phải cán bộ: cấp quyền trước bằng "
                    f"python -m bot staff add --channel {args.channel} --user-id {args.user_id}", 1)
    print("Liên kết đăng nhập (dùng được một lần, trong 15 phút):")
    print(url)
    return 0


async def cmd_role(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as db:
        if not await Staff(db, {"telegram": settings.telegram_staff_ids}).is_staff(args.channel, args.user_id):
            return fail(f"{args.channel}:{args.user_id} không phải cán bộ (python -m bot staff add trước).", 1)
        await Accounts(db).set_role(args.channel, args.user_id, args.role, "cli")
        await Audit(db).record("cli", "cli", "staff.role", f"{args.channel}:{args.user_id}", args.role)
    print(f"Đã đặt vai trò {args.role} cho {args.channel}:{args.user_id}.")
    return 0


async def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as db:
        accounts = Accounts(db)
        if any(t.name == args.name for t in await accounts.tokens()):
            return fail(f"Đã có mã API tên {args.name!r}.", 1)
        token = await accounts.create_token(args.name, args.role)
        await Audit(db).record("cli", "cli", "token.create", f"token:{args.name}", args.role)
    print(f"Mã API {args.name!r} (vai trò {args.role}); chỉ hiện một lần, hãy cất giữ:")
    print(token)
    return 0


async def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as db:
        tokens = await Accounts(db).tokens()
    if args.json:
        return print_json([{"name": t.name, "role": t.role, "created_at": t.created_at, "last_used": t.last_used,
                            "revoked": t.revoked_at is not None} for t in tokens])
    for t in tokens:
        state = "đã thu hồi" if t.revoked_at else f"dùng lần cuối {local_time(t.last_used, settings.tz) or 'chưa'}"
        print(f"{t.name}  {t.role}  tạo {local_time(t.created_at, settings.tz)}  {state}")
    return 0


async def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings) as db:
        if not await Accounts(db).revoke_token(args.name):
            return fail(f"Không có mã API đang dùng tên {args.name!r}.", 1)
        await Audit(db).record("cli", "cli", "token.revoke", f"token:{args.name}")
    print(f"Đã thu hồi mã API {args.name!r}.")
    return 0
