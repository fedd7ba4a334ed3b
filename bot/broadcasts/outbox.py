"""Queue and withdraw ready-made broadcasts inside a caller's write transaction.

The only writer of `broadcasts`/`outbox` rows for services that send their own messages
(supervision's reminders, escalations, nudges and extension requests): a broadcast row with the
text, its buttons in `options` (instead of "Đã nhận"), already confirmed and resolved, plus one
outbox row per recipient; the delivery worker sends them, paced and retried like any broadcast.
Ids come from SQLite's own AUTOINCREMENT (`lastrowid`), so nothing assumes who else writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import aiosqlite

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
