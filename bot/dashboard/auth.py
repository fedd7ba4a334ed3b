"""Who may do what on the dashboard: roles in order, the sign-in rate limit, CSRF and Origin checks.

Pure functions and one small in-memory limiter: nothing here knows HTTP.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlparse

from bot.dashboard.accounts import ROLES

LINK_TTL = 15 * 60.0  # a sign-in link works once, within 15 minutes


def allows(role: str | None, needed: str) -> bool:
    """Roles are ordered viewer < sender < editor < admin: each may do what those before it may."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


def origin_of(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}".lower()


def origin_ok(origin: str | None, allowed: set[str]) -> bool:
    """A form post's Origin must be ours. Browsers send one on every POST; a missing one (old
    clients, curl) is left to the CSRF token, a foreign one is refused."""
    return origin is None or origin.lower().rstrip("/") in allowed


class Attempts:
    """At most `limit` sign-in attempts per address in `window` seconds (a sliding window)."""

    def __init__(self, limit: int = 10, window: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        if len(self._seen) > 10_000:  # forget quiet addresses rather than grow without bound
            for other in [k for k, v in self._seen.items() if not v or v[-1] <= now - self.window]:
                del self._seen[other]
        return True
