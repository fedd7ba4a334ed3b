"""Who the bot knows: chats (people and groups), their locality and consent, and staff."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import aiosqlite

from bot.channels.base import Inbound
from bot.store.db import Database

log = logging.getLogger(__name__)

CHANNELS = ("telegram", "zalo", "zalo_oa")


@dataclass(frozen=True)
class Chat:
    id: int
    channel: str
    chat_id: str
    kind: str
    display_name: str
    locality: str | None
    consent: bool
    active: bool


def _chat(row) -> Chat:
    return Chat(
        id=row["id"],
        channel=row["channel"],
        chat_id=row["chat_id"],
        kind=row["kind"],
        display_name=row["display_name"] or "",
        locality=row["locality"],
        consent=bool(row["consent"]),
        active=bool(row["active"]),
    )


chat_from_row = _chat


class Chats:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def touch(self, inbound: Inbound) -> int:
        """Record that this chat spoke (creating it on first sight); return its row id."""
        now = time.time()
        name = inbound.chat_title if inbound.chat_kind == "group" else inbound.display_name
        row = await self.db.write_returning(  # one statement: one trip to the database thread
            "INSERT INTO chats (channel, chat_id, kind, display_name, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (channel, chat_id) DO UPDATE SET last_seen = excluded.last_seen,"
            " display_name = COALESCE(NULLIF(excluded.display_name, ''), chats.display_name) RETURNING id",
            (inbound.channel, inbound.chat_id, inbound.chat_kind, name or None, now, now),
        )
        assert row is not None
        return int(row[0])

    async def ensure(self, channel: str, chat_id: str) -> tuple[int, str, str, str, str | None]:
        """The row of a chat we must write to (the staff chat), created without consent when unknown;
        as an outbox recipient (id, channel, chat_id, kind, locality)."""
        async with self.db.transaction() as tx:
            return await ensure_in(tx, channel, chat_id, time.time())

    async def subscribe(self, chat: int, locality: str, now: float) -> None:
        """A resident agreed to receive news of `locality` (/diaban)."""
        await self.db.write("UPDATE chats SET locality = ?, consent = 1, consent_at = ?, active = 1 WHERE id = ?",
                            (locality, now, chat))

    async def withdraw_consent(self, chat: int, now: float) -> None:
        """/huy: no more broadcasts to this chat (its locality is kept)."""
        await self.db.write("UPDATE chats SET consent = 0, consent_at = ? WHERE id = ?", (now, chat))

    async def by_id(self, chat: int) -> Chat | None:
        row = await self.db.fetchone("SELECT * FROM chats WHERE id = ?", (chat,))
        return _chat(row) if row else None

    async def get(self, channel: str, chat_id: str) -> Chat | None:
        row = await self.db.fetchone("SELECT * FROM chats WHERE channel = ? AND chat_id = ?", (channel, chat_id))
        return _chat(row) if row else None

    async def follow(self, channel: str, chat_ids: list[str], following: bool, locality: str | None) -> None:
        """Zalo OA followers: following is consent to the OA's messages (a subscribed resident of the
        locality they chose with /diaban, else `locality`, the whole province); unfollowing withdraws it."""
        now = time.time()
        if following:
            sql = ("INSERT INTO chats (channel, chat_id, kind, locality, consent, consent_at, active, first_seen,"
                   " last_seen) VALUES (?, ?, 'private', ?, 1, ?, 1, ?, ?) ON CONFLICT (channel, chat_id) DO UPDATE"
                   " SET locality = COALESCE(chats.locality, excluded.locality), consent = 1, active = 1,"
                   " consent_at = CASE WHEN chats.consent = 1 THEN chats.consent_at ELSE excluded.consent_at END")
            rows = [(channel, chat_id, locality, now, now, now) for chat_id in chat_ids]
        else:
            sql = "UPDATE chats SET consent = 0, consent_at = ?, active = 0 WHERE channel = ? AND chat_id = ?"
            rows = [(now, channel, chat_id) for chat_id in chat_ids]
        await self.db.write_many(sql, rows)

    async def subscribers_by_locality(self) -> dict[str, int]:
        """Residents who agreed to receive news (active private chats), per locality code ("" none)."""
        rows = await self.db.fetchall(
            "SELECT COALESCE(locality, '') AS locality, COUNT(*) AS n FROM chats WHERE kind = 'private'"
            " AND consent = 1 AND active = 1 AND channel != 'console' GROUP BY 1")
        return {r["locality"]: int(r["n"]) for r in rows}

    async def set_active(self, channel: str, chat_id: str, active: bool) -> None:
        await self.db.write(
            "UPDATE chats SET active = ? WHERE channel = ? AND chat_id = ?", (int(active), channel, chat_id)
        )


class Staff:
    """Staff rights: ids from settings plus those granted with `staff add`."""

    def __init__(self, db: Database, configured: dict[str, frozenset[str]]) -> None:
        self.db = db
        self.configured = configured

    async def is_staff(self, channel: str, user_id: str) -> bool:
        if user_id in self.configured.get(channel, frozenset()):
            return True
        row = await self.db.fetchone(
            "SELECT 1 FROM staff WHERE channel = ? AND user_id = ?", (channel, user_id)
        )
        return row is not None

    async def everyone(self) -> list[tuple[str, str, str]]:
        """(channel, user_id, "settings" | "granted") of every staff member."""
        found = [(channel, user, "settings") for channel, ids in sorted(self.configured.items())
                 for user in sorted(ids)]
        seen = {(c, u) for c, u, _ in found}
        rows = await self.db.fetchall("SELECT channel, user_id FROM staff ORDER BY added_at")
        return found + [(r["channel"], r["user_id"], "granted") for r in rows
                        if (r["channel"], r["user_id"]) not in seen]

    async def add(self, channel: str, user_id: str) -> bool:
        """Grant; False if already granted."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "INSERT OR IGNORE INTO staff (channel, user_id, added_at) VALUES (?, ?, ?)",
                (channel, user_id, time.time()),
            )
            return cursor.rowcount > 0


