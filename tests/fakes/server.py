"""The aiohttp skeleton the fake platform servers share: `/bot{token}/{method}` (or the `path` a
fake names) on a free loopback port (`url` says which), `async with` to start and close."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class Call:
    """One request a fake received (after its parameters were decoded)."""

    method: str
    params: dict[str, Any]
    time: float


class LoopbackServer:
    url: str
    _runner: web.AppRunner | None

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def listen(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                     path: str = "/bot{token}/{method}") -> None:
        app = web.Application()
        app.router.add_route("*", path, handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop_listening(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
