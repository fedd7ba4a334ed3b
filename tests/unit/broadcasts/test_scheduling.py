"""The APScheduler side on a real SQLite file and the real AsyncIOScheduler: jobs rebuilt from the
table at start, a missed run made up once at start, series made and ended while it runs."""

import asyncio
import time
from zoneinfo import ZoneInfo

from bot.audiences.localities import load_localities
from bot.broadcasts.scheduling import SeriesScheduler
from bot.broadcasts.series import SeriesStore
from bot.broadcasts.store import Broadcasts, Target
from bot.store.db import Database
from tests.conftest import CONTENT
from tests.unit.broadcasts.test_broadcasts import add_chat

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


async def wait_for(check, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_scheduler_fires_rebuilds_makes_up_once_and_stops_at_cancel(db: Database):
    tree, _ = load_localities(CONTENT)
    store = SeriesStore(db, Broadcasts(db, tree), tree, TZ)
    await add_chat(db, "-1", "group", "phan-rang")
    await add_chat(db, "-2", "group", "thuan-nam")
    # a series whose runs passed while "the service was down": made up once, at start
    missed = await store.create("Tin bị lỡ", Target("groups"), "0 8 * * *")
    await db.write("UPDATE series SET created_at = created_at - 3 * 86400, next_run_at = created_at - 2 * 86400"
                   " WHERE id = ?", (missed,))
    every = await store.create("Mỗi giây", Target("groups"), "* * * * * *")
    woken = []
    scheduler = SeriesScheduler(store, lambda: woken.append(1), sync_every=0.2)
    await scheduler.start()
    try:
        assert scheduler.scheduler is not None
        jobs = {j.id for j in scheduler.scheduler.get_jobs()}
        assert {scheduler.job_of(missed), scheduler.job_of(every)} <= jobs and None not in jobs
        [made_up] = await store.firings(missed)
        assert made_up["missed"] >= 1 and made_up["recipients"] == 2
        await wait_for(lambda: _count(store, every, 2))
        later = await store.create("Tạo khi đang chạy", Target("groups"), "* * * * * *")  # as the CLI would
        await wait_for(lambda: _count(store, later, 1))
        assert await store.cancel(every)
        await asyncio.sleep(0.4)  # the sync removes its job
        stopped = await store.firing_count(every)
        await asyncio.sleep(1.5)
        assert await store.firing_count(every) == stopped
        assert scheduler.job_of(every) is None and scheduler.job_of(later) in {
            j.id for j in scheduler.scheduler.get_jobs()}  # the schedule it shared with `every` stays
    finally:
        await scheduler.stop()
    assert woken
    runs = [f["run_at"] for f in await store.firings(later)]
    assert len(runs) == len(set(runs))  # the job and the sync never fired a run twice
    outbox = await db.fetchval("SELECT COUNT(*) FROM outbox")
    total = 0
    for series in (missed, every, later):
        total += sum(f["recipients"] for f in await store.firings(series))
    assert outbox == total


async def _count(store: SeriesStore, series: int, n: int) -> bool:
    return await store.firing_count(series) >= n
