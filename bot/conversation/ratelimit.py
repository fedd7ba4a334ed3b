"""Per-person message rate limit: beyond N messages in S seconds, one polite "vui lòng chờ" and
then silence, with no processing at all, until the window has room again.

A sliding-window log per person (channel, user id), in memory: a flood costs a deque append and
nothing else (no database, no search). Staff are never limited (checked only when someone is
over the limit, so the common path stays free of database reads).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from bot.channels.base import Inbound, Reply
from bot.kernel.messages import Messages

log = logging.getLogger(__name__)

IsStaff = Callable[[str, str], Awaitable[bool]]
SWEEP_EVERY = 1000  # forget idle people every this many calls, so memory stays bounded


class RateLimiter:
    def __init__(self, limit: int, window: float, say: Messages, is_staff: IsStaff | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = max(1, int(limit))
        self.window = float(window)
        self.say = say
        self.is_staff = is_staff
        self.clock = clock
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._warned: set[tuple[str, str]] = set()
        self._calls = 0
        self.dropped = 0  # messages not processed (for logs and tests)

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
            return "ok"
        if key in self._warned:
            return "drop"
        self._warned.add(key)
        return "warn"

    def _sweep(self, now: float) -> None:
        idle = [k for k, s in self._seen.items() if not s or s[-1] <= now - self.window]
        for key in idle:
            del self._seen[key]
            self._warned.discard(key)

    async def gate(self, inbound: Inbound) -> list[Reply] | None:
        """The dialogue's gate: None lets the message through; a list (maybe empty) stops it."""
        if inbound.kind not in ("text", "option", "media") or not inbound.addressed:
            return None
        verdict = self.allow(inbound.channel, inbound.user_id)
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
