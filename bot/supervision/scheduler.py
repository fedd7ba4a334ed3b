"""The reminder timer: one loop over the `supervision_reminders` table, escalations and nudges.

Not APScheduler jobs: the schedule *is* the table (one row per plan and offset, with its fire
time), so there is nothing to rebuild in memory: start-up recomputes pending fire times from the
plans (settings may have changed) and the loop sleeps until the earliest pending one (at most
`max_sleep`, so plans added by the CLI in another process are seen within a second). Clock and
sleep are injectable, and `tick()` is one deterministic round, which is how the tests drive days
in milliseconds. A reminder whose time passed while the service was down is sent once when it
comes back if the deadline is still ahead (only the latest missed one of a plan), otherwise it is
folded into the escalation. Escalations and nudges are checked every `housekeeping_every` seconds.
Everything goes out through `bot.broadcasts.outbox` (see `Outgoing`), in the transaction that
records it as sent; `notify` wakes the delivery worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import aiosqlite

from bot.broadcasts.outbox import Queued
from bot.kernel import tasks
from bot.kernel.wakeup import Wakeup
from bot.supervision.model import LATE_GRACE, MAX_LIST, PREFIX, Plan, period_label
from bot.supervision.outgoing import Outgoing
from bot.supervision.plans import Plans
from bot.supervision.schedule import SupervisionConfig, local_text, period_bounds
from bot.supervision.texts import Texts

log = logging.getLogger("bot.supervision.service")


class Scheduler:
    def __init__(self, plans: Plans, outgoing: Outgoing, texts: Texts, wake: Wakeup, *,
                 notify: Callable[[], None], clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]], max_sleep: float, housekeeping_every: float,
                 batch: int) -> None:
        self.plans = plans
        self.outgoing = outgoing
        self.texts = texts
        self.say = texts.say
        self.tz = plans.tz
        self.config: SupervisionConfig = plans.config
        self.notify = notify
        self.clock = clock
        self.sleep = sleep
        self.max_sleep = max_sleep
        self.housekeeping_every = housekeeping_every
        self.batch = batch
        self.next_housekeeping = 0.0
        self._wake = wake
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="supervision")
            log.info("supervision scheduler started (%d tracked localities)", len(self.plans.tracked))

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.cancel(task)

    async def run(self) -> None:
        while True:
            try:
                delay = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("supervision tick failed; retrying in %ss", self.max_sleep)
                delay = self.max_sleep
            self._wake.clear()
            sleeper = asyncio.ensure_future(self.sleep(delay))
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait([sleeper, waker], return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()

    async def tick(self) -> float:
        """One round: due reminders, then (every `housekeeping_every`) escalations and nudges.

        Returns how long to sleep before the next round."""
        now = self.clock()
        queued = await self._fire_due(now)
        if now >= self.next_housekeeping:
            queued += await self._escalate(now)
            queued += await self._nudge(now)
            self.next_housekeeping = now + self.housekeeping_every
        if queued:
            self.notify()
        nxt = await self.plans.next_fire(now)
        wake = min(now + self.max_sleep, self.next_housekeeping, nxt if nxt is not None else float("inf"))
        return max(0.0, wake - self.clock())

    async def _fire_due(self, now: float) -> int:
        """Every reminder due by `now`, `batch` plans a transaction (a handful of statements each), so
        interactive answers, which write too, wait for one short transaction at most."""
        queued = 0
        while True:
            rows = await self.plans.due_reminders(now, self.batch * 4)
            if not rows:
                return queued
            by_plan: dict[int, list[aiosqlite.Row]] = {}
            for r in rows:
                by_plan.setdefault(r["plan"], []).append(r)
            plan_ids = list(by_plan)[: self.batch]
            async with self.plans.db.transaction() as tx:
                plans = await self.plans.load(tx, plan_ids)
                queued += await self._fire_batch(tx, [(plans[i], by_plan[i]) for i in plan_ids], now)
            await asyncio.sleep(0)  # let interactive answers take the write lock between batches
            if len(rows) < self.batch * 4 and len(by_plan) <= self.batch:
                return queued

    async def _fire_batch(self, tx: aiosqlite.Connection, batch: list[tuple[Plan, list[aiosqlite.Row]]],
                          now: float) -> int:
        """For each plan, send at most one reminder now (the latest due) and settle the others."""
        settle: list[tuple[str, float, int, str]] = []  # (state, now, plan, label)
        defer: list[tuple[float, int, str]] = []
        sends: list[tuple[Plan, str, bool]] = []
        quiet = self.config.quiet(datetime.fromtimestamp(now, self.tz))
        for plan, rows in batch:
            chosen = max(rows, key=lambda r: r["fire_at"])
            settle += [("skipped", now, plan.id, r["offset_label"]) for r in rows if r is not chosen]
            label = chosen["offset_label"]
            late = now - chosen["fire_at"] > LATE_GRACE
            if plan.status != "planned":
                settle.append(("skipped", now, plan.id, label))
            elif late and plan.due_at <= now:
                settle.append(("folded", now, plan.id, label))
                log.info("supervision plan %d: reminder %s missed and deadline passed: left to the escalation",
                         plan.id, label)
            elif quiet and label.endswith("d"):  # a day-level catch-up waits for the morning
                later = self.config.after_quiet(now, self.tz)
                if later >= plan.due_at:
                    settle.append(("folded", now, plan.id, label))
                else:
                    defer.append((later, plan.id, label))
            else:
                sends.append((plan, label, late))
        await self.plans.settle(tx, settle, defer)
        if not sends:
            return 0
        groups = await self.outgoing.groups_of(tx, [plan for plan, _, _ in sends])
        items = []
        for plan, label, _late in sends:
            options = [(self.say("sv_button_done"), f"{PREFIX}:done:{plan.id}"),
                       (self.say("sv_button_ext"), f"{PREFIX}:ext:{plan.id}")]
            items.append(Queued(self.texts.reminder_text(plan, now), groups[plan.id], f"sv:{plan.id}:{label}",
                                plan.locality, options))
        ids = await self.outgoing.queue(tx, items, now)
        await self.plans.mark_sent(tx, [(b, now, plan.id, label)
                                        for b, (plan, label, _) in zip(ids, sends, strict=True)])
        for b, (plan, label, late) in zip(ids, sends, strict=True):
            if b is None:
                log.warning("supervision plan %d: reminder %s has no group to go to (locality %s)", plan.id, label,
                            plan.locality)
            else:
                log.info("supervision plan %d: reminder %s%s queued for %d chats", plan.id, label,
                         " (caught up)" if late else "", len(groups[plan.id]))
        return sum(b is not None for b in ids)

    async def _escalate(self, now: float) -> int:
        """Overdue plans not done: to the staff chat the day they fall due, then every N days."""
        if self.config.quiet(datetime.fromtimestamp(now, self.tz)):
            return 0
        report: list[tuple[Plan, int]] = []
        for plan, last_round in await self.plans.overdue_rounds(now):
            k = self.config.escalation_round(plan.due_at, now, self.tz)
            if k is not None and (last_round is None or k > last_round):
                report.append((plan, k))
        if not report:
            return 0
        today = datetime.fromtimestamp(now, self.tz).date()
        lines = [self.say("sv_escalation_head", count=len(report))]
        for plan, _k in report[:MAX_LIST]:
            days = (today - datetime.fromtimestamp(plan.due_at, self.tz).date()).days
            lines.append(self.say("sv_escalation_item", id=plan.id, title=plan.title,
                                  place=self.texts.place(plan.locality),
                                  due=local_text(plan.due_at, self.tz), days=days))
        if len(report) > MAX_LIST:
            lines.append(self.say("sv_more", n=len(report) - MAX_LIST))
        async with self.plans.db.transaction() as tx:
            broadcast = await self.outgoing.to_staff(tx, "\n".join(lines), f"sv:escalation:{int(now)}", now)
            await self.plans.record_escalations(tx, report, now, broadcast)
        log.info("supervision: %d overdue plans escalated to staff", len(report))
        return 1 if broadcast else 0

    async def _nudge(self, now: float) -> int:
        """Localities below their requirement get a nudge when N weeks of the period are left."""
        if self.config.quiet(datetime.fromtimestamp(now, self.tz)) or not self.config.nudge_weeks_left:
            return 0
        period = self.config.period_of(now, self.tz)
        start, end = period_bounds(period, self.tz)
        end_day = datetime.fromtimestamp(end, self.tz).date()
        passed = [w for w in self.config.nudge_weeks_left
                  if start <= self.config.morning_of(end_day - timedelta(weeks=w), self.tz) <= now < end]
        if not passed:
            return 0
        weeks = min(passed)
        if await self.plans.nudged(period, weeks):
            return 0
        table = await self.plans.table(period, now=now)
        behind = [row for row in table["localities"] if row["done"] < row["required"]]
        queued = 0
        last_day = (end_day - timedelta(days=1)).strftime("%d/%m/%Y")
        async with self.plans.db.transaction() as tx:
            rows: list[tuple[str, str, int, float, int | None]] = []
            for row in behind:
                place = Plan(0, row["code"], "", None, "", period, end, "", None, "planned", None, None, None)
                chats = await self.outgoing.groups(tx, place)
                text = self.say("sv_nudge", place=self.texts.tree.full_name(row["code"]), done=row["done"],
                                required=row["required"], period=period_label(period), weeks=weeks, end=last_day)
                item = Queued(text, chats, f"sv:nudge:{period}:{weeks}", row["code"])
                broadcast = await self.outgoing.queue_one(tx, item, now)
                queued += broadcast is not None
                rows.append((row["code"], period, weeks, now, broadcast))
            rows.append(("*", period, weeks, now, None))
            await self.plans.record_nudges(tx, rows)
        log.info("supervision: nudge %s, %d weeks left: %d localities behind, %d with groups", period, weeks,
                 len(behind), queued)
        return queued

