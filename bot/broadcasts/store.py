"""Broadcasts: compose, target, queue, cancel, report; and the "Đã nhận" button of group broadcasts.

Confirming a broadcast writes its outbox — one row per recipient — in the same transaction
that marks it queued, so a broadcast is either fully queued or not at all; confirming twice
queues nothing more (the status changes once, and `UNIQUE (broadcast, chat)` holds anyway).
A broadcast scheduled for later is queued without rows: its audience is resolved when it becomes
due (`resolve_due`, called by the delivery worker), in one transaction guarded by `resolved_at`,
so people who subscribe meanwhile get it too and resolving twice writes nothing more.
Recipients are the active chats that consented (groups by registering, residents through
/diaban), of the chosen kind, in the chosen locality's whole subtree, on the chosen channel.
Every write to `broadcasts` and `outbox` rows goes through bot.broadcasts.outbox, their one writer;
the delivery worker (bot.delivery.worker) sends from the outbox.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite
import yaml

from bot.audiences.localities import Localities
from bot.broadcasts import outbox
from bot.kernel.content import Problem
from bot.store.db import Database

log = logging.getLogger(__name__)

AUDIENCES = ("groups", "residents", "all")
_KINDS = {"groups": ("group",), "residents": ("private",), "all": ("group", "private")}
ACK_PREFIX = "ack"


class BroadcastError(Exception):
    """A broadcast cannot be composed as asked; the message says why, in Vietnamese."""


@dataclass(frozen=True)
class Target:
    audience: str = "all"
    locality: str | None = None
    channel: str | None = None


@dataclass
class Report:
    id: int
    status: str
    title: str | None
    audience: str
    locality: str | None
    channel: str | None
    send_at: float
    created_at: float
    total: int = 0
    sent: int = 0
    pending: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    acknowledged: int = 0
    # locality code ("" for none) -> {"total", "sent", "pending", "failed", "acknowledged"}
    by_locality: dict[str, dict[str, int]] = field(default_factory=dict)
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)  # "telegram"/"zalo" -> the same counts
    resolved: bool = True  # False: scheduled, recipients not chosen yet (total/pending are today's count)

    def as_json(self) -> dict[str, Any]:
        """The shape DESIGN.md promises for `broadcast show ID --json`."""
        return {"id": self.id, "total": self.total, "sent": self.sent, "pending": self.pending,
                "failed": dict(self.failed), "acknowledged": self.acknowledged}

    def as_json_full(self) -> dict[str, Any]:
        """DESIGN.md's keys, plus the breakdown by locality: code ("" when unknown) -> its counts."""
        return {**self.as_json(),
                "by_locality": {code: dict(counts) for code, counts in sorted(self.by_locality.items())}}


def parse_audience(value: str) -> str:
    """"groups", "residents", "all", or a comma list of them ("groups,residents" is "all")."""
    parts = {p.strip().lower() for p in value.split(",") if p.strip()}
    if not parts or not parts <= set(AUDIENCES):
        raise BroadcastError(f"đối tượng '{value}' không hợp lệ (chọn: {', '.join(AUDIENCES)})")
    if "all" in parts or parts == {"groups", "residents"}:
        return "all"
    return parts.pop()


