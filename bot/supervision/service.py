"""Supervision deadlines (giám sát, phản biện): plans, reminders, completion, extension, escalation.

Plans come from the CLI (`supervision add/import`), from `content/supervision/*.yaml` (upserted
at start by their `id`) and are stored in SQLite (migration 003). Each locality must carry out
`required` activities per period (content/supervision/requirements.yaml; default 2 a quarter).

Everything this module sends (reminders to the groups, escalations and extension requests to
the staff chat, nudges) is written as a `broadcasts` row plus its outbox rows, in the same
transaction that records it as sent, and the one delivery worker sends it, paced and retried
like any broadcast. The buttons ride in `broadcasts.options` instead of "Đã nhận".

Scheduling: a single timer loop (`run`), not APScheduler jobs. The schedule *is* the table
`supervision_reminders` (one row per plan and offset, UNIQUE, with its fire time), so there is
nothing to rebuild in memory: start-up recomputes pending fire times from the plans (settings may
have changed) and the loop sleeps until the earliest pending one (at most `max_sleep`, so plans
added by the CLI in another process are seen within a second). Clock and sleep are injectable,
and `tick()` is one deterministic round, which is how the tests drive days in milliseconds.
A reminder whose time passed while the service was down is sent once when it comes back if the
deadline is still ahead (only the latest missed one of a plan), otherwise it is folded into the
escalation. Escalations and nudges are checked every `housekeeping_every` seconds.

Moving a due date (staff `edit` from the CLI or `/doihan`, an approved extension, a changed
content file) reschedules: every offset is recomputed from the new date; one whose new time is
still ahead is pending again even if it already went out for the old date ("7 days left" is true
again, of the new deadline); one whose new time has passed is not sent (no catch-up on an edit).
A reminder queued for the old date but not yet delivered to any chat is withdrawn (its text names
the old date) and replaced by one with the new date, at once if its new time has passed.
Escalations are recorded per (plan, due date), so the count starts again from the new date's day.

Group side (dialogue registries): the buttons `sv:done:<id>` "Đã hoàn thành" and `sv:ext:<id>`
"Xin gia hạn" (group admins or staff; others get a polite refusal), the command
`/baocao_gs <id> <kết quả>` (named so because `/baocao` is the broadcast report), and a reply
"đã hoàn thành …" to the bot in a group. Staff side: `sv:ok:<ext>` / `sv:no:<ext>` on extension
requests in the staff chat, and `/giamsat` (the per-locality table); `/themgiamsat` (a new plan,
step by step) and `/doihan` (a new due date) live in bot/supervision_chat.py.

For other channels (Zalo has no buttons): call

    replies = await supervision.complete_from_reply(channel, chat_id, text, user_id=..., display_name=...)

when a group writes "đã hoàn thành [#id] <kết quả>" to the bot. It returns None when the text is
not a completion report (handle it as usual), else the replies to send back to that group. The
plan is the one named by `#id`, else the one most recently reminded in that chat. It does not
check admin rights: the caller decides who may report (the dialogue's own group hook checks
admins, except on channels in `trusted_reply_channels`, default {"zalo"}, whose Bot API cannot
tell admins apart; a registered Zalo group is trusted).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.audiences.chats import Staff
from bot.audiences.localities import Localities
from bot.channels.base import Inbound, Reply
from bot.kernel import tasks
from bot.kernel.dates import find_local_date
from bot.kernel.messages import Messages
from bot.kernel.vietnamese import fold
from bot.store.db import Database
from bot.supervision.plans_io import MAX_TITLE, PlanInput
from bot.supervision.schedule import (
    ScheduleError,
    SupervisionConfig,
    check_period,
    local_text,
    offsets_text,
    parse_offsets,
    period_bounds,
)

log = logging.getLogger(__name__)

PREFIX = "sv"
LATE_GRACE = 120.0  # a reminder more than this behind its time was missed (the service was down)
AdminCheck = Callable[[Inbound], Awaitable[bool]]
_DONE = re.compile(r"^\W*(?:#(\d+)\s*)?(?:da\s*)?hoan\s*thanh\b(?:[\s:,.;\-–—]*#(\d+))?[\s:,.;\-–—]*", re.S)
MAX_RESULT = 500
MAX_LIST = 30


class SupervisionError(Exception):
    """A plan cannot be stored as asked; the message says why, in Vietnamese."""


@dataclass(frozen=True)
class Plan:
    id: int
    locality: str
    title: str
    subject: str | None
    kind: str
    period: str
    due_at: float
    remind: str
    chats: list[str] | None
    status: str
    done_at: float | None
    result: str | None
    key: str | None

    def as_json(self, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "id": self.id, "key": self.key, "locality": self.locality, "title": self.title,
            "subject": self.subject, "kind": self.kind, "period": self.period,
            "due": datetime.fromtimestamp(self.due_at, tz).isoformat(timespec="seconds"),
            "remind": self.remind, "chats": self.chats, "status": self.status,
            "done_at": datetime.fromtimestamp(self.done_at, tz).isoformat(timespec="seconds") if self.done_at else None,
            "result": self.result,
        }


def _plan(row: Any) -> Plan:
    return Plan(row["id"], row["locality"], row["title"], row["subject"], row["kind"], row["period"],
                row["due_at"], row["remind"], json.loads(row["chats"]) if row["chats"] else None, row["status"],
                row["done_at"], row["result"], row["key"])


class Supervision:
    def __init__(
        self,
        db: Database,
        tree: Localities,
        say: Messages,
        staff: Staff,
        tz: ZoneInfo,
        config: SupervisionConfig | None = None,
        *,
        staff_chat: tuple[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_sleep: float = 1.0,
        housekeeping_every: float = 30.0,
        batch: int = 25,
    ) -> None:
        self.db = db
        self.tree = tree
        self.say = say
        self.staff = staff
        self.tz = tz
        self.config = config or SupervisionConfig()
        self.staff_chat = staff_chat
        self.clock = clock
        self.sleep = sleep
        self.max_sleep = max_sleep
        self.housekeeping_every = housekeeping_every
        self.batch = batch
        self.notify: Callable[[], None] = lambda: None  # the app sets the delivery worker's wake-up
        self.is_admin: AdminCheck | None = None
        self.trusted_reply_channels: set[str] = {"zalo"}
        self.content_plans: list[PlanInput] = []
        self.chat: Any = None  # bot.supervision.staff_chat.SupervisionChat, set by build_supervision
        self._dialogue: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._next_housekeeping = 0.0
        self._resolved_column: bool | None = None
        self.tracked, self._tracked_of = self._tracked_localities()

    # ------------------------------------------------------------------ localities that owe activities

    def _tracked_localities(self) -> tuple[list[str], dict[str, str]]:
        depth = {item.code: len(self.tree.path(item.code)) - 1 for item in self.tree}
        level = self.config.level
        if level is None:
            level = 1 if any(d == 1 for d in depth.values()) else 0
        tracked = [item.code for item in self.tree if depth[item.code] == level]
        owner = {code: self.tree.path(code)[level].code for code, d in depth.items() if d >= level}
        return tracked, owner

    def place(self, code: str) -> str:
        item = self.tree.get(code)
        return item.name if item else code

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Upsert the content plans, recompute pending fire times, start the timer loop."""
        if self.content_plans:
            await self.upsert(self.content_plans, source="content")
        await self.rebuild()
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="supervision")
            log.info("supervision scheduler started (%d tracked localities)", len(self.tracked))

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

    def wake(self) -> None:
        self._wake.set()

    async def rebuild(self) -> int:
        """Recompute every pending reminder's fire time from its plan (the settings may have changed)."""
        rows = await self.db.fetchall(
            "SELECT r.plan, r.offset_label, r.fire_at, p.due_at FROM supervision_reminders r"
            " JOIN supervision_plans p ON p.id = r.plan WHERE r.state = 'pending'"
        )
        changed = []
        cache: dict[str, Any] = {}
        for r in rows:
            offset = cache.get(r["offset_label"])
            if offset is None:
                offset = cache[r["offset_label"]] = parse_offsets(r["offset_label"])[0]
            fire = self.config.fire_at(r["due_at"], offset, self.tz)
            if fire != r["fire_at"]:
                changed.append((fire, r["plan"], r["offset_label"]))
        if changed:
            await self.db.write_many(
                "UPDATE supervision_reminders SET fire_at = ? WHERE plan = ? AND offset_label = ?", changed
            )
        log.info("supervision: %d pending reminders, %d rescheduled", len(rows), len(changed))
        return len(rows)

    # ------------------------------------------------------------------ plans

    async def add(self, plan: PlanInput, *, created_by: str = "cli", source: str = "cli") -> int:
        """Store a new plan and its reminders; SupervisionError for an unknown locality or a past due."""
        now = self.clock()
        if plan.locality not in self.tree:
            raise SupervisionError(f"không có địa bàn '{plan.locality}'")
        if plan.status == "planned" and plan.due_at <= now:
            raise SupervisionError(f"thời hạn {local_text(plan.due_at, self.tz)} đã qua")
        async with self.db.transaction() as tx:
            plan_id = await self._insert(tx, plan, source, now)
        self.wake()
        log.info("supervision plan %d added by %s: %s, %s, due %s", plan_id, created_by, plan.locality,
                 plan.title[:60], local_text(plan.due_at, self.tz))
        return plan_id

    async def _insert(self, tx: Any, plan: PlanInput, source: str, now: float) -> int:
        period = plan.period or self.config.period_of(plan.due_at, self.tz)
        cursor = await tx.execute(
            "INSERT INTO supervision_plans (key, locality, title, subject, kind, period, due_at, remind, chats,"
            " status, done_at, result, done_by, source, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (plan.key, plan.locality, plan.title, plan.subject, plan.kind, period, plan.due_at, plan.remind,
             plan.chats_json(), plan.status, now if plan.status == "done" else None, plan.result,
             source if plan.status == "done" else None, source, now, now),
        )
        plan_id = int(cursor.lastrowid or 0)
        if plan.status == "planned":
            await self._schedule(tx, plan_id, plan.due_at, plan.remind, now)
        return plan_id

    async def _schedule(self, tx: Any, plan_id: int, due: float, remind: str, now: float) -> None:
        """(Re)write a plan's reminder rows for `due`: future ones pending, past ones skipped."""
        offsets = parse_offsets(remind)
        labels = [o.label for o in offsets]
        await tx.execute(
            "DELETE FROM supervision_reminders WHERE plan = ? AND +state = 'pending'"  # +: use the plan index
            f" AND offset_label NOT IN ({', '.join('?' for _ in labels)})", (plan_id, *labels),
        )
        rows = []
        for o in offsets:
            fire = self.config.fire_at(due, o, self.tz)
            pending = fire > now
            rows.append((plan_id, o.label, fire, "pending" if pending else "skipped", None if pending else now))
        await tx.executemany(
            "INSERT INTO supervision_reminders (plan, offset_label, fire_at, state, handled_at)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (plan, offset_label) DO UPDATE SET fire_at = excluded.fire_at,"
            " state = CASE WHEN excluded.state = 'pending' THEN 'pending'"
            "              WHEN supervision_reminders.state = 'pending' THEN 'skipped'"
            "              ELSE supervision_reminders.state END,"
            " broadcast = CASE WHEN excluded.state = 'pending' THEN NULL ELSE supervision_reminders.broadcast END,"
            " handled_at = CASE WHEN excluded.state = 'pending' THEN NULL ELSE supervision_reminders.handled_at END",
            rows,
        )

    async def upsert(self, plans: Iterable[PlanInput], *, source: str) -> tuple[int, int]:
        """Plans with a `key` (content files, import rows with an id): insert new, update changed.

        A plan a group already reported done stays done; a changed due date or offsets reschedules.
        Returns (added, updated).
        """
        now = self.clock()
        added = updated = 0
        async with self.db.transaction() as tx:
            for plan in plans:
                cursor = await tx.execute("SELECT * FROM supervision_plans WHERE key = ?", (plan.key,))
                row = await cursor.fetchone()
                if row is None:
                    await self._insert(tx, plan, source, now)
                    added += 1
                    continue
                period = plan.period or self.config.period_of(plan.due_at, self.tz)
                fields = (plan.locality, plan.title, plan.subject, plan.kind, period, plan.due_at, plan.remind,
                          plan.chats_json())
                current = (row["locality"], row["title"], row["subject"], row["kind"], row["period"], row["due_at"],
                           row["remind"], row["chats"])
                status = row["status"]
                if plan.status != "planned" and status == "planned":
                    status = plan.status
                if fields == current and status == row["status"]:
                    continue
                await tx.execute(
                    "UPDATE supervision_plans SET locality = ?, title = ?, subject = ?, kind = ?, period = ?,"
                    " due_at = ?, remind = ?, chats = ?, status = ?, updated_at = ?,"
                    " done_at = CASE WHEN ? = 'done' AND done_at IS NULL THEN ? ELSE done_at END,"
                    " result = COALESCE(result, ?) WHERE id = ?",
                    (*fields, status, now, status, now, plan.result, row["id"]),
                )
                if status != "planned":
                    await self._stop_reminders(tx, row["id"], now)
                elif (plan.due_at, plan.remind) != (row["due_at"], row["remind"]):
                    await self._reschedule(tx, row["id"], plan.due_at, plan.remind, now)
                updated += 1
        if added or updated:
            self.wake()
            log.info("supervision: %d plans added, %d updated from %s", added, updated, source)
        return added, updated

    async def get(self, plan_id: int) -> Plan | None:
        row = await self.db.fetchone("SELECT * FROM supervision_plans WHERE id = ?", (plan_id,))
        return _plan(row) if row else None

    async def plans(self, status: str | None = None) -> list[Plan]:
        if status:
            rows = await self.db.fetchall(
                "SELECT * FROM supervision_plans WHERE status = ? ORDER BY due_at, id", (status,))
        else:
            rows = await self.db.fetchall("SELECT * FROM supervision_plans ORDER BY due_at, id")
        return [_plan(r) for r in rows]

    async def group_count(self, locality: str) -> int:
        """The registered groups a plan of `locality` (without its own chat list) is reminded in."""
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM chats WHERE kind = 'group' AND active = 1 AND consent = 1 AND channel != 'console'"
            " AND locality IN (SELECT value FROM json_each(?))", (json.dumps(self.tree.subtree(locality)),)) or 0)

    async def reminders(self, plan_id: int) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT offset_label, fire_at, state, broadcast FROM supervision_reminders WHERE plan = ?"
            " ORDER BY fire_at", (plan_id,))
        return [dict(r) for r in rows]

    # ------------------------------------------------------------------ completion, cancel, extension

    async def complete(self, plan_id: int, result: str, by: str) -> str:
        """"done", or why not: "missing", "already", "cancelled". Pending reminders stop at once."""
        now = self.clock()
        result = " ".join(result.split())[:MAX_RESULT]
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE supervision_plans SET status = 'done', done_at = ?, result = ?, done_by = ?, updated_at = ?"
                " WHERE id = ? AND status = 'planned'", (now, result, by, now, plan_id),
            )
            if cursor.rowcount != 1:
                cursor = await tx.execute("SELECT status FROM supervision_plans WHERE id = ?", (plan_id,))
                row = await cursor.fetchone()
                return "missing" if row is None else ("already" if row[0] == "done" else "cancelled")
            await self._stop_reminders(tx, plan_id, now)
            cursor = await tx.execute("SELECT * FROM supervision_plans WHERE id = ?", (plan_id,))
            plan = _plan(await cursor.fetchone())
            await self._to_staff(tx, self.say("sv_staff_done", id=plan.id, title=plan.title,
                                              place=self.tree.full_name(plan.locality), result=result, who=by),
                                 f"sv:{plan_id}:done", now)
        self.notify()
        log.info("supervision plan %d done by %s: %s", plan_id, by, result[:80])
        return "done"

    async def cancel(self, plan_id: int) -> bool:
        now = self.clock()
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE supervision_plans SET status = 'cancelled', updated_at = ? WHERE id = ? AND status = 'planned'",
                (now, plan_id))
            if cursor.rowcount != 1:
                return False
            await self._stop_reminders(tx, plan_id, now)
        log.info("supervision plan %d cancelled", plan_id)
        return True

    async def _stop_reminders(self, tx: Any, plan_id: int, now: float) -> None:
        """No reminder of this plan goes out any more, including those queued but not yet sent."""
        await tx.execute("UPDATE supervision_reminders SET state = 'skipped', handled_at = ?"
                         " WHERE plan = ? AND +state = 'pending'", (now, plan_id))
        ids = "SELECT broadcast FROM supervision_reminders WHERE plan = ? AND broadcast IS NOT NULL"
        await tx.execute(f"UPDATE broadcasts SET status = 'cancelled', finished_at = ? WHERE id IN ({ids})"
                         " AND status IN ('queued', 'sending')", (now, plan_id))
        await tx.execute(f"UPDATE outbox SET status = 'failed', reason = 'cancelled' WHERE broadcast IN ({ids})"
                         " AND status = 'pending'", (plan_id,))

    async def request_extension(self, plan_id: int, inbound: Inbound, reason: str, new_due: float) -> int | None:
        """Record the request and post it to the staff chat with approve/refuse buttons; None: not planned."""
        now = self.clock()
        async with self.db.transaction() as tx:
            cursor = await tx.execute("SELECT * FROM supervision_plans WHERE id = ? AND status = 'planned'",
                                      (plan_id,))
            row = await cursor.fetchone()
            if row is None:
                return None
            plan = _plan(row)
            cursor = await tx.execute(
                "INSERT INTO supervision_extensions (plan, channel, chat_id, user_id, display_name, reason, old_due,"
                " new_due, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (plan_id, inbound.channel, inbound.chat_id, inbound.user_id, inbound.display_name or None, reason,
                 plan.due_at, new_due, now),
            )
            ext = int(cursor.lastrowid or 0)
            text = self.say("sv_staff_ext", ext=ext, id=plan.id, title=plan.title,
                            place=self.tree.full_name(plan.locality), group=inbound.chat_title or inbound.chat_id,
                            who=inbound.display_name or inbound.user_id, old_due=local_text(plan.due_at, self.tz),
                            new_due=local_text(new_due, self.tz), reason=reason)
            options = [(self.say("sv_button_approve"), f"{PREFIX}:ok:{ext}"),
                       (self.say("sv_button_refuse"), f"{PREFIX}:no:{ext}")]
            await self._to_staff(tx, text, f"sv:{plan_id}:ext:{ext}", now, options)
        self.notify()
        log.info("supervision plan %d: extension %d asked from %s %s to %s", plan_id, ext, inbound.channel,
                 inbound.chat_id, local_text(new_due, self.tz))
        return ext

    async def decide_extension(self, ext: int, approve: bool, by: str) -> tuple[str, Plan | None]:
        """("approved" | "refused" | "already" | "missing", the plan). Approval moves the due date."""
        now = self.clock()
        async with self.db.transaction() as tx:
            cursor = await tx.execute("SELECT * FROM supervision_extensions WHERE id = ?", (ext,))
            row = await cursor.fetchone()
            if row is None:
                return "missing", None
            cursor = await tx.execute("SELECT * FROM supervision_plans WHERE id = ?", (row["plan"],))
            plan = _plan(await cursor.fetchone())
            if row["status"] != "pending":
                return "already", plan
            status = "approved" if approve and plan.status == "planned" else "refused"
            await tx.execute("UPDATE supervision_extensions SET status = ?, decided_by = ?, decided_at = ?"
                             " WHERE id = ?", (status, by, now, ext))
            if status == "approved":
                await tx.execute("UPDATE supervision_plans SET due_at = ?, updated_at = ? WHERE id = ?",
                                 (row["new_due"], now, plan.id))
                await self._reschedule(tx, plan.id, row["new_due"], plan.remind, now)
                cursor = await tx.execute("SELECT * FROM supervision_plans WHERE id = ?", (plan.id,))
                plan = _plan(await cursor.fetchone())
            key = "sv_ext_approved" if status == "approved" else "sv_ext_refused"
            chat = await self._chat_row(tx, row["channel"], row["chat_id"])
            await self._queue(tx, self.say(key, id=plan.id, title=plan.title, due=local_text(plan.due_at, self.tz)),
                              [chat], f"sv:{plan.id}:ext:{ext}:{status}", plan.locality, now)
        self.wake()
        self.notify()
        log.info("supervision extension %d %s by %s", ext, status, by)
        return status, plan

    async def edit(self, plan_id: int, *, due: float | None = None, title: str | None = None,
                   remind: str | None = None, period: str | None = None, by: str = "cli") -> tuple[str, Plan | None]:
        """Staff edit (CLI `supervision edit`, chat `/doihan`): ("edited" | "missing" | "done" | "cancelled" |
        "past", the plan as it is now). ScheduleError for a bad title, offsets or period.

        A new due date or offset list reschedules (see `_reschedule`); escalations are counted per
        (plan, due date), so a new due date starts them again from the day it falls due.
        """
        if title is not None:
            title = " ".join(title.split())
            if not title or len(title) > MAX_TITLE:
                raise ScheduleError(f"tên kế hoạch phải có chữ và không quá {MAX_TITLE} ký tự")
        if remind is not None:
            remind = offsets_text(parse_offsets(remind))
        if period is not None:
            period = check_period(period)
        now = self.clock()
        async with self.db.transaction() as tx:
            cursor = await tx.execute("SELECT * FROM supervision_plans WHERE id = ?", (plan_id,))
            row = await cursor.fetchone()
            if row is None:
                return "missing", None
            plan = _plan(row)
            if plan.status != "planned":
                return plan.status, plan
            if due is not None and due <= now:
                return "past", plan
            new_due = plan.due_at if due is None else due
            new_remind = remind or plan.remind
            await tx.execute(
                "UPDATE supervision_plans SET due_at = ?, remind = ?, title = ?, period = ?, updated_at = ?"
                " WHERE id = ?",
                (new_due, new_remind, title or plan.title, period or plan.period, now, plan_id))
            if (new_due, new_remind) != (plan.due_at, plan.remind):
                await self._reschedule(tx, plan_id, new_due, new_remind, now)
            cursor = await tx.execute("SELECT * FROM supervision_plans WHERE id = ?", (plan_id,))
            edited = _plan(await cursor.fetchone())
        self.wake()
        self.notify()
        log.info("supervision plan %d edited by %s: due %s -> %s, remind %s -> %s%s", plan_id, by,
                 local_text(plan.due_at, self.tz), local_text(edited.due_at, self.tz), plan.remind, edited.remind,
                 ", title changed" if edited.title != plan.title else "")
        return "edited", edited

    async def _reschedule(self, tx: Any, plan_id: int, due: float, remind: str, now: float) -> None:
        """A plan's due date or offsets changed: `_schedule` anew, and replace what names the old date.

        Every offset is recomputed from the new date: one whose new time is ahead is pending again,
        even if it went out for the old date ("7 days left" is true again, of the new deadline); one
        whose new time has passed is not sent (no catch-up on an edit) and stays `sent` or becomes
        `skipped`. A reminder queued for the old date but not delivered to any chat yet is withdrawn
        (its text names the old date) and replaced: at its new time if that is ahead, else at once.
        """
        cursor = await tx.execute(
            "SELECT r.broadcast, r.offset_label FROM supervision_reminders r WHERE r.plan = ? AND r.state = 'sent'"
            " AND r.broadcast IS NOT NULL AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.broadcast = r.broadcast"
            " AND o.status != 'pending')", (plan_id,))
        withdrawn = {r[0]: r[1] for r in await cursor.fetchall()}
        if withdrawn:
            marks = ", ".join("?" for _ in withdrawn)
            await tx.execute(f"UPDATE supervision_reminders SET state = 'skipped', handled_at = ? WHERE plan = ?"
                             f" AND broadcast IN ({marks})", (now, plan_id, *withdrawn))
            await tx.execute(f"UPDATE broadcasts SET status = 'cancelled', finished_at = ? WHERE id IN ({marks})"
                             " AND status IN ('queued', 'sending')", (now, *withdrawn))
            await tx.execute(f"UPDATE outbox SET status = 'failed', reason = 'cancelled' WHERE broadcast IN ({marks})"
                             " AND status = 'pending'", tuple(withdrawn))
        await self._schedule(tx, plan_id, due, remind, now)
        labels = {o.label for o in parse_offsets(remind)} & set(withdrawn.values())
        if labels and due > now:
            marks = ", ".join("?" for _ in labels)
            await tx.execute(
                "UPDATE supervision_reminders SET state = 'pending', fire_at = ?, broadcast = NULL, handled_at = NULL"
                f" WHERE plan = ? AND state != 'pending' AND offset_label IN ({marks})", (now, plan_id, *labels))
        if withdrawn:
            log.info("supervision plan %d: %d reminders queued for the old date withdrawn, %d sent again now",
                     plan_id, len(withdrawn), len(labels))

    # ------------------------------------------------------------------ the outbox

    async def _chat_row(self, tx: Any, channel: str, chat_id: str) -> tuple[int, str, str, str, str | None]:
        """A chats row for a chat we must write to (created, without consent, when unknown)."""
        kind = "group" if chat_id.startswith("-") or channel != "telegram" else "private"
        now = self.clock()
        await tx.execute(
            "INSERT INTO chats (channel, chat_id, kind, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (channel, chat_id) DO NOTHING", (channel, chat_id, kind, now, now))
        cursor = await tx.execute("SELECT id, channel, chat_id, kind, locality FROM chats WHERE channel = ? AND"
                                  " chat_id = ?", (channel, chat_id))
        r = await cursor.fetchone()
        return (r[0], r[1], r[2], r[3], r[4])

    async def _groups(self, tx: Any, plan: Plan) -> list[tuple[int, str, str, str, str | None]]:
        """The responsible chats: the plan's own list, or the groups registered in its locality's subtree."""
        if plan.chats:
            found = []
            for item in plan.chats:
                channel, _, chat_id = item.partition(":")
                found.append(await self._chat_row(tx, channel, chat_id))
            return found
        cursor = await tx.execute(
            "SELECT id, channel, chat_id, kind, locality FROM chats WHERE kind = 'group' AND active = 1"
            " AND consent = 1 AND channel != 'console' AND locality IN (SELECT value FROM json_each(?)) ORDER BY id",
            (json.dumps(self.tree.subtree(plan.locality)),))
        return [tuple(r) for r in await cursor.fetchall()]  # type: ignore[misc]

    async def _queue(self, tx: Any, text: str, chats: list[tuple[int, str, str, str, str | None]], source: str,
                     locality: str | None, now: float, options: list[tuple[str, str]] | None = None) -> int | None:
        """One broadcast row and an outbox row per chat; None when there is no chat to write to."""
        [broadcast] = await self._queue_many(tx, [(text, chats, source, locality, options)], now)
        return broadcast

    async def _queue_many(self, tx: Any, items: list[tuple[str, list[Any], str, str | None, Any]],
                          now: float) -> list[int | None]:
        """Broadcast rows (ids chosen here: we hold the write transaction) and their outbox rows, in
        three statements however many there are. Items without chats get None and write nothing."""
        if self._resolved_column is None:  # broadcasts.resolved_at (migration 006): our rows come resolved
            cursor = await tx.execute("SELECT 1 FROM pragma_table_info('broadcasts') WHERE name = 'resolved_at'")
            self._resolved_column = await cursor.fetchone() is not None
        cursor = await tx.execute("SELECT COALESCE(MAX(id), 0) FROM broadcasts")
        next_id = int((await cursor.fetchone())[0]) + 1
        ids: list[int | None] = []
        rows, outbox = [], []
        for text, chats, source, locality, options in items:
            if not chats:
                ids.append(None)
                continue
            ids.append(next_id)
            row = (next_id, text, locality, now, len(chats), source, now, now,
                   json.dumps(options or [], ensure_ascii=False))
            rows.append((*row, now) if self._resolved_column else row)
            outbox += [(next_id, c[0], c[1], c[2], c[3], c[4], now) for c in chats]
            next_id += 1
        if rows:
            resolved = ", resolved_at" if self._resolved_column else ""
            await tx.executemany(
                f"INSERT INTO broadcasts (id, text, audience, locality, send_at, status, total, source, created_by,"
                f" created_at, confirmed_at, options{resolved}) VALUES (?, ?, 'groups', ?, ?, 'queued', ?, ?,"
                f" 'supervision', ?, ?, ?{', ?' if resolved else ''})", rows)
            await tx.executemany(
                "INSERT INTO outbox (broadcast, chat, channel, chat_id, kind, locality, next_attempt_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (broadcast, chat) DO NOTHING", outbox)
        return ids

    async def _to_staff(self, tx: Any, text: str, source: str, now: float,
                        options: list[tuple[str, str]] | None = None) -> int | None:
        if self.staff_chat is None:
            log.warning("supervision: no TELEGRAM_STAFF_CHAT_ID; not posted to staff: %s", text.splitlines()[0][:80])
            return None
        chat = await self._chat_row(tx, *self.staff_chat)
        return await self._queue(tx, text, [chat], source, None, now, options)

    # ------------------------------------------------------------------ the timer

    async def tick(self) -> float:
        """One round: due reminders, then (every `housekeeping_every`) escalations and nudges.

        Returns how long to sleep before the next round."""
        now = self.clock()
        queued = await self._fire_due(now)
        if now >= self._next_housekeeping:
            queued += await self._escalate(now)
            queued += await self._nudge(now)
            self._next_housekeeping = now + self.housekeeping_every
        if queued:
            self.notify()
        nxt = await self.db.fetchval(
            "SELECT MIN(fire_at) FROM supervision_reminders WHERE state = 'pending' AND fire_at > ?", (now,))
        wake = min(now + self.max_sleep, self._next_housekeeping, nxt if nxt is not None else float("inf"))
        return max(0.0, wake - self.clock())

    async def _fire_due(self, now: float) -> int:
        """Every reminder due by `now`, `batch` plans a transaction (a handful of statements each), so
        interactive answers, which write too, wait for one short transaction at most."""
        queued = 0
        while True:
            rows = await self.db.fetchall(
                "SELECT r.plan, r.offset_label, r.fire_at FROM supervision_reminders r WHERE r.state = 'pending'"
                " AND r.fire_at <= ? ORDER BY r.fire_at LIMIT ?", (now, self.batch * 4))
            if not rows:
                return queued
            by_plan: dict[int, list[Any]] = {}
            for r in rows:
                by_plan.setdefault(r["plan"], []).append(r)
            plan_ids = list(by_plan)[: self.batch]
            async with self.db.transaction() as tx:
                marks = ", ".join("?" for _ in plan_ids)
                cursor = await tx.execute(f"SELECT * FROM supervision_plans WHERE id IN ({marks})", plan_ids)
                plans = {r["id"]: _plan(r) for r in await cursor.fetchall()}
                queued += await self._fire_batch(tx, [(plans[i], by_plan[i]) for i in plan_ids], now)
            await asyncio.sleep(0)  # let interactive answers take the write lock between batches
            if len(rows) < self.batch * 4 and len(by_plan) <= self.batch:
                return queued

    async def _fire_batch(self, tx: Any, batch: list[tuple[Plan, list[Any]]], now: float) -> int:
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
        if settle:
            await tx.executemany("UPDATE supervision_reminders SET state = ?, handled_at = ?"
                                 " WHERE plan = ? AND offset_label = ?", settle)
        if defer:
            await tx.executemany("UPDATE supervision_reminders SET fire_at = ? WHERE plan = ? AND offset_label = ?",
                                 defer)
        if not sends:
            return 0
        groups = await self._groups_of(tx, [plan for plan, _, _ in sends])
        items = []
        for plan, label, _late in sends:
            options = [(self.say("sv_button_done"), f"{PREFIX}:done:{plan.id}"),
                       (self.say("sv_button_ext"), f"{PREFIX}:ext:{plan.id}")]
            items.append((self.reminder_text(plan, now), groups[plan.id], f"sv:{plan.id}:{label}", plan.locality,
                          options))
        ids = await self._queue_many(tx, items, now)
        await tx.executemany(
            "UPDATE supervision_reminders SET state = 'sent', broadcast = ?, handled_at = ? WHERE plan = ?"
            " AND offset_label = ?", [(b, now, plan.id, label) for b, (plan, label, _) in zip(ids, sends, strict=True)])
        for b, (plan, label, late) in zip(ids, sends, strict=True):
            if b is None:
                log.warning("supervision plan %d: reminder %s has no group to go to (locality %s)", plan.id, label,
                            plan.locality)
            else:
                log.info("supervision plan %d: reminder %s%s queued for %d chats", plan.id, label,
                         " (caught up)" if late else "", len(groups[plan.id]))
        return sum(b is not None for b in ids)

    async def _groups_of(self, tx: Any, plans: list[Plan]) -> dict[int, list[tuple[int, str, str, str, str | None]]]:
        """`_groups` for many plans with one query for all the localities' groups."""
        found: dict[int, list[tuple[int, str, str, str, str | None]]] = {}
        subtrees = {plan.locality: self.tree.subtree(plan.locality) for plan in plans if not plan.chats}
        codes = sorted({c for tree in subtrees.values() for c in tree})
        by_code: dict[str, list[tuple[int, str, str, str, str | None]]] = {}
        if codes:
            cursor = await tx.execute(
                "SELECT id, channel, chat_id, kind, locality FROM chats WHERE kind = 'group' AND active = 1"
                " AND consent = 1 AND channel != 'console' AND locality IN (SELECT value FROM json_each(?))"
                " ORDER BY id", (json.dumps(codes),))
            for r in await cursor.fetchall():
                by_code.setdefault(r[4], []).append(tuple(r))  # type: ignore[arg-type]
        for plan in plans:
            if plan.chats:
                found[plan.id] = await self._groups(tx, plan)
            else:
                found[plan.id] = sorted((c for code in subtrees[plan.locality] for c in by_code.get(code, ())),
                                        key=lambda c: c[0])
        return found

    def reminder_text(self, plan: Plan, now: float) -> str:
        left = plan.due_at - now
        due_day = datetime.fromtimestamp(plan.due_at, self.tz).date()
        days = (due_day - datetime.fromtimestamp(now, self.tz).date()).days
        if left <= 60:
            remaining = self.say("sv_left_now")
        elif days >= 1:
            remaining = self.say("sv_left_days", n=days)
        elif left >= 3600:
            remaining = self.say("sv_left_hours", n=int(left // 3600))
        else:
            remaining = self.say("sv_left_minutes", n=max(1, int(left // 60)))
        return self.say("sv_reminder", id=plan.id, title=plan.title, kind=self.say(f"sv_kind_{plan.kind}"),
                        subject=plan.subject or plan.title, place=self.tree.full_name(plan.locality),
                        due=local_text(plan.due_at, self.tz), left=remaining)

    async def _escalate(self, now: float) -> int:
        """Overdue plans not done: to the staff chat the day they fall due, then every N days."""
        if self.config.quiet(datetime.fromtimestamp(now, self.tz)):
            return 0
        rows = await self.db.fetchall(
            "SELECT p.*, (SELECT MAX(e.round) FROM supervision_escalations e WHERE e.plan = p.id"
            " AND e.due_at = p.due_at) AS last_round FROM supervision_plans p"
            " WHERE p.status = 'planned' AND p.due_at <= ? ORDER BY p.due_at, p.id", (now,))
        report: list[tuple[Plan, int]] = []
        for r in rows:
            k = self.config.escalation_round(r["due_at"], now, self.tz)
            if k is not None and (r["last_round"] is None or k > r["last_round"]):
                report.append((_plan(r), k))
        if not report:
            return 0
        today = datetime.fromtimestamp(now, self.tz).date()
        lines = [self.say("sv_escalation_head", count=len(report))]
        for plan, _k in report[:MAX_LIST]:
            days = (today - datetime.fromtimestamp(plan.due_at, self.tz).date()).days
            lines.append(self.say("sv_escalation_item", id=plan.id, title=plan.title, place=self.place(plan.locality),
                                  due=local_text(plan.due_at, self.tz), days=days))
        if len(report) > MAX_LIST:
            lines.append(self.say("sv_more", n=len(report) - MAX_LIST))
        async with self.db.transaction() as tx:
            broadcast = await self._to_staff(tx, "\n".join(lines), f"sv:escalation:{int(now)}", now)
            await tx.executemany(
                "INSERT INTO supervision_escalations (plan, due_at, round, at, broadcast) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (plan, due_at, round) DO NOTHING",
                [(plan.id, plan.due_at, k, now, broadcast) for plan, k in report])
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
        if await self.db.fetchval("SELECT 1 FROM supervision_nudges WHERE locality = '*' AND period = ? AND"
                                  " weeks_left = ?", (period, weeks)):
            return 0
        table = await self.table(period, now=now)
        behind = [row for row in table["localities"] if row["done"] < row["required"]]
        queued = 0
        last_day = (end_day - timedelta(days=1)).strftime("%d/%m/%Y")
        async with self.db.transaction() as tx:
            rows = []
            for row in behind:
                chats = await self._groups(tx, Plan(0, row["code"], "", None, "", period, end, "", None, "planned",
                                                    None, None, None))
                text = self.say("sv_nudge", place=self.tree.full_name(row["code"]), done=row["done"],
                                required=row["required"], period=period_label(period), weeks=weeks, end=last_day)
                broadcast = await self._queue(tx, text, chats, f"sv:nudge:{period}:{weeks}", row["code"], now)
                queued += broadcast is not None
                rows.append((row["code"], period, weeks, now, broadcast))
            rows.append(("*", period, weeks, now, None))
            await tx.executemany("INSERT INTO supervision_nudges (locality, period, weeks_left, at, broadcast)"
                                 " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
        log.info("supervision: nudge %s, %d weeks left: %d localities behind, %d with groups", period, weeks,
                 len(behind), queued)
        return queued

    # ------------------------------------------------------------------ the table

    async def table(self, period: str | None = None, *, now: float | None = None) -> dict[str, Any]:
        """Per tracked locality: done / required this period; overdue and upcoming plans."""
        now = self.clock() if now is None else now
        period = period or self.config.period_of(now, self.tz)
        counts: dict[str, dict[str, int]] = {code: {"done": 0, "planned": 0} for code in self.tracked}
        for r in await self.db.fetchall(
            "SELECT locality, status, COUNT(*) AS n FROM supervision_plans WHERE period = ? AND status != 'cancelled'"
            " GROUP BY locality, status", (period,)):
            owner = self._tracked_of.get(r["locality"])
            if owner is not None:
                counts[owner]["done" if r["status"] == "done" else "planned"] += r["n"]
        localities = []
        for code in self.tracked:
            required = self.config.required_for(code, period)
            c = counts[code]
            localities.append({"code": code, "name": self.place(code), "done": c["done"], "planned": c["planned"],
                               "required": required, "met": c["done"] >= required})
        overdue = await self.db.fetchall(
            "SELECT id, locality, title, due_at FROM supervision_plans WHERE status = 'planned' AND due_at <= ?"
            " ORDER BY due_at, id", (now,))
        upcoming = await self.db.fetchall(
            "SELECT id, locality, title, due_at FROM supervision_plans WHERE status = 'planned' AND due_at > ?"
            " AND due_at <= ? ORDER BY due_at, id", (now, now + self.config.upcoming_days * 86400))

        def item(r: Any) -> dict[str, Any]:
            return {"id": r["id"], "locality": r["locality"], "title": r["title"],
                    "due": datetime.fromtimestamp(r["due_at"], self.tz).isoformat(timespec="seconds")}

        return {"period": period, "localities": localities, "overdue": [item(r) for r in overdue],
                "upcoming": [item(r) for r in upcoming]}

    def table_text(self, table: dict[str, Any], limit: int = MAX_LIST) -> str:
        rows = table["localities"]
        met = sum(1 for r in rows if r["met"])
        lines = [self.say("sv_table_head", period=period_label(table["period"]), met=met, total=len(rows))]
        behind = [r for r in rows if not r["met"]]
        for r in behind[:limit * 2]:
            lines.append(self.say("sv_table_place", place=r["name"], done=r["done"], required=r["required"],
                                  planned=r["planned"]))
        if len(behind) > limit * 2:
            lines.append(self.say("sv_more", n=len(behind) - limit * 2))
        for key, items in (("sv_table_overdue", table["overdue"]), ("sv_table_upcoming", table["upcoming"])):
            lines += ["", self.say(key, count=len(items))]
            for it in items[:limit]:
                due = datetime.fromisoformat(it["due"]).strftime("%d/%m/%Y %H:%M")
                lines.append(self.say("sv_table_item", id=it["id"], title=it["title"],
                                      place=self.place(it["locality"]), due=due))
            if len(items) > limit:
                lines.append(self.say("sv_more", n=len(items) - limit))
        return "\n".join(lines)

    # ------------------------------------------------------------------ dialogue

    def install(self, dialogue: Any) -> None:
        self._dialogue = dialogue
        dialogue.commands.update({"baocao_gs": self.cmd_report, "giamsat": self.cmd_table})
        dialogue.options[PREFIX] = self.on_option
        dialogue.group_text_hooks.append(self.on_group_text)

    async def _may_report(self, inbound: Inbound) -> bool:
        if inbound.is_group_admin or await self.staff.is_staff(inbound.channel, inbound.user_id):
            return True
        if self.is_admin is not None and inbound.chat_kind == "group":
            try:
                return await self.is_admin(inbound)
            except Exception:
                log.exception("admin check failed for %s group %s", inbound.channel, inbound.chat_id)
        return False

    async def _open_plan(self, plan_id: str) -> tuple[Plan | None, list[Reply] | None]:
        plan = await self.get(int(plan_id)) if plan_id.isdigit() else None
        if plan is None:
            return None, [Reply(self.say("sv_missing", id=plan_id[:12]))]
        if plan.status == "done":
            return None, [Reply(self.say("sv_already_done", id=plan.id, title=plan.title))]
        if plan.status == "cancelled":
            return None, [Reply(self.say("sv_was_cancelled", id=plan.id))]
        return plan, None

    async def on_option(self, turn: Any) -> list[Reply]:
        action, _, arg = turn.args.partition(":")
        inbound: Inbound = turn.inbound
        if action in ("ok", "no"):
            if not await self.staff.is_staff(inbound.channel, inbound.user_id):
                log.warning("supervision: %s user %s is not staff (extension %s)", inbound.channel, inbound.user_id,
                            arg[:12])
                return [Reply(self.say("staff_only"))]
            if not arg.isdigit():
                return [Reply(self.say("stale_option"))]
            status, plan = await self.decide_extension(int(arg), action == "ok", _who(inbound))
            if status == "missing" or plan is None:
                return [Reply(self.say("stale_option"))]
            if status == "already":
                return [Reply(self.say("sv_ext_already", ext=arg))]
            return [Reply(self.say("sv_ext_decided", ext=arg, id=plan.id, who=inbound.display_name or inbound.user_id,
                                   decision=self.say(f"sv_decision_{status}"), due=local_text(plan.due_at, self.tz)))]
        if action not in ("done", "ext"):
            return [Reply(self.say("stale_option"))]
        if not await self._may_report(inbound):
            log.info("supervision: %s user %s may not report for chat %s", inbound.channel, inbound.user_id,
                     inbound.chat_id)
            return [Reply(self.say("sv_not_admin"))]
        plan, refusal = await self._open_plan(arg)
        if plan is None:
            return refusal or []
        if action == "done":
            self._expect(inbound, lambda t: self._on_result(t, plan.id))
            return [Reply(self.say("sv_result_prompt", id=plan.id, title=plan.title))]
        self._expect(inbound, lambda t: self._on_extension(t, plan.id))
        return [Reply(self.say("sv_ext_prompt", id=plan.id, title=plan.title, due=local_text(plan.due_at, self.tz),
                               example=self._example_date(plan.due_at)))]

    def _expect(self, inbound: Inbound, handler: Callable[[Any], Awaitable[list[Reply]]]) -> None:
        if self._dialogue is not None:
            self._dialogue.expect(inbound, handler)

    async def _on_result(self, turn: Any, plan_id: int) -> list[Reply]:
        text = turn.inbound.text.strip().splitlines()[0].strip() if turn.inbound.text.strip() else ""
        if not text:
            self._expect(turn.inbound, lambda t: self._on_result(t, plan_id))
            return [Reply(self.say("sv_result_empty"))]
        return await self._finish(turn.inbound, plan_id, text)

    async def _finish(self, inbound: Inbound, plan_id: int, result: str) -> list[Reply]:
        outcome = await self.complete(plan_id, result, _who(inbound))
        plan = await self.get(plan_id)
        if outcome == "done" and plan is not None:
            return [Reply(self.say("sv_done", id=plan.id, title=plan.title, result=plan.result or ""))]
        if outcome == "already" and plan is not None:
            return [Reply(self.say("sv_already_done", id=plan.id, title=plan.title))]
        if outcome == "cancelled":
            return [Reply(self.say("sv_was_cancelled", id=plan_id))]
        return [Reply(self.say("sv_missing", id=plan_id))]

    async def _on_extension(self, turn: Any, plan_id: int) -> list[Reply]:
        text = turn.inbound.text.strip()
        plan = await self.get(plan_id)
        if plan is None or plan.status != "planned":
            return [Reply(self.say("sv_was_cancelled", id=plan_id))]
        example = self._example_date(plan.due_at)
        match = find_local_date(text, self.tz)
        new_due = match.when if match else None
        if new_due is None:
            self._expect(turn.inbound, lambda t: self._on_extension(t, plan_id))
            return [Reply(self.say("sv_ext_invalid", example=example))]
        if new_due <= max(plan.due_at, self.clock()):
            self._expect(turn.inbound, lambda t: self._on_extension(t, plan_id))
            return [Reply(self.say("sv_ext_past", due=local_text(plan.due_at, self.tz), example=example))]
        reason = " ".join((text[: match.start] + " " + text[match.end:]).split()).strip(" -–—:,.;") if match else ""
        ext = await self.request_extension(plan_id, turn.inbound, reason[:MAX_RESULT] or "—", new_due)
        if ext is None:
            return [Reply(self.say("sv_was_cancelled", id=plan_id))]
        return [Reply(self.say("sv_ext_sent", id=plan_id, due=local_text(new_due, self.tz)))]

    def _example_date(self, due: float) -> str:
        later = datetime.fromtimestamp(max(due, self.clock()), self.tz) + timedelta(days=14)
        return later.strftime("%d/%m/%Y") + " - lý do"

    async def cmd_report(self, turn: Any) -> list[Reply]:
        """`/baocao_gs <id> <kết quả>`: report a plan done from its group (admins and staff)."""
        inbound: Inbound = turn.inbound
        plan_id, _, result = turn.args.partition(" ")
        plan_id = plan_id.lstrip("#")
        if not plan_id.isdigit():
            return [Reply(self.say("sv_usage"))]
        if not await self._may_report(inbound):
            return [Reply(self.say("sv_not_admin"))]
        plan, refusal = await self._open_plan(plan_id)
        if plan is None:
            return refusal or []
        if not result.strip():
            self._expect(inbound, lambda t: self._on_result(t, plan.id))
            return [Reply(self.say("sv_result_prompt", id=plan.id, title=plan.title))]
        return await self._finish(inbound, plan.id, result.strip())

    async def cmd_table(self, turn: Any) -> list[Reply]:
        inbound: Inbound = turn.inbound
        if not await self.staff.is_staff(inbound.channel, inbound.user_id):
            log.warning("/giamsat refused: %s user %s is not staff", inbound.channel, inbound.user_id)
            return [Reply(self.say("staff_only"))]
        period = turn.args.strip().upper() or None
        try:
            table = await self.table(period)
        except ScheduleError:
            table = await self.table()
        return [Reply(self.table_text(table))]

    async def on_group_text(self, turn: Any) -> list[Reply] | None:
        inbound: Inbound = turn.inbound
        if _match_done(inbound.text) is None:
            return None
        if inbound.channel not in self.trusted_reply_channels and not await self._may_report(inbound):
            return [Reply(self.say("sv_not_admin"))]
        return await self.complete_from_reply(inbound.channel, inbound.chat_id, inbound.text,
                                              user_id=inbound.user_id, display_name=inbound.display_name)

    async def complete_from_reply(self, channel: str, chat_id: str, text: str, *, user_id: str = "",
                                  display_name: str = "") -> list[Reply] | None:
        """A group wrote "đã hoàn thành [#id] <kết quả>": mark its plan done. None: not such a text.

        The plan is `#id` if given, else the planned one most recently reminded in this chat, else
        the only planned one of the chat's locality. Channel-agnostic (see the module notes).
        """
        found = _match_done(text)
        if found is None:
            return None
        wanted, result = found
        plan_id = int(wanted) if wanted else await self._plan_for_chat(channel, chat_id)
        if plan_id is None:
            return [Reply(self.say("sv_reply_which"))]
        plan, refusal = await self._open_plan(str(plan_id))
        if plan is None:
            return refusal
        who = f"{channel}:{user_id}" if user_id else f"{channel}:{chat_id}"
        outcome = await self.complete(plan.id, result or self.say("sv_result_default"), who)
        if outcome != "done":
            return [Reply(self.say("sv_missing", id=plan.id))]
        log.info("supervision plan %d reported done by reply in %s %s (%s)", plan.id, channel, chat_id,
                 display_name or user_id)
        done = await self.get(plan.id)
        return [Reply(self.say("sv_done", id=plan.id, title=plan.title, result=done.result if done else result))]

    async def _plan_for_chat(self, channel: str, chat_id: str) -> int | None:
        row = await self.db.fetchone(
            "SELECT r.plan FROM supervision_reminders r JOIN outbox o ON o.broadcast = r.broadcast"
            " JOIN supervision_plans p ON p.id = r.plan WHERE o.channel = ? AND o.chat_id = ?"
            " AND p.status = 'planned' ORDER BY r.handled_at DESC LIMIT 1", (channel, chat_id))
        if row is not None:
            return int(row[0])
        chat = await self.db.fetchone("SELECT locality FROM chats WHERE channel = ? AND chat_id = ?",
                                      (channel, chat_id))
        if chat is None or chat["locality"] is None:
            return None
        codes = [p.code for p in self.tree.path(chat["locality"])]
        rows = await self.db.fetchall(
            "SELECT id FROM supervision_plans WHERE status = 'planned' AND chats IS NULL AND locality IN"
            " (SELECT value FROM json_each(?))", (json.dumps(codes),))
        return int(rows[0][0]) if len(rows) == 1 else None


def _who(inbound: Inbound) -> str:
    name = f" ({inbound.display_name})" if inbound.display_name else ""
    return f"{inbound.channel}:{inbound.user_id}{name}"


def period_label(period: str) -> str:
    """"2026-Q4" → "quý IV/2026"; "2026" → "năm 2026"."""
    if "-Q" in period:
        year, q = period.split("-Q")
        return f"quý {('I', 'II', 'III', 'IV')[int(q) - 1]}/{year}"
    return f"năm {period}"


def _fold_chars(text: str) -> str:
    """Lower-case, marks removed, one character for one: positions stay those of `text`."""
    return "".join((fold(ch) or ch)[:1] if ch.strip() else " " for ch in text.lower())


def _match_done(text: str) -> tuple[str | None, str] | None:
    """("id" or None, the result text) for "đã hoàn thành [#id] <kết quả>"; None otherwise."""
    folded = _fold_chars(text)
    match = _DONE.match(folded)
    if match is None:
        return None
    return match.group(1) or match.group(2), " ".join(text[match.end():].split())


def build_supervision(core: Any) -> Supervision:
    """The service for `bot.app.wiring`: settings from content/supervision/, content plans to upsert at start,
    the dialogue plugs installed. Invalid supervision content stops start-up like any content."""
    from bot.kernel.content import ContentError
    from bot.supervision.plans_io import load_content_plans
    from bot.supervision.schedule import load_config

    settings = core.settings
    config, problems = load_config(settings.content_dir)
    plans, plan_problems = load_content_plans(settings.content_dir, core.localities, config, settings.tz)
    if problems or plan_problems:
        raise ContentError(problems + plan_problems)
    staff_chat = ("telegram", settings.telegram_staff_chat_id) if settings.telegram_staff_chat_id else None
    service = Supervision(core.db, core.localities, core.dialogue.say, core.staff, settings.tz, config,
                          staff_chat=staff_chat)
    service.content_plans = plans
    service.install(core.dialogue)
    from bot.supervision.staff_chat import SupervisionChat

    service.chat = SupervisionChat(service)  # /themgiamsat, /doihan
    service.chat.install(core.dialogue)
    replies = getattr(core, "group_replies", None)
    if replies is not None:  # the bare phrase, as bot/group_replies.py invites
        replies.phrases["da hoan thanh"] = service.on_group_text
    return service
