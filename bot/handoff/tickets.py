"""The ticket store: `tickets`, `ticket_messages` and `ticket_posts` (bot/store/migrations/004_handoff.sql).

The only module with SQL on those tables; the handoff service, petitions, privacy and the CLI
(`python -m bot tickets …`) call it. No conversation here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.store.db import Database

# a ticket's channel, shown
CHANNEL_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "zalo_oa": "Zalo OA", "console": "dòng lệnh"}


@dataclass(frozen=True)
class Ticket:
    id: int
    kind: str
    chat: int | None
    channel: str
    user_id: str | None
    display_name: str | None
    locality: str | None
    topic: str | None
    text: str
    photo: str | None
    status: str
    answer: str | None
    answered_by: str | None
    answered_at: float | None
    closed_by: str | None
    closed_at: float | None
    created_at: float
    updated_at: float
    reminded_at: float | None
    erased_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _ticket(row: aiosqlite.Row) -> Ticket:
    return Ticket(**{name: row[name] for name in Ticket.__dataclass_fields__})


class Tickets:
    """The tickets table and its companions; no conversation here."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        # Chats that may have an open question, once `load()`ed (the service does; a CLI command
        # always asks the table): every resident message asks, and almost every answer is "none",
        # which is then given without a query. Only the service opens questions, so the set stays
        # true; a question closed elsewhere (`tickets close`) is found closed by the query and dropped.
        self._asking: set[int] | None = None

    async def load(self) -> None:
        rows = await self.db.fetchall(
            "SELECT DISTINCT chat FROM tickets WHERE kind = 'question' AND status = 'open' AND chat IS NOT NULL")
        self._asking = {int(r[0]) for r in rows}

    async def create(self, kind: str, chat: int | None, channel: str, user_id: str | None,
                     display_name: str | None, text: str, *, locality: str | None = None,
                     topic: str | None = None, photo: str | None = None, consent: bool = False) -> int:
        now = self.clock()
        if kind == "question" and chat is not None and self._asking is not None:
            self._asking.add(chat)
        return await self.db.write(
            "INSERT INTO tickets (kind, chat, channel, user_id, display_name, locality, topic, text, photo,"
            " consent_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, chat, channel, user_id, display_name or None, locality, topic, text, photo,
             now if consent else None, now, now),
        )

    async def get(self, ticket: int) -> Ticket | None:
        row = await self.db.fetchone("SELECT * FROM tickets WHERE id = ?", (ticket,))
        return _ticket(row) if row else None

    async def list(self, *, status: str | None = None, kind: str | None = None, chat: int | None = None,
                   limit: int | None = None, localities: list[str] | None = None,
                   topic: str | None = None) -> list[Ticket]:
        """Tickets in id order (the newest `limit` of them); `localities`: any of these codes."""
        where, params = ["1 = 1"], []
        for column, value in (("status", status), ("kind", kind), ("chat", chat), ("topic", topic)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if localities is not None:
            where.append(f"locality IN ({', '.join('?' for _ in localities) or 'NULL'})")
            params.extend(localities)
        sql = f"SELECT * FROM tickets WHERE {' AND '.join(where)} ORDER BY id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql} DESC LIMIT {int(limit)}) ORDER BY id"
        return [_ticket(r) for r in await self.db.fetchall(sql, params)]

    async def counts(self) -> dict[str, int]:
        """Tickets per status."""
        rows = await self.db.fetchall("SELECT status, COUNT(*) AS n FROM tickets GROUP BY status")
        return {r["status"]: int(r["n"]) for r in rows}

    async def first_responses(self, since: float) -> list[float]:
        """Seconds from each ticket opened since `since` to the first staff message on it (answered ones)."""
        rows = await self.db.fetchall(
            "SELECT MIN(m.at) - t.created_at AS waited FROM tickets t JOIN ticket_messages m ON m.ticket = t.id"
            " AND m.direction = 'staff' WHERE t.created_at >= ? GROUP BY t.id", (since,))
        return [float(r["waited"]) for r in rows]

    async def open_count(self, chat: int) -> int:
        return int(await self.db.fetchval("SELECT COUNT(*) FROM tickets WHERE chat = ? AND status = 'open'", (chat,)))

    async def latest_open_question(self, chat: int) -> Ticket | None:
        if self._asking is not None and chat not in self._asking:
            return None
        row = await self.db.fetchone(
            "SELECT * FROM tickets WHERE chat = ? AND kind = 'question' AND status = 'open' ORDER BY id DESC LIMIT 1",
            (chat,),
        )
        if row is None and self._asking is not None:
            self._asking.discard(chat)
        return _ticket(row) if row else None

    async def add_message(self, ticket: int, direction: str, text: str, *, photo: str | None = None,
                          author: str | None = None) -> None:
        now = self.clock()
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO ticket_messages (ticket, direction, text, photo, author, at) VALUES (?, ?, ?, ?, ?, ?)",
                (ticket, direction, text, photo, author, now),
            )
            await tx.execute("UPDATE tickets SET updated_at = ? WHERE id = ?", (now, ticket))

    async def messages(self, ticket: int) -> list[aiosqlite.Row]:
        return await self.db.fetchall("SELECT * FROM ticket_messages WHERE ticket = ? ORDER BY id", (ticket,))

    async def followups(self, ticket: int) -> int:
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM ticket_messages WHERE ticket = ? AND direction = 'resident'", (ticket,)))

    async def last_resident_activity(self, ticket: Ticket) -> float:
        at = await self.db.fetchval(
            "SELECT MAX(at) FROM ticket_messages WHERE ticket = ? AND direction = 'resident'", (ticket.id,))
        return max(ticket.created_at, at or 0.0)

    async def record_post(self, ticket: int, channel: str, chat_id: str, message_ids: list[str]) -> None:
        now = self.clock()
        await self.db.write_many(
            "INSERT OR REPLACE INTO ticket_posts (channel, chat_id, message_id, ticket, posted_at)"
            " VALUES (?, ?, ?, ?, ?)", [(channel, chat_id, m, ticket, now) for m in message_ids],
        )

    async def by_post(self, channel: str, chat_id: str, message_id: str) -> int | None:
        return await self.db.fetchval(
            "SELECT ticket FROM ticket_posts WHERE channel = ? AND chat_id = ? AND message_id = ?",
            (channel, chat_id, message_id),
        )

    async def posts(self, ticket: int) -> list[aiosqlite.Row]:
        return await self.db.fetchall("SELECT * FROM ticket_posts WHERE ticket = ? ORDER BY posted_at", (ticket,))

    async def answer(self, ticket: int, text: str, by: str) -> None:
        now = self.clock()
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE tickets SET status = CASE WHEN status = 'closed' THEN 'closed' ELSE 'answered' END,"
                " answer = CASE WHEN answer IS NULL THEN ? ELSE answer || char(10) || char(10) || ? END,"
                " answered_by = ?, answered_at = ?, updated_at = ? WHERE id = ?",
                (text, text, by, now, now, ticket),
            )
            await tx.execute(
                "INSERT INTO ticket_messages (ticket, direction, text, author, at) VALUES (?, 'staff', ?, ?, ?)",
                (ticket, text, by, now),
            )

    async def close(self, ticket: int, by: str) -> bool:
        """Mark handled; False when it already was."""
        now = self.clock()
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE tickets SET status = 'closed', closed_by = ?, closed_at = ?, updated_at = ?"
                " WHERE id = ? AND status != 'closed'", (by, now, now, ticket),
            )
            return cursor.rowcount == 1

    async def mark_reminded(self, ticket: int, at: float) -> None:
        await self.db.write("UPDATE tickets SET reminded_at = ? WHERE id = ?", (at, ticket))

    async def waiting(self) -> list[aiosqlite.Row]:
        """Open tickets without an answer (id, created_at, reminded_at), oldest first."""
        return await self.db.fetchall(
            "SELECT id, created_at, reminded_at FROM tickets WHERE status = 'open' AND answered_at IS NULL"
            " ORDER BY id")

    async def erase_person(self, tx: aiosqlite.Connection, chat: int, channel: str, user_id: str,
                           now: float) -> list[int]:
        """Inside the caller's transaction: the person's tickets become anonymous (open ones closed)."""
        cursor = await tx.execute(
            "SELECT id FROM tickets WHERE chat = ? OR (channel = ? AND user_id = ?)", (chat, channel, user_id))
        tickets = [r[0] for r in await cursor.fetchall()]
        if tickets:
            marks = ", ".join("?" for _ in tickets)
            await tx.execute(
                "UPDATE tickets SET chat = NULL, user_id = NULL, display_name = NULL, photo = NULL, erased_at = ?,"
                " closed_by = CASE WHEN status = 'open' THEN 'xoadulieu' ELSE closed_by END,"
                " closed_at = CASE WHEN status = 'open' THEN ? ELSE closed_at END,"
                f" status = CASE WHEN status = 'open' THEN 'closed' ELSE status END WHERE id IN ({marks})",
                (now, now, *tickets),
            )
            await tx.execute(f"UPDATE ticket_messages SET photo = NULL WHERE ticket IN ({marks})", tickets)
        return tickets

    async def purge(self, cutoff: float, now: float) -> list[int]:
        """Erase the personal fields of tickets answered or closed at or before `cutoff`."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "SELECT id FROM tickets WHERE status IN ('answered', 'closed') AND erased_at IS NULL"
                " AND COALESCE(closed_at, answered_at, updated_at) <= ?", (cutoff,),
            )
            ids = [r[0] for r in await cursor.fetchall()]
            if ids:
                marks = ", ".join("?" for _ in ids)
                await tx.execute(
                    "UPDATE tickets SET chat = NULL, user_id = NULL, display_name = NULL, photo = NULL,"
                    f" erased_at = ? WHERE id IN ({marks})", (now, *ids),
                )
                await tx.execute(f"UPDATE ticket_messages SET photo = NULL WHERE ticket IN ({marks})", ids)
        return ids


async def by_locality(db: Database, start: float, end: float) -> dict[str, dict[str, Any]]:
    """Locality code (the ticket's, else its author's chat's) -> {"questions", "petitions": received in
    [start, end), "answered": of those, answered, "answer_seconds": [each one's time to answer]}."""
    found: dict[str, dict[str, Any]] = {}
    for r in await db.fetchall(
            "SELECT COALESCE(t.locality, c.locality) AS locality, t.kind, t.created_at, t.answered_at"
            " FROM tickets t LEFT JOIN chats c ON c.id = t.chat WHERE t.created_at >= ? AND t.created_at < ?",
            (start, end)):
        if r["locality"] is None:
            continue
        mine = found.setdefault(r["locality"], {"questions": 0, "petitions": 0, "answered": 0, "answer_seconds": []})
        mine["questions" if r["kind"] == "question" else "petitions"] += 1
        if r["answered_at"] is not None:
            mine["answered"] += 1
            mine["answer_seconds"].append(r["answered_at"] - r["created_at"])
    return found
