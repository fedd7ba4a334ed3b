"""The service's one APScheduler 3 `AsyncIOScheduler`, for its periodic work.

Built in the composition root (bot/app/wiring.py), started after every other service and stopped
before them (bot/app/service.py). Recurring series add their cron jobs to it (broadcasts.scheduling);
the rest is registered here by name: `every(name, seconds, func)` (first run as the scheduler starts,
as the loops it replaced did) and `daily(name, "HH:MM", func)` (local time, TIMEZONE).

Every job is coalesced, one instance at a time, and never dropped for being late
(`misfire_grace_time=None`: a machine that slept runs it once when it wakes). A job that raises is
logged with its name and runs again at its next time; it never stops the scheduler or the service.
As long as one job is frequent (the series sync, every 15 s) the scheduler re-reads the wall clock
at least that often, so a clock jump or a suspend delays a daily job by seconds, not hours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.kernel import tasks

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[object]]


def parse_hhmm(at: str) -> tuple[int, int]:
    hours, minutes = (int(part) for part in at.split(":"))
    return hours, minutes


class Jobs:
    def __init__(self, tz: ZoneInfo, clock: Callable[[], datetime] | None = None) -> None:
        self.tz = tz
        self.scheduler = AsyncIOScheduler(timezone=tz)
        self._clock = clock or (lambda: datetime.now(tz))
        self._work: dict[str, Work] = {}
        self._what: dict[str, str] = {}  # a job's words for the start-up line ("into /backups, keeping 7")
        self._running: set[asyncio.Task[object]] = set()  # jobs of ours under way (stop waits for them)

    def every(self, name: str, seconds: float, func: Work, *, at_start: bool = True, what: str = "") -> Job:
        """`func` every `seconds`, the first time as the scheduler starts (or after `seconds`)."""
        return self._add(name, IntervalTrigger(seconds=seconds, timezone=self.tz), func, what,
                         first=self._clock() if at_start else None)

    def daily(self, name: str, at: str, func: Work, *, what: str = "") -> Job:
        """`func` each day at `at` (HH:MM, local time)."""
        hours, minutes = parse_hhmm(at)
        return self._add(name, CronTrigger(hour=hours, minute=minutes, timezone=self.tz), func, what)

    def _add(self, name: str, trigger: BaseTrigger, func: Work, what: str, first: datetime | None = None) -> Job:
        async def guarded() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                await self.run(name)
            finally:
                self._running.discard(task)  # type: ignore[arg-type]

        self._work[name], self._what[name] = func, what
        extra = {"next_run_time": first} if first is not None else {}
        return self.scheduler.add_job(guarded, trigger, id=name, name=name, coalesce=True, max_instances=1,
                                      misfire_grace_time=None, replace_existing=True, **extra)

    async def run(self, name: str) -> bool:
        """Run job `name` now, as the scheduler does (a failure is logged, not raised); True if it worked."""
        try:
            await self._work[name]()
        except Exception:
            log.exception("job %s failed; it runs again at its next time", name)
            return False
        return True

    def job(self, name: str) -> Job | None:
        return self.scheduler.get_job(name)

    def next_after(self, name: str, now: datetime) -> datetime | None:
        """When job `name` would run next, strictly after `now` (what its trigger says; for checks and tests)."""
        job = self.scheduler.get_job(name)
        return None if job is None else job.trigger.get_next_fire_time(None, now + timedelta(microseconds=1))

    async def start(self) -> None:
        if not self.scheduler.running:
            self.scheduler.start()
            log.info("scheduler started, %d jobs; %s", len(self.scheduler.get_jobs()),
                     "; ".join(self._describe(name) for name in sorted(self._work)) or "no periodic work")

    def _describe(self, name: str) -> str:
        job = self.scheduler.get_job(name)
        what = f" ({self._what[name]})" if self._what[name] else ""
        when = f" next {job.next_run_time:%d/%m/%Y %H:%M}" if job is not None and job.next_run_time else ""
        return f"{name}{what}{when}"

    async def stop(self) -> None:
        """No job starts after this; one of ours under way is cancelled and waited for (as the loops
        it replaced were), so nothing writes after the database closes."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn
        for task in list(self._running):
            await tasks.cancel(task)
