"""Four-eyes approval (WEB_APPROVAL_THRESHOLD): a web broadcast to more recipients than the
threshold stays a draft until a second staff member approves it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot.store.db import Database


class Approvals:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def request(self, broadcast: int, by: str, recipients: int) -> None:
        await self.db.write(
            "INSERT INTO broadcast_approvals (broadcast, requested_by, requested_at, recipients) VALUES (?, ?, ?, ?)",
            (broadcast, by, self.clock(), recipients))

    async def get(self, broadcast: int) -> dict[str, Any] | None:
        row = await self.db.fetchone("SELECT * FROM broadcast_approvals WHERE broadcast = ?", (broadcast,))
        return dict(row) if row else None

    async def decide(self, broadcast: int, by: str, decision: str) -> bool:
        """Record the decision once, and never by the one who asked; False otherwise."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE broadcast_approvals SET decided_by = ?, decided_at = ?, decision = ?"
                " WHERE broadcast = ? AND decision IS NULL AND requested_by != ?",
                (by, self.clock(), decision, broadcast, by))
            return cursor.rowcount == 1

    async def waiting(self) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT * FROM broadcast_approvals WHERE decision IS NULL ORDER BY requested_at")
        return [dict(r) for r in rows]
