"""The terminal as a channel: the same dialogue, options as numbers, until end of input.

Reads stdin in a worker thread (no blocking read on the event loop), so it works the same
for a person at a keyboard and for `echo 'câu hỏi' | python -m bot chat`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

from bot.channels.base import Inbound, Option, Reply, Sent, WebhookRoute
from bot.kernel.markup import to_plain


class ConsoleChannel:
    name = "console"
    max_text = 100_000
    can_edit = False

    def __init__(
        self,
        on_inbound: Callable[[Inbound], Awaitable[list[Reply]]],
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        pick_prompt: str = "",
    ) -> None:
        self.on_inbound = on_inbound
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.pick_prompt = pick_prompt
        self._options: tuple[Option, ...] = ()

    running = True

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def is_group_admin(self, chat_id: str, user_id: str) -> bool:
        return False

    def webhook_route(self) -> WebhookRoute | None:
        return None

    async def send(self, chat_id: str, reply: Reply) -> Sent:
        self.stdout.write(self.render(reply) + "\n\n")
        self.stdout.flush()
        if reply.options:
            self._options = reply.options
        return Sent()

    def prepare(self, replies: list[Reply]) -> list[Reply]:
        return replies

    def render(self, reply: Reply) -> str:
        parts = []
        if reply.title:
            parts.append(f"== {reply.title} ==")
        parts.append(to_plain(reply.text))
        if reply.options:
            if self.pick_prompt:
                parts.append(self.pick_prompt)
            parts += [f"  {n}. {o.label}" for n, o in enumerate(reply.options, start=1)]
        return "\n".join(parts)

    def to_inbound(self, line: str) -> Inbound:
        text = line.strip()
        if text.isdigit() and 1 <= int(text) <= len(self._options):
            option = self._options[int(text) - 1]
            return Inbound("console", "console", "console", kind="option", option=option.data)
        return Inbound("console", "console", "console", text=text, display_name="console")

    async def run(self, first: str | None = None) -> None:
        """Converse until end of input. `first` is sent before reading (e.g. "/start")."""
        loop = asyncio.get_running_loop()
        if first:
            await self._turn(first)
        while True:
            line = await loop.run_in_executor(None, self.stdin.readline)
            if not line:
                return
            if line.strip():
                await self._turn(line)

    async def _turn(self, line: str) -> None:
        for reply in await self.on_inbound(self.to_inbound(line)):
            await self.send("console", reply)
