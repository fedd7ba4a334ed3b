"""The audit log: every staff action, who, what, when and through what (web, chat, CLI, API)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot.audiences.chats import Staff
from bot.channels.base import Inbound
from bot.store.db import Database


class Audit:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def record(self, actor: str, via: str, action: str, target: str | None = None,
                     detail: str | None = None) -> None:
        await self.db.write(
            "INSERT INTO audit_log (at, actor, via, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (self.clock(), actor, via, action, target, (detail or "")[:500] or None))

    async def recent(self, limit: int = 100, *, actor: str | None = None,
                     action: str | None = None, via: str | None = None) -> list[dict[str, Any]]:
        where, params = ["1 = 1"], []
        if via:
            where.append("via = ?")
            params.append(via)
        if actor:
            where.append("actor = ?")
            params.append(actor)
        if action:
            where.append("action LIKE ?")
            params.append(f"{action}%")
        rows = await self.db.fetchall(
            f"SELECT * FROM audit_log WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [dict(r) for r in rows]


class ChatAudit:
    """The dialogue's recorder of staff actions taken in a chat (Routes.audited): who (channel:user),
    via the channel, what, and the command as typed; nothing for someone who is not staff (refused)."""

    def __init__(self, audit: Audit, staff: Staff) -> None:
        self.audit = audit
        self.staff = staff

    async def __call__(self, inbound: Inbound, action: str, detail: str) -> None:
        if await self.staff.is_staff(inbound.channel, inbound.user_id):
            await self.audit.record(f"{inbound.channel}:{inbound.user_id}", inbound.channel, action,
                                    f"{inbound.chat_kind}:{inbound.chat_id}", detail)
