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
import os
import signal
import sqlite3
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.audiences.registration import GroupRecord, register_groups
from bot.store.db import open_database
from tests.conftest import CONTENT, run_cli
from tests.e2e.test_crash import TOKEN, spawn
from tests.fakes.telegram import FakeTelegram
from tests.polling import until
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
            await until(lambda: len(firings(path)) >= 2 and all_sent(path), 30, "two firings delivered")
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        before = len(firings(path))
        await asyncio.sleep(2.5 * EVERY)  # at least two runs pass while the service is down
        second = await spawn(tmp_path, fake, log)
        try:
            await until(lambda: len(firings(path)) >= before + 2 and all_sent(path), 30, "the make-up and a run")
            cancelled = await asyncio.to_thread(run_cli, "broadcast", "cancel", "S1", env=cli_env(path))
            assert cancelled.returncode == 0, cancelled.stderr
            at_cancel = len(firings(path))
            await asyncio.sleep(2.5 * EVERY)
            await until(lambda: all_sent(path), 10, "the last firing delivered")
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


async def test_quarterly_summary_gives_each_locality_its_own(tmp_path: Path, calendar_quiet_content: Path):
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
        service = await spawn(tmp_path, fake, log, content=calendar_quiet_content)
        try:
            sent = await asyncio.to_thread(run_cli, "summary", "quarter", "--send", "--yes",
                                           env={**cli_env(path, TELEGRAM_STAFF_CHAT_ID="-4000"),
                                                "CONTENT_DIR": str(calendar_quiet_content)})
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


# ---------------------------------------------------------------------- SIGKILL inside the firing's transaction

BIG = 30_000  # groups of one firing: its claim + outbox transaction stays open long enough to be caught
BIG_EVERY = 5
BIG_CRON = f"*/{BIG_EVERY} * * * * *"


def write_lock_held(path: Path) -> bool:
    """True while another connection holds the database's write lock (a transaction is open);
    probed with BEGIN IMMEDIATE, no wait, let go at once."""
    con = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        return True
    finally:
        con.close()


def committed_firings(path: Path) -> int:
    with sqlite3.connect(path, timeout=5) as con:
        return con.execute("SELECT COUNT(*) FROM series_firings").fetchone()[0]


def kill_inside_a_firing(pid: int, path: Path, timeout: float, let_commit: int) -> int:
    """Let `let_commit` firings commit, then watch from outside until the service holds the write lock
    for 50 ms on end while no new firing is committed — the big firing's transaction, open — and
    SIGKILL it; the committed count then."""
    deadline = time.monotonic() + timeout
    armed_at = committed_firings(path) + let_commit
    before = committed_firings(path)
    held_since: float | None = None
    while time.monotonic() < deadline:
        if before < armed_at:
            before = committed_firings(path)
        elif write_lock_held(path):
            held_since = held_since or time.monotonic()
            if time.monotonic() - held_since >= 0.05 and committed_firings(path) == before:
                os.kill(pid, signal.SIGKILL)
                return before
        else:
            held_since = None
            before = committed_firings(path)
        time.sleep(0.003)
    raise TimeoutError("no firing transaction seen")


def invariants(path: Path, tz: ZoneInfo) -> list[tuple[float, int]]:
    """What must hold after any kill: each firing queued every group exactly once in its own
    broadcast(s), no broadcast of the series outside a firing, and every run between the first and
    the last firing either fired or was coalesced into the next firing (`missed`)."""
    from bot.broadcasts.recurrence import parse_repeat, upcoming

    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT run_at, missed, broadcasts, recipients FROM series_firings WHERE series = 1"
                           " ORDER BY run_at").fetchall()
        listed = [b for _, _, ids, _ in rows for b in json.loads(ids)]
        made = [r[0] for r in con.execute("SELECT id FROM broadcasts WHERE created_by = 'series:1'")]
        per_chat = Counter(n for (n,) in con.execute(
            "SELECT COUNT(*) FROM outbox o JOIN broadcasts b ON b.id = o.broadcast"
            " WHERE b.created_by = 'series:1' GROUP BY o.chat"))
        per_broadcast = dict(con.execute("SELECT broadcast, COUNT(*) FROM outbox GROUP BY broadcast").fetchall())
    assert sorted(listed) == sorted(made), "a broadcast of the series outside its firing (claim and queue apart)"
    for run_at, _, ids, recipients in rows:
        assert recipients == BIG and sum(per_broadcast.get(b, 0) for b in json.loads(ids)) == BIG, \
            f"the firing of {run_at} holds {recipients} recipients (claimed without its broadcasts)"
    if rows:
        assert per_chat == Counter({len(rows): BIG}), "a group queued twice or not at all for a run"
    trigger = parse_repeat(BIG_CRON, tz)
    for (previous, _, _, _), (run, missed, _, _) in itertools.pairwise(rows):
        between = upcoming(trigger, previous, tz, count=missed + 2)
        assert between[missed] == run, f"runs between {previous} and {run} neither fired nor made up"
    return [(r[0], r[1]) for r in rows]


async def test_sigkill_inside_the_firing_transaction_never_doubles_nor_loses_a_run(tmp_path: Path):
    path = tmp_path / "bot.sqlite3"
    db = await open_database(path)
    # on Zalo, which this service does not run: the outbox rows stay pending, nothing is sent
    await register_groups(db, [GroupRecord("zalo", f"g{i}", "phan-rang", None) for i in range(BIG)])
    await db.close()
    made = await asyncio.to_thread(run_cli, "broadcast", "send", "--to", "groups", "--text", "Nhắc định kỳ",
                                   "--repeat", BIG_CRON, "--yes", "--json", env=cli_env(path))
    assert made.returncode == 0, made.stderr
    log = tmp_path / "service.log"
    inside = 0
    async with FakeTelegram(token=TOKEN) as fake:
        for round_ in range(3):  # killed in its first firing (the make-up at start), its second, its third
            service = await spawn(tmp_path, fake, log)
            try:
                at_kill = await asyncio.to_thread(kill_inside_a_firing, service.pid, path, 60, round_)
            finally:
                if service.returncode is None:
                    service.send_signal(signal.SIGKILL)
                await service.wait()
            assert service.returncode == -signal.SIGKILL
            after = invariants(path, TZ)  # as the kill left it (SQLite drops the open transaction)
            inside += len(after) == at_kill  # the firing being written is not there: killed inside it
        service = await spawn(tmp_path, fake, log)
        try:
            await until(lambda: committed_firings(path) >= len(after) + 2, 60, "the make-up and a run")
        finally:
            service.send_signal(signal.SIGTERM)
            await asyncio.wait_for(service.wait(), 30)
    final = invariants(path, TZ)
    assert inside == 3, f"only {inside} of 3 kills landed inside a firing's transaction"
    assert len(final) >= 1 + 2 + 2  # committed before the second and third kills, then the make-up and a run
    assert sum(1 for _, missed in final if missed) <= 4  # one make-up a restart at most
