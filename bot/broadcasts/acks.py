"""Acknowledgements in the chat: the "Đã nhận" button under a group broadcast (`ack:<id>`), and
the phrase "đã nhận" typed in a group on platforms without buttons (Zalo), which stands for the
button of the last group broadcast that chat received. Only a chat the broadcast was sent to
can acknowledge it, once."""

from __future__ import annotations

import logging

from bot.broadcasts.store import ACK_PREFIX, Broadcasts
from bot.channels.base import Reply
from bot.conversation.routes import Routes, Turn
from bot.kernel.messages import Messages

log = logging.getLogger(__name__)


class Acknowledgements:
    def __init__(self, broadcasts: Broadcasts, say: Messages) -> None:
        self.broadcasts = broadcasts
        self.say = say

    def routes(self) -> Routes:
        return Routes(owner="broadcasts.acks", priority=10, options={ACK_PREFIX: self.on_ack},
                      phrases={"da nhan": self.acknowledge_last})

    async def on_ack(self, turn: Turn) -> list[Reply]:
        if not turn.args.isdigit():
            return [Reply(self.say("stale_option"))]
        inbound = turn.inbound
        outcome = await self.broadcasts.acknowledge(int(turn.args), turn.chat, inbound.user_id,
                                                    inbound.display_name)
        if outcome == "missing":
            return [Reply(self.say("stale_option"))]
        if outcome == "not_recipient":
            log.warning("acknowledgement of broadcast %s refused: %s chat %s (user %s) did not receive it",
                        turn.args, inbound.channel, inbound.chat_id, inbound.user_id)
            return [Reply(self.say("ack_not_recipient"))]
        if outcome == "recorded":
            log.info("broadcast %s acknowledged in %s chat %s by %s", turn.args, inbound.channel,
                     inbound.chat_id, inbound.user_id)
            return [Reply(self.say("ack_done", name=inbound.display_name or ""))]
        return [Reply(self.say("ack_already"))]

    async def acknowledge_last(self, turn: Turn) -> list[Reply] | None:
        """ "đã nhận": the `ack:` option of the last group broadcast this chat received."""
        broadcast = await self.broadcasts.last_acknowledgeable(turn.chat)
        if broadcast is None:
            return [Reply(self.say("ack_nothing"))]
        log.info("group %s %s: \"đã nhận\" read as the button of broadcast %s", turn.inbound.channel,
                 turn.inbound.chat_id, broadcast)
        return await self.on_ack(Turn(turn.inbound, turn.chat, args=str(broadcast)))