async def person_row(db: Database, chat: int) -> aiosqlite.Row | None:
    """Everything stored on one chats row (for /dulieu)."""
    return await db.fetchone("SELECT * FROM chats WHERE id = ?", (chat,))


async def ensure_in(tx: aiosqlite.Connection, channel: str, chat_id: str,
                    now: float) -> tuple[int, str, str, str, str | None]:
    """Inside the caller's transaction: `Chats.ensure` (the row of a chat we must write to)."""
    kind = "group" if chat_id.startswith("-") or channel != "telegram" else "private"
    await tx.execute("INSERT INTO chats (channel, chat_id, kind, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)"
                     " ON CONFLICT (channel, chat_id) DO NOTHING", (channel, chat_id, kind, now, now))
    cursor = await tx.execute("SELECT id, channel, chat_id, kind, locality FROM chats WHERE channel = ?"
                              " AND chat_id = ?", (channel, chat_id))
    r = await cursor.fetchone()
    assert r is not None
    return (r[0], r[1], r[2], r[3], r[4])


async def attach_group(tx: aiosqlite.Connection, channel: str, chat_id: str, locality: str, title: str | None,
                       now: float) -> bool:
    """Inside the caller's transaction: register a group with its locality (created when unknown);
    True when it was new. A group the bot was removed from stays inactive."""
    cursor = await tx.execute("SELECT 1 FROM chats WHERE channel = ? AND chat_id = ?", (channel, chat_id))
    created = await cursor.fetchone() is None
    await tx.execute(
        "INSERT INTO chats (channel, chat_id, kind, display_name, locality, consent, consent_at, active,"
        " first_seen, last_seen) VALUES (?, ?, 'group', ?, ?, 1, ?, 1, ?, ?)"
        " ON CONFLICT (channel, chat_id) DO UPDATE SET locality = excluded.locality, consent = 1,"
        " consent_at = CASE WHEN chats.consent = 1 THEN chats.consent_at ELSE excluded.consent_at END,"
        " display_name = COALESCE(excluded.display_name, chats.display_name)",
        (channel, chat_id, title, locality, now, now, now),
    )
    return created


async def deactivate(tx: aiosqlite.Connection, chat: int) -> None:
    """Inside the caller's transaction: the chat is gone (the bot was removed or blocked)."""
    await tx.execute("UPDATE chats SET active = 0 WHERE id = ?", (chat,))


async def erase_person(tx: aiosqlite.Connection, chat: int, now: float) -> bool:
    """Inside the caller's transaction (/xoadulieu): delete the person's chats row; True when it went.

    While other rows still point to it (sent broadcasts' per-recipient rows) it stays as an anonymous
    tombstone (`chat_id` "xoa:<n>", no name, no locality, inactive) so those counts stay true."""
    await tx.execute(
        "UPDATE chats SET chat_id = ?, display_name = NULL, locality = NULL, consent = 0, consent_at = NULL,"
        " active = 0, first_seen = ?, last_seen = ? WHERE id = ?", (tombstone(chat), now, now, chat),
    )
    await tx.execute("SAVEPOINT drop_chat")
    try:
        await tx.execute("DELETE FROM chats WHERE id = ?", (chat,))
        deleted = True
    except sqlite3.IntegrityError:  # sent broadcasts still count it: keep the anonymous tombstone
        await tx.execute("ROLLBACK TO drop_chat")
        deleted = False
    await tx.execute("RELEASE drop_chat")
    return deleted


