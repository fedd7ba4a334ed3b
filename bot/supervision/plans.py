"""The supervision store: plans, their reminder rows, extensions, escalations and nudges.

The only module with SQL on the `supervision_*` tables (migration 003). A plan's reminders are
one row per offset (UNIQUE, with its fire time): the schedule *is* the table, read by
`bot.supervision.scheduler`. Moving a due date reschedules (see `_reschedule`); what this store
queues for the staff or a group (a completion, an extension request and its decision) goes
through `Outgoing`, in the same transaction that records it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite

from bot.audiences.localities import Localities
from bot.broadcasts import outbox
from bot.broadcasts.outbox import Queued
from bot.channels.base import Inbound
from bot.kernel.messages import Messages
from bot.store.db import Database
from bot.supervision.model import MAX_RESULT, PREFIX, Plan, SupervisionError, plan_from_row
from bot.supervision.outgoing import Outgoing
from bot.supervision.plans_io import MAX_TITLE, PlanInput
from bot.supervision.schedule import (
    ScheduleError,
    SupervisionConfig,
    check_period,
    local_text,
    offsets_text,
    parse_offsets,
)

log = logging.getLogger("bot.supervision.service")


class Plans:
    def __init__(self, db: Database, tree: Localities, say: Messages, tz: ZoneInfo, config: SupervisionConfig,
                 outgoing: Outgoing, *, clock: Callable[[], float], notify: Callable[[], None],
                 wake: Callable[[], None]) -> None:
        self.db = db
        self.tree = tree
        self.say = say
        self.tz = tz
        self.config = config
        self.outgoing = outgoing
        self.clock = clock
        self.notify = notify  # the delivery worker: something was queued
        self.wake = wake  # the reminder timer: the schedule changed
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

    async def _insert(self, tx: aiosqlite.Connection, plan: PlanInput, source: str, now: float) -> int:
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

    async def _schedule(self, tx: aiosqlite.Connection, plan_id: int, due: float, remind: str, now: float) -> None:
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
        return plan_from_row(row) if row else None

    async def plans(self, status: str | None = None) -> list[Plan]:
        if status:
            rows = await self.db.fetchall(
                "SELECT * FROM supervision_plans WHERE status = ? ORDER BY due_at, id", (status,))
        else:
            rows = await self.db.fetchall("SELECT * FROM supervision_plans ORDER BY due_at, id")
        return [plan_from_row(r) for r in rows]

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
            plan = plan_from_row(await cursor.fetchone())
            await self.outgoing.to_staff(tx, self.say("sv_staff_done", id=plan.id, title=plan.title,
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

    async def _stop_reminders(self, tx: aiosqlite.Connection, plan_id: int, now: float) -> None:
        """No reminder of this plan goes out any more, including those queued but not yet sent."""
        await tx.execute("UPDATE supervision_reminders SET state = 'skipped', handled_at = ?"
                         " WHERE plan = ? AND +state = 'pending'", (now, plan_id))
        cursor = await tx.execute("SELECT broadcast FROM supervision_reminders WHERE plan = ?"
                                  " AND broadcast IS NOT NULL", (plan_id,))
        await outbox.withdraw(tx, [int(r[0]) for r in await cursor.fetchall()], now)

    async def request_extension(self, plan_id: int, inbound: Inbound, reason: str, new_due: float) -> int | None:
        """Record the request and post it to the staff chat with approve/refuse buttons; None: not planned."""
        now = self.clock()
        async with self.db.transaction() as tx:
            cursor = await tx.execute("SELECT * FROM supervision_plans WHERE id = ? AND status = 'planned'",
                                      (plan_id,))
            row = await cursor.fetchone()
            if row is None:
                return None
            plan = plan_from_row(row)
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
            await self.outgoing.to_staff(tx, text, f"sv:{plan_id}:ext:{ext}", now, options)
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
            plan = plan_from_row(await cursor.fetchone())
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
                plan = plan_from_row(await cursor.fetchone())
            key = "sv_ext_approved" if status == "approved" else "sv_ext_refused"
            chat = await self.outgoing.chat_row(tx, row["channel"], row["chat_id"])
            await self.outgoing.queue_one(tx, Queued(
                self.say(key, id=plan.id, title=plan.title, due=local_text(plan.due_at, self.tz)),
                [chat], f"sv:{plan.id}:ext:{ext}:{status}", plan.locality), now)
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
            plan = plan_from_row(row)
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
            edited = plan_from_row(await cursor.fetchone())
        self.wake()
        self.notify()
        log.info("supervision plan %d edited by %s: due %s -> %s, remind %s -> %s%s", plan_id, by,
                 local_text(plan.due_at, self.tz), local_text(edited.due_at, self.tz), plan.remind, edited.remind,
                 ", title changed" if edited.title != plan.title else "")
        return "edited", edited

    async def _reschedule(self, tx: aiosqlite.Connection, plan_id: int, due: float, remind: str, now: float) -> None:
        """A plan's due date or offsets changed: `_schedule` anew, and replace what names the old date.

        Every offset is recomputed from the new date: one whose new time is ahead is pending again,
        even if it went out for the old date ("7 days left" is true again, of the new deadline); one
        whose new time has passed is not sent (no catch-up on an edit) and stays `sent` or becomes
        `skipped`. A reminder queued for the old date but not delivered to any chat yet is withdrawn
        (its text names the old date) and replaced: at its new time if that is ahead, else at once.
        """
        cursor = await tx.execute("SELECT broadcast, offset_label FROM supervision_reminders WHERE plan = ?"
                                  " AND state = 'sent' AND broadcast IS NOT NULL", (plan_id,))
        sent = {int(r[0]): r[1] for r in await cursor.fetchall()}
        undelivered = await outbox.undelivered(tx, list(sent))
        withdrawn = {b: label for b, label in sent.items() if b in undelivered}
        if withdrawn:
            marks = ", ".join("?" for _ in withdrawn)
            await tx.execute(f"UPDATE supervision_reminders SET state = 'skipped', handled_at = ? WHERE plan = ?"
                             f" AND broadcast IN ({marks})", (now, plan_id, *withdrawn))
            await outbox.withdraw(tx, list(withdrawn), now)
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

    async def responsible(self, plan: Plan, channel: str, chat_id: str) -> bool:
        """Is this chat one of the plan's groups (those its reminders go to: the plan's own chat list,
        else the registered groups of its locality's subtree)? Only they may report or extend it."""
        if plan.chats:
            return f"{channel}:{chat_id}" in plan.chats
        locality = await self.db.fetchval(
            "SELECT locality FROM chats WHERE channel = ? AND chat_id = ? AND kind = 'group' AND consent = 1",
            (channel, chat_id))
        return locality is not None and locality in self.tree.subtree(plan.locality)

    def owner_of(self, code: str) -> str | None:
        """The tracked locality (the level that owes activities) `code` belongs to; None above it."""
        return self._tracked_of.get(code)

    async def period_summary(self, period: str, now: float, upcoming: int = 2) -> dict[str, dict[str, Any]]:
        """Per tracked locality in `period`: activities done by kind ("giam_sat", "phan_bien"), still
        planned, required, and its next `upcoming` planned deadlines after `now` [(due_at, title)]."""
        found = {code: {"giam_sat": 0, "phan_bien": 0, "planned": 0, "required": self.config.required_for(code, period),
                        "next": []} for code in self.tracked}
        for r in await self.db.fetchall(
                "SELECT locality, kind, status, COUNT(*) AS n FROM supervision_plans WHERE period = ?"
                " AND status != 'cancelled' GROUP BY 1, 2, 3", (period,)):
            mine = found.get(self._tracked_of.get(r["locality"], ""))
            if mine is not None:
                mine[r["kind"] if r["status"] == "done" else "planned"] += int(r["n"])
        for r in await self.db.fetchall(
                "SELECT locality, title, due_at FROM supervision_plans WHERE status = 'planned' AND due_at > ?"
                " ORDER BY due_at, id", (now,)):
            mine = found.get(self._tracked_of.get(r["locality"], ""))
            if mine is not None and len(mine["next"]) < upcoming:
                mine["next"].append((r["due_at"], r["title"]))
        return found

    async def locality_facts(self, codes: Sequence[str], now: float) -> dict[str, tuple[float | None, int]]:
        """Per locality code (or one below a tracked locality): (its tracked locality's next planned
        deadline after `now`, or None; the activities it still owes this period)."""
        period = self.config.period_of(now, self.tz)
        done: dict[str, int] = {}
        next_due: dict[str, float] = {}
        for r in await self.db.fetchall(
                "SELECT locality, SUM(status = 'done' AND period = ?) AS done,"
                " MIN(CASE WHEN status = 'planned' AND due_at > ? THEN due_at END) AS next_due"
                " FROM supervision_plans WHERE status != 'cancelled' GROUP BY locality", (period, now)):
            owner = self._tracked_of.get(r["locality"])
            if owner is None:
                continue
            done[owner] = done.get(owner, 0) + int(r["done"] or 0)
            if r["next_due"] is not None:
                next_due[owner] = min(next_due.get(owner, r["next_due"]), r["next_due"])
        found = {}
        for code in codes:
            owner = self._tracked_of.get(code)
            if owner is None:
                continue
            owed = max(self.config.required_for(owner, period) - done.get(owner, 0), 0)
            found[code] = (next_due.get(owner), owed)
        return found

    async def plan_for_chat(self, channel: str, chat_id: str) -> int | None:
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


    # ------------------------------------------------------------------ what the timer reads and records

    async def due_reminders(self, now: float, limit: int) -> list[aiosqlite.Row]:
        return await self.db.fetchall(
            "SELECT r.plan, r.offset_label, r.fire_at FROM supervision_reminders r WHERE r.state = 'pending'"
            " AND r.fire_at <= ? ORDER BY r.fire_at LIMIT ?", (now, limit))

    async def load(self, tx: aiosqlite.Connection, plan_ids: Sequence[int]) -> dict[int, Plan]:
        marks = ", ".join("?" for _ in plan_ids)
        cursor = await tx.execute(f"SELECT * FROM supervision_plans WHERE id IN ({marks})", tuple(plan_ids))
        return {r["id"]: plan_from_row(r) for r in await cursor.fetchall()}

    async def settle(self, tx: aiosqlite.Connection, settle: Sequence[tuple[str, float, int, str]],
                     defer: Sequence[tuple[float, int, str]]) -> None:
        """Reminders handled without a send ((state, at, plan, label)) or moved ((fire_at, plan, label))."""
        if settle:
            await tx.executemany("UPDATE supervision_reminders SET state = ?, handled_at = ?"
                                 " WHERE plan = ? AND offset_label = ?", settle)
        if defer:
            await tx.executemany("UPDATE supervision_reminders SET fire_at = ? WHERE plan = ? AND offset_label = ?",
                                 defer)

    async def mark_sent(self, tx: aiosqlite.Connection, rows: Sequence[tuple[int | None, float, int, str]]) -> None:
        """(broadcast, at, plan, label): these reminders went out (a None broadcast: no group to go to)."""
        await tx.executemany(
            "UPDATE supervision_reminders SET state = 'sent', broadcast = ?, handled_at = ? WHERE plan = ?"
            " AND offset_label = ?", rows)

    async def next_fire(self, now: float) -> float | None:
        value = await self.db.fetchval(
            "SELECT MIN(fire_at) FROM supervision_reminders WHERE state = 'pending' AND fire_at > ?", (now,))
        return None if value is None else float(value)

    async def overdue_rounds(self, now: float) -> list[tuple[Plan, int | None]]:
        """Planned plans past their due date, with the last escalation round of that due date."""
        rows = await self.db.fetchall(
            "SELECT p.*, (SELECT MAX(e.round) FROM supervision_escalations e WHERE e.plan = p.id"
            " AND e.due_at = p.due_at) AS last_round FROM supervision_plans p"
            " WHERE p.status = 'planned' AND p.due_at <= ? ORDER BY p.due_at, p.id", (now,))
        return [(plan_from_row(r), r["last_round"]) for r in rows]

    async def record_escalations(self, tx: aiosqlite.Connection, report: Sequence[tuple[Plan, int]], now: float,
                                 broadcast: int | None) -> None:
        await tx.executemany(
            "INSERT INTO supervision_escalations (plan, due_at, round, at, broadcast) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (plan, due_at, round) DO NOTHING",
            [(plan.id, plan.due_at, k, now, broadcast) for plan, k in report])

    async def nudged(self, period: str, weeks: int) -> bool:
        return bool(await self.db.fetchval("SELECT 1 FROM supervision_nudges WHERE locality = '*' AND period = ?"
                                           " AND weeks_left = ?", (period, weeks)))

    async def record_nudges(self, tx: aiosqlite.Connection,
                            rows: Sequence[tuple[str, str, int, float, int | None]]) -> None:
        """(locality or '*' for the round, period, weeks left, at, broadcast)."""
        await tx.executemany("INSERT INTO supervision_nudges (locality, period, weeks_left, at, broadcast)"
                             " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)


async def erase_person(tx: aiosqlite.Connection, chat: int, channel: str, user_id: str) -> int:
    """Inside the caller's transaction (/xoadulieu): the person's id and name on the extension requests
    they made or decided, and on the plans they reported done; the rows changed."""
    mine, named = f"{channel}:{user_id}", f"{channel}:{user_id} (%"
    cursor = await tx.execute("SELECT id, plan, display_name FROM supervision_extensions WHERE channel = ?"
                              " AND user_id = ?", (channel, user_id))
    asked = list(await cursor.fetchall())
    for ext, plan, name in asked:  # the staff post of each request named them
        await outbox.redact(tx, [f"sv:{plan}:ext:{ext}"], [name or user_id])
    cursor = await tx.execute("SELECT id, done_by FROM supervision_plans WHERE done_by = ? OR done_by LIKE ?"
                              " ESCAPE '\\'", (mine, _like(named)))
    for plan, done_by in list(await cursor.fetchall()):  # and so did the "done" post
        await outbox.redact(tx, [f"sv:{plan}:done"], [done_by])
    changed = 0
    for sql, params in (
        ("UPDATE supervision_extensions SET user_id = '', display_name = NULL WHERE channel = ? AND user_id = ?",
         (channel, user_id)),
        ("UPDATE supervision_extensions SET decided_by = ? WHERE decided_by = ? OR decided_by LIKE ? ESCAPE '\\'",
         (channel, mine, _like(named))),
        ("UPDATE supervision_plans SET done_by = ? WHERE done_by = ? OR done_by LIKE ? ESCAPE '\\'",
         (channel, mine, _like(named))),
    ):
        cursor = await tx.execute(sql, params)
        changed += max(cursor.rowcount, 0)
    return changed


def _like(pattern: str) -> str:
    """`pattern` for LIKE … ESCAPE '\\', its final % the only wildcard."""
    body = pattern[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return body + "%"
