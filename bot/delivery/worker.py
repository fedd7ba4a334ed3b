"""The delivery worker: one loop that sends the outbox, paced under each platform's limits.

Durable: every recipient is a row in `outbox` (bot/broadcasts.py writes them); a row is marked
sent only after the platform confirmed it, so after a crash the rows that were in flight are
sent again and nothing else is (long texts resume after their last confirmed piece).

Pacing, per channel, is a sliding-window log that mirrors how platforms count: at most N sends
in the last second overall, M in the last minute per group, K in the last second per private
chat. A send holds its slot from dispatch and is stamped when the answer arrives (later than the
platform's own stamp, so the window never runs ahead of the platform's). A small share of the
overall rate is kept free for interactive replies, which bot.delivery.replies sends at once in
the same windows (one `Pacing`, bot/delivery/pacing.py), so a broadcast never makes them wait.

Error classes (DeliveryError.kind): rate_limited → pause that channel for retry_after, retry;
gone → recipient inactive, failed, not retried; migrated → new chat id recorded, resent;
bad_request → failed with the reason; transient → retried with backoff, a bounded number of
times; unauthorized → the channel pauses (its token is wrong), rows stay pending.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.audiences.chats import ChatMigration, deactivate
from bot.broadcasts import outbox
from bot.channels.base import Channel, DeliveryError, Option, Reply, Sent
from bot.delivery.pacing import Limits, Pacer, Pacing
from bot.kernel import tasks
from bot.kernel.markup import split_text
from bot.store.db import Database

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Resolver = Callable[[float], Awaitable[float | None]]

DEFER_AFTER = 1.0  # a row whose chat is not free for longer than this goes back to the table
UNAUTHORIZED_PAUSE = 60.0
REASON_CHARS = 200


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
        limits: Mapping[str, Limits] | Pacing,
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
        migrate: ChatMigration | None = None,
    ) -> None:
        self.db = db
        # a group's new id: the chats row and every table pointing at it (the service passes the whole
        # migration; alone, the outbox's pending rows follow)
        self.migrate = migrate or ChatMigration(db, [outbox.OutboxRows()])
        self.channels = channels  # by reference: the app may add channels after building the worker
        # the windows, shared with bot.delivery.replies when given a Pacing
        self.pacing = limits if isinstance(limits, Pacing) else Pacing(limits)
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

    # ------------------------------------------------------------------ pacing shared with replies

    def rate(self, channel: str) -> float:
        """The channel's overall send rate (messages a second), for estimates shown to staff."""
        return self.pacer(channel).limits.per_second

    def pacer(self, channel: str) -> Pacer:
        return self.pacing(channel)

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
        for pacer in self.pacing.pacers.values():
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
            await outbox.mark_sent(self.db, job.id, self.clock(), job.pieces_sent, ids)
            self._jobs.pop(job.id, None)
            self.stats["sent"] += 1
        else:
            await outbox.mark_piece(self.db, job.id, job.pieces_sent, ids)

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
            await self.migrate(job.channel, old, exc.new_chat_id)
            job.chat_id = exc.new_chat_id
            await outbox.redirect(self.db, job.id, job.chat_id, job.attempts)
            log.info("delivery: %s chat %s migrated to %s; resending", job.channel, old, job.chat_id)
            return
        if exc.kind == "transient" and job.attempts < self.max_attempts:
            delay = self.backoff[min(job.attempts - 1, len(self.backoff) - 1)]
            await outbox.retry_at(self.db, job.id, job.attempts, reason, now + delay)
            self._jobs.pop(job.id, None)
            self.stats["retried"] += 1
            log.info("delivery: %s to %s failed (%s); retry %d in %.0fs", job.channel, job.chat_id, reason,
                     job.attempts, delay)
            return
        async with self.db.transaction() as tx:
            await outbox.mark_failed(tx, job.id, job.attempts, reason)
            if exc.kind == "gone":
                await deactivate(tx, job.chat)
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
            await outbox.mark_sending(self.db, sorted(started))
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
            await outbox.mark_done(self.db, done, now)
            for broadcast in done:
                log.info("broadcast %d: delivery finished", broadcast)
                for key in [k for k in self._pieces if k[0] == broadcast]:
                    del self._pieces[key]

    async def _flush_deferred(self) -> None:
        if self._deferred:
            deferred, self._deferred = self._deferred, []
            await outbox.defer(self.db, deferred)
