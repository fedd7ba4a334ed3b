"""Recurring series and quarterly summaries end to end, checked against the fake Bot API's record.

1. A real `python -m bot run` with a series every 4 seconds (six-field cron, the drill form of
   "every minute") to three groups, SIGKILLed and restarted: each run reaches every group once, the
   runs missed while it was down come back as exactly one made-up firing, and `broadcast cancel`
   (the real CLI) stops it.
2. `summary quarter --send --yes` (the real CLI) while the service runs: two localities' groups
   each receive their own locality's summary, the staff chat the table.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import sqlite3
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.audiences.registration import GroupRecord, register_groups
from bot.store.db import open_database
from tests.conftest import CONTENT, run_cli
from tests.e2e.test_broadcast_e2e import until
from tests.e2e.test_crash import TOKEN, spawn, wait
from tests.fakes.telegram import FakeTelegram
from tests.unit.broadcasts.test_broadcasts import add_chat

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
EVERY = 4
GROUPS = {"-3001": "phan-rang", "-3002": "phan-rang", "-3003": "thuan-nam"}
MARKER = "Nhịp định kỳ"


def firings(path: Path) -> list[tuple[float, int]]:
    with sqlite3.connect(path) as con:
        return con.execute("SELECT run_at, missed FROM series_firings ORDER BY run_at").fetchall()


def all_sent(path: Path) -> bool:
    with sqlite3.connect(path) as con:
        return con.execute("SELECT COUNT(*) FROM outbox WHERE status != 'sent'").fetchone()[0] == 0


def copies(fake: FakeTelegram) -> Counter:
    return Counter(str(m.chat_id) for m in fake.sent if MARKER in m.text)


def cli_env(path: Path, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{path}", "CONTENT_DIR": str(CONTENT), **extra}


async def test_a_series_reaches_every_group_once_a_run_across_sigkill_and_stops_at_cancel(tmp_path: Path):
    path = tmp_path / "bot.sqlite3"
    db = await open_database(path)
    for chat_id, locality in GROUPS.items():
        await add_chat(db, chat_id, "group", locality)
    await db.close()
    made = await asyncio.to_thread(run_cli, "broadcast", "send", "--to", "groups", "--text", f"{MARKER} {{quy}}",
                                   "--repeat", f"*/{EVERY} * * * * *", "--yes", "--json", env=cli_env(path))
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["id"] == "S1"
    log = tmp_path / "service.log"
    async with FakeTelegram(token=TOKEN, limits=(40, 20, 1)) as fake:
        first = await spawn(tmp_path, fake, log)
        try:
            await wait(lambda: len(firings(path)) >= 2 and all_sent(path), 30, "two firings delivered")
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        before = len(firings(path))
        await asyncio.sleep(2.5 * EVERY)  # at least two runs pass while the service is down
        second = await spawn(tmp_path, fake, log)
        try:
            await wait(lambda: len(firings(path)) >= before + 2 and all_sent(path), 30, "the make-up and a run")
            cancelled = await asyncio.to_thread(run_cli, "broadcast", "cancel", "S1", env=cli_env(path))
            assert cancelled.returncode == 0, cancelled.stderr
            at_cancel = len(firings(path))
            await asyncio.sleep(2.5 * EVERY)
            await wait(lambda: all_sent(path), 10, "the last firing delivered")
            after = firings(path)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.wait(), 15)
        assert second.returncode == 0
        got = copies(fake)
        assert fake.limit_breaches == 0
    assert len(after) == at_cancel, "a firing after cancel"
    runs = [run for run, _ in after]
    for (previous, _), (run, missed) in itertools.pairwise(after):
        assert run - previous == EVERY * (missed + 1), "a run neither fired nor made up"
    made_up = [missed for _, missed in after if missed]
    assert len(made_up) == 1 and made_up[0] >= 1, "the outage was not made up exactly once"
    assert all(datetime.fromtimestamp(r, TZ).second % EVERY == 0 for r in runs)
    assert got == {chat_id: len(after) for chat_id in GROUPS}, "a group missed a run or got one twice"


async def test_quarterly_summary_gives_each_locality_its_own(tmp_path: Path):
    path = tmp_path / "bot.sqlite3"
    db = await open_database(path)
    await register_groups(db, [GroupRecord("telegram", chat, place, f"Tổ {chat}") for chat, place in GROUPS.items()])
    now = datetime.now(TZ)
    period = f"{now.year}-Q{(now.month - 1) // 3 + 1}"
    for kind in ("giam_sat", "phan_bien"):
        await db.write("INSERT INTO supervision_plans (locality, title, kind, period, due_at, remind, status, done_at,"
                       " created_at, updated_at) VALUES ('phan-rang', ?, ?, ?, ?, '7d', 'done', ?, 0, 0)",
                       (f"Giám sát {kind}", kind, period, now.timestamp(), now.timestamp()))
    await db.close()
    log = tmp_path / "service.log"
    async with FakeTelegram(token=TOKEN, limits=(40, 20, 1)) as fake:
        service = await spawn(tmp_path, fake, log)
        try:
            sent = await asyncio.to_thread(run_cli, "summary", "quarter", "--send", "--yes",
                                           env=cli_env(path, TELEGRAM_STAFF_CHAT_ID="-4000"))
            assert sent.returncode == 0, sent.stderr
            await until(lambda: {str(m.chat_id) for m in fake.sent} >= {*GROUPS, "-4000"}, 20, "every summary")
        finally:
            service.send_signal(signal.SIGTERM)
            await asyncio.wait_for(service.wait(), 15)
    texts = {str(m.chat_id): m.text for m in fake.sent}
    for chat in ("-3001", "-3002"):
        assert "Phường Phan Rang" in texts[chat] and "2/2" in texts[chat] and "Thuận Nam" not in texts[chat]
    assert "Xã Thuận Nam" in texts["-3003"] and "Phan Rang" not in texts["-3003"]
    assert "Cảm ơn" in texts["-3003"]  # nothing to report: a kind sentence, not a table of zeros
    assert "Tổng kết quý" in texts["-4000"] and "Phường Phan Rang" in texts["-4000"]
    assert "**" not in texts["-3001"]  # rendered for the channel (bold as HTML on Telegram)
