"""Crash in the middle of a broadcast: a real `python -m bot run` killed with SIGKILL, restarted.

The service talks to the fake Bot API server over HTTP (TELEGRAM_API_URL), with limits slow
enough that the kill lands mid-broadcast. Checked against the fake's record: nothing lost, and the
only chats that got a second copy are those whose send was in flight at the kill (the fake got it,
the outbox had not recorded it yet).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bot.audiences.localities import load_localities
from bot.broadcasts.store import Broadcasts, Target
from bot.store.db import open_database
from tests.conftest import CONTENT, ROOT
from tests.crashes import MARKER, all_sent, copies, outbox_states
from tests.fakes.telegram import FakeTelegram
from tests.polling import until
from tests.unit.broadcasts.test_broadcasts import add_chat

TOKEN = "515151:CrashTest_secret-Value"
RESIDENTS = 200
RATE = 40  # per second: 200 recipients take about 5 s


async def spawn(tmp_path: Path, fake: FakeTelegram, log: Path,
                content: Path = CONTENT) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_", "DATABASE_URL",
                                                                     "CONTENT_DIR", "WEBHOOK_", "HTTP_"))}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{tmp_path / 'bot.sqlite3'}", CONTENT_DIR=str(content),
               TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=fake.url, TELEGRAM_RATE_PER_SECOND=str(RATE),
               LOG_LEVEL="INFO")
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
                                                    stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out)


async def test_sigkill_mid_broadcast_then_restart_loses_nothing_repeats_only_in_flight(tmp_path: Path):
    path = tmp_path / "bot.sqlite3"
    db = await open_database(path)
    for i in range(RESIDENTS):
        await add_chat(db, str(60_000 + i), "private", "phan-rang")
    tree, _ = load_localities(CONTENT)
    await Broadcasts(db, tree).create(MARKER, Target("residents"))
    await db.close()
    recipients = {str(60_000 + i) for i in range(RESIDENTS)}
    log = tmp_path / "service.log"

    async with FakeTelegram(token=TOKEN, limits=(RATE, 20, 1)) as fake:
        first = await spawn(tmp_path, fake, log)
        try:
            await until(lambda: len(copies(fake)) >= 60, 30, "the broadcast to be well under way")
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        assert first.returncode == -signal.SIGKILL
        await asyncio.sleep(0.3)  # requests already on the wire reach the fake
        at_kill = copies(fake)
        state = outbox_states(path)
        recorded = {c for c, s in state.items() if s == "sent"}
        in_flight = {c for c in at_kill if state[c] == "pending"}  # delivered, not yet recorded
        assert 60 <= len(at_kill) < RESIDENTS, "the kill did not land mid-broadcast"
        assert recorded <= set(at_kill)

        second = await spawn(tmp_path, fake, log)
        try:
            await until(lambda: all_sent(path), 30, "the restarted service to finish")
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.wait(), 15)
        assert second.returncode == 0
        total = copies(fake)

    assert set(total) == recipients  # nothing lost
    repeated = {c for c, n in total.items() if n > 1}
    assert repeated <= in_flight, "a send recorded before the kill was repeated"
    assert max(total.values()) <= 2 and len(repeated) <= 16  # at most the worker's concurrency
    assert fake.limit_breaches == 0
    print(f"at kill: {len(at_kill)} delivered, {len(recorded)} recorded, {len(in_flight)} in flight;"
          f" repeated after restart: {len(repeated)}")
    text = log.read_text(encoding="utf-8", errors="replace")
    assert TOKEN.split(":", 1)[1] not in text
