"""Short replies in a group that stand for a button, on platforms without buttons (Zalo).

A group leader answers the bot's broadcast with "đã nhận" instead of pressing "Đã nhận": that
acknowledges the last broadcast sent to this group (the same `ack:<id>` option the button sends).
Other services add their own phrase to `phrases` — supervision (issue 4) adds "đã hoàn thành",
which marks the group's open supervision task done:

    group_replies.phrases["da hoan thanh"] = supervision.on_done_reply   # (turn) -> list[Reply] | None

Phrases are matched on folded words (no marks, đ→d), so "Đã nhận", "da nhan", "đã nhận ạ" and
"Đã nhận rồi!" all count; longer sentences that merely start with the phrase do not. Channel-free:
it runs as a `group_text_hook`, i.e. only for group messages addressed to the bot (a mention or
a reply to it), on every channel.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable

from bot.broadcasts.store import ACK_PREFIX
from bot.channels.base import Reply
from bot.conversation.dialogue import Dialogue, Turn
from bot.kernel.vietnamese import fold
from bot.store.db import Database

log = logging.getLogger(__name__)

PhraseHandler = Callable[[Turn], Awaitable[list[Reply] | None]]
# Politeness and filler that may follow a phrase without changing it.
TRAILING = frozenset({"a", "ah", "ak", "roi", "nhe", "nha", "ok", "oke", "thong", "bao", "cam", "on", "em", "anh",
                      "chi"})
_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)


def words(text: str) -> list[str]:
    return _NOT_WORD.sub(" ", fold(text)).split()


class GroupReplies:
    def __init__(self, db: Database, dialogue: Dialogue) -> None:
        self.db = db
        self.dialogue = dialogue
        self.phrases: dict[str, PhraseHandler] = {"da nhan": self.acknowledge_last}

    def install(self) -> None:
        self.dialogue.group_text_hooks.append(self.on_group_text)

    def match(self, text: str) -> str | None:
        """The registered phrase `text` says (with only filler after it), or None."""
        said = words(text)
        for phrase in sorted(self.phrases, key=len, reverse=True):
            key = phrase.split()
            if said[: len(key)] == key and all(w in TRAILING for w in said[len(key):]):
                return phrase
        return None

    async def on_group_text(self, turn: Turn) -> list[Reply] | None:
        phrase = self.match(turn.inbound.text)
        if phrase is None:
            return None
        return await self.phrases[phrase](turn)

    async def acknowledge_last(self, turn: Turn) -> list[Reply] | None:
        """ "đã nhận": the `ack:` option of the last group broadcast this chat received."""
        sql = ("SELECT o.broadcast FROM outbox o JOIN broadcasts b ON b.id = o.broadcast"
               " WHERE o.chat = ? AND o.status = 'sent' AND b.audience IN ('groups', 'all') {}"
               " ORDER BY o.sent_at DESC, o.id DESC LIMIT 1")
        try:  # broadcasts with their own buttons (supervision reminders) are not acknowledged so
            broadcast = await self.db.fetchval(sql.format("AND b.options IS NULL"), (turn.chat,))
        except sqlite3.OperationalError:  # a store without broadcasts.options (migration 003)
            broadcast = await self.db.fetchval(sql.format(""), (turn.chat,))
        if broadcast is None:
            return [Reply(self.dialogue.say("ack_nothing"))]
        handler = self.dialogue.options.get(ACK_PREFIX)
        if handler is None:
            return None
        log.info("group %s %s: \"đã nhận\" read as the button of broadcast %s", turn.inbound.channel,
                 turn.inbound.chat_id, broadcast)
        return await handler(Turn(turn.inbound, turn.chat, args=str(broadcast)))
