"""One reply sent at once to any chat on its own channel (a staff answer to a Zalo resident, a
ticket to the staff chat), counted in the delivery worker's pacing like other interactive replies."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from bot.channels.base import Channel, DeliveryError, Reply, Sent
from bot.delivery.worker import DeliveryWorker

RETRY_WITHIN = 5.0  # a 429 asking to wait at most this long is waited out once (a staff answer right after
# the bot's own reply to that resident meets the 1-a-second limit of a private chat)


class DirectSender:
    def __init__(self, channels: Mapping[str, Channel], worker: DeliveryWorker) -> None:
        self.channels = channels
        self.worker = worker

    async def send(self, channel: str, chat_id: str, reply: Reply) -> Sent:
        """Raises KeyError when that channel is not running, DeliveryError when the send fails."""
        target = self.channels[channel]
        try:
            sent = await target.send(chat_id, reply)
        except DeliveryError as exc:
            if exc.kind != "rate_limited" or (exc.retry_after or 0) > RETRY_WITHIN:
                raise
            await asyncio.sleep(exc.retry_after or 1.0)
            sent = await target.send(chat_id, reply)
        self.worker.note_interactive(channel, "group" if chat_id.startswith("-") else "private", chat_id)
        return sent
