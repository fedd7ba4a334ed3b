"""Recurring series: the `series` and `series_firings` tables (their only SQL) and one firing.

A firing is claimed durably: its `series_firings` row — `UNIQUE (series, run_at)` — is written in the
same transaction as the broadcasts it queues (through `bot.broadcasts.outbox`) and the series'
`last_run_at`. A crash before the commit leaves nothing (the run is still due and is made up at
start); after it, the run exists and is never fired again. A run missed while the service was down
is coalesced: only the latest one before now fires, recording how many it stands for.

What a firing sends depends on the series' kind: 'broadcast' is the series' text, its placeholders
filled (one broadcast per locality when they differ by locality, see `templates`); other kinds
('summary', 'digest') are prepared by a function the composition root hands in.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite

from bot.audiences.localities import Localities
from bot.broadcasts import outbox, templates
from bot.broadcasts.outbox import Queued
from bot.broadcasts.recurrence import RepeatError, due_run, next_run, parse_repeat
from bot.broadcasts.store import BroadcastError, Broadcasts, Target
from bot.store.db import Database

log = logging.getLogger(__name__)

KINDS = ("broadcast", "summary", "digest")
PREFIX = "S"  # a series is shown, and named on the command line, as S<id>


@dataclass(frozen=True)
class Series:
    id: int
    key: str | None
    kind: str
    text: str
    title: str | None
    audience: str
    locality: str | None
    channel: str | None
    repeat: str
    created_by: str
    created_at: float
    updated_at: float
    cancelled_at: float | None
    last_run_at: float | None
    next_run_at: float | None

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.id}"

    def as_json(self, tz: ZoneInfo) -> dict[str, Any]:
        def iso(epoch: float | None) -> str | None:
            return datetime.fromtimestamp(epoch, tz).isoformat(timespec="seconds") if epoch else None

        return {"id": self.name, "series": self.id, "key": self.key, "kind": self.kind, "title": self.title,
                "text": self.text, "audience": self.audience, "locality": self.locality, "channel": self.channel,
                "repeat": self.repeat, "status": "cancelled" if self.cancelled_at else "active",
                "last_run": iso(self.last_run_at), "next_run": iso(self.next_run_at)}


def _series(row: aiosqlite.Row) -> Series:
    return Series(*(row[k] for k in Series.__dataclass_fields__))


def parse_name(value: str) -> int | None:
    """"S12" / "s12" → 12; None for anything else (a plain broadcast id)."""
    value = value.strip()
    if value[:1] in ("S", "s") and value[1:].isdigit():
        return int(value[1:])
    return None


@dataclass(frozen=True)
class Firing:
    series: int
    run_at: float
    missed: int
    broadcasts: list[int]
    recipients: int


# the items one run of a 'summary' / 'digest' series queues (prepared outside the write transaction)
Prepare = Callable[[Series, float], Awaitable[list[Queued]]]


@dataclass(frozen=True)
class Standing:
    """One series declared in content/schedules.yaml."""

    key: str
    kind: str
    repeat: str
    text: str = ""
    title: str | None = None
    audience: str = "groups"
    locality: str | None = None
    channel: str | None = None
    enabled: bool = True  # `enabled: false` in the file: checked, not run (its series ends)


class SeriesStore:
    def __init__(self, db: Database, broadcasts: Broadcasts, tree: Localities, tz: ZoneInfo, *,
                 clock: Callable[[], float] = time.time, facts: templates.FactsSource | None = None,
                 prepare: dict[str, Prepare] | None = None, none_due: str = "") -> None:
        self.db, self.broadcasts, self.tree, self.tz = db, broadcasts, tree, tz
        self.clock = clock
        self.facts = facts
        self.prepare = dict(prepare or {})
        self.none_due = none_due  # what {han_giam_sat} says when a locality has no deadline ahead

    # ------------------------------------------------------------------ checking

    def check(self, kind: str, text: str, repeat: str, target: Target) -> float:
        """BroadcastError (Vietnamese) for a series that cannot run; its first run otherwise."""
        if kind not in KINDS:
            raise BroadcastError(f"loại lịch '{kind}' không có (chọn: {', '.join(KINDS)})")
        if kind == "broadcast":
            if not text.strip():
                raise BroadcastError("nội dung thông báo đang trống")
            for line, name in templates.unknown(text):
                raise BroadcastError(f"dòng {line}: chỗ điền {{{name}}} không có (dùng: "
                                     + ", ".join(f"{{{n}}}" for n in templates.PLACEHOLDERS) + ")")
            self.broadcasts.check_target(target)
        try:
            first = next_run(parse_repeat(repeat, self.tz), self.clock(), self.tz)
        except RepeatError as exc:
            raise BroadcastError(str(exc)) from None
        if first is None:
            raise BroadcastError(f"lịch lặp '{repeat}' không còn lần chạy nào")
        return first

    # ------------------------------------------------------------------ writing

    async def create(self, text: str, target: Target, repeat: str, *, title: str | None = None,
                     created_by: str = "cli", kind: str = "broadcast", key: str | None = None) -> int:
        first = self.check(kind, text, repeat, target)
        now = self.clock()
        series = await self.db.write(
            "INSERT INTO series (key, kind, text, title, audience, locality, channel, repeat, created_by, created_at,"
            " updated_at, next_run_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, kind, text.strip(), title, target.audience, target.locality, target.channel, repeat.strip(),
             created_by, now, now, first))
        log.info("series %d created by %s: %s, %s", series, created_by, repeat, target)
        return series

    async def cancel(self, series: int) -> bool:
        """End a series: no firing after this (a firing racing it loses: it checks `cancelled_at`)."""
        now = self.clock()
        async with self.db.transaction() as tx:
            cursor = await tx.execute("UPDATE series SET cancelled_at = ?, updated_at = ?, next_run_at = NULL"
                                      " WHERE id = ? AND cancelled_at IS NULL", (now, now, series))
            done = cursor.rowcount == 1
        if done:
            log.info("series %d cancelled", series)
        return done

    async def sync_standing(self, standing: Sequence[Standing]) -> tuple[int, int, int]:
        """Make the series with a key match content/schedules.yaml: add new ones, update changed
        ones in place (their firings stay), end those no longer declared; (added, changed, ended)."""
        now = self.clock()
        standing = [item for item in standing if item.enabled]  # a disabled item counts as not declared
        added = changed = ended = 0
        existing = {r["key"]: r for r in await self.db.fetchall(
            "SELECT * FROM series WHERE key IS NOT NULL AND cancelled_at IS NULL")}
        for item in standing:
            first = self.check(item.kind, item.text, item.repeat, Target(
                item.audience if item.audience != "staff" else "groups", item.locality, item.channel))
            values = (item.kind, item.text.strip(), item.title, item.audience, item.locality, item.channel,
                      item.repeat.strip())
            old = existing.pop(item.key, None)
            if old is None:
                await self.db.write(
                    "INSERT INTO series (key, kind, text, title, audience, locality, channel, repeat, created_by,"
                    " created_at, updated_at, next_run_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'content', ?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, text = excluded.text,"
                    " title = excluded.title, audience = excluded.audience, locality = excluded.locality,"
                    " channel = excluded.channel, repeat = excluded.repeat, updated_at = excluded.updated_at,"
                    " cancelled_at = NULL, next_run_at = excluded.next_run_at, last_run_at = MAX("
                    "COALESCE(series.last_run_at, 0), ?)",  # back after being removed: no make-up of the gap
                    (item.key, *values, now, now, first, now))
                added += 1
            elif tuple(old[k] for k in ("kind", "text", "title", "audience", "locality", "channel", "repeat")) \
                    != values:
                # a new schedule starts from now (no make-up under it); a new text keeps the old one's runs
                if old["repeat"] != item.repeat.strip():
                    last, upcoming = max(old["last_run_at"] or 0, now), first
                else:
                    last, upcoming = old["last_run_at"], old["next_run_at"]
                await self.db.write(
                    "UPDATE series SET kind = ?, text = ?, title = ?, audience = ?, locality = ?, channel = ?,"
                    " repeat = ?, updated_at = ?, next_run_at = ?, last_run_at = ? WHERE id = ?",
                    (*values, now, upcoming, last, old["id"]))
                changed += 1
        for old in existing.values():
            ended += await self.cancel(old["id"])
        return added, changed, ended

    # ------------------------------------------------------------------ reading

    async def get(self, series: int) -> Series | None:
        row = await self.db.fetchone("SELECT * FROM series WHERE id = ?", (series,))
        return None if row is None else _series(row)

    async def active(self) -> list[Series]:
        return [_series(r) for r in await self.db.fetchall("SELECT * FROM series WHERE cancelled_at IS NULL"
                                                           " ORDER BY id")]

    async def schedules(self) -> list[tuple[int, str]]:
        """(id, repeat) of every active series: what the scheduler's jobs are built from."""
        return [(r[0], r[1]) for r in await self.db.fetchall(
            "SELECT id, repeat FROM series WHERE cancelled_at IS NULL ORDER BY id")]

    async def recent(self, limit: int = 50) -> list[Series]:
        """Active series first, then the most recently ended."""
        return [_series(r) for r in await self.db.fetchall(
            "SELECT * FROM series ORDER BY cancelled_at IS NOT NULL, id DESC LIMIT ?", (limit,))]

    async def overdue(self, now: float) -> list[int]:
        """Active series whose next run is at or before `now` (missed, or not fired yet)."""
        return [r[0] for r in await self.db.fetchall(
            "SELECT id FROM series WHERE cancelled_at IS NULL AND next_run_at <= ? ORDER BY next_run_at", (now,))]

    async def firings(self, series: int, limit: int = 100) -> list[dict[str, Any]]:
        """The firings of a series, newest first: run_at, fired_at, missed, broadcasts (ids), recipients."""
        rows = await self.db.fetchall(
            "SELECT run_at, fired_at, missed, broadcasts, recipients FROM series_firings WHERE series = ?"
            " ORDER BY run_at DESC LIMIT ?", (series, limit))
        return [{**dict(r), "broadcasts": json.loads(r["broadcasts"])} for r in rows]

    async def firing_count(self, series: int) -> int:
        return int(await self.db.fetchval("SELECT COUNT(*) FROM series_firings WHERE series = ?", (series,)))

    # ------------------------------------------------------------------ firing

    async def fire(self, series: int, now: float | None = None) -> Firing | None:
        """Fire the run of `series` that is due at `now` (coalescing missed ones); None when nothing
        is due, the series ended, or another caller fired that run first."""
        now = self.clock() if now is None else now
        row = await self.get(series)
        if row is None or row.cancelled_at is not None:
            return None
        trigger = parse_repeat(row.repeat, self.tz)
        due = due_run(trigger, row.last_run_at or row.created_at, now, self.tz)
        upcoming = next_run(trigger, now, self.tz)
        if due is None:
            if row.next_run_at != upcoming:
                await self.db.write("UPDATE series SET next_run_at = ? WHERE id = ? AND cancelled_at IS NULL",
                                    (upcoming, series))
            return None
        items = await self.items(row, due.run_at)
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "INSERT INTO series_firings (series, run_at, fired_at, missed) SELECT ?, ?, ?, ? WHERE EXISTS"
                " (SELECT 1 FROM series WHERE id = ? AND cancelled_at IS NULL AND COALESCE(last_run_at, 0) < ?)"
                " ON CONFLICT (series, run_at) DO NOTHING", (series, due.run_at, now, due.missed, series, due.run_at))
            if cursor.rowcount != 1:
                return None
            firing = cursor.lastrowid
            ids = [i for i in await outbox.queue(tx, items, now, created_by=f"series:{series}") if i is not None]
            recipients = sum(len(item.chats) for item in items)
            await tx.execute("UPDATE series_firings SET broadcasts = ?, recipients = ? WHERE id = ?",
                             (json.dumps(ids), recipients, firing))
            await tx.execute("UPDATE series SET last_run_at = ?, next_run_at = ? WHERE id = ?",
                             (due.run_at, upcoming, series))
        log.info("series %d fired for %.0f (%d missed runs coalesced): %d broadcasts, %d recipients",
                 series, due.run_at, due.missed, len(ids), recipients)
        return Firing(series, due.run_at, due.missed, ids, recipients)

    async def items(self, row: Series, run_at: float) -> list[Queued]:
        """What one run of `row` queues."""
        if row.kind != "broadcast":
            prepare = self.prepare.get(row.kind)
            if prepare is None:
                log.error("series %d: no way to prepare a '%s' firing here", row.id, row.kind)
                return []
            return await prepare(row, run_at)
        source = f"series:{row.id}"
        chats = await self.broadcasts.audience_of(Target(row.audience, row.locality, row.channel))
        if not templates.per_locality(row.text):
            text = templates.render(row.text, run_at, self.tz, none_due=self.none_due)
            return [Queued(text, chats, source, row.locality, ack=True, audience=row.audience, title=row.title,
                           channel=row.channel)]
        by_code: dict[str, list[outbox.Recipient]] = {}
        for chat in chats:
            by_code.setdefault(chat[4] or "", []).append(chat)
        facts = await self.facts(sorted(c for c in by_code if c), run_at) if self.facts else {}
        items = []
        for code, mine in sorted(by_code.items()):
            item = self.tree.get(code) if code else None
            text = templates.render(row.text, run_at, self.tz, place=item.name if item else "",
                                    facts=facts.get(code), none_due=self.none_due)
            items.append(Queued(text, mine, source, code or None, ack=True, audience=row.audience, title=row.title,
                                channel=row.channel))
        return items
