"""`summary quarter`: each locality's quarter (supervision done against the requirement,
broadcasts and acknowledgements, residents' questions, tickets, subscribers and groups), printed,
as JSON, or sent (`--send`: each group its own locality's summary, the staff chat the table)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from bot.audiences.chats import Chats
from bot.broadcasts.store import Broadcasts
from bot.cli.common import Subparsers, add_action, add_group, fail, print_json
from bot.cli.supervision import open_supervision
from bot.kernel.config import Settings
from bot.summaries import texts
from bot.summaries.build import build_series
from bot.summaries.quarter import Quarter, SummaryError


def add_parser(sub: Subparsers) -> None:
    sm = add_group(sub, "summary", "tổng kết hoạt động của từng địa bàn")
    quarter = add_action(sm, "quarter", cmd_quarter, "tổng kết một quý của từng địa bàn (mặc định: quý hiện tại)")
    quarter.add_argument("--quarter", help="quý cần tổng kết, dạng 2026-Q4")
    quarter.add_argument("--locality", help="chỉ một địa bàn (mã)")
    quarter.add_argument("--json", action="store_true", help="một mảng, mỗi địa bàn một đối tượng có khóa locality")
    quarter.add_argument("--send", action="store_true",
                         help="gửi mỗi nhóm bản tổng kết của địa bàn mình, và nhóm cán bộ cả bảng")
    quarter.add_argument("--yes", action="store_true", help="gửi không hỏi lại")


async def cmd_quarter(args: argparse.Namespace, settings: Settings) -> int:
    from bot.kernel.content import load_content

    now = time.time()
    try:
        quarter = Quarter.parse(args.quarter) if args.quarter else Quarter.of(now, settings.tz)
    except SummaryError as exc:
        return fail(f"Lỗi: {exc}")
    if args.send and args.locality:
        return fail("Lỗi: --send gửi cho mọi địa bàn; bỏ --locality (hoặc bỏ --send để xem một địa bàn).")
    content = load_content(settings.content_dir, strict=False)
    async with open_supervision(settings) as supervision:
        db, tree, say = supervision.store.db, supervision.tree, supervision.say
        broadcasts = Broadcasts(db, tree)
        _, sending = build_series(settings, db, tree, supervision, broadcasts, Chats(db), say, content.entries)
        try:
            items = await sending.summaries.quarter(quarter, now, args.locality)
        except SummaryError as exc:
            return fail(f"Lỗi: {exc}")
        if args.send:
            messages = await sending.summary_messages(quarter, now)
            groups = sum(len(m.chats) for m in messages if m.locality is not None)
            places = sum(1 for m in messages if m.locality is not None)
            if not args.yes:
                print(f"Sẽ gửi tổng kết {quarter.name} tới {groups} nhóm của {places} địa bàn"
                      + (" và nhóm cán bộ" if sending.staff_chat else "") + ". Gửi? [c/K] ",
                      end="", file=sys.stderr, flush=True)
                line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
                if line.strip().lower() not in ("c", "co", "có", "y", "yes"):
                    return fail("Đã hủy, chưa gửi gì.", 1)
            ids = await sending.queue(messages, now, created_by="cli")
            print(f"Đã xếp hàng {len(ids)} tin tổng kết {quarter.name}: {groups} nhóm của {places} địa bàn"
                  + (", và bảng tổng hợp cho nhóm cán bộ." if sending.staff_chat else
                     "; chưa đặt TELEGRAM_STAFF_CHAT_ID nên không gửi bảng cho cán bộ."))
            return 0
    if args.json:
        return print_json(items)
    if args.locality:
        print(texts.locality_text(items[0], quarter, say))
    else:
        print(texts.staff_text(items, quarter, say, limit=len(items)))
    return 0
