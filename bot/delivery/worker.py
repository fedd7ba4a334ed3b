"""The delivery worker: one loop that sends the outbox, paced under each platform's limits.

Durable: every recipient is a row in `outbox` (bot/broadcasts.py writes them); a row is marked
sent only after the platform confirmed it, so after a crash the rows that were in flight are
sent again and nothing else is (long texts resume after their last confirmed piece).

Pacing, per channel, is a sliding-window log that mirrors how platforms count: at most N sends
in the last second overall, M in the last minute per group, K in the last second per private
chat. A send holds its slot from dispatch and is stamped when the answer arrives (later than the
platform's own stamp, so the window never runs ahead of the platform's). A small share of the
overall rate is kept free for interactive replies, which the channels send at once; the app tells
the worker about them (`interactive()`), so they count in the same windows and a broadcast never
makes them wait.

Error classes (DeliveryError.kind): rate_limited → pause that channel for retry_after, retry;
gone → recipient inactive, failed, not retried; migrated → new chat id recorded, resent;
bad_request → failed with the reason; transient → retried with backoff, a bounded number of
times; unauthorized → the channel pauses (its token is wrong), rows stay pending.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.audiences.chats import migrate_chat
from bot.channels.base import Channel, DeliveryError, Inbound, Option, Reply, Sent
from bot.kernel import tasks
from bot.kernel.markup import split_text
from bot.store.db import Database

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Handler = Callable[[Inbound], Awaitable[list[Reply]]]
Resolver = Callable[[float], Awaitable[float | None]]

DEFER_AFTER = 1.0  # a row whose chat is not free for longer than this goes back to the table
UNAUTHORIZED_PAUSE = 60.0
REASON_CHARS = 200


@dataclass(frozen=True)
class Limits:
    """A channel's rates: overall per second, per group per minute, per private chat per second."""

    per_second: float
    group_per_minute: float | None = None
    chat_per_second: float | None = None
    reserve: float = 0.02  # share of the overall rate kept for interactive replies


class Window:
    """At most `limit` events in any `span` seconds. In-flight events hold a slot until stamped."""

    def __init__(self, limit: int, span: float) -> None:
        self.limit = max(1, limit)
        self.span = span
        self.stamps: deque[float] = deque()
        self.inflight = 0

    @classmethod
    def for_rate(cls, count: float, seconds: float) -> Window:
        """`count` per `seconds`: a whole number of slots over a span that keeps the rate."""
        limit = max(1, math.floor(count))
        return cls(limit, seconds * limit / count)

    def free_at(self, now: float) -> float:
        while self.stamps and self.stamps[0] <= now - self.span:
            self.stamps.popleft()
        used = len(self.stamps) + self.inflight
        if used < self.limit:
            return now
        index = used - self.limit
        if index >= len(self.stamps):
            return math.inf  # only an in-flight send can free a slot: wait for it
        return self.stamps[index] + self.span

    def begin(self) -> None:
        self.inflight += 1

    def end(self, at: float) -> None:
        self.inflight = max(0, self.inflight - 1)
        self.stamps.append(at)

    def note(self, at: float) -> None:
        self.stamps.append(at)

    def idle(self, now: float) -> bool:
        return not self.inflight and (not self.stamps or self.stamps[-1] <= now - self.span)


