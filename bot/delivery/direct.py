"""One reply sent at once to any chat on its own channel (a staff answer to a Zalo resident, a
ticket to the staff chat), counted in the delivery worker's pacing like other interactive replies."""

from __future__ import annotations

from collections.abc import Mapping

from bot.channels.base import Channel, Reply, Sent
from bot.delivery.worker import DeliveryWorker


class DirectSender:
    def __init__(self, channels: Mapping[str, Channel], worker: DeliveryWorker) -> None:
        self.channels = channels
        self.worker = worker

    async def send(self, channel: str, chat_id: str, reply: Reply) -> Sent:
        """Raises KeyError when that channel is not running, DeliveryError when the send fails."""
        sent = await self.channels[channel].send(chat_id, reply)
        self.worker.note_interactive(channel, "group" if chat_id.startswith("-") else "private", chat_id)
        return sent
