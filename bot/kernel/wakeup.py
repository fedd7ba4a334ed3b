"""A wake-up call one part hands to another before either runs: `wakeup()` to announce work,
`await wakeup.wait()` / `wakeup.clear()` in the loop that does it (an `asyncio.Event` with a name)."""

from __future__ import annotations

import asyncio


class Wakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def __call__(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def clear(self) -> None:
        self._event.clear()

    async def wait(self) -> None:
        await self._event.wait()
