"""Telling the staff member who confirmed a broadcast how its sending goes.

When a broadcast confirmed in a chat (`broadcasts.notify_*`) is sending, its confirmation message
is edited every few seconds into a progress line ("đã gửi X/Y, lỗi Z, còn khoảng N phút") and,
when it is over, into a short summary. Channel-agnostic: a channel that cannot edit messages
(`can_edit` false or absent, e.g. Zalo) gets no progress lines, only the summary, sent once as a
new message. `notified_at` records that the summary was given, so a restart does not repeat it.
Edits are noted in the delivery worker's pacing, like any interactive reply.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.broadcasts import outbox
from bot.channels.base import Channel, Reply, Sender
from bot.kernel import tasks
from bot.kernel.messages import Messages
from bot.store.db import Database

log = logging.getLogger(__name__)

INTERVAL = 4.0  # seconds between two edits of one progress line
SETTLE = 5.0  # a finished broadcast whose confirmation id is not known yet waits this long for it


@dataclass
class _Seen:
    first_at: float
    first_done: int
    text: str = ""


class Progress:
    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],
        sender: Sender,
        say: Messages,
        *,
        rate: Callable[[str], float] = lambda channel: 30.0,
        clock: Callable[[], float] = time.time,
        interval: float = INTERVAL,
    ) -> None:
        self.db = db
        self.channels = channels
        self.say = say
        self.rate = rate  # the configured overall rate of a channel, until a real one is measured
        self.sender = sender  # paced and retried like every reply (bot.delivery.replies)
        self.clock = clock
        self.interval = interval
        self._seen: dict[int, _Seen] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="broadcast-progress")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.cancel(task)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broadcast progress failed; trying again in %ss", self.interval)
            await asyncio.sleep(self.interval)

    async def tick(self) -> int:
        """One round: edit the line of each sending broadcast, finish the finished; how many messages."""
        rows = await self.db.fetchall(
            "SELECT b.id, b.status, b.total, b.notify_channel, b.notify_chat_id, b.notify_message_id,"
            " b.finished_at, b.resolved_at,"
            " (SELECT COUNT(*) FROM outbox o WHERE o.broadcast = b.id AND o.status = 'sent') AS sent,"
            " (SELECT COUNT(*) FROM outbox o WHERE o.broadcast = b.id AND o.status = 'failed') AS failed,"
            " (SELECT COUNT(*) FROM outbox o WHERE o.broadcast = b.id) AS rows"
            " FROM broadcasts b WHERE b.notify_chat_id IS NOT NULL AND b.notified_at IS NULL"
            " AND b.status IN ('sending', 'done', 'cancelled')"
        )
        told = 0
        now = self.clock()
        for row in rows:
            channel = self.channels.get(row["notify_channel"])
            if channel is None:
                continue
            try:
                told += await self._one(row, channel, now)
            except Exception as exc:  # one broadcast's trouble never stops the others
                log.warning("broadcast %d: progress message failed: %s", row["id"], exc)
        return told

    async def _one(self, row: Any, channel: Channel, now: float) -> int:
        broadcast, chat_id, message_id = row["id"], row["notify_chat_id"], row["notify_message_id"]
        editable = channel.can_edit and message_id is not None
        total, sent, failed = int(row["rows"]), int(row["sent"]), int(row["failed"])
        if row["status"] == "sending":
            if not editable:
                return 0
            seen = self._seen.setdefault(broadcast, _Seen(now, sent + failed))
            text = self.say("progress_line", id=broadcast, sent=sent, total=total, failed=failed,
                            minutes=self._minutes(seen, row["notify_channel"], total - sent - failed, sent + failed,
                                                  now))
            if text == seen.text:
                return 0
            await self.sender.send(row["notify_channel"], chat_id, Reply(text, edit_message_id=message_id))
            seen.text = text
            return 1
        # done or cancelled: the summary, once
        if (message_id is None and channel.can_edit
                and now - (row["finished_at"] or now) < SETTLE):
            return 0  # the confirmation is being sent right now: edit it rather than add one
        key = "progress_done" if row["status"] == "done" else "progress_cancelled"
        text = self.say(key, id=broadcast, sent=sent, total=total, failed=failed)
        # claim first: a crash between the two lines loses a summary rather than repeating it
        await outbox.mark_notified(self.db, broadcast, now)
        await self.sender.send(row["notify_channel"], chat_id,
                               Reply(text, edit_message_id=message_id if editable else None))
        self._seen.pop(broadcast, None)
        log.info("broadcast %d: summary given to %s %s", broadcast, row["notify_channel"], chat_id)
        return 1

    def _minutes(self, seen: _Seen, channel: str, left: int, done: int, now: float) -> int:
        elapsed = now - seen.first_at
        rate = (done - seen.first_done) / elapsed if elapsed >= 2 and done > seen.first_done else 0.0
        if rate <= 0:
            rate = max(self.rate(channel), 0.1)
        return max(1, math.ceil(left / rate / 60))
