"""The numbered choices a channel without buttons last showed in each chat, kept in SQLite.

Zalo shows options as numbered lines and maps a typed "2" back to the option; that map must
survive a restart like the rest of a conversation (bot.conversation.flows). Channels read every
recent row once at start (`load`) and keep them in memory; `remember` writes behind, once a
second for all chats, so the reply path never waits on the database. The only SQL on `choices`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

import aiosqlite

from bot.channels.base import Option
from bot.store.db import Database

log = logging.getLogger(__name__)

KEEP_DAYS = 7.0  # older menus are not worth a number typed now
KEEP_CHATS = 10_000


class Choices:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time, every: float = 1.0) -> None:
        self.db = db
        self.clock = clock
        self.every = every  # menus are written together at most this often (one transaction)
        self._pending: dict[tuple[str, str], tuple[tuple[Option, ...], float]] = {}
        self._writer: asyncio.Task[None] | None = None

    async def load(self, channel: str) -> dict[str, tuple[Option, ...]]:
        """The recent menus of `channel` by chat id, oldest first (older rows are dropped)."""
        cutoff = self.clock() - KEEP_DAYS * 86_400
        await self.db.write("DELETE FROM choices WHERE shown_at < ?", (cutoff,))
        rows = await self.db.fetchall(
            "SELECT chat_id, options FROM choices WHERE channel = ? ORDER BY shown_at DESC LIMIT ?",
            (channel, KEEP_CHATS))
        found: dict[str, tuple[Option, ...]] = {}
        for row in reversed(rows):
            try:
                found[row["chat_id"]] = tuple(Option(label, data) for label, data in json.loads(row["options"]))
            except (ValueError, TypeError):
                log.warning("choices: the menu kept for %s %s is unreadable; dropped", channel, row["chat_id"])
        return found

    def remember(self, channel: str, chat_id: str, options: tuple[Option, ...]) -> None:
        """Keep this chat's menu: written behind, with the others of the same second (a crash loses at
        most that second's menus; a failure is logged and retried with the next)."""
        self._pending[(channel, chat_id)] = (options, self.clock())
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_soon())

    async def flush(self) -> None:
        """Write what is pending now (before the database closes)."""
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self._write()

    async def _write_soon(self) -> None:
        await asyncio.sleep(self.every)
        await self._write()

    async def _write(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        rows = [(channel, chat_id, json.dumps([[o.label, o.data] for o in options], ensure_ascii=False), at)
                for (channel, chat_id), (options, at) in pending.items()]
        try:
            await self.db.write_many(
                "INSERT INTO choices (channel, chat_id, options, shown_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (channel, chat_id) DO UPDATE SET options = excluded.options,"
                " shown_at = excluded.shown_at", rows)
        except Exception as exc:
            log.warning("choices: %d menus were not kept (retried with the next): %s", len(rows), exc)
            self._pending = {**pending, **self._pending}


async def erase_person(tx: aiosqlite.Connection, chat: int | None, channel: str, user_id: str) -> int:
    """Erasure (/xoadulieu): the menu last shown in the person's private chat."""
    cursor = await tx.execute("DELETE FROM choices WHERE channel = ? AND chat_id = ?", (channel, user_id))
    return cursor.rowcount