class Pacer:
    """One channel's windows: overall, and one per chat (group or private)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        reserve = max(1, math.ceil(limits.per_second * limits.reserve)) if limits.per_second >= 2 else 0
        self.overall = Window.for_rate(max(limits.per_second - reserve, 1), 1.0)
        self.chats: dict[str, Window] = {}
        self.paused_until = 0.0

    def _chat(self, kind: str, chat_id: str) -> Window | None:
        window = self.chats.get(chat_id)
        if window is None:
            if kind == "group" and self.limits.group_per_minute:
                window = Window.for_rate(self.limits.group_per_minute, 60.0)
            elif kind != "group" and self.limits.chat_per_second:
                window = Window.for_rate(self.limits.chat_per_second, 1.0)
            else:
                return None
            self.chats[chat_id] = window
        return window

    def channel_ready_at(self, now: float) -> float:
        return max(self.paused_until, self.overall.free_at(now))

    def chat_ready_at(self, kind: str, chat_id: str, now: float) -> float:
        window = self._chat(kind, chat_id)
        return window.free_at(now) if window else now

    def begin(self, kind: str, chat_id: str) -> None:
        self.overall.begin()
        window = self._chat(kind, chat_id)
        if window:
            window.begin()

    def end(self, kind: str, chat_id: str, at: float) -> None:
        self.overall.end(at)
        window = self._chat(kind, chat_id)
        if window:
            window.end(at)

    def note(self, kind: str, chat_id: str, at: float) -> None:
        self.overall.note(at)
        window = self._chat(kind, chat_id)
        if window:
            window.note(at)

    def prune(self, now: float) -> None:
        if len(self.chats) > 1000:
            self.chats = {k: w for k, w in self.chats.items() if not w.idle(now)}


@dataclass
class Job:
    """One outbox row in memory."""

    id: int
    broadcast: int
    chat: int
    channel: str
    chat_id: str
    kind: str
    attempts: int
    pieces_sent: int
    message_ids: list[str] = field(default_factory=list)


@dataclass
class _Piece:
    pieces: list[str]
    ack: bool
    options: tuple[Option, ...] | None = None  # broadcasts.options (supervision buttons) instead of "Đã nhận"


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],
        limits: Mapping[str, Limits],
        *,
        ack_label: str = "Đã nhận",
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        poll_interval: float = 1.0,
        batch: int = 500,
        concurrency: int = 16,
        max_attempts: int = 5,
        backoff: tuple[float, ...] = (2.0, 10.0, 30.0, 60.0, 120.0),
        resolve: Resolver | None = None,
        on_pause: Callable[[str, str, float], None] | None = None,
        on_alert: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.channels = channels  # by reference: the app may add channels after building the worker
        self.limits = dict(limits)
        self.pacers: dict[str, Pacer] = {}
        self.ack_label = ack_label
        self.clock = clock
        self.sleep = sleep
        self.poll_interval = poll_interval
        self.batch = batch
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.backoff = backoff
        # writes the outbox of scheduled broadcasts that fell due (Broadcasts.resolve_due); returns
        # when the next one is due
        self.resolve = resolve
        # called once when a channel stops on its quota (Zalo's 429), e.g. to tell the staff chat
        self.on_alert = on_alert
        self.on_pause = on_pause  # told (channel, error kind, paused until) at each pause: bot.operations.metrics
        self._alerted: set[str] = set()  # channels stopped on quota since their last successful send
        self._next_due: float | None = None
        self.stats: dict[str, int] = {"sent": 0, "pieces": 0, "rate_limited": 0, "retried": 0, "failed": 0}
        self._jobs: OrderedDict[int, Job] = OrderedDict()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._busy: set[int] = set()  # chat rows with a send in flight (keeps pieces in order)
        self._pieces: dict[tuple[int, str], _Piece] = {}  # (broadcast, channel) -> its pieces
        self._cancelled: set[int] = set()
        self._next_poll = 0.0
        self._more = False
        self._deferred: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        if self._task is None:
            await self.remember_recent_sends()
            self._task = asyncio.create_task(self.run(), name="delivery-worker")
            log.info("delivery worker started for %s", ", ".join(self.channels) or "no channel")

    async def stop(self, grace: float = 3.0) -> None:
        task, self._task = self._task, None
        await tasks.cancel(task)
        if self._inflight:
            _done, pending = await asyncio.wait(list(self._inflight.values()), timeout=grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._flush_deferred()

    async def remember_recent_sends(self) -> None:
        """Seed the pacing windows with what this outbox sent in the last minute.

        A restart (a crash, a deploy) must not forget the sends the platform still counts: a
        group that got 20 messages in the last minute stays full. Sends in flight at a crash
        were never recorded, and a resend to the same chat would break its per-chat limit, so
        when the outbox was busy a moment ago the channel waits out one per-chat window first.
        """
        now = self.clock()
        rows = await self.db.fetchall(
            "SELECT channel, kind, chat_id, sent_at FROM outbox WHERE status = 'sent' AND sent_at > ?",
            (now - 60.0,),
        )
        busy: set[str] = set()
        for row in rows:
            if row["channel"] in self.channels:
                self.pacer(row["channel"]).note(row["kind"], row["chat_id"], row["sent_at"])
                if row["sent_at"] > now - 2.0:
                    busy.add(row["channel"])
        for channel in busy:
            pacer = self.pacer(channel)
            per_chat = pacer.limits.chat_per_second or 1.0
            pacer.paused_until = max(pacer.paused_until, now + max(1.0, 1.0 / per_chat))
        if rows:
            log.info("pacing resumed from %d sends of the last minute (%s busy)", len(rows), ", ".join(busy) or "none")

    async def run(self) -> None:
        while True:
            try:
                delay = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery worker step failed; retrying in %ss", self.poll_interval)
                delay = self.poll_interval
            await self._wait(delay)

    async def run_until_idle(self, max_steps: int = 100_000) -> None:
        """Send until nothing is pending (for tests and one-shot use; sleeps through backoffs)."""
        for _ in range(max_steps):
            delay = await self.step()
            if not self._jobs and not self._inflight and not await self._pending_count():
                await self._finish_broadcasts(self.clock())
                return
            await self._wait(delay)
        raise RuntimeError("delivery did not become idle")

    async def _wait(self, delay: float) -> None:
        """Until `delay` passed, a send finished, or new work was announced (since the last step)."""
        own: list[asyncio.Future[Any]] = [asyncio.ensure_future(self.sleep(max(0.0, delay))),
                                          asyncio.ensure_future(self._wake.wait())]
        await asyncio.wait([*own, *self._inflight.values()], return_when=asyncio.FIRST_COMPLETED)
        for waiter in own:
            waiter.cancel()

    # ------------------------------------------------------------------ interactive replies

    def interactive(self, handler: Handler) -> Handler:
        """Wrap the dialogue: its replies count in the pacing windows (they are sent at once)."""

        async def wrapped(inbound: Inbound) -> list[Reply]:
            replies = await handler(inbound)
            for reply in replies:
                channel = reply.channel or inbound.channel
                chat_id = reply.chat_id or inbound.chat_id
                kind = inbound.chat_kind if chat_id == inbound.chat_id else "private"
                self.note_interactive(channel, kind, chat_id)
            return replies

        return wrapped

    def note_interactive(self, channel: str, kind: str, chat_id: str) -> None:
        if channel in self.channels:
            self.pacer(channel).note(kind, chat_id, self.clock())

    def rate(self, channel: str) -> float:
        """The channel's overall send rate (messages a second), for estimates shown to staff."""
        return self.pacer(channel).limits.per_second

    def pacer(self, channel: str) -> Pacer:
        pacer = self.pacers.get(channel)
        if pacer is None:
            pacer = self.pacers[channel] = Pacer(self.limits.get(channel, Limits(1.0, 20, 1)))
        return pacer

    def notify(self) -> None:
        """New work was queued in this process: look at the outbox now."""
        self._next_poll = 0.0
        self._wake.set()

    # ------------------------------------------------------------------ one round

    async def step(self) -> float:
        """Refill from the outbox when due, dispatch every send the windows allow; return the wait."""
        self._wake.clear()
        now = self.clock()
        due = self._next_due is not None and now >= self._next_due
        if now >= self._next_poll or due or (self._more and len(self._jobs) < self.batch // 2):
            # Set before the refill awaits: a notify() arriving meanwhile resets it to 0 and is kept.
            self._next_poll = now + self.poll_interval
            await self._refill(now)
        wake = self._next_poll
        if self._next_due is not None:
            wake = min(wake, max(self._next_due, now))
        blocked: set[str] = set()
        for job in list(self._jobs.values()):
            if len(self._inflight) >= self.concurrency or len(blocked) == len(self.channels):
                break
            if job.channel in blocked or job.chat in self._busy:
                continue
            if job.broadcast in self._cancelled:
                del self._jobs[job.id]
                continue
            pacer = self.pacer(job.channel)
            ready = pacer.channel_ready_at(now)
            if ready > now:
                blocked.add(job.channel)
                wake = min(wake, ready)
                continue
            ready = pacer.chat_ready_at(job.kind, job.chat_id, now)
            if ready > now:
                if ready - now > DEFER_AFTER:
                    del self._jobs[job.id]
                    self._deferred.append((ready, job.id))
                else:
                    wake = min(wake, ready)
                continue
            self._dispatch(job, pacer)
        await self._flush_deferred()
        for pacer in self.pacers.values():
            pacer.prune(now)
        return max(0.0, wake - now)

    def _dispatch(self, job: Job, pacer: Pacer) -> None:
        pacer.begin(job.kind, job.chat_id)
        self._busy.add(job.chat)
        self._inflight[job.id] = asyncio.create_task(self._send(job, pacer), name=f"send-{job.id}")

    async def _send(self, job: Job, pacer: Pacer) -> None:
        kind, chat_id = job.kind, job.chat_id
        try:
            piece = self._pieces[(job.broadcast, job.channel)]
            index = min(job.pieces_sent, len(piece.pieces) - 1)
            last = index == len(piece.pieces) - 1
            ack = last and piece.ack and job.kind == "group"
            options = (Option(self.ack_label, f"ack:{job.broadcast}"),) if ack else ()
            if piece.options is not None:
                options = piece.options if last else ()
            reply = Reply(piece.pieces[index], options=options)
            try:
                sent = await self.channels[job.channel].send(job.chat_id, reply)
            except DeliveryError as exc:
                pacer.end(kind, chat_id, self.clock())
                await self._failed(job, pacer, exc)
            except Exception as exc:  # an adapter bug must not stop the worker
                pacer.end(kind, chat_id, self.clock())
                log.exception("delivery: send to %s %s raised", job.channel, job.chat_id)
                await self._failed(job, pacer, DeliveryError("transient", f"{type(exc).__name__}: {exc}"))
            else:
                pacer.end(kind, chat_id, self.clock())
                await self._succeeded(job, sent, last)
        finally:
            self._busy.discard(job.chat)
            self._inflight.pop(job.id, None)
            self._wake.set()

    async def _alert(self, channel: str, reason: str) -> None:
        if channel in self._alerted:
            return
        self._alerted.add(channel)
        log.error("delivery: %s refused sends (%s); that channel is paused, its sends stay queued", channel, reason)
        if self.on_alert is not None:
            try:
                await self.on_alert(channel, reason)
            except Exception:
                log.exception("delivery: alert about %s failed", channel)

    async def _succeeded(self, job: Job, sent: Sent, last: bool) -> None:
        self._alerted.discard(job.channel)
        job.pieces_sent += 1
        job.message_ids.extend(sent.message_ids)
        self.stats["pieces"] += 1
        ids = json.dumps(job.message_ids)
        if last:
            await self.db.write(
                "UPDATE outbox SET status = 'sent', sent_at = ?, pieces_sent = ?, message_ids = ?, reason = NULL"
                " WHERE id = ?", (self.clock(), job.pieces_sent, ids, job.id),
            )
            self._jobs.pop(job.id, None)
            self.stats["sent"] += 1
        else:
            await self.db.write("UPDATE outbox SET pieces_sent = ?, message_ids = ? WHERE id = ?",
                                (job.pieces_sent, ids, job.id))

    async def _failed(self, job: Job, pacer: Pacer, exc: DeliveryError) -> None:
        now = self.clock()
        reason = f"{exc.kind}: {exc.reason}"[:REASON_CHARS] if exc.reason else exc.kind
        if exc.kind == "rate_limited":
            self.stats["rate_limited"] += 1
            pause = exc.retry_after if exc.retry_after is not None else 1.0
            pacer.paused_until = max(pacer.paused_until, now + pause)
            if self.on_pause is not None:
                self.on_pause(job.channel, exc.kind, pacer.paused_until)
            log.warning("delivery: %s rate limited; pausing that channel %.1fs", job.channel, pause)
            if exc.reason == "quota":
                await self._alert(job.channel, "quota")
            return  # the job stays queued in memory; no attempt counted
        if exc.kind == "unauthorized":
            pacer.paused_until = max(pacer.paused_until, now + UNAUTHORIZED_PAUSE)
            if self.on_pause is not None:
                self.on_pause(job.channel, exc.kind, pacer.paused_until)
            log.error("delivery: %s refused our token; channel paused %ss", job.channel, UNAUTHORIZED_PAUSE)
            return
        job.attempts += 1
        if exc.kind == "migrated" and exc.new_chat_id and job.attempts < self.max_attempts:
            old = job.chat_id
            await migrate_chat(self.db, job.channel, old, exc.new_chat_id)
            job.chat_id = exc.new_chat_id
            await self.db.write("UPDATE outbox SET chat_id = ?, attempts = ? WHERE id = ?",
                                (job.chat_id, job.attempts, job.id))
            log.info("delivery: %s chat %s migrated to %s; resending", job.channel, old, job.chat_id)
            return
        if exc.kind == "transient" and job.attempts < self.max_attempts:
            delay = self.backoff[min(job.attempts - 1, len(self.backoff) - 1)]
            await self.db.write("UPDATE outbox SET attempts = ?, reason = ?, next_attempt_at = ? WHERE id = ?",
                                (job.attempts, reason, now + delay, job.id))
            self._jobs.pop(job.id, None)
            self.stats["retried"] += 1
            log.info("delivery: %s to %s failed (%s); retry %d in %.0fs", job.channel, job.chat_id, reason,
                     job.attempts, delay)
            return
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE outbox SET status = 'failed', attempts = ?, reason = ? WHERE id = ?",
                             (job.attempts, reason, job.id))
            if exc.kind == "gone":
                await tx.execute("UPDATE chats SET active = 0 WHERE id = ?", (job.chat,))
        self._jobs.pop(job.id, None)
        self.stats["failed"] += 1
        log.info("delivery: %s to %s failed for good: %s", job.channel, job.chat_id, reason)

    # ------------------------------------------------------------------ the table

    async def _pending_count(self) -> int:
        if not self.channels:
            return 0
        marks = ", ".join("?" for _ in self.channels)
        unresolved = 0
        if self.resolve is not None:
            unresolved = int(await self.db.fetchval(
                "SELECT COUNT(*) FROM broadcasts WHERE status = 'queued' AND resolved_at IS NULL"))
        return unresolved + int(await self.db.fetchval(
            "SELECT COUNT(*) FROM outbox o JOIN broadcasts b ON b.id = o.broadcast WHERE o.status = 'pending'"
            f" AND b.status IN ('queued', 'sending') AND o.channel IN ({marks})", list(self.channels),
        ))

    async def _refill(self, now: float) -> None:
        if self.resolve is not None:
            self._next_due = await self.resolve(now)
        await self._finish_broadcasts(now)
        if not self.channels:
            return
        known = set(self._jobs) | set(self._inflight)
        want = self.batch - len(self._jobs)
        if want <= 0:
            return
        marks = ", ".join("?" for _ in self.channels)
        rows = await self.db.fetchall(
            "SELECT o.id, o.broadcast, o.chat, o.channel, o.chat_id, o.kind, o.attempts, o.pieces_sent,"
            " o.message_ids FROM outbox o JOIN broadcasts b ON b.id = o.broadcast"
            " WHERE o.status = 'pending' AND o.next_attempt_at <= ? AND b.status IN ('queued', 'sending')"
            f" AND o.channel IN ({marks}) ORDER BY o.next_attempt_at, o.id LIMIT ?",
            [now, *self.channels, want + len(known)],
        )
        fresh = [r for r in rows if r["id"] not in known]
        self._more = len(rows) == want + len(known)
        broadcasts = {r["broadcast"] for r in fresh} - {b for b, _ in self._pieces}
        if broadcasts:
            await self._load_texts(broadcasts)
        started: set[int] = set()
        for r in fresh[:want]:
            if (r["broadcast"], r["channel"]) not in self._pieces:
                continue
            self._jobs[r["id"]] = Job(
                id=r["id"], broadcast=r["broadcast"], chat=r["chat"], channel=r["channel"], chat_id=r["chat_id"],
                kind=r["kind"], attempts=r["attempts"], pieces_sent=r["pieces_sent"],
                message_ids=json.loads(r["message_ids"]) if r["message_ids"] else [],
            )
            started.add(r["broadcast"])
        if started:
            marks = ", ".join("?" for _ in started)
            await self.db.write(
                f"UPDATE broadcasts SET status = 'sending' WHERE status = 'queued' AND id IN ({marks})", list(started)
            )
        in_memory = {j.broadcast for j in self._jobs.values()}
        if in_memory:
            marks = ", ".join("?" for _ in in_memory)
            rows = await self.db.fetchall(
                f"SELECT id FROM broadcasts WHERE status = 'cancelled' AND id IN ({marks})", list(in_memory)
            )
            self._cancelled = {r["id"] for r in rows}

    async def _load_texts(self, broadcasts: set[int]) -> None:
        marks = ", ".join("?" for _ in broadcasts)
        rows = await self.db.fetchall(
            f"SELECT id, title, text, audience, options FROM broadcasts WHERE id IN ({marks})", list(broadcasts)
        )
        for r in rows:
            source = r["text"].strip()
            if r["title"]:
                source = f"**{r['title'].replace('*', '').strip()}**\n\n{source}"
            for name, channel in self.channels.items():
                pieces = split_text(source, channel.max_text) or [" "]
                options = tuple(Option(label, data) for label, data in json.loads(r["options"])) \
                    if r["options"] is not None else None
                self._pieces[(r["id"], name)] = _Piece(pieces, ack=r["audience"] in ("groups", "all"), options=options)

    async def _finish_broadcasts(self, now: float) -> None:
        cursor_rows = await self.db.fetchall(
            "SELECT id FROM broadcasts WHERE status IN ('queued', 'sending') AND send_at <= ?"
            " AND resolved_at IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM outbox o WHERE o.broadcast = broadcasts.id AND o.status = 'pending')", (now,),
        )
        done = [r["id"] for r in cursor_rows]
        if done:
            marks = ", ".join("?" for _ in done)
            await self.db.write(
                f"UPDATE broadcasts SET status = 'done', finished_at = ? WHERE id IN ({marks})", [now, *done]
            )
            for broadcast in done:
                log.info("broadcast %d: delivery finished", broadcast)
                for key in [k for k in self._pieces if k[0] == broadcast]:
                    del self._pieces[key]

    async def _flush_deferred(self) -> None:
        if self._deferred:
            deferred, self._deferred = self._deferred, []
            await self.db.write_many("UPDATE outbox SET next_attempt_at = ? WHERE id = ?", deferred)


def limits_from_settings(settings: Any) -> dict[str, Limits]:
    """Each channel's rates from the TELEGRAM_* / ZALO_* settings."""
    return {
        "telegram": Limits(settings.telegram_rate_per_second, settings.telegram_group_rate_per_minute,
                           settings.telegram_chat_rate_per_second),
        "zalo": Limits(settings.zalo_rate_per_second, None, 1.0),
        "zalo_oa": Limits(settings.zalo_oa_rate_per_second, None, 1.0),
    }
