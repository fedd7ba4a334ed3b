"""The service's one scheduler (bot/kernel/jobs.py) on the real AsyncIOScheduler: a job registered
with `every` runs as the scheduler starts and again after its interval, one that raises is logged
and runs again without stopping the others, `daily` is in local time, stop ends every job."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.kernel.jobs import Jobs

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


async def test_every_runs_at_start_then_again_a_failure_is_logged_and_stop_ends_them(caplog):
    jobs = Jobs(TZ)
    ran: list[str] = []

    async def work() -> None:
        ran.append("work")

    async def broken() -> None:
        ran.append("broken")
        raise RuntimeError("disk full")

    jobs.every("work", 0.3, work)
    jobs.every("broken", 0.3, broken)
    jobs.every("later", 60, work, at_start=False)
    caplog.set_level(logging.ERROR, "bot.kernel.jobs")
    await jobs.start()
    try:
        for _ in range(100):  # at start (no wait for the interval), then once more 0.3 s later
            if ran.count("work") >= 2 and ran.count("broken") >= 2:
                break
            await asyncio.sleep(0.02)
        assert ran.count("work") >= 2 and ran.count("broken") >= 2
        assert "job broken failed; it runs again at its next time" in caplog.text and "disk full" in caplog.text
        later = jobs.job("later")
        assert later is not None and later.next_run_time > datetime.now(TZ) + timedelta(seconds=50)
    finally:
        await jobs.stop()
    assert not jobs.scheduler.running
    stopped = len(ran)
    await asyncio.sleep(0.4)
    assert len(ran) == stopped


async def test_daily_is_at_local_time_and_run_calls_the_work_now():
    jobs = Jobs(TZ)
    ran: list[int] = []

    async def work() -> None:
        ran.append(1)

    jobs.daily("nightly", "02:30", work)
    assert jobs.next_after("nightly", datetime(2026, 3, 1, 1, 0, tzinfo=TZ)) == datetime(2026, 3, 1, 2, 30, tzinfo=TZ)
    assert jobs.next_after("nightly", datetime(2026, 3, 1, 2, 30, 1, tzinfo=TZ)) == datetime(2026, 3, 2, 2, 30,
                                                                                           tzinfo=TZ)
    assert jobs.next_after("nightly", datetime(2026, 12, 31, 23, 0, tzinfo=TZ)) == datetime(2027, 1, 1, 2, 30,
                                                                                          tzinfo=TZ)
    # 02:30 in Hanoi is 19:30 UTC the day before, whatever zone the machine is in
    assert jobs.next_after("nightly", datetime(2026, 3, 1, 12, 0, tzinfo=ZoneInfo("UTC"))) == datetime(
        2026, 3, 2, 2, 30, tzinfo=TZ)
    job = jobs.job("nightly")
    assert job is not None and job.coalesce and job.max_instances == 1 and job.misfire_grace_time is None
    assert await jobs.run("nightly") and ran == [1]
