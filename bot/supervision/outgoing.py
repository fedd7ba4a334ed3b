"""Who supervision's messages go to, and queueing them through `bot.broadcasts.outbox`.

A plan's groups are its own chat list, or the registered groups of its locality's subtree; the
staff chat is TELEGRAM_STAFF_CHAT_ID. Everything is queued in the caller's transaction."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

import aiosqlite

from bot.audiences.chats import ensure_in
from bot.audiences.localities import Localities
from bot.broadcasts import outbox
from bot.broadcasts.outbox import Queued, Recipient
from bot.supervision.model import Plan

log = logging.getLogger("bot.supervision.service")

_GROUPS = ("SELECT id, channel, chat_id, kind, locality FROM chats WHERE kind = 'group' AND active = 1"
           " AND consent = 1 AND channel != 'console' AND locality IN (SELECT value FROM json_each(?)) ORDER BY id")


class Outgoing:
    def __init__(self, tree: Localities, staff_chat: tuple[str, str] | None, clock: Callable[[], float]) -> None:
        self.tree = tree
        self.staff_chat = staff_chat
        self.clock = clock

    async def chat_row(self, tx: aiosqlite.Connection, channel: str, chat_id: str) -> Recipient:
        """A chats row for a chat we must write to (created, without consent, when unknown)."""
        return await ensure_in(tx, channel, chat_id, self.clock())

    async def groups(self, tx: aiosqlite.Connection, plan: Plan) -> list[Recipient]:
        """The responsible chats: the plan's own list, or the groups registered in its locality's subtree."""
        if plan.chats:
            found = []
            for item in plan.chats:
                channel, _, chat_id = item.partition(":")
                found.append(await self.chat_row(tx, channel, chat_id))
            return found
        cursor = await tx.execute(_GROUPS, (json.dumps(self.tree.subtree(plan.locality)),))
        return [(r[0], r[1], r[2], r[3], r[4]) for r in await cursor.fetchall()]

    async def groups_of(self, tx: aiosqlite.Connection, plans: Sequence[Plan]) -> dict[int, list[Recipient]]:
        """`groups` for many plans with one query for all the localities' groups."""
        found: dict[int, list[Recipient]] = {}
        subtrees = {plan.locality: self.tree.subtree(plan.locality) for plan in plans if not plan.chats}
        codes = sorted({c for tree in subtrees.values() for c in tree})
        by_code: dict[str, list[Recipient]] = {}
        if codes:
            cursor = await tx.execute(_GROUPS, (json.dumps(codes),))
            for r in await cursor.fetchall():
                by_code.setdefault(r[4], []).append((r[0], r[1], r[2], r[3], r[4]))
        for plan in plans:
            if plan.chats:
                found[plan.id] = await self.groups(tx, plan)
            else:
                found[plan.id] = sorted((c for code in subtrees[plan.locality] for c in by_code.get(code, ())),
                                        key=lambda c: c[0])
        return found

    async def queue(self, tx: aiosqlite.Connection, items: Sequence[Queued], now: float) -> list[int | None]:
        return await outbox.queue(tx, items, now, created_by="supervision")

    async def queue_one(self, tx: aiosqlite.Connection, item: Queued, now: float) -> int | None:
        """One broadcast row and an outbox row per chat; None when there is no chat to write to."""
        [broadcast] = await self.queue(tx, [item], now)
        return broadcast

    async def to_staff(self, tx: aiosqlite.Connection, text: str, source: str, now: float,
                       options: Sequence[tuple[str, str]] = ()) -> int | None:
        if self.staff_chat is None:
            log.warning("supervision: no TELEGRAM_STAFF_CHAT_ID; not posted to staff: %s", text.splitlines()[0][:80])
            return None
        chat = await self.chat_row(tx, *self.staff_chat)
        return await self.queue_one(tx, Queued(text, [chat], source, None, options), now)