async def audience_by_locality(db: Database) -> dict[str, dict[str, int]]:
    """Locality code -> {"subscribers": residents receiving news, "groups": registered group chats}."""
    rows = await db.fetchall(
        "SELECT locality, SUM(kind = 'private') AS subscribers, SUM(kind = 'group') AS groups FROM chats"
        " WHERE active = 1 AND consent = 1 AND channel != 'console' AND locality IS NOT NULL GROUP BY locality")
    return {r["locality"]: {"subscribers": int(r["subscribers"] or 0), "groups": int(r["groups"] or 0)}
            for r in rows}


def tombstone(chat: int) -> str:
    """The platform id an erased chat is left with."""
    return f"xoa:{chat}"

def check_chat_id(channel: str, chat_id: str) -> str:
    """An error sentence, or "" when `chat_id` looks right for `channel`."""
    if channel not in CHANNELS:
        return f"kênh '{channel}' không được hỗ trợ (chọn: {', '.join(CHANNELS)})"
    if not chat_id:
        return "thiếu chat_id"
    if channel == "telegram" and not chat_id.lstrip("-").isdigit():
        return f"chat_id '{chat_id}' không hợp lệ cho Telegram (cần một số, nhóm thường bắt đầu bằng -)"
    if len(chat_id) > 64 or any(ch.isspace() for ch in chat_id):
        return f"chat_id '{chat_id[:64]}' không hợp lệ"
    return ""


class ChatRows(Protocol):
    """Another table's rows that point at `chats`, moved by their owner when a group changes id."""

    async def held(self, tx: aiosqlite.Connection, chat: int) -> int:
        """How many rows must keep pointing at `chat` (messages sent to it, acknowledgements)."""
        ...

    async def merged(self, tx: aiosqlite.Connection, into: int, gone: int) -> None:
        """The rows of chat `gone` now belong to chat `into` (`gone` is deleted next)."""
        ...

    async def renamed(self, tx: aiosqlite.Connection, chat: int, new_id: str) -> None:
        """The chat's platform id is now `new_id`."""
        ...


class ChatMigration:
    """A group got a new id (Telegram supergroup upgrade): keep its registration and pending sends.
    The chats rows are changed here; each other table's owner moves its own rows (`rows`)."""

    def __init__(self, db: Database, rows: Sequence[ChatRows]) -> None:
        self.db = db
        self.rows = tuple(rows)

    async def __call__(self, channel: str, old_id: str, new_id: str) -> None:
        if old_id == new_id:
            return
        async with self.db.transaction() as tx:
            cursor = await tx.execute("SELECT id FROM chats WHERE channel = ? AND chat_id = ?", (channel, old_id))
            old = await cursor.fetchone()
            if old is None:
                return
            cursor = await tx.execute("SELECT id FROM chats WHERE channel = ? AND chat_id = ?", (channel, new_id))
            new = await cursor.fetchone()
            if new is not None:  # the new chat spoke first: fold its row into the old one
                held = 0
                for rows in self.rows:
                    held += await rows.held(tx, new[0])
                if held:  # the new row must stay: it takes the old one's registration instead
                    await tx.execute(
                        "UPDATE chats SET locality = o.locality, consent = o.consent, consent_at = o.consent_at,"
                        " active = 1 FROM (SELECT locality, consent, consent_at FROM chats WHERE id = ?) AS o"
                        " WHERE chats.id = ?", (old[0], new[0]),
                    )
                    await tx.execute("UPDATE chats SET active = 0 WHERE id = ?", (old[0],))
                    for rows in self.rows:
                        await rows.renamed(tx, old[0], new_id)
                    log.info("%s group %s migrated to %s (registration copied)", channel, old_id, new_id)
                    return
                for rows in self.rows:
                    await rows.merged(tx, old[0], new[0])
                await tx.execute("DELETE FROM chats WHERE id = ?", (new[0],))
            await tx.execute("UPDATE chats SET chat_id = ?, active = 1 WHERE id = ?", (new_id, old[0]))
            for rows in self.rows:
                await rows.renamed(tx, old[0], new_id)
        log.info("%s group %s migrated to %s", channel, old_id, new_id)
