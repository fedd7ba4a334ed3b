"""Operator commands for supervision: `supervision add/list/import/table/edit/done/cancel`.

They only read and write the SQLite file, so they work whether or not the service runs; the
running service's timer looks at the reminder table at least once a second.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.audiences.chats import Staff
from bot.audiences.localities import load_strict
from bot.cli.common import Subparsers, add_action, add_group, database, fail, local_iso, print_json
from bot.kernel.config import Settings
from bot.supervision.model import no_group_admins
from bot.supervision.plans_io import build, parse_file
from bot.supervision.schedule import ScheduleError, load_config, local_text, parse_due
from bot.supervision.service import Plan, Supervision, SupervisionError

STATUS_NAMES = {"planned": "chờ thực hiện", "done": "đã hoàn thành", "cancelled": "đã hủy"}
KIND_NAMES = {"giam_sat": "giám sát", "phan_bien": "phản biện"}


def add_parser(sub: Subparsers) -> None:
    sv = add_group(sub, "supervision", "kế hoạch giám sát, phản biện: thời hạn, nhắc việc, báo cáo")
    add = add_action(sv, "add", cmd_add, "thêm một kế hoạch; in ra mã số")
    add.add_argument("--locality", required=True, help="mã địa bàn (xem: localities)")
    add.add_argument("--title", required=True)
    add.add_argument("--due", required=True, help="hạn, ISO 8601 (giờ Việt Nam nếu không ghi múi giờ)")
    add.add_argument("--remind", help="mốc nhắc trước hạn, mặc định 14d,7d,1d,0d (d ngày, h giờ, m phút)")
    add.add_argument("--kind", default="giam_sat", help="giam_sat (mặc định) hoặc phan_bien")
    add.add_argument("--subject", help="nội dung giám sát")
    add.add_argument("--period", help="kỳ tính chỉ tiêu: 2026-Q4 hoặc 2026 (mặc định theo ngày hạn)")
    add.add_argument("--chat", action="append", help="nhóm nhận nhắc (kênh:mã), lặp lại được; mặc định các nhóm"
                                                      " đã đăng ký của địa bàn")
    add.add_argument("--json", action="store_true", help='in {"id": …}')
    lst = add_action(sv, "list", cmd_list, "các kế hoạch")
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--status", choices=["planned", "done", "cancelled"])
    imp = add_action(sv, "import", cmd_import, "nhập kế hoạch từ tệp YAML hoặc CSV (locality,title,due,…)")
    imp.add_argument("file", type=Path)
    table = add_action(sv, "table", cmd_table, "từng địa bàn: đã hoàn thành / chỉ tiêu kỳ này; quá hạn; sắp đến hạn")
    table.add_argument("--period", help="kỳ: 2026-Q4 hoặc 2026 (mặc định: kỳ hiện tại)")
    table.add_argument("--json", action="store_true")
    done = add_action(sv, "done", cmd_done, "ghi nhận một kế hoạch đã hoàn thành")
    done.add_argument("id", type=int)
    done.add_argument("--result", required=True, help="một dòng kết quả")
    edit = add_action(sv, "edit", cmd_edit, "sửa một kế hoạch chưa hoàn thành: hạn mới (lịch nhắc tính lại theo"
                                            " hạn mới), tên, mốc nhắc")
    edit.add_argument("id", type=int)
    edit.add_argument("--due", help="hạn mới, ISO 8601 (giờ Việt Nam nếu không ghi múi giờ) hoặc 15/12/2026 17:00")
    edit.add_argument("--title", help="tên mới")
    edit.add_argument("--remind", help="mốc nhắc mới, ví dụ 14d,7d,1d,0d")
    edit.add_argument("--period", help="kỳ tính chỉ tiêu mới: 2026-Q4 hoặc 2026 (mặc định giữ nguyên)")
    edit.add_argument("--json", action="store_true", help="in kế hoạch và lịch nhắc dạng JSON")
    cancel = add_action(sv, "cancel", cmd_cancel, "hủy một kế hoạch (dừng nhắc)")
    cancel.add_argument("id", type=int)


@asynccontextmanager
async def _supervision(settings: Settings) -> AsyncIterator[Supervision]:
    from bot.kernel.content import ContentError, load_content
    from bot.kernel.messages import Messages

    tree = load_strict(settings.content_dir)
    config, problems = load_config(settings.content_dir)
    if problems:
        raise ContentError(problems)
    content = load_content(settings.content_dir, strict=False)
    staff_chat = ("telegram", settings.telegram_staff_chat_id) if settings.telegram_staff_chat_id else None
    async with database(settings) as db:
        yield Supervision(db, tree, Messages(content.messages), Staff(db, {}), settings.tz, config,
                          staff_chat=staff_chat, notify=lambda: None,  # no worker here: the service polls the outbox
                          is_admin=no_group_admins)


open_supervision = _supervision  # the summaries read supervision through the same service


async def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    import time

    async with _supervision(settings) as service:
        raw = {"locality": args.locality, "title": args.title, "due": args.due, "remind": args.remind,
               "kind": args.kind, "subject": args.subject, "period": args.period,
               "chats": ",".join(args.chat) if args.chat else None}
        try:
            plan = build(raw, service.tree, service.config, settings.tz, now=time.time())
            plan_id = await service.add(plan, created_by="cli")
        except (ScheduleError, SupervisionError) as exc:
            return fail(f"Lỗi: {exc}")
        stored = await service.get(plan_id)
        reminders = await service.reminders(plan_id)
    if args.json:
        return print_json({"id": plan_id})
    assert stored is not None
    return _print_plan("Đã thêm", stored, reminders, service, settings)


def _print_plan(verb: str, plan: Plan, reminders: list[dict[str, Any]], service: Supervision,
                settings: Settings) -> int:
    print(f"{verb} kế hoạch #{plan.id}: {plan.title} — {service.tree.full_name(plan.locality)},"
          f" hạn {local_text(plan.due_at, settings.tz)} (kỳ {plan.period}).")
    upcoming = [f"{r['offset_label']} → {local_text(r['fire_at'], settings.tz)}" for r in reminders
                if r["state"] == "pending"]
    print("Lịch nhắc: " + ("; ".join(upcoming) if upcoming else "không còn mốc nào trong tương lai"))
    return 0


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async with _supervision(settings) as service:
        plans = await service.plans(args.status)
    if args.json:
        return print_json([p.as_json(settings.tz) for p in plans])
    if not plans:
        print("Chưa có kế hoạch nào.")
        return 0
    for p in plans:
        print(f"#{p.id:<5} {local_text(p.due_at, settings.tz)}  {STATUS_NAMES.get(p.status, p.status):<14}"
              f" {p.period:<8} {service.place(p.locality)} · {KIND_NAMES.get(p.kind, p.kind)} · {p.title}"
              + (f" — {p.result}" if p.result else ""))
    return 0


async def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    import time

    if not args.file.is_file():
        return fail(f"Lỗi: không có tệp {args.file}")
    async with _supervision(settings) as service:
        records, problems = parse_file(args.file, service.tree, service.config, settings.tz, now=time.time())
        keyed = [r for r in records if r.key]
        added = 0
        for record in records:
            if record.key:
                continue
            exists = await service.db.fetchval(
                "SELECT id FROM supervision_plans WHERE locality = ? AND title = ? AND due_at = ?",
                (record.locality, record.title, record.due_at))
            if exists:
                problems.append((record.line, f"đã có kế hoạch này (#{exists})"))
                continue
            await service.add(record, created_by="cli", source=f"import:{args.file.name}")
            added += 1
        updated = 0
        if keyed:
            new, updated = await service.upsert(keyed, source=f"import:{args.file.name}")
            added += new
    for line, problem in sorted(problems):
        print(f"{args.file}:{line}: {problem}", file=sys.stderr)
    print(f"Đã nhập {added} kế hoạch mới, cập nhật {updated}; {len(problems)} dòng lỗi bị bỏ qua.")
    return 1 if problems else 0


async def cmd_table(args: argparse.Namespace, settings: Settings) -> int:
    async with _supervision(settings) as service:
        try:
            period = args.period.strip().upper() if args.period else None
            if period:
                from bot.supervision.schedule import check_period

                check_period(period)
            table = await service.table(period)
        except ScheduleError as exc:
            return fail(f"Lỗi: {exc}")
    if args.json:
        return print_json(table)
    print(f"Kỳ {table['period']}: đã hoàn thành / chỉ tiêu")
    for r in table["localities"]:
        mark = "✓" if r["met"] else " "
        print(f"  {mark} {r['name']}: {r['done']}/{r['required']}" + (f" (đang có {r['planned']} kế hoạch)"
                                                                       if r["planned"] else ""))
    for title, items in (("Quá hạn chưa hoàn thành", table["overdue"]), ("Sắp đến hạn", table["upcoming"])):
        print(f"{title}: {len(items)}")
        for it in items:
            print(f"  #{it['id']} {it['due'][:16].replace('T', ' ')}  {service.place(it['locality'])} · {it['title']}")
    return 0


async def cmd_edit(args: argparse.Namespace, settings: Settings) -> int:
    """A new due date reschedules (rules in bot/supervision.py: offsets still ahead are pending again,
    even if they went out for the old date; those already past are not sent; escalations restart)."""
    if args.due is None and args.title is None and args.remind is None and args.period is None:
        return fail("Lỗi: cần ít nhất một trong --due, --title, --remind, --period")
    async with _supervision(settings) as service:
        try:
            due = parse_due(args.due, settings.tz) if args.due is not None else None
            status, plan = await service.edit(args.id, due=due, title=args.title, remind=args.remind,
                                              period=args.period, by="cli")
        except ScheduleError as exc:
            return fail(f"Lỗi: {exc}")
        reminders = await service.reminders(args.id) if status == "edited" else []
    if status != "edited" or plan is None:
        messages = {"missing": f"Không có kế hoạch #{args.id}.",
                    "done": f"Kế hoạch #{args.id} đã hoàn thành; không sửa được.",
                    "cancelled": f"Kế hoạch #{args.id} đã bị hủy; không sửa được.",
                    "past": f"Lỗi: hạn mới {local_text(due or 0, settings.tz)} đã qua."}
        print(messages[status], file=sys.stderr)
        return 2 if status == "past" else 1
    if args.json:
        out = plan.as_json(settings.tz)
        out["reminders"] = [{"offset": r["offset_label"], "at": local_iso(r["fire_at"], settings.tz),
                             "state": r["state"]} for r in reminders]
        return print_json(out)
    return _print_plan("Đã sửa", plan, reminders, service, settings)


async def cmd_done(args: argparse.Namespace, settings: Settings) -> int:
    async with _supervision(settings) as service:
        outcome = await service.complete(args.id, args.result, "cli")
    messages = {"done": f"Đã ghi nhận kế hoạch #{args.id} hoàn thành; các lời nhắc còn lại đã dừng.",
                "already": f"Kế hoạch #{args.id} đã hoàn thành từ trước.",
                "cancelled": f"Kế hoạch #{args.id} đã bị hủy.", "missing": f"Không có kế hoạch #{args.id}."}
    print(messages[outcome], file=sys.stdout if outcome == "done" else sys.stderr)
    return 0 if outcome == "done" else 1


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    async with _supervision(settings) as service:
        ok = await service.cancel(args.id)
    if not ok:
        return fail(f"Không hủy được kế hoạch #{args.id} (không có, hoặc đã hoàn thành / đã hủy).", 1)
    print(f"Đã hủy kế hoạch #{args.id}; không nhắc nữa.")
    return 0
