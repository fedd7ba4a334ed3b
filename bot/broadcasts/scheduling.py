"""The running side of recurring series: an APScheduler 3 `AsyncIOScheduler` with one cron job for
each distinct schedule (`repeat`) of the active series, rebuilt from the `series` table at start and
kept in step with it. A job fires every series sharing its schedule: 10,000 series mostly share a
few schedules ("Monday 08:00"), and a job costs APScheduler about 0.3 ms to build and schedule.

The table is the truth; APScheduler only says when. At start (and every `sync_every` seconds, which
is how a series made or cancelled from the CLI reaches the running service) the jobs are made to
match the active series, and every series whose `next_run_at` has passed — a run missed while the
service was down — is fired once (`SeriesStore.fire` coalesces and refuses a run fired before).

In the service the scheduler is the one `bot.kernel.jobs.Jobs` holds (built in the composition root,
started after this adds its jobs, and shut down by it); without one (tests, bench) this owns its own.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.broadcasts.recurrence import RepeatError, parse_repeat
from bot.broadcasts.series import SeriesStore, Standing

log = logging.getLogger(__name__)

SYNC_JOB = "series-sync"


class SeriesScheduler:
    def __init__(self, series: SeriesStore, notify: Callable[[], None], *,
                 standing: Sequence[Standing] = (), sync_every: float = 15.0,
                 clock: Callable[[], float] = time.time, scheduler: AsyncIOScheduler | None = None) -> None:
        """`scheduler`: the service's shared one (started and stopped by its owner); None: own one."""
        self.series = series
        self.notify = notify  # the delivery worker: something was queued
        self.standing = list(standing)
        self.sync_every = sync_every
        self.clock = clock
        self.shared = scheduler
        self.scheduler: AsyncIOScheduler | None = None
        self._by_repeat: dict[str, set[int]] = {}  # schedule -> the active series it fires (one job each)

    async def start(self) -> None:
        if self.standing:
            added, changed, ended = await self.series.sync_standing(self.standing)
            log.info("content/schedules.yaml: %d series added, %d changed, %d ended", added, changed, ended)
        self.scheduler = self.shared or AsyncIOScheduler(timezone=self.series.tz)
        await self.rebuild()
        self.scheduler.add_job(self.sync, IntervalTrigger(seconds=self.sync_every), id=SYNC_JOB, coalesce=True,
                               max_instances=1, misfire_grace_time=None, replace_existing=True)
        if self.shared is None:
            self.scheduler.start()
        await self.catch_up()

    async def stop(self) -> None:
        if self.scheduler is not None:
            if self.shared is None:
                if self.scheduler.running:
                    self.scheduler.shutdown(wait=False)
            else:  # the shared scheduler goes on (or was shut down by its owner): take our jobs off it
                for job in [SYNC_JOB, *(f"repeat:{r}" for r in self._by_repeat)]:
                    with contextlib.suppress(JobLookupError):
                        self.scheduler.remove_job(job)
        self.scheduler = None
        self._by_repeat = {}

    async def rebuild(self) -> int:
        """One job for each schedule of the active series (added when new, removed when no series
        has it any more); the number of active series."""
        assert self.scheduler is not None
        wanted: dict[str, set[int]] = {}
        for series, repeat in await self.series.schedules():
            wanted.setdefault(repeat, set()).add(series)
        for repeat in wanted.keys() - self._by_repeat.keys():
            try:
                trigger = parse_repeat(repeat, self.series.tz)
            except RepeatError as exc:  # the table was edited by hand: say so, keep the others
                log.error("series %s: %s", sorted(wanted[repeat]), exc)
                continue
            self.scheduler.add_job(self.fire_all, trigger, args=[repeat], id=f"repeat:{repeat}", coalesce=True,
                                   max_instances=1, misfire_grace_time=None, replace_existing=True)
        for repeat in self._by_repeat.keys() - wanted.keys():
            self.scheduler.remove_job(f"repeat:{repeat}")
        self._by_repeat = wanted
        return sum(len(ids) for ids in wanted.values())

    def job_of(self, series: int) -> str | None:
        """The job that fires `series` (None: not scheduled)."""
        return next((f"repeat:{r}" for r, ids in self._by_repeat.items() if series in ids), None)

    async def fire_all(self, repeat: str) -> int:
        """Fire every series on this schedule (the job's run); how many fired."""
        fired = 0
        for series in sorted(self._by_repeat.get(repeat, ())):
            fired += await self.fire(series)
        return fired

    async def catch_up(self) -> int:
        """Fire, once each, the series whose next run has passed; how many fired."""
        fired = 0
        for series in await self.series.overdue(self.clock()):
            fired += await self.fire(series)
        return fired

    async def sync(self) -> None:
        try:
            await self.rebuild()
            await self.catch_up()
        except Exception:
            log.exception("series: sync with the table failed; trying again in %.0f s", self.sync_every)

    async def fire(self, series: int) -> bool:
        try:
            firing = await self.series.fire(series)
        except Exception:
            log.exception("series %d: firing failed; the run is tried again at the next sync", series)
            return False
        if firing is not None and firing.broadcasts:
            self.notify()
        return firing is not None
