"""`broadcast show/list/cancel` for recurring series (S<id>); `broadcast send --repeat` creates them
(bot/cli/broadcast.py). Not a command group of its own: the series are broadcasts that repeat."""

from __future__ import annotations

import argparse
from typing import Any
from zoneinfo import ZoneInfo

from bot.audiences.localities import Localities, load_strict
from bot.broadcasts.recurrence import parse_repeat
from bot.broadcasts.recurrence import upcoming as runs_after
from bot.broadcasts.series import SeriesStore, parse_name
from bot.broadcasts.store import Broadcasts
from bot.cli.common import database, fail, local_iso, local_time, print_json
from bot.kernel.config import Settings

KIND_NAMES = {"broadcast": "thông báo", "summary": "tổng kết quý", "digest": "bản tin tuần cho cán bộ"}


def store(broadcasts: Broadcasts, tree: Localities, settings: Settings) -> SeriesStore:
    """The series table for reading, creating and ending (firing is the service's)."""
    return SeriesStore(broadcasts.db, broadcasts, tree, settings.tz)


def upcoming(repeat: str, tz: ZoneInfo, count: int = 3) -> str:
    import time

    return ", ".join(local_time(run, tz) for run in runs_after(parse_repeat(repeat, tz), time.time(), tz, count))


async def show(args: argparse.Namespace, settings: Settings) -> int:
    number = parse_name(args.id)
    assert number is not None
    tree = load_strict(settings.content_dir)
    async with database(settings) as db:
        broadcasts = Broadcasts(db, tree)
        series = store(broadcasts, tree, settings)
        row = await series.get(number)
        if row is None:
            return fail(f"Không có lịch gửi {args.id}.", 1)
        firings = await series.firings(number)
        for firing in firings:  # each firing is its own delivery: its broadcasts' totals
            totals = {"total": 0, "sent": 0, "pending": 0, "failed": 0, "acknowledged": 0}
            for broadcast in firing["broadcasts"]:
                report = await broadcasts.report(broadcast)
                if report is not None:
                    for key, value in report.as_json().items():
                        if key in totals:
                            totals[key] += sum(value.values()) if isinstance(value, dict) else value
            firing.update(totals)
    if getattr(args, "json", False):
        tz = settings.tz
        return print_json({**row.as_json(tz), "firings": [
            {**f, "run_at": local_iso(f["run_at"], tz), "fired_at": local_iso(f["fired_at"], tz)} for f in firings]})
    print(_render(row.as_json(settings.tz), firings, settings.tz, tree))
    return 0


def _render(row: dict[str, Any], firings: list[dict[str, Any]], tz: ZoneInfo, tree: Localities) -> str:
    status = "đã kết thúc" if row["status"] == "cancelled" else "đang chạy"
    place = tree.full_name(row["locality"]) if row["locality"] else "toàn bộ"
    lines = [f"Lịch gửi {row['id']} ({KIND_NAMES.get(row['kind'], row['kind'])}): {row['repeat']} — {status}"
             + (f" · mục {row['key']} trong content/schedules.yaml" if row["key"] else ""),
             f"Gửi tới: {row['audience']} · địa bàn: {place}"
             + (f" · lần tới: {_local(row['next_run'])}" if row["next_run"] else "")]
    if row["title"] or row["text"]:
        lines.append(f"Nội dung: {row['title'] or row['text'].splitlines()[0][:80]}")
    if not firings:
        lines.append("Chưa gửi lần nào.")
    else:
        lines.append(f"{len(firings)} lần gửi (mới nhất trước):")
    for f in firings:
        missed = f" (gộp {f['missed']} lần bị lỡ)" if f["missed"] else ""
        ids = ", ".join(f"#{b}" for b in f["broadcasts"]) or "không có người nhận"
        lines.append(f"  {local_time(f['run_at'], tz)}{missed}: {ids} · gửi {f['sent']}/{f['total']},"
                     f" chờ {f['pending']}, lỗi {f['failed']}, đã nhận {f['acknowledged']}")
    return "\n".join(lines)


def _local(iso: str) -> str:
    from datetime import datetime

    return datetime.fromisoformat(iso).strftime("%d/%m/%Y %H:%M")


async def print_list(settings: Settings, limit: int) -> None:
    """The series (active first) with their next run, before the list of broadcasts."""
    tree = load_strict(settings.content_dir)
    async with database(settings) as db:
        rows = await store(Broadcasts(db, tree), tree, settings).recent(limit)
    if not rows:
        return
    print("Lịch gửi định kỳ:")
    for r in rows:
        label = r.title or (r.text.splitlines()[0][:50] if r.text else KIND_NAMES.get(r.kind, r.kind))
        state = f"lần tới {local_time(r.next_run_at, settings.tz)}" if r.next_run_at and not r.cancelled_at \
            else "đã kết thúc"
        print(f"{r.name:<6} {r.repeat:<30} {state:<24} {label}")
    print()


async def cancel(args: argparse.Namespace, settings: Settings) -> int:
    number = parse_name(args.id)
    assert number is not None
    tree = load_strict(settings.content_dir)
    async with database(settings) as db:
        series = store(Broadcasts(db, tree), tree, settings)
        row = await series.get(number)
        done = await series.cancel(number)
    if not done:
        return fail(f"Không kết thúc được lịch {args.id} (không có, hoặc đã kết thúc).", 1)
    note = " Lịch này khai trong content/schedules.yaml: xóa mục đó, nếu không lần khởi động sau sẽ tạo lại." \
        if row is not None and row.key else ""
    print(f"Đã kết thúc lịch {args.id}: không gửi thêm lần nào.{note}")
    return 0
