"""Pacing, pure: sliding-window logs that mirror how platforms count sends.

At most N sends in the last second overall, M in the last minute per group, K in the last second
per private chat. A send holds its slot from dispatch and is stamped when the answer arrives
(later than the platform's own stamp, so the window never runs ahead of the platform's). One
`Pacing` is shared by the delivery worker (broadcasts) and the reply queue (interactive replies),
so both count in the same windows.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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



class Pacing:
    """Each channel's Pacer, made on first use from its Limits (a cautious default otherwise)."""

    def __init__(self, limits: Mapping[str, Limits]) -> None:
        self.limits = dict(limits)
        self.pacers: dict[str, Pacer] = {}

    def __call__(self, channel: str) -> Pacer:
        pacer = self.pacers.get(channel)
        if pacer is None:
            pacer = self.pacers[channel] = Pacer(self.limits.get(channel, Limits(1.0, 20, 1)))
        return pacer


def limits_from_settings(settings: Any) -> dict[str, Limits]:
    """Each channel's rates from the TELEGRAM_* / ZALO_* settings."""
    return {
        "telegram": Limits(settings.telegram_rate_per_second, settings.telegram_group_rate_per_minute,
                           settings.telegram_chat_rate_per_second),
        "zalo": Limits(settings.zalo_rate_per_second, None, 1.0),
        "zalo_oa": Limits(settings.zalo_oa_rate_per_second, None, 1.0),
    }
