"""Operator commands for the person behind the bot: `tickets list/export`, `kb gaps`, `kb draft`, `kb import`.

They read the SQLite file (and `kb draft` writes one file in content/knowledge/), so they work
whether or not the service runs. They show what staff need to handle a ticket — never the
resident's platform user id or chat id.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.cli.common import Subparsers, add_action, add_group, database, fail, local_time, print_json
from bot.kernel.config import Settings

STATUSES = ("open", "answered", "closed")
KINDS = ("question", "petition")
STATUS_NAMES = {"open": "đang chờ", "answered": "đã trả lời", "closed": "đã xử lý"}
KIND_NAMES = {"question": "câu hỏi", "petition": "ý kiến"}
EXPORT_FIELDS = ("id", "kind", "status", "topic", "locality", "channel", "display_name", "created_at", "text",
                 "followups", "answer", "answered_by", "answered_at", "closed_by", "closed_at")


def add_parser(sub: Subparsers) -> None:
    tk = add_group(sub, "tickets", "câu hỏi chuyển cán bộ và ý kiến, kiến nghị của người dân")
    lst = add_action(tk, "list", cmd_tickets_list, "liệt kê (mới nhất cuối cùng)")
    lst.add_argument("--status", choices=STATUSES)
    lst.add_argument("--kind", choices=KINDS)
    lst.add_argument("--limit", type=int, default=200)
    lst.add_argument("--json", action="store_true", help="mỗi dòng một đối tượng JSON")
    export = add_action(tk, "export", cmd_tickets_export, "xuất toàn bộ ra CSV (UTF-8, mở được bằng Excel)")
    export.add_argument("--csv", action="store_true", required=True, help="định dạng CSV")
    export.add_argument("--status", choices=STATUSES)
    export.add_argument("--kind", choices=KINDS)
    export.add_argument("--output", "-o", help="tệp ghi ra (mặc định: màn hình)")

    kb = add_group(sub, "kb", "học từ những câu trợ lý chưa trả lời được")
    gaps = add_action(kb, "gaps", cmd_kb_gaps, "nhóm các câu hỏi bị từ chối / chuyển cán bộ, nhiều nhất trước")
    gaps.add_argument("--since", help="từ ngày (dd/mm/yyyy hoặc yyyy-mm-dd)")
    gaps.add_argument("--limit", type=int, default=20)
    gaps.add_argument("--json", action="store_true")
    draft = add_action(kb, "draft", cmd_kb_draft, "lưu câu trả lời của cán bộ thành mục kiến thức nháp")
    draft.add_argument("--ticket", type=int, required=True, help="số câu hỏi (#số)")
    draft.add_argument("--id", help="mã mục (mặc định: nhap-<số>-<câu hỏi không dấu>)")
    draft.add_argument("--force", action="store_true", help="ghi đè nếu tệp đã có")
    faq = add_action(kb, "import", cmd_kb_import,
                     "nhập bảng hỏi đáp (CSV, XLSX: câu hỏi, câu trả lời…) vào content/knowledge/")
    faq.add_argument("file", type=Path, help="tệp .csv hoặc .xlsx; dòng đầu là tên cột")
    faq.add_argument("--replace", action="store_true", help="ghi đè mục đã có cùng mã")


async def _rows(settings: Settings, status: str | None, kind: str | None, limit: int | None) -> list[dict[str, Any]]:
    from bot.handoff.tickets import Tickets

    async with database(settings) as db:
        tickets = await Tickets(db).list(status=status, kind=kind, limit=limit)
        counts = {r[0]: r[1] for r in await db.fetchall(
            "SELECT ticket, COUNT(*) FROM ticket_messages WHERE direction = 'resident' GROUP BY ticket")}
    out = []
    for t in tickets:
        row = {name: getattr(t, name) for name in EXPORT_FIELDS if name != "followups"}
        row["followups"] = counts.get(t.id, 0)
        out.append(row)
    return out


async def cmd_tickets_list(args: argparse.Namespace, settings: Settings) -> int:
    rows = await _rows(settings, args.status, args.kind, max(1, args.limit))
    if args.json:  # one array, like `groups list --json` and `supervision list --json`
        return print_json(rows)
    if not rows:
        print("Không có mục nào.")
        return 0
    for r in rows:
        place = r["locality"] or "—"
        text = " ".join(r["text"].split())
        text = text if len(text) <= 80 else text[:80] + " …"
        who = r["display_name"] or "(đã ẩn danh)"
        print(f"#{r['id']}  {local_time(r['created_at'], settings.tz)}  {KIND_NAMES[r['kind']]:<8} "
              f"{STATUS_NAMES[r['status']]:<10} {place:<14} {who}: {text}")
    return 0


async def cmd_tickets_export(args: argparse.Namespace, settings: Settings) -> int:
    rows = await _rows(settings, args.status, args.kind, None)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for r in rows:
        for key in ("created_at", "answered_at", "closed_at"):
            r[key] = local_time(r[key], settings.tz)
        writer.writerow(r)
    if args.output:
        # the BOM makes Excel read it as UTF-8
        await asyncio.to_thread(Path(args.output).write_text, buffer.getvalue(), encoding="utf-8-sig")
    else:
        sys.stdout.write(buffer.getvalue())
    if args.output:
        print(f"Đã xuất {len(rows)} mục ra {args.output}.", file=sys.stderr)
    return 0


async def cmd_kb_gaps(args: argparse.Namespace, settings: Settings) -> int:
    from bot.knowledge import gaps

    since = None
    if args.since:
        try:
            since = gaps.parse_date(args.since, settings.tz)
        except ValueError:
            return fail(f"--since {args.since!r} không hợp lệ: dùng dd/mm/yyyy hoặc yyyy-mm-dd.")
    async with database(settings) as db:
        asked = await gaps.collect(db, since)
    grouped = gaps.group(asked)
    groups = grouped[: max(1, args.limit)]
    if args.json:  # one array, like the other listings
        return print_json([{"count": g.count, "handed_off": g.handed_off, "question": g.representative(),
                            "variants": g.variants(), "last": local_time(g.last, settings.tz)} for g in groups])
    if not groups:
        print("Chưa có câu hỏi nào bị từ chối hay chuyển cán bộ" + (" trong khoảng này." if since else "."))
        return 0
    print(f"{len(asked)} câu hỏi trợ lý chưa trả lời được, {len(grouped)} nhóm; nhiều nhất trước:\n")
    for number, g in enumerate(groups, start=1):
        print(f"{number:>2}. [{g.count} lần, {g.handed_off} chuyển cán bộ, gần nhất {local_time(g.last, settings.tz)}] "
              f"{g.representative()}")
        for variant in g.variants():
            print(f"      ~ {variant}")
    return 0


async def cmd_kb_draft(args: argparse.Namespace, settings: Settings) -> int:
    from bot.handoff.tickets import Tickets
    from bot.knowledge import gaps

    async with database(settings) as db:
        ticket = await Tickets(db).get(args.ticket)
    if ticket is None:
        return fail(f"Không có câu hỏi #{args.ticket}.", 1)
    if not ticket.answer:
        return fail(f"Câu hỏi #{ticket.id} chưa có câu trả lời của cán bộ.", 1)
    if args.id and not gaps.slug(args.id).replace("-", "").isalnum():
        return fail(f"--id {args.id!r} không hợp lệ.")
    when = datetime.fromtimestamp(ticket.answered_at or ticket.updated_at, settings.tz)
    entry_id, text = gaps.draft_entry(ticket.id, ticket.text, ticket.answer, when,
                                      gaps.slug(args.id, 20) if args.id else None)
    try:
        path = gaps.write_draft(settings.content_dir / "knowledge", entry_id, text, force=args.force)
    except FileExistsError as exc:
        return fail(f"Tệp {exc} đã có; dùng --force để ghi đè hoặc --id để đặt mã khác.", 1)
    print(f"Đã lưu bản nháp {path} (draft: true: trợ lý chưa dùng cho đến khi cán bộ duyệt và xóa dòng đó).")
    return 0


async def cmd_kb_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.knowledge import faq_import

    folder = settings.content_dir / "knowledge"
    try:
        report = await asyncio.to_thread(faq_import.import_file, args.file, folder, replace=args.replace)
    except faq_import.FaqError as exc:
        return fail(str(exc), 1)
    for path, draft in report.written:
        print(f"ghi {path} ({len(draft.questions)} câu hỏi mẫu, từ dòng {', '.join(map(str, draft.rows))})")
    for where, why in report.skipped:
        print(f"bỏ qua {where}: {why}")
    print(f"Đã ghi {len(report.written)} mục, bỏ qua {len(report.skipped)}. "
          f"Chạy `python -m bot content check` để xem lại.")
    return 0
