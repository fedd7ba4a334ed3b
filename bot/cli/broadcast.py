"""Operator commands for broadcasts: `broadcast send/show/list/cancel`; `send --repeat` makes a
recurring series (S<id>), which `show`, `list` and `cancel` also take.

They only read and write the SQLite file, so they work whether or not the service runs; the
running service's delivery worker polls the outbox and starts sending within about a second.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import bot.cli.series as series_cli
from bot.audiences.chats import CHANNELS
from bot.audiences.localities import Localities, load_strict, resolve_locality
from bot.broadcasts.export import recipients_csv
from bot.broadcasts.series import parse_name
from bot.broadcasts.store import (
    BroadcastError,
    Broadcasts,
    Report,
    Target,
    parse_audience,
    parse_time,
    read_announcement,
)
from bot.cli.common import Subparsers, add_action, add_group, database, fail, local_iso, local_time, print_json
from bot.kernel.config import Settings

PAST_SLACK = 60.0  # --at a little in the past means "now"; more is a mistake
STATUS_NAMES = {"draft": "nháp", "queued": "chờ gửi", "sending": "đang gửi", "done": "đã xong",
                "cancelled": "đã hủy"}
AUDIENCE_NAMES = {"groups": "các nhóm", "residents": "người dân đăng ký", "all": "nhóm và người dân"}


def add_parser(sub: Subparsers) -> None:
    bc = add_group(sub, "broadcast", "gửi thông báo tới các nhóm và người dân; xem báo cáo")
    send = add_action(bc, "send", cmd_broadcast_send, "xếp hàng một thông báo; in ra mã số")
    send.add_argument("--to", help="groups, residents hoặc all (có thể ghép: groups,residents)")
    send.add_argument("--locality", help="mã địa bàn: gửi cho cả địa bàn và các địa bàn bên dưới")
    send.add_argument("--channel", choices=CHANNELS, help="chỉ gửi qua kênh này")
    what = send.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="nội dung thông báo")
    what.add_argument("--file", type=Path, help="tệp nội dung (.md, có thể có phần đầu id/title/audience/send_at)")
    send.add_argument("--title", help="tiêu đề (in đậm ở đầu tin)")
    send.add_argument("--at", help="thời điểm gửi, ISO 8601 (giờ địa phương nếu không ghi múi giờ)")
    send.add_argument("--yes", action="store_true", help="không hỏi lại")
    send.add_argument("--json", action="store_true", help='in {"id": …}')
    send.add_argument("--repeat", metavar="CRON",
                      help="gửi lặp lại: cron 5 trường theo TIMEZONE (\"0 8 * * 1\"), @weekly, @monthly, @quarterly,"
                           " @first-workday-quarter (có thể kèm giờ: \"@weekly 07:30\"); tạo lịch S<mã>")
    show = add_action(bc, "show", cmd_broadcast_show, "báo cáo gửi của một thông báo, hoặc các lần gửi của lịch S<mã>")
    show.add_argument("id", type=_id)
    show_format = show.add_mutually_exclusive_group()
    show_format.add_argument("--json", action="store_true", help="tổng hợp, kèm by_locality (theo địa bàn)")
    show_format.add_argument("--csv", nargs="?", const="-", metavar="FILE",
                             help="từng người nhận, dạng CSV, ra màn hình hoặc vào FILE")
    lst = add_action(bc, "list", cmd_broadcast_list, "các thông báo gần đây")
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--limit", type=int, default=30)
    cancel = add_action(bc, "cancel", cmd_broadcast_cancel,
                        "hủy một thông báo đã hẹn giờ hoặc đang gửi, hoặc kết thúc lịch S<mã>")
    cancel.add_argument("id", type=_id)


def _id(value: str) -> int | str:
    """A broadcast number, or a series name "S12" (kept as text)."""
    if parse_name(value) is not None:
        return value.strip().upper()
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' không phải mã thông báo (số) hay mã lịch (S<số>)") from None


@asynccontextmanager
async def _broadcasts(settings: Settings) -> AsyncIterator[tuple[Broadcasts, Localities]]:
    tree = load_strict(settings.content_dir)
    async with database(settings) as db:
        yield Broadcasts(db, tree), tree


async def cmd_broadcast_send(args: argparse.Namespace, settings: Settings) -> int:
    tree = load_strict(settings.content_dir)
    if args.repeat is not None and args.at:
        return fail("Lỗi: --at và --repeat không dùng cùng nhau (lịch lặp tự tính các lần gửi).")
    try:
        text, title, target, send_at, source = _compose(args, settings, tree)
    except BroadcastError as exc:
        return fail(f"Lỗi: {exc}")
    if args.repeat is not None:
        return await _send_series(args, settings, tree, text, title, target)
    async with _broadcasts(settings) as (broadcasts, _):
        count = await broadcasts.count(target)
        if not args.yes:
            _preview(text, title, target, send_at, count, settings.tz, tree)
            if not await _confirmed():
                return fail("Đã hủy, chưa gửi gì.", 1)
        broadcast = await broadcasts.create(text, target, title=title, send_at=send_at, created_by="cli",
                                            source=source)
    if count == 0:
        print("Lưu ý: chưa có người nhận nào phù hợp (nhóm đã đăng ký / người dân đã đồng ý nhận tin).",
              file=sys.stderr)
    if args.json:
        print_json({"id": broadcast})
    else:
        when = "ngay" if send_at is None else f"lúc {local_time(send_at, settings.tz)}"
        print(f"Đã xếp hàng thông báo #{broadcast} cho {count} người nhận, gửi {when}.")
        print(f"Xem tiến độ: python -m bot broadcast show {broadcast}")
    return 0


def _compose(args: argparse.Namespace, settings: Settings,
             tree: Localities) -> tuple[str, str | None, Target, float | None, str | None]:
    source = None
    if args.file is not None:
        piece = read_announcement(args.file)
        text, title = piece.text, args.title or piece.title
        audience, locality = args.to or piece.audience, args.locality or piece.locality
        channel, at = args.channel or piece.channel, args.at or piece.send_at
        source = piece.id or str(args.file)
    else:
        text, title, audience, locality, channel, at = (args.text, args.title, args.to, args.locality,
                                                        args.channel, args.at)
    if not text or not text.strip():
        raise BroadcastError("nội dung thông báo đang trống")
    if not audience:
        raise BroadcastError("thiếu --to (groups, residents hoặc all)")
    code = None
    if locality:
        code, error = resolve_locality(tree, locality)
        if code is None:
            raise BroadcastError(error)
    if channel is not None and channel not in CHANNELS:
        raise BroadcastError(f"kênh '{channel}' không được hỗ trợ (chọn: {', '.join(CHANNELS)})")
    send_at = None
    if at:
        import time

        send_at = parse_time(at, settings.tz)
        if send_at < time.time() - PAST_SLACK:
            raise BroadcastError(f"thời điểm {local_time(send_at, settings.tz)} đã qua")
    return text.strip(), title, Target(parse_audience(audience), code, channel), send_at, source


def _preview(text: str, title: str | None, target: Target, send_at: float | None, count: int, tz: ZoneInfo,
             tree: Localities) -> None:
    place = tree.full_name(target.locality) if target.locality else "toàn bộ"
    lines = [
        "── Xem trước thông báo ──",
        f"Gửi tới: {AUDIENCE_NAMES[target.audience]} · địa bàn: {place} · kênh: {target.channel or 'tất cả'}",
        f"Thời điểm: {'ngay' if send_at is None else local_time(send_at, tz)}",
        f"Số người nhận: {count}",
        "",
    ]
    if title:
        lines.append(f"**{title}**")
    lines.append(text if len(text) <= 600 else text[:600] + "…")
    lines.append("")
    print("\n".join(lines), file=sys.stderr)


async def _send_series(args: argparse.Namespace, settings: Settings, tree: Localities, text: str,
                       title: str | None, target: Target) -> int:
    async with _broadcasts(settings) as (broadcasts, _):
        store = series_cli.store(broadcasts, tree, settings)
        try:
            first = store.check("broadcast", text, args.repeat, target)
        except BroadcastError as exc:
            return fail(f"Lỗi: {exc}")
        if not args.yes:
            count = await broadcasts.count(target)
            _preview(text, title, target, first, count, settings.tz, tree)
            print(f"Lặp lại: {args.repeat} — các lần tới: {series_cli.upcoming(args.repeat, settings.tz)}",
                  file=sys.stderr)
            if not await _confirmed():
                return fail("Đã hủy, chưa tạo lịch nào.", 1)
        series = await store.create(text, target, args.repeat, title=title, created_by="cli")
    if args.json:
        return print_json({"id": f"S{series}", "series": series, "next_run": local_iso(first, settings.tz)})
    print(f"Đã tạo lịch gửi S{series} ({args.repeat}); lần đầu lúc {local_time(first, settings.tz)}.")
    print(f"Xem các lần gửi: python -m bot broadcast show S{series}; dừng: python -m bot broadcast cancel S{series}")
    return 0


async def _confirmed() -> bool:
    print("Gửi thông báo này? [c/K] ", end="", file=sys.stderr, flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return line.strip().lower() in ("c", "co", "có", "y", "yes")


async def cmd_broadcast_show(args: argparse.Namespace, settings: Settings) -> int:
    if isinstance(args.id, str):
        return await series_cli.show(args, settings)
    async with _broadcasts(settings) as (broadcasts, tree):
        report = await broadcasts.report(args.id)
        rows = await broadcasts.recipients(args.id) if report is not None and args.csv else []
        quota = None
        if report is not None and settings.zalo_oa_app_id and report.channel in (None, "zalo_oa"):
            from bot.channels.zalo_oa.store import OAStore, local_day

            quota = await OAStore(broadcasts.db).quota(local_day(time.time(), settings.tz))
    if report is None:
        return fail(f"Không có thông báo #{args.id}.", 1)
    if args.csv:
        return _write_csv(args.csv, rows, settings.tz)
    if args.json:
        return print_json(report.as_json_full())
    print(_render_report(report, settings.tz, tree))
    if quota is not None:  # the OA's plan counts messages by type and day
        used = ", ".join(f"{kind}: {n['sent']} đã gửi, {n['refused']} bị từ chối vì hết hạn mức"
                         for kind, n in sorted(quota.items())) or "chưa gửi tin nào"
        print(f"Hạn mức Zalo OA hôm nay — {used}")
    return 0


def _write_csv(target: str, rows: list[dict[str, Any]], tz: ZoneInfo) -> int:
    """Per-recipient rows (bot/broadcasts/export.py), to stdout or a file."""
    text = recipients_csv(rows, tz)
    if target == "-":
        sys.stdout.write(text)
        return 0
    try:
        Path(target).write_text(text, encoding="utf-8-sig")  # BOM: Excel reads Vietnamese right
    except OSError as exc:
        return fail(f"Không ghi được tệp {target}: {exc.strerror or exc}", 1)
    print(f"Đã ghi {len(rows)} dòng vào {target}.", file=sys.stderr)
    return 0


def _render_report(report: Report, tz: ZoneInfo, tree: Localities) -> str:
    place = tree.full_name(report.locality) if report.locality else "toàn bộ"
    failed = sum(report.failed.values())
    heading = f"Thông báo #{report.id}" + (f": {report.title}" if report.title else "")
    lines = [
        f"{heading} — {STATUS_NAMES.get(report.status, report.status)}",
        f"Gửi tới: {AUDIENCE_NAMES.get(report.audience, report.audience)} · địa bàn: {place}"
        f" · kênh: {report.channel or 'tất cả'} · thời điểm: {local_time(report.send_at, tz)}",
        f"Tổng {report.total} · đã gửi {report.sent} · đang chờ {report.pending} · lỗi {failed}"
        f" · nhóm đã xác nhận \"Đã nhận\": {report.acknowledged}",
    ]
    if report.failed:
        lines.append("Lỗi theo lý do:")
        lines += [f"  {n:>6}  {reason}" for reason, n in sorted(report.failed.items(), key=lambda kv: -kv[1])]
    if report.by_locality:
        lines.append("Theo địa bàn:")
        for code, c in sorted(report.by_locality.items(), key=lambda kv: tree.full_name(kv[0]) if kv[0] else "~"):
            name = tree.full_name(code) if code else "(chưa rõ địa bàn)"
            lines.append(f"  {name}: gửi {c['sent']}/{c['total']}, chờ {c['pending']}, lỗi {c['failed']},"
                         f" đã nhận {c['acknowledged']}")
    return "\n".join(lines)


async def cmd_broadcast_list(args: argparse.Namespace, settings: Settings) -> int:
    if not args.json:
        await series_cli.print_list(settings, args.limit)
    async with _broadcasts(settings) as (broadcasts, _):
        rows = await broadcasts.recent(args.limit)
    if args.json:
        return print_json([{"id": r["id"], "title": r["title"], "audience": r["audience"], "locality": r["locality"],
                            "channel": r["channel"], "status": r["status"],
                            "send_at": local_iso(r["send_at"], settings.tz), "total": r["total"], "sent": r["sent"]}
                           for r in rows])
    if not rows:
        print("Chưa có thông báo nào.")
        return 0
    for r in rows:
        label = r["title"] or r["text"].splitlines()[0][:50]
        print(f"#{r['id']:<5} {local_time(r['send_at'], settings.tz)}  {STATUS_NAMES.get(r['status'], r['status']):<9}"
              f" {r['sent']:>6}/{r['total']:<6} {label}")
    return 0


async def cmd_broadcast_cancel(args: argparse.Namespace, settings: Settings) -> int:
    if isinstance(args.id, str):
        return await series_cli.cancel(args, settings)
    async with _broadcasts(settings) as (broadcasts, _):
        dropped = await broadcasts.cancel(args.id)
    if dropped is None:
        return fail(f"Không hủy được thông báo #{args.id} (không có, hoặc đã gửi xong / đã hủy).", 1)
    print(f"Đã hủy thông báo #{args.id}; {dropped} tin chưa gửi sẽ không gửi nữa.")
    return 0