def parse_time(value: str, tz: ZoneInfo) -> float:
    """ISO 8601 with an offset, or local time in `tz` ("2025-07-01 08:00"), as epoch seconds."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BroadcastError(
            f"thời điểm '{value}' không hợp lệ: dùng dạng 2025-07-01T08:00 (giờ Việt Nam) "
            "hoặc kèm múi giờ, ví dụ 2025-07-01T08:00+07:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.timestamp()


class Broadcasts:
    def __init__(self, db: Database, tree: Localities, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.tree = tree
        self.clock = clock

    # ------------------------------------------------------------------ targeting

    def check_target(self, target: Target) -> None:
        if target.audience not in AUDIENCES:
            raise BroadcastError(f"đối tượng '{target.audience}' không hợp lệ (chọn: {', '.join(AUDIENCES)})")
        if target.locality is not None and target.locality not in self.tree:
            raise BroadcastError(f"không có địa bàn '{target.locality}'")

    def _where(self, target: Target) -> tuple[str, list[Any]]:
        kinds = _KINDS[target.audience]
        sql = ("active = 1 AND consent = 1 AND channel != 'console'"
               f" AND kind IN ({', '.join('?' for _ in kinds)})")
        params: list[Any] = list(kinds)
        if target.locality is not None:
            sql += " AND locality IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(self.tree.subtree(target.locality)))
        if target.channel is not None:
            sql += " AND channel = ?"
            params.append(target.channel)
        return sql, params

    async def audience_of(self, target: Target) -> list[tuple[int, str, str, str, str | None]]:
        """The recipients `target` means now, as outbox.Recipient rows (chats order)."""
        self.check_target(target)
        where, params = self._where(target)
        rows = await self.db.fetchall(
            f"SELECT id, channel, chat_id, kind, locality FROM chats WHERE {where} ORDER BY id", params)
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def count(self, target: Target) -> int:
        self.check_target(target)
        where, params = self._where(target)
        return int(await self.db.fetchval(f"SELECT COUNT(*) FROM chats WHERE {where}", params))

    # ------------------------------------------------------------------ compose, confirm, cancel

    async def create(
        self,
        text: str,
        target: Target,
        *,
        title: str | None = None,
        send_at: float | None = None,
        created_by: str = "cli",
        source: str | None = None,
        confirm: bool = True,
    ) -> int:
        """Store a broadcast; with `confirm`, queue it (outbox included) in the same transaction."""
        self.check_target(target)
        text = text.strip()
        if not text:
            raise BroadcastError("nội dung thông báo đang trống")
        now = self.clock()
        when = now if send_at is None else send_at
        async with self.db.transaction() as tx:
            broadcast = await outbox.insert_draft(tx, text, title, target.audience, target.locality,
                                                  target.channel, when, source, created_by, now)
            total = await self._queue(tx, broadcast, target, when, now) if confirm else 0
        log.info("broadcast %d %s by %s: %s, %d recipients, send at %.0f", broadcast,
                 "queued" if confirm else "drafted", created_by, target, total, when)
        return broadcast

    async def confirm(self, broadcast: int) -> int:
        """Queue a draft; return how many outbox rows were written (0 if it was already confirmed)."""
        return await self.queue_draft(broadcast) or 0

    async def queue_draft(self, broadcast: int, send_at: float | None = None,
                          notify: tuple[str, str] | None = None) -> int | None:
        """Queue a draft (at `send_at` if given), in one transaction; its recipient count, or None
        when it is not a draft any more (already confirmed, cancelled, unknown): a second tap is a no-op.
        `notify`: (channel, chat_id) told how the sending goes (see bot/progress.py)."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "SELECT audience, locality, channel, send_at, status FROM broadcasts WHERE id = ?", (broadcast,)
            )
            row = await cursor.fetchone()
            if row is None or row["status"] != "draft":
                return None
            when = max(row["send_at"], 0) if send_at is None else send_at
            if send_at is not None:
                await outbox.reschedule(tx, broadcast, send_at)
            if notify is not None:
                await outbox.notify_to(tx, broadcast, *notify)
            target = Target(row["audience"], row["locality"], row["channel"])
            total = await self._queue(tx, broadcast, target, when, self.clock())
        log.info("broadcast %d confirmed: %d recipients", broadcast, total)
        return total

    async def _queue(self, tx: Any, broadcast: int, target: Target, send_at: float, now: float) -> int:
        if not await outbox.mark_queued(tx, broadcast, now):
            return 0
        where, params = self._where(target)
        if send_at > now:  # scheduled: today's count for the preview; the rows when it is due
            cursor = await tx.execute(f"SELECT COUNT(*) FROM chats WHERE {where}", params)
            estimate = int((await cursor.fetchone())[0])
            await outbox.estimate(tx, broadcast, estimate)
            return estimate
        return await self._write_outbox(tx, broadcast, target, send_at, now)

    async def _write_outbox(self, tx: Any, broadcast: int, target: Target, send_at: float, now: float) -> int:
        where, params = self._where(target)
        return await outbox.resolve(tx, broadcast, where, params, send_at, now)

    async def resolve_due(self, now: float | None = None) -> float | None:
        """Write the outbox of every scheduled broadcast that is due (its audience as it is now);
        return when the next one falls due (None: none waiting). Each in its own transaction,
        guarded by `resolved_at`: a second call, or a second process, writes nothing more."""
        now = self.clock() if now is None else now
        rows = await self.db.fetchall(
            "SELECT id, audience, locality, channel, send_at FROM broadcasts"
            " WHERE status = 'queued' AND resolved_at IS NULL ORDER BY send_at, id"
        )
        upcoming = None
        for row in rows:
            if row["send_at"] > now:
                upcoming = row["send_at"] if upcoming is None else min(upcoming, row["send_at"])
                continue
            target = Target(row["audience"], row["locality"], row["channel"])
            async with self.db.transaction() as tx:
                cursor = await tx.execute(
                    "SELECT 1 FROM broadcasts WHERE id = ? AND status = 'queued' AND resolved_at IS NULL", (row["id"],)
                )
                if await cursor.fetchone() is None:
                    continue
                total = await self._write_outbox(tx, row["id"], target, row["send_at"], now)
            log.info("broadcast %d is due: %d recipients", row["id"], total)
        return upcoming

    async def set_notify_message(self, broadcast: int, message_id: str) -> None:
        """The confirmation message, to be edited into the progress line."""
        await outbox.set_notify_message(self.db, broadcast, message_id)

    async def discard_draft(self, broadcast: int) -> bool:
        """Drop a draft that was never confirmed; a queued or running broadcast is left alone."""
        async with self.db.transaction() as tx:
            return await outbox.discard_draft(tx, broadcast, self.clock())

    async def status(self, broadcast: int) -> str | None:
        return await self.db.fetchval("SELECT status FROM broadcasts WHERE id = ?", (broadcast,))

    async def cancel(self, broadcast: int) -> int | None:
        """Stop a broadcast: its pending rows fail as "cancelled". None if it could not be cancelled."""
        now = self.clock()
        async with self.db.transaction() as tx:
            dropped = await outbox.cancel(tx, broadcast, now)
            if dropped is None:
                return None
            cursor = await tx.execute("SELECT total, resolved_at FROM broadcasts WHERE id = ?", (broadcast,))
            row = await cursor.fetchone()
            if row["resolved_at"] is None:  # scheduled, recipients not chosen yet: that many fewer sends
                dropped = int(row["total"])
        log.info("broadcast %d cancelled; %d pending sends dropped", broadcast, dropped)
        return dropped

    # ------------------------------------------------------------------ reports

    async def report(self, broadcast: int) -> Report | None:
        row = await self.db.fetchone("SELECT * FROM broadcasts WHERE id = ?", (broadcast,))
        if row is None:
            return None
        report = Report(
            id=row["id"], status=row["status"], title=row["title"], audience=row["audience"],
            locality=row["locality"], channel=row["channel"], send_at=row["send_at"], created_at=row["created_at"],
            resolved=row["resolved_at"] is not None or row["status"] not in ("queued", "sending"),
        )
        if not report.resolved:  # scheduled: who would get it if it were due now
            target = Target(row["audience"], row["locality"], row["channel"])
            where, params = self._where(target)
            for r in await self.db.fetchall(
                f"SELECT COALESCE(locality, '') AS locality, COUNT(*) AS n FROM chats WHERE {where} GROUP BY 1",
                params,
            ):
                place = report.by_locality.setdefault(r["locality"], _blank_counts())
                place["total"] = place["pending"] = int(r["n"])
                report.total += int(r["n"])
                report.pending += int(r["n"])
            return report
        rows = await self.db.fetchall(
            "SELECT status, reason, COALESCE(locality, '') AS locality, COUNT(*) AS n FROM outbox"
            " WHERE broadcast = ? GROUP BY status, reason, locality", (broadcast,),
        )
        for r in rows:
            n = int(r["n"])
            place = report.by_locality.setdefault(r["locality"], _blank_counts())
            report.total += n
            place["total"] += n
            if r["status"] == "sent":
                report.sent += n
                place["sent"] += n
            elif r["status"] == "pending":
                report.pending += n
                place["pending"] += n
            else:
                reason = r["reason"] or "unknown"
                report.failed[reason] = report.failed.get(reason, 0) + n
                place["failed"] += n
        acks = await self.db.fetchall(
            "SELECT COALESCE(c.locality, '') AS locality, COUNT(*) AS n FROM acknowledgements a"
            " JOIN chats c ON c.id = a.chat WHERE a.broadcast = ? GROUP BY 1", (broadcast,),
        )
        for r in acks:
            report.acknowledged += int(r["n"])
            report.by_locality.setdefault(r["locality"], _blank_counts())["acknowledged"] += int(r["n"])
        report.by_channel = await self._by_channel(broadcast)
        return report

    async def _by_channel(self, broadcast: int) -> dict[str, dict[str, int]]:
        """channel -> {"total", "sent", "pending", "failed", "acknowledged"} of one broadcast."""
        counts: dict[str, dict[str, int]] = {}
        for r in await self.db.fetchall(
            "SELECT o.channel, o.status, COUNT(*) AS n, SUM(EXISTS (SELECT 1 FROM acknowledgements a"
            " WHERE a.broadcast = o.broadcast AND a.chat = o.chat)) AS acked FROM outbox o WHERE o.broadcast = ?"
            " GROUP BY 1, 2", (broadcast,),
        ):
            mine = counts.setdefault(r["channel"], _blank_counts())
            mine["total"] += int(r["n"])
            mine[r["status"] if r["status"] in ("sent", "pending") else "failed"] += int(r["n"])
            mine["acknowledged"] += int(r["acked"] or 0)
        return counts

    async def recipients(self, broadcast: int) -> list[dict[str, Any]]:
        """One row per recipient (outbox order): channel, chat_id, kind, locality, status, reason,
        sent_at (epoch or None), acknowledged (bool). Empty while a scheduled one is not due."""
        rows = await self.db.fetchall(
            "SELECT o.channel, o.chat_id, o.kind, o.locality, o.status, o.reason, o.sent_at,"
            " EXISTS (SELECT 1 FROM acknowledgements a WHERE a.broadcast = o.broadcast AND a.chat = o.chat)"
            " AS acknowledged FROM outbox o WHERE o.broadcast = ? ORDER BY o.id", (broadcast,),
        )
        return [{**dict(r), "acknowledged": bool(r["acknowledged"])} for r in rows]

    async def get(self, broadcast: int) -> dict[str, Any] | None:
        """What was composed: id, title, text, audience, locality, channel, status, send_at, created_by…"""
        row = await self.db.fetchone(
            "SELECT id, title, text, audience, locality, channel, status, send_at, total, created_by, created_at,"
            " finished_at FROM broadcasts WHERE id = ?", (broadcast,))
        return dict(row) if row else None

    async def by_locality_since(self, since: float) -> dict[str, dict[str, int]]:
        """Staff broadcasts (not supervision's own) created since `since`: per recipient locality
        ("" unknown), {"total", "sent", "failed", "acknowledged"}; "broadcasts" counts them overall."""
        staff = "b.created_at >= ? AND COALESCE(b.source, '') NOT LIKE 'sv:%'"
        rows = await self.db.fetchall(
            "SELECT COALESCE(o.locality, '') AS locality, COUNT(*) AS total, SUM(o.status = 'sent') AS sent,"
            " SUM(o.status = 'failed') AS failed FROM broadcasts b JOIN outbox o ON o.broadcast = b.id"
            f" WHERE {staff} GROUP BY 1", (since,))
        # acknowledgements are few next to sends: joined from their side (a lookup per send was 40 % of the time)
        acks = await self.db.fetchall(
            "SELECT COALESCE(o.locality, '') AS locality, COUNT(*) AS n FROM broadcasts b"
            " JOIN acknowledgements a ON a.broadcast = b.id JOIN outbox o ON o.broadcast = a.broadcast"
            f" AND o.chat = a.chat WHERE {staff} GROUP BY 1", (since,))
        acknowledged = {r["locality"]: int(r["n"]) for r in acks}
        return {r["locality"]: {"total": int(r["total"] or 0), "sent": int(r["sent"] or 0),
                                "failed": int(r["failed"] or 0), "acknowledged": acknowledged.get(r["locality"], 0)}
                for r in rows}

    async def count_since(self, since: float) -> int:
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM broadcasts WHERE created_at >= ? AND status != 'draft'"
            " AND COALESCE(source, '') NOT LIKE 'sv:%'", (since,)))

    async def last_failures(self) -> dict[str, tuple[str, float | None]]:
        """Per channel, the reason of the newest failed send (cancellations aside) and when it was tried."""
        rows = await self.db.fetchall(
            "SELECT o.channel, o.reason, o.next_attempt_at FROM outbox o JOIN (SELECT channel, MAX(id) AS id"
            " FROM outbox WHERE status = 'failed' AND reason != 'cancelled' GROUP BY channel) m ON m.id = o.id")
        return {r["channel"]: (r["reason"] or "", r["next_attempt_at"]) for r in rows}

    async def pending_by_channel(self) -> dict[str, int]:
        """The outbox queue: sends waiting, per channel."""
        rows = await self.db.fetchall("SELECT channel, COUNT(*) AS n FROM outbox WHERE status = 'pending' GROUP BY 1")
        return {r["channel"]: int(r["n"]) for r in rows}

    async def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT b.id, b.title, b.text, b.audience, b.locality, b.channel, b.status, b.send_at, b.created_at,"
            " b.total, (SELECT COUNT(*) FROM outbox o WHERE o.broadcast = b.id AND o.status = 'sent') AS sent"
            " FROM broadcasts b ORDER BY b.id DESC LIMIT ?", (limit,),
        )
        return [dict(r) for r in rows]

    # ------------------------------------------------------------------ acknowledgements

    async def acknowledge(self, broadcast: int, chat: int, user_id: str, name: str) -> str:
        """Record that `chat` received `broadcast`, once per chat, and only from a chat it was sent
        to: "recorded", "already", "missing" (no such broadcast) or "not_recipient"."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute("SELECT 1 FROM broadcasts WHERE id = ?", (broadcast,))
            if await cursor.fetchone() is None:
                return "missing"
            cursor = await tx.execute("SELECT 1 FROM outbox WHERE broadcast = ? AND chat = ? AND status = 'sent'",
                                      (broadcast, chat))
            if await cursor.fetchone() is None:
                return "not_recipient"
            cursor = await tx.execute(
                "INSERT INTO acknowledgements (broadcast, chat, user_id, display_name, at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (broadcast, chat) DO NOTHING", (broadcast, chat, user_id, name or None, self.clock()),
            )
            return "recorded" if cursor.rowcount == 1 else "already"

    async def last_acknowledgeable(self, chat: int) -> int | None:
        """The last group broadcast sent to `chat` that is acknowledged with "Đã nhận" (broadcasts
        with their own buttons, such as supervision reminders, are not)."""
        return await self.db.fetchval(
            "SELECT o.broadcast FROM outbox o JOIN broadcasts b ON b.id = o.broadcast"
            " WHERE o.chat = ? AND o.status = 'sent' AND b.audience IN ('groups', 'all') AND b.options IS NULL"
            " ORDER BY o.sent_at DESC, o.id DESC LIMIT 1", (chat,))


def _blank_counts() -> dict[str, int]:
    return {"total": 0, "sent": 0, "pending": 0, "failed": 0, "acknowledged": 0}


# ---------------------------------------------------------------------- announcements files


@dataclass(frozen=True)
class Announcement:
    text: str
    id: str | None = None
    title: str | None = None
    audience: str | None = None
    locality: str | None = None
    channel: str | None = None
    send_at: str | None = None


def read_announcement(path: Path) -> Announcement:
    """A piece to send: plain text, or Markdown with front matter (id, title, audience, send_at…)."""
    try:
        raw = path.read_text(encoding="utf-8").lstrip("\ufeff")
    except (OSError, UnicodeDecodeError) as exc:
        raise BroadcastError(f"không đọc được tệp {path}: {exc}") from None
    lines = raw.splitlines()
    if not lines or lines[0].strip() != "---":
        return Announcement(text=raw.strip())
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise BroadcastError(f"{path}:1: phần đầu YAML không có dòng --- đóng lại")
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise BroadcastError(f"{path}: phần đầu YAML không hợp lệ: {exc}") from None
    if not isinstance(meta, dict):
        raise BroadcastError(f"{path}:2: phần đầu YAML phải là các cặp khóa: giá trị")

    def text(key: str) -> str | None:
        value = meta.get(key)
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value).strip() if value not in (None, "") else None

    return Announcement(
        text="\n".join(lines[end + 1:]).strip(), id=text("id"), title=text("title"), audience=text("audience"),
        locality=text("locality"), channel=text("channel"), send_at=text("send_at"),
    )


def check_announcements(root: Path) -> list[Problem]:
    """`content check` for content/announcements/*.md."""
    from zoneinfo import ZoneInfo

    from bot.audiences.localities import load_localities

    folder = root / "announcements"
    if not folder.is_dir():
        return []
    tree, _ = load_localities(root)
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.md")):
        try:
            piece = read_announcement(path)
        except BroadcastError as exc:
            problems.append(Problem(path, 1, str(exc).split(": ", 1)[-1]))
            continue
        if not piece.text:
            problems.append(Problem(path, 1, "nội dung thông báo đang trống"))
        if not piece.id:
            problems.append(Problem(path, 2, "thiếu id"))
        elif piece.id in seen:
            problems.append(Problem(path, 2, f"id '{piece.id}' trùng với {seen[piece.id].name}"))
        else:
            seen[piece.id] = path
        if not piece.title:
            problems.append(Problem(path, 2, "thiếu title (tiêu đề)"))
        for check, value in (("audience", piece.audience), ("send_at", piece.send_at), ("locality", piece.locality)):
            if value is None:
                continue
            try:
                if check == "audience":
                    parse_audience(value)
                elif check == "send_at":
                    parse_time(value, ZoneInfo("Asia/Ho_Chi_Minh"))
                elif tree.lookup(value) is None and len(tree):
                    raise BroadcastError(f"không có địa bàn '{value}'")
            except BroadcastError as exc:
                problems.append(Problem(path, _line_of(path, f"{check}:"), str(exc)))
    return problems


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith(needle):
            return number
    return 2


async def received_by_locality(db: Database, start: float, end: float) -> dict[str, dict[str, int]]:
    """Group chats' locality code -> {"broadcasts": distinct broadcasts sent there, "sent": group
    messages sent, "acknowledged": of those, acknowledged "Đã nhận"} for sends in [start, end)."""
    rows = await db.fetchall(
        "SELECT o.locality, COUNT(DISTINCT o.broadcast) AS broadcasts, COUNT(*) AS sent,"
        " SUM(EXISTS (SELECT 1 FROM acknowledgements a WHERE a.broadcast = o.broadcast AND a.chat = o.chat))"
        " AS acknowledged FROM outbox o JOIN broadcasts b ON b.id = o.broadcast"
        " WHERE o.status = 'sent' AND o.kind = 'group' AND o.sent_at >= ? AND o.sent_at < ?"
        " AND b.options IS NULL AND o.locality IS NOT NULL GROUP BY o.locality", (start, end))
    return {r["locality"]: {"broadcasts": int(r["broadcasts"]), "sent": int(r["sent"]),
                            "acknowledged": int(r["acknowledged"] or 0)} for r in rows}


async def received_count(db: Database, chat: int) -> int:
    """How many broadcasts were sent to the chat (for /dulieu)."""
    return int(await db.fetchval("SELECT COUNT(*) FROM outbox WHERE chat = ? AND status = 'sent'", (chat,)))


async def erase_person(tx: aiosqlite.Connection, chat: int, channel: str, user_id: str, tombstone: str) -> int:
    """Inside the caller's transaction (/xoadulieu): drop pending sends to the person, point sent ones
    at the chat's tombstone id, and blank their acknowledgements; the number of sends dropped."""
    dropped = await outbox.erase_sends(tx, chat, tombstone)
    await tx.execute(
        "UPDATE acknowledgements SET user_id = '', display_name = NULL WHERE user_id = ?"
        " AND chat IN (SELECT id FROM chats WHERE channel = ?)", (user_id, channel),
    )
    return dropped
