"""Replies and staff posts, sent in order per chat and never dropped on a refusal.

Every message that answers a person (the dialogue's replies to an inbound) or reaches one chat
directly (a ticket card to the staff chat, a staff answer to a resident, a progress line) goes
through `ReplyQueue`. It sends at once when the chat's pacing window allows, which is nearly
always, and notes the send in the delivery worker's windows so broadcasts make room (interactive
priority). When the platform refuses for now (429 with `retry_after`, a network error, an
unauthorised pause) or the chat's own window is full (a group's 20 a minute, a private chat's
1 a second), that reply and every later one for the same chat are written to `replies` and sent
from there in order, for that chat only, once the wait is over. `start()` resumes what a restart
left owed. Permanent refusals (blocked, bad request) are not retried: the inbound path logs them,
direct callers get the DeliveryError.

Why not write every reply before sending it, as broadcasts are: a reply is sent within
milliseconds of the update that caused it, and a write per reply would double the database
writes on the hottest path (bench/webhook.py). What a crash can lose is a reply being sent in
that instant; what waits longer than that is on disk. `on_sent` hooks live in memory only: a reply
resumed after a restart is sent without them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiosqlite

from bot.channels.base import Channel, DeliveryError, Inbound, Option, Reply, Sent
from bot.delivery.pacing import Pacing
from bot.kernel import tasks
from bot.store.db import Database

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

RETRYABLE = ("rate_limited", "transient", "unauthorized")
BACKOFF = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0)
MAX_ATTEMPTS = 12  # transient failures in a row before a reply is given up (rate limits don't count)
MAX_AGE = 86_400.0  # a reply still owed after a day is stale: dropped at start, with a log line
UNAUTHORIZED_WAIT = 60.0


def chat_kind(chat_id: str) -> str:
    """Which per-chat limit applies to a chat known only by id (Telegram groups are negative)."""
    return "group" if chat_id.startswith("-") else "private"


def _encode(reply: Reply) -> str:
    return json.dumps({
        "text": reply.text, "options": [[o.label, o.data] for o in reply.options], "title": reply.title,
        "photo": reply.photo, "edit": reply.edit_message_id, "first": reply.first_number,
    }, ensure_ascii=False)


def _decode(raw: str) -> Reply:
    data = json.loads(raw)
    return Reply(data["text"], options=tuple(Option(label, value) for label, value in data["options"]),
                 title=data["title"], photo=data["photo"], edit_message_id=data["edit"],
                 first_number=data.get("first", 1))


@dataclass
class _Owed:
    row: int
    reply: Reply
    attempts: int = 0


@dataclass
class _Lane:
    """One chat's owed replies, in order, and when the next may go."""

    channel: str
    chat_id: str
    kind: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    owed: deque[_Owed] = field(default_factory=deque)
    ready_at: float = 0.0
    task: asyncio.Task[None] | None = None
    users: int = 0  # senders holding or waiting for `lock`

    def unused(self) -> bool:
        return not self.owed and not self.users and (self.task is None or self.task.done())


