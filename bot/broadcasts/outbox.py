"""The one writer of `outbox` and `broadcasts` rows: a staff broadcast drafted, queued, resolved and
cancelled (for bot.broadcasts.store), the delivery worker's progress through a broadcast (sent,
retried, failed, moved, done), the progress line's summary mark, a group's new id, a person's
sends erased, and services that send their own messages.

Ready-made broadcasts (supervision's reminders, escalations, nudges and extension requests) are
queued and withdrawn inside the caller's write transaction: a broadcast row with the text, its
buttons in `options` (instead of "Đã nhận"), already confirmed and resolved, plus one outbox row
per recipient; the delivery worker sends them, paced and retried like any broadcast. Ids come
from SQLite's own AUTOINCREMENT (`lastrowid`), so nothing assumes who else writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import aiosqlite

from bot.store.db import Database

# a chats row a message goes to: (chats.id, channel, chat_id, kind, locality)
Recipient = tuple[int, str, str, str, str | None]


@dataclass(frozen=True)
class Queued:
    """One message to queue: its text, recipients, `source` tag, locality and buttons (label, data).
    `ack`: the "Đã nhận" button instead of `options` (what a staff broadcast to groups carries);
    `audience`, `title`, `channel`: the broadcasts row's, for its report (a recurring series')."""

    text: str
    chats: Sequence[Recipient]
    source: str
    locality: str | None = None
    options: Sequence[tuple[str, str]] = field(default_factory=tuple)
    ack: bool = False
    audience: str = "groups"
    title: str | None = None
    channel: str | None = None


async def queue(tx: aiosqlite.Connection, items: Iterable[Queued], now: float, *,
                created_by: str) -> list[int | None]:
    """A queued broadcast and its outbox rows per item, in `tx`; the new ids in order, None for an
    item without recipients (nothing is written for it)."""
    ids: list[int | None] = []
    outbox: list[tuple[int, int, str, str, str, str | None, float]] = []
    for item in items:
        if not item.chats:
            ids.append(None)
            continue
        cursor = await tx.execute(
            "INSERT INTO broadcasts (text, title, audience, locality, channel, send_at, status, total, source,"
            " created_by, created_at, confirmed_at, options, resolved_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
            (item.text, item.title, item.audience, item.locality, item.channel, now, len(item.chats), item.source,
             created_by, now, now,
             None if item.ack else json.dumps([list(o) for o in item.options], ensure_ascii=False), now))
        broadcast = int(cursor.lastrowid or 0)
        ids.append(broadcast)
        outbox += [(broadcast, c[0], c[1], c[2], c[3], c[4], now) for c in item.chats]
    if outbox:
        await tx.executemany(
            "INSERT INTO outbox (broadcast, chat, channel, chat_id, kind, locality, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (broadcast, chat) DO NOTHING", outbox)
    return ids


async def withdraw(tx: aiosqlite.Connection, broadcasts: Sequence[int], now: float) -> None:
    """Cancel these broadcasts if not finished, and their outbox rows not yet sent."""
    if not broadcasts:
        return
    marks = ", ".join("?" for _ in broadcasts)
    await tx.execute(f"UPDATE broadcasts SET status = 'cancelled', finished_at = ? WHERE id IN ({marks})"
                     " AND status IN ('queued', 'sending')", (now, *broadcasts))
    await tx.execute(f"UPDATE outbox SET status = 'failed', reason = 'cancelled' WHERE broadcast IN ({marks})"
                     " AND status = 'pending'", tuple(broadcasts))


async def undelivered(tx: aiosqlite.Connection, broadcasts: Sequence[int]) -> set[int]:
    """Those of `broadcasts` not yet delivered to (nor failed for) any chat."""
    if not broadcasts:
        return set()
    marks = ", ".join("?" for _ in broadcasts)
    cursor = await tx.execute(
        f"SELECT id FROM broadcasts b WHERE id IN ({marks}) AND NOT EXISTS (SELECT 1 FROM outbox o"
        " WHERE o.broadcast = b.id AND o.status != 'pending')", tuple(broadcasts))
    return {int(r[0]) for r in await cursor.fetchall()}


async def redact(tx: aiosqlite.Connection, sources: Sequence[str], words: Sequence[str]) -> int:
    """Replace each of `words` (a person's name) by "—" in the text of the broadcasts queued with these
    `source` tags (an erasure: the staff post that named them); the rows changed."""
    changed = 0
    marks = ", ".join("?" for _ in sources)
    for word in (w for w in words if w):
        if not sources:
            break
        cursor = await tx.execute(f"UPDATE broadcasts SET text = replace(text, ?, '—') WHERE source IN ({marks})"
                                  " AND instr(text, ?) > 0", (word, *sources, word))
        changed += max(cursor.rowcount, 0)
    return changed


# ---------------------------------------------------------------------- the delivery worker's writes


async def mark_sent(db: Database, row: int, now: float, pieces: int, message_ids: str) -> None:
    """Every piece of the message reached the recipient."""
    await db.write("UPDATE outbox SET status = 'sent', sent_at = ?, pieces_sent = ?, message_ids = ?, reason = NULL"
                   " WHERE id = ?", (now, pieces, message_ids, row))


async def mark_piece(db: Database, row: int, pieces: int, message_ids: str) -> None:
    """One more piece sent (a restart sends only the rest)."""
    await db.write("UPDATE outbox SET pieces_sent = ?, message_ids = ? WHERE id = ?", (pieces, message_ids, row))


async def redirect(db: Database, row: int, chat_id: str, attempts: int) -> None:
    """The group got a new id: resend there."""
    await db.write("UPDATE outbox SET chat_id = ?, attempts = ? WHERE id = ?", (chat_id, attempts, row))


async def retry_at(db: Database, row: int, attempts: int, reason: str, when: float) -> None:
    await db.write("UPDATE outbox SET attempts = ?, reason = ?, next_attempt_at = ? WHERE id = ?",
                   (attempts, reason, when, row))


async def defer(db: Database, rows: Sequence[tuple[float, int]]) -> None:
    """(next attempt time, row) for rows a full pacing window put off."""
    await db.write_many("UPDATE outbox SET next_attempt_at = ? WHERE id = ?", rows)


async def mark_failed(tx: aiosqlite.Connection, row: int, attempts: int, reason: str) -> None:
    """Inside the caller's transaction: failed for good."""
    await tx.execute("UPDATE outbox SET status = 'failed', attempts = ?, reason = ? WHERE id = ?",
                     (attempts, reason, row))


async def mark_sending(db: Database, broadcasts: Sequence[int]) -> None:
    marks = ", ".join("?" for _ in broadcasts)
    await db.write(f"UPDATE broadcasts SET status = 'sending' WHERE status = 'queued' AND id IN ({marks})",
                   list(broadcasts))


async def mark_done(db: Database, broadcasts: Sequence[int], now: float) -> None:
    marks = ", ".join("?" for _ in broadcasts)
    await db.write(f"UPDATE broadcasts SET status = 'done', finished_at = ? WHERE id IN ({marks})",
                   [now, *broadcasts])


async def mark_notified(db: Database, broadcast: int, now: float) -> None:
    """The sender was given the final summary (bot.broadcasts.progress): never again."""
    await db.write("UPDATE broadcasts SET notified_at = ? WHERE id = ?", (now, broadcast))


# ---------------------------------------------------------------------- a group's new id (bot.audiences.chats)


class OutboxRows:
    """The outbox and acknowledgement rows that point at a chat, for `ChatMigration`."""

    async def held(self, tx: aiosqlite.Connection, chat: int) -> int:
        cursor = await tx.execute("SELECT (SELECT COUNT(*) FROM outbox WHERE chat = ?) + (SELECT COUNT(*) FROM"
                                  " acknowledgements WHERE chat = ?)", (chat, chat))
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def merged(self, tx: aiosqlite.Connection, into: int, gone: int) -> None:
        pass  # a chat that holds rows is never merged away (see ChatMigration)

    async def renamed(self, tx: aiosqlite.Connection, chat: int, new_id: str) -> None:
        await tx.execute("UPDATE outbox SET chat_id = ? WHERE chat = ? AND status = 'pending'", (new_id, chat))


# ---------------------------------------------------------------------- a staff broadcast's life (bot.broadcasts.store)


async def insert_draft(tx: aiosqlite.Connection, text: str, title: str | None, audience: str,
                       locality: str | None, channel: str | None, send_at: float, source: str | None,
                       created_by: str, now: float) -> int:
    """A new broadcast, still a draft; its id."""
    cursor = await tx.execute(
        "INSERT INTO broadcasts (text, title, audience, locality, channel, send_at, status, source,"
        " created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?)",
        (text, title, audience, locality, channel, send_at, source, created_by, now))
    return int(cursor.lastrowid or 0)


async def reschedule(tx: aiosqlite.Connection, broadcast: int, send_at: float) -> None:
    await tx.execute("UPDATE broadcasts SET send_at = ? WHERE id = ?", (send_at, broadcast))


async def notify_to(tx: aiosqlite.Connection, broadcast: int, channel: str, chat_id: str) -> None:
    """Where the progress line goes (see bot.broadcasts.progress)."""
    await tx.execute("UPDATE broadcasts SET notify_channel = ?, notify_chat_id = ? WHERE id = ?",
                     (channel, chat_id, broadcast))


async def mark_queued(tx: aiosqlite.Connection, broadcast: int, now: float) -> bool:
    """A draft confirmed; False when it was not a draft any more (a second tap)."""
    cursor = await tx.execute(
        "UPDATE broadcasts SET status = 'queued', confirmed_at = ? WHERE id = ? AND status = 'draft'",
        (now, broadcast))
    return cursor.rowcount == 1


async def estimate(tx: aiosqlite.Connection, broadcast: int, total: int) -> None:
    """A scheduled broadcast's recipient count today, for its preview; the rows come when it is due."""
    await tx.execute("UPDATE broadcasts SET total = ? WHERE id = ?", (total, broadcast))


async def resolve(tx: aiosqlite.Connection, broadcast: int, where: str, params: Sequence[object],
                  send_at: float, now: float) -> int:
    """One outbox row per chat matching `where` (a condition on `chats`, built by
    bot.broadcasts.store), and the broadcast marked resolved with that total."""
    cursor = await tx.execute(
        "INSERT INTO outbox (broadcast, chat, channel, chat_id, kind, locality, next_attempt_at)"
        f" SELECT ?, id, channel, chat_id, kind, locality, ? FROM chats WHERE {where}"
        " ORDER BY id ON CONFLICT (broadcast, chat) DO NOTHING",
        (broadcast, send_at, *params))
    total = max(cursor.rowcount, 0)
    await tx.execute("UPDATE broadcasts SET total = ?, resolved_at = ? WHERE id = ?", (total, now, broadcast))
    return total


async def set_notify_message(db: Database, broadcast: int, message_id: str) -> None:
    """The confirmation message, to be edited into the progress line."""
    await db.write("UPDATE broadcasts SET notify_message_id = ? WHERE id = ?", (message_id, broadcast))


async def discard_draft(tx: aiosqlite.Connection, broadcast: int, now: float) -> bool:
    cursor = await tx.execute(
        "UPDATE broadcasts SET status = 'cancelled', finished_at = ? WHERE id = ? AND status = 'draft'",
        (now, broadcast))
    return cursor.rowcount == 1


async def cancel(tx: aiosqlite.Connection, broadcast: int, now: float) -> int | None:
    """Stop a broadcast not finished yet: its pending rows fail as "cancelled"; how many were
    dropped, None if it could not be cancelled."""
    cursor = await tx.execute(
        "UPDATE broadcasts SET status = 'cancelled', finished_at = ? WHERE id = ?"
        " AND status IN ('draft', 'queued', 'sending')", (now, broadcast))
    if cursor.rowcount != 1:
        return None
    cursor = await tx.execute(
        "UPDATE outbox SET status = 'failed', reason = 'cancelled' WHERE broadcast = ? AND status = 'pending'",
        (broadcast,))
    return max(cursor.rowcount, 0)


async def erase_sends(tx: aiosqlite.Connection, chat: int, tombstone: str) -> int:
    """Inside the caller's transaction (/xoadulieu): drop pending sends to the chat and point sent
    ones at its tombstone id; the number dropped."""
    cursor = await tx.execute("DELETE FROM outbox WHERE chat = ? AND status = 'pending'", (chat,))
    dropped = max(cursor.rowcount, 0)
    await tx.execute("UPDATE outbox SET chat_id = ? WHERE chat = ?", (tombstone, chat))
    return dropped
