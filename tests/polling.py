"""Waiting in end-to-end tests for something the service does in its own time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(check: Callable[[], object], timeout: float = 10, what: str = "condition",  # noqa: ASYNC109
                interval: float = 0.05) -> object:
    """Poll `check` (sync, or returning an awaitable) until it gives something true, and return that.
    Gently: the fake platform servers share this event loop, and a busy loop would bunch their
    arrival times into false rate-limit breaches."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)