class ReplyQueue:
    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],
        pacer: Pacing,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        backoff: tuple[float, ...] = BACKOFF,
        max_attempts: int = MAX_ATTEMPTS,
        max_age: float = MAX_AGE,
    ) -> None:
        self.db = db
        self.channels = channels
        self.pacer = pacer  # the delivery worker's windows: replies and broadcasts count together
        self.clock = clock
        self.sleep = sleep
        self.backoff = backoff
        self.max_attempts = max_attempts
        self.max_age = max_age
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._running = False
        self.stats = {"sent": 0, "owed": 0, "resent": 0, "failed": 0}

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Resume what is owed from before a restart (channels are running by now)."""
        self._running = True
        now = self.clock()
        stale = await self.db.fetchval("SELECT COUNT(*) FROM replies WHERE created_at < ?", (now - self.max_age,))
        if stale:
            await self.db.write("DELETE FROM replies WHERE created_at < ?", (now - self.max_age,))
            log.warning("replies: %d replies owed for over %.0f h were dropped", stale, self.max_age / 3600)
        rows = await self.db.fetchall(
            "SELECT id, channel, chat_id, kind, reply, attempts, next_attempt_at FROM replies ORDER BY id")
        for r in rows:
            lane = self._lane(r["channel"], r["chat_id"], r["kind"])
            if not lane.owed:
                lane.ready_at = r["next_attempt_at"]
            lane.owed.append(_Owed(r["id"], _decode(r["reply"]), r["attempts"]))
        for lane in list(self._lanes.values()):
            if lane.owed:
                self._drain_later(lane)
        if rows:
            log.info("replies: %d owed replies to %d chats resumed", len(rows), len(self._lanes))

    async def stop(self, grace: float = 2.0) -> None:
        """Give the lanes a moment to finish; what is still owed stays on disk for the next start."""
        self._running = False
        running = [lane.task for lane in self._lanes.values() if lane.task is not None]
        if running:
            await asyncio.wait(running, timeout=grace)
        for lane in self._lanes.values():
            task, lane.task = lane.task, None
            await tasks.cancel(task)

    def owed(self) -> int:
        """Replies waiting now (in this process)."""
        return sum(len(lane.owed) for lane in self._lanes.values())

    def owed_to(self, channel: str, chat_id: str) -> list[Reply]:
        """The replies this chat is still owed, in the order they will go."""
        lane = self._lanes.get((channel, chat_id))
        return [item.reply for item in lane.owed] if lane else []

    async def idle(self, horizon: float = 60.0) -> None:
        """Until nothing is owed that may go within `horizon` seconds (tests and benches): a reply held
        for hours (quiet hours, a long retry_after) is not waited for."""
        while any(self._due_within(lane, horizon) for lane in self._lanes.values()):
            await self.sleep(0.05)

    def _due_within(self, lane: _Lane, horizon: float) -> bool:
        now = self.clock()
        return bool(lane.owed) and self._ready_at(lane, now) <= now + horizon

    def _ready_at(self, lane: _Lane, now: float) -> float:
        """When the lane's next reply may go: its own wait (a retry_after) and the chat's window."""
        return max(lane.ready_at, self.pacer(lane.channel).chat_ready_at(lane.kind, lane.chat_id, now))

    # ------------------------------------------------------------------ sending

    async def answer(self, inbound: Inbound, replies: Sequence[Reply]) -> None:
        """The dialogue's replies to `inbound`, each to its own chat (the inbound's unless the reply
        names another), in order per chat. Refusals are logged; nothing is raised."""
        targets: dict[tuple[str, str], list[Reply]] = {}
        for reply in replies:
            key = (reply.channel or inbound.channel, reply.chat_id or inbound.chat_id)
            targets.setdefault(key, []).append(reply)
        for (channel, chat_id), batch in targets.items():
            if channel not in self.channels:
                log.warning("replies: reply for channel %s dropped (not running)", channel)
                continue
            kind = inbound.chat_kind if (channel, chat_id) == (inbound.channel, inbound.chat_id) \
                else chat_kind(chat_id)
            try:
                await self.deliver(channel, kind, chat_id, batch)
            except DeliveryError as exc:
                log.warning("replies: %s reply to %s failed: %s", channel, chat_id, exc)

    async def send(self, channel: str, chat_id: str, reply: Reply) -> Sent | None:
        """One message to any chat (the `Sender` of handoff, privacy, progress). The Sent when it went
        at once, None when it waits its turn (its `on_sent` runs once it is sent). Raises KeyError
        when that channel is not running, DeliveryError when the platform refuses it for good."""
        if channel not in self.channels:
            raise KeyError(channel)
        return (await self.deliver(channel, chat_kind(chat_id), chat_id, [reply]))[0]

    async def deliver(self, channel: str, kind: str, chat_id: str, replies: Sequence[Reply]) -> list[Sent | None]:
        """Send `replies` to one chat in order; what cannot go now is owed (durably) and sent later.
        Raises the first permanent DeliveryError after sending the rest."""
        target = self.channels[channel]
        replies = target.prepare(list(replies))
        lane = self._lane(channel, chat_id, kind)
        results: list[Sent | None] = []
        refused: DeliveryError | None = None
        lane.users += 1
        try:
            await self._deliver(lane, target, replies, results)
        except DeliveryError as exc:
            refused = exc
        finally:
            lane.users -= 1
            self._forget(lane)
        if refused is not None:
            raise refused
        return results

    async def _deliver(self, lane: _Lane, target: Channel, replies: list[Reply], results: list[Sent | None]) -> None:
        refused: DeliveryError | None = None
        async with lane.lock:
            for i, reply in enumerate(replies):
                now = self.clock()
                ready = self._ready_at(lane, now)
                if lane.owed or ready > now or not target.running:
                    await self._owe(lane, replies[i:], ready)
                    results += [None] * (len(replies) - i)
                    break
                try:
                    results.append(await self._send_one(lane, target, reply))
                except DeliveryError as exc:
                    if exc.kind in RETRYABLE:
                        await self._owe(lane, replies[i:], self._retry_at(lane, exc, 0))
                        results += [None] * (len(replies) - i)
                        break
                    self.stats["failed"] += 1
                    refused = refused or exc
                    results.append(None)
        if refused is not None:
            raise refused

    async def _send_one(self, lane: _Lane, target: Channel, reply: Reply) -> Sent:
        sent = await target.send(lane.chat_id, reply)
        self.pacer(lane.channel).note(lane.kind, lane.chat_id, self.clock())
        self.stats["sent"] += 1
        if reply.on_sent is not None:
            try:
                await reply.on_sent(sent)
            except Exception:
                log.exception("replies: after-send hook for %s %s failed", lane.channel, lane.chat_id)
        return sent

    def _retry_at(self, lane: _Lane, exc: DeliveryError, attempts: int) -> float:
        now = self.clock()
        if exc.kind == "rate_limited":
            wait = exc.retry_after if exc.retry_after is not None else 1.0
        elif exc.kind == "unauthorized":
            wait = UNAUTHORIZED_WAIT
        else:
            wait = self.backoff[min(attempts, len(self.backoff) - 1)]
        log.info("replies: %s %s refused for now (%s); retrying that chat in %.1fs", lane.channel,
                 lane.chat_id, exc, wait)
        return now + wait

    # ------------------------------------------------------------------ what is owed

    def _lane(self, channel: str, chat_id: str, kind: str) -> _Lane:
        lane = self._lanes.get((channel, chat_id))
        if lane is None:
            lane = self._lanes[(channel, chat_id)] = _Lane(channel, chat_id, kind)
        return lane

    async def _owe(self, lane: _Lane, replies: Sequence[Reply], ready_at: float) -> None:
        now = self.clock()
        async with self.db.transaction() as tx:
            for reply in replies:
                cursor = await tx.execute(
                    "INSERT INTO replies (channel, chat_id, kind, reply, created_at, next_attempt_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (lane.channel, lane.chat_id, lane.kind, _encode(reply), now, ready_at))
                lane.owed.append(_Owed(int(cursor.lastrowid or 0), reply))
        lane.ready_at = max(lane.ready_at, ready_at)
        self.stats["owed"] += len(replies)
        self._drain_later(lane)

    def _drain_later(self, lane: _Lane) -> None:
        if not self._running:
            return  # before start or after stop: on disk, sent by the next start()
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._drain(lane), name=f"replies-{lane.channel}-{lane.chat_id}")

    async def _drain(self, lane: _Lane) -> None:
        """Send this chat's owed replies in order as their waits run out."""
        while lane.owed:
            now = self.clock()
            ready = self._ready_at(lane, now)
            if ready > now:
                await self.sleep(ready - now if ready != math.inf else 0.05)
                continue
            lane.users += 1
            try:
                async with lane.lock:
                    await self._resend_first(lane)
            finally:
                lane.users -= 1
        lane.task = None
        self._forget(lane)

    async def _resend_first(self, lane: _Lane) -> None:
        if not lane.owed:
            return
        item = lane.owed[0]
        target = self.channels.get(lane.channel)
        if target is None or not target.running:
            lane.ready_at = self.clock() + self.backoff[0]
            return
        try:
            await self._send_one(lane, target, item.reply)
        except DeliveryError as exc:
            if exc.kind in RETRYABLE:
                if exc.kind == "transient":
                    item.attempts += 1
                if item.attempts < self.max_attempts:
                    lane.ready_at = self._retry_at(lane, exc, item.attempts - 1)
                    await self.db.write("UPDATE replies SET attempts = ?, next_attempt_at = ?, reason = ? WHERE id = ?",
                                        (item.attempts, lane.ready_at, str(exc)[:200], item.row))
                    return
            self.stats["failed"] += 1
            log.warning("replies: %s %s: an owed reply was given up: %s", lane.channel, lane.chat_id, exc)
        except Exception:
            self.stats["failed"] += 1
            log.exception("replies: %s %s: sending an owed reply raised; given up", lane.channel, lane.chat_id)
        else:
            self.stats["resent"] += 1
        lane.owed.popleft()
        await self.db.write("DELETE FROM replies WHERE id = ?", (item.row,))

    def _forget(self, lane: _Lane) -> None:
        if lane.unused() and self._lanes.get((lane.channel, lane.chat_id)) is lane:
            del self._lanes[(lane.channel, lane.chat_id)]


async def erase_person(tx: aiosqlite.Connection, chat: int | None, channel: str, user_id: str) -> int:
    """Erasure (/xoadulieu): replies still owed to the person's private chat go with their other data."""
    cursor = await tx.execute("DELETE FROM replies WHERE channel = ? AND chat_id = ?", (channel, user_id))
    return cursor.rowcount
