"""Per-person message rate limit: beyond N messages in S seconds, one polite "vui lòng chờ" and
then silence, with no processing at all, until the window has room again.

A sliding-window log per person (channel, user id), in memory: a flood costs a deque append and
nothing else (no database, no search). Staff are never limited (checked only when someone is
over the limit, so the common path stays free of database reads).

The windows survive a restart: the people whose window changed are written to `rate_limits` (this
module owns it) at most once every FLUSH_EVERY seconds, in one transaction in the background, and
at close (`flush()`); `load()` reads them back at start. A SIGKILL loses at most the last
FLUSH_EVERY seconds of counts. Times are wall-clock epoch seconds, so that they mean the same
after a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from bot.channels.base import Inbound, Reply
from bot.kernel.messages import Messages
from bot.store.db import Database

log = logging.getLogger(__name__)

IsStaff = Callable[[str, str], Awaitable[bool]]
SWEEP_EVERY = 1000  # forget idle people every this many calls, so memory stays bounded
FLUSH_EVERY = 1.0  # seconds between writes of the changed windows


class RateLimiter:
    def __init__(self, limit: int, window: float, say: Messages, is_staff: IsStaff | None = None,
                 clock: Callable[[], float] = time.time, db: Database | None = None) -> None:
        self.limit = max(1, int(limit))
        self.window = float(window)
        self.say = say
        self.is_staff = is_staff
        self.clock = clock
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._warned: set[tuple[str, str]] = set()
        self._calls = 0
        self.dropped = 0  # messages not processed (for logs and tests)
        self.db = db
        self._dirty: set[tuple[str, str]] = set()  # windows changed since the last write
        self._flushed_at = clock()
        self._flushing: asyncio.Task[None] | None = None

    def allow(self, channel: str, user_id: str) -> str:
        """"ok", "warn" (first message over the limit: send the notice) or "drop"."""
        now = self.clock()
        key = (channel, user_id)
        stamps = self._seen.setdefault(key, deque())
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        self._calls += 1
        if self._calls % SWEEP_EVERY == 0:
            self._sweep(now)
        if len(stamps) < self.limit:
            stamps.append(now)
            self._warned.discard(key)
            self._dirty.add(key)
            return "ok"
        if key in self._warned:
            return "drop"
        self._warned.add(key)
        self._dirty.add(key)
        return "warn"

    def _sweep(self, now: float) -> None:
        idle = [k for k, s in self._seen.items() if not s or s[-1] <= now - self.window]
        for key in idle:
            del self._seen[key]
            self._warned.discard(key)
        if self.db is not None:
            self._dirty.update(idle)  # their rows go at the next write

    # ------------------------------------------------------------------ storage

    async def load(self) -> int:
        """Read back the windows still open (at start); returns how many people."""
        if self.db is None:
            return 0
        now = self.clock()
        await self.db.write("DELETE FROM rate_limits WHERE updated_at <= ?", (now - self.window,))
        for row in await self.db.fetchall("SELECT channel, user_id, stamps, warned FROM rate_limits"):
            try:
                stamps = sorted(float(t) for t in json.loads(row["stamps"]) if float(t) > now - self.window)
            except (ValueError, TypeError):
                log.warning("rate limit: unreadable window of %s user %s dropped", row["channel"], row["user_id"])
                continue
            key = (row["channel"], row["user_id"])
            if stamps:
                self._seen[key] = deque(stamps[-self.limit:])
                if row["warned"]:
                    self._warned.add(key)
        return len(self._seen)

    async def flush(self) -> None:
        """Write every window changed since the last write (and wait for one in progress)."""
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
            self._flushing = None
        await self._write()

    async def forget(self, channel: str, user_id: str) -> None:
        """Erase one person's window (memory and table)."""
        key = (channel, user_id)
        self._seen.pop(key, None)
        self._warned.discard(key)
        self._dirty.discard(key)
        if self.db is not None:
            await self.db.write("DELETE FROM rate_limits WHERE channel = ? AND user_id = ?", key)

    async def _write(self) -> None:
        keys, self._dirty = self._dirty, set()
        if not keys or self.db is None:
            return
        now = self.clock()
        rows = [(c, u, json.dumps(list(self._seen[(c, u)])), int((c, u) in self._warned), now)
                for c, u in keys if self._seen.get((c, u))]
        gone = [key for key in keys if not self._seen.get(key)]
        try:
            await self._store(rows, gone)
        except BaseException:
            self._dirty |= keys  # written next time
            raise

    async def _store(self, rows: list[tuple[str, str, str, int, float]], gone: list[tuple[str, str]]) -> None:
        assert self.db is not None
        async with self.db.transaction() as tx:
            if rows:
                await tx.executemany(
                    "INSERT INTO rate_limits (channel, user_id, stamps, warned, updated_at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (channel, user_id) DO UPDATE SET stamps = excluded.stamps,"
                    " warned = excluded.warned, updated_at = excluded.updated_at", rows)
            if gone:
                await tx.executemany("DELETE FROM rate_limits WHERE channel = ? AND user_id = ?", gone)

    async def _write_logged(self) -> None:
        try:
            await self._write()
        except Exception:
            log.exception("rate limit: the windows were not written (kept in memory, tried again later)")

    def _maybe_flush(self) -> None:
        """Start a background write when windows changed and FLUSH_EVERY passed since the last one."""
        if self.db is None or not self._dirty or (self._flushing is not None and not self._flushing.done()):
            return
        now = self.clock()
        if now - self._flushed_at >= FLUSH_EVERY:
            self._flushed_at = now
            self._flushing = asyncio.create_task(self._write_logged(), name="ratelimit-flush")

    async def gate(self, inbound: Inbound) -> list[Reply] | None:
        """The dialogue's gate: None lets the message through; a list (maybe empty) stops it."""
        if inbound.kind not in ("text", "option", "media") or not inbound.addressed:
            return None
        verdict = self.allow(inbound.channel, inbound.user_id)
        self._maybe_flush()
        if verdict == "ok":
            return None
        if self.is_staff is not None and await self.is_staff(inbound.channel, inbound.user_id):
            return None
        self.dropped += 1
        if verdict == "warn":
            log.warning("rate limit: %s user %s sent more than %d messages in %.0fs; ignoring until it calms",
                        inbound.channel, inbound.user_id, self.limit, self.window)
            return [Reply(self.say("rate_limited"))]
        return []
