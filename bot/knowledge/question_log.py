"""Every question asked, with what the bot did about it: the raw material for `kb gaps`."""

from __future__ import annotations

import time
from typing import Any

import aiosqlite

from bot.knowledge.index import Answer
from bot.store.db import Database

_OUTCOME = {"answer": "answered", "choices": "choices", "decline": "declined"}


class QuestionLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, chat: int | None, channel: str, text: str, answer: Answer) -> None:
        best = answer.best
        await self.db.write(
            "INSERT INTO question_log (chat, channel, text, folded, entry_id, score, outcome, asked_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chat,
                channel,
                text[:4000],
                answer.folded[:4000],
                # A known out-of-scope topic is logged as such: `kb gaps` leaves it out (already handled).
                answer.outside.id if answer.outside else best.entry.id if best else None,
                round(best.confidence, 4) if best and not answer.outside else None,
                _OUTCOME[answer.decision],
                time.time(),
            ),
        )


    async def per_day(self, since: float, utc_offset: float) -> dict[int, dict[str, int]]:
        """Questions asked since `since`, per local day (days since the epoch, local time) and outcome."""
        rows = await self.db.fetchall(
            "SELECT CAST((asked_at + ?) / 86400 AS INTEGER) AS day, outcome, COUNT(*) AS n FROM question_log"
            " WHERE asked_at >= ? GROUP BY 1, 2", (utc_offset, since))
        days: dict[int, dict[str, int]] = {}
        for r in rows:
            days.setdefault(int(r["day"]), {"answered": 0, "choices": 0, "declined": 0})[r["outcome"]] = int(r["n"])
        return days


async def last_declined(db: Database, chat: int, since: float) -> str | None:
    """The chat's latest question the bot declined, asked at or after `since`."""
    text = await db.fetchval(
        "SELECT text FROM question_log WHERE chat = ? AND outcome = 'declined' AND asked_at >= ?"
        " ORDER BY id DESC LIMIT 1", (chat, since),
    )
    return str(text) if text else None


async def last_about(db: Database, chat: int, entry_id: str, since: float) -> str | None:
    """The chat's latest question, asked at or after `since`, if it was matched to `entry_id`
    (answered or not); None when the person has asked something else since."""
    row = await db.fetchone(
        "SELECT text, entry_id FROM question_log WHERE chat = ? AND asked_at >= ? ORDER BY id DESC LIMIT 1",
        (chat, since),
    )
    return str(row["text"]) if row is not None and row["entry_id"] == entry_id and row["text"] else None


async def outcomes_by_locality(db: Database, start: float, end: float,
                               top: int = 3) -> dict[str, dict[str, Any]]:
    """The asking chat's locality code -> {"answered", "choices", "declined": counts, "topics":
    [(entry id, count)] most asked first, at most `top`} for questions asked in [start, end)."""
    found: dict[str, dict[str, Any]] = {}
    for r in await db.fetchall(
            "SELECT c.locality, q.outcome, q.entry_id, COUNT(*) AS n FROM question_log q JOIN chats c ON c.id = q.chat"
            " WHERE q.asked_at >= ? AND q.asked_at < ? AND c.locality IS NOT NULL GROUP BY 1, 2, 3", (start, end)):
        mine = found.setdefault(r["locality"], {"answered": 0, "choices": 0, "declined": 0, "topics": {}})
        mine[r["outcome"]] += int(r["n"])
        if r["entry_id"] and r["outcome"] == "answered":
            mine["topics"][r["entry_id"]] = mine["topics"].get(r["entry_id"], 0) + int(r["n"])
    for mine in found.values():
        mine["topics"] = sorted(mine["topics"].items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return found


async def asked_count(db: Database, chat: int) -> int:
    """How many questions the chat asked (for /dulieu)."""
    return int(await db.fetchval("SELECT COUNT(*) FROM question_log WHERE chat = ?", (chat,)))


async def erase_person(tx: aiosqlite.Connection, chat: int) -> int:
    """Inside the caller's transaction (/xoadulieu): the person's questions stay as unlinked text."""
    cursor = await tx.execute("UPDATE question_log SET chat = NULL WHERE chat = ?", (chat,))
    return max(cursor.rowcount, 0)


class QuestionRows:
    """The question log's rows of a chat, for bot.audiences.chats.ChatMigration (kept, never held)."""

    async def held(self, tx: aiosqlite.Connection, chat: int) -> int:
        return 0

    async def merged(self, tx: aiosqlite.Connection, into: int, gone: int) -> None:
        await tx.execute("UPDATE question_log SET chat = ? WHERE chat = ?", (into, gone))

    async def renamed(self, tx: aiosqlite.Connection, chat: int, new_id: str) -> None:
        pass  # rows point at the chats row, whose id does not change
