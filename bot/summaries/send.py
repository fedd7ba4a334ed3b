"""Queueing a quarter's summaries (`summary quarter --send`, a 'summary' series) and the weekly
digest of knowledge gaps and open tickets (a 'digest' series) through `bot.broadcasts.outbox`."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.audiences.chats import Chats
from bot.broadcasts import outbox
from bot.broadcasts.outbox import Queued, Recipient
from bot.broadcasts.store import Broadcasts, Target
from bot.handoff.tickets import Tickets
from bot.kernel.messages import Messages
from bot.knowledge import gaps
from bot.store.db import Database
from bot.summaries import texts
from bot.summaries.quarter import Quarter, Summaries

DIGEST_ITEMS = 5


def quarter_for_run(run_at: float, tz: ZoneInfo) -> Quarter:
    """The quarter a scheduled summary speaks of: the one just ended when it runs in a quarter's
    first two weeks (the first working day's summary), else the one in progress."""
    return Quarter.of(run_at - 15 * 86400, tz)


class Sending:
    def __init__(self, db: Database, summaries: Summaries, broadcasts: Broadcasts, chats: Chats, say: Messages,
                 staff_chat: tuple[str, str] | None) -> None:
        self.db, self.summaries, self.broadcasts, self.chats = db, summaries, broadcasts, chats
        self.say, self.staff_chat = say, staff_chat

    async def staff(self) -> Recipient | None:
        return await self.chats.ensure(*self.staff_chat) if self.staff_chat else None

    async def summary_messages(self, quarter: Quarter, now: float) -> list[Queued]:
        items = await self.summaries.quarter(quarter, now)
        groups = await self.broadcasts.audience_of(Target("groups"))
        return texts.messages(items, quarter, self.say, groups, self.summaries.supervision.owner_of,
                              await self.staff())

    async def queue(self, items: list[Queued], now: float, created_by: str) -> list[int]:
        async with self.db.transaction() as tx:
            return [i for i in await outbox.queue(tx, items, now, created_by=created_by) if i is not None]

    async def digest_messages(self, run_at: float, tz: ZoneInfo, days: int = 7) -> list[Queued]:
        """The knowledge gaps of the last `days` and the tickets still open, for the staff chat."""
        staff = await self.staff()
        if staff is None:
            return []
        found = gaps.group(await gaps.collect(self.db, run_at - days * 86400))
        waiting = await Tickets(self.db).list(status="open")
        lines = [self.say("dg_head", since=datetime.fromtimestamp(run_at - days * 86400, tz).strftime("%d/%m/%Y"),
                          gaps=len(found), tickets=len(waiting))]
        lines += [self.say("dg_gap", count=g.count, text=g.representative) for g in found[:DIGEST_ITEMS]]
        lines += [self.say("dg_ticket", id=t.id, since=datetime.fromtimestamp(t.created_at, tz).strftime("%d/%m/%Y"),
                           text=t.text.splitlines()[0][:80]) for t in waiting[:DIGEST_ITEMS]]
        if not found and not waiting:
            lines = [self.say("dg_nothing")]
        return [Queued("\n".join(lines), [staff], f"digest:{int(run_at)}")]
