"""The running channels by name, created before anything that sends, filled as adapters start.

Services hold this one object from construction (the delivery worker, handoff, supervision), so a
send that happens later finds the channel that was added later, with nothing patched on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from bot.channels.base import Channel, Inbound


class Channels(Mapping[str, Channel]):
    def __init__(self) -> None:
        self._by_name: dict[str, Channel] = {}

    def add(self, channel: Channel) -> None:
        if channel.name in self._by_name:
            raise ValueError(f"channel {channel.name!r} is already registered")
        self._by_name[channel.name] = channel

    def __getitem__(self, name: str) -> Channel:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    async def is_group_admin(self, inbound: Inbound) -> bool:
        """Whether the inbound's sender administers its group, as the inbound's channel tells."""
        channel = self._by_name.get(inbound.channel)
        return channel is not None and await channel.is_group_admin(inbound.chat_id, inbound.user_id)
