"""Residents' control of their data (Nghị định 13/2023/NĐ-CP on personal data protection).

- `/dulieu`: what is stored about the person, in plain words.
- `/xoadulieu`: after a confirmation button, erase it: the chat link (platform chat id) and name,
  the locality subscription (no more broadcasts; pending sends to them are dropped), ticket
  authorship (name, user id, link, photo), acknowledgements they pressed. Questions they asked stay
  as unlinked text (question_log.chat → NULL) and tickets stay as anonymous records, so counts
  and `kb gaps` keep working. The chats row is deleted; if other rows still point to it (sent
  broadcasts, whose per-recipient rows make the delivery reports), it stays as an anonymous
  tombstone (`chat_id` "xoa:<n>", no name, no locality, inactive) so those counts stay true.
  Staff-chat posts of the erased tickets are edited to drop the name. Tables this package may not
  import (supervision's extension requests and "done by") are erased by the `erasers` the
  composition root passes, in the same transaction. Deleted content is overwritten
  (`secure_delete`) and the -wal file is checkpointed and truncated afterwards, so that no copy of
  the person's id or name stays in the database files.
  An unfinished conversation (its step and drafts) and the rate-limit window go too (`forget`).
- Retention: tickets answered or closed more than TICKET_RETENTION_DAYS ago lose their personal
  fields the same way (run at start and daily by the handoff loop).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import aiosqlite

from bot.audiences.chats import erase_person as erase_chat
from bot.audiences.chats import person_row, tombstone
from bot.audiences.localities import Localities
from bot.broadcasts.store import erase_person as erase_sends
from bot.broadcasts.store import received_count
from bot.channels.base import DeliveryError, Option, Reply, Sender
from bot.conversation.routes import Routes, Turn
from bot.handoff.tickets import CHANNEL_NAMES, Tickets
from bot.kernel.messages import Messages
from bot.knowledge.question_log import asked_count
from bot.knowledge.question_log import erase_person as erase_questions
from bot.store.db import Database

log = logging.getLogger(__name__)

PREFIX = "prv"

# (the caller's transaction, chat row id, channel, platform user id) -> rows changed
Eraser = Callable[[aiosqlite.Connection, int, str, str], Awaitable[int]]


class Privacy:
    def __init__(self, db: Database, tickets: Tickets, tree: Localities, say: Messages, tz: ZoneInfo,
                 sender: Sender | None, retention_days: int, clock: Callable[[], float] = time.time, *,
                 erasers: Mapping[str, Eraser] | None = None,
                 forget: Sequence[Callable[[str, str], Awaitable[object]]] = ()) -> None:
        """`forget(channel, user_id)`: the other stores of a person's traces (conversation state,
        rate-limit window), erased with the rest."""
        self.db = db
        self.forget = tuple(forget)
        self.tickets = tickets
        self.tree = tree
        self.say = say
        self.tz = tz
        self.sender = sender  # None without running channels (`chat`, `ask`): staff posts stay as they are
        self.retention_days = retention_days
        self.clock = clock
        self.erasers = dict(erasers or {})

    def routes(self) -> Routes:
        return Routes(owner="handoff.privacy", commands={"dulieu": self.cmd_dulieu, "xoadulieu": self.cmd_xoadulieu},
                      options={PREFIX: self.on_option})

    # ------------------------------------------------------------------ /dulieu

    async def cmd_dulieu(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        if inbound.chat_kind != "private":
            return [Reply(self.say("privacy_private_only"))]
        chat = await person_row(self.db, turn.chat)
        assert chat is not None
        place = self.tree.full_name(chat["locality"]) if chat["locality"] else self.say("privacy_no_locality")
        if chat["consent"]:
            subscription = self.say("privacy_subscribed", place=place, since=self._date(chat["consent_at"]))
        else:
            subscription = self.say("privacy_not_subscribed")
        questions = await asked_count(self.db, turn.chat)
        received = await received_count(self.db, turn.chat)
        tickets = await self.tickets.list(chat=turn.chat)
        listed = ", ".join(f"#{t.id} ({self.say(f'ticket_status_{t.status}')})" for t in tickets[-20:])
        text = self.say(
            "privacy_report", channel=CHANNEL_NAMES.get(inbound.channel, inbound.channel), user_id=inbound.user_id,
            name=chat["display_name"] or "—", place=place, subscription=subscription,
            first_seen=self._date(chat["first_seen"]), questions=questions, received=received,
            tickets=listed or self.say("privacy_no_tickets"),
        )
        return [Reply(text)]

    # ------------------------------------------------------------------ /xoadulieu

    async def cmd_xoadulieu(self, turn: Turn) -> list[Reply]:
        if turn.inbound.chat_kind != "private":
            return [Reply(self.say("privacy_private_only"))]
        options = (Option(self.say("privacy_erase_yes"), f"{PREFIX}:y"),
                   Option(self.say("privacy_erase_no"), f"{PREFIX}:n"))
        return [Reply(self.say("privacy_erase_confirm"), options=options)]

    async def on_option(self, turn: Turn) -> list[Reply]:
        if turn.inbound.chat_kind != "private":
            return [Reply(self.say("privacy_private_only"))]
        if turn.args == "n":
            return [Reply(self.say("privacy_erase_cancelled"))]
        if turn.args != "y":
            return [Reply(self.say("stale_option"))]
        await self.erase(turn.chat, turn.inbound.channel, turn.inbound.user_id)
        return [Reply(self.say("privacy_erased"))]

    async def erase(self, chat: int, channel: str, user_id: str) -> dict[str, int]:
        """Remove one person's personal data (see the module docstring); counts of what changed."""
        now = self.clock()
        counts: dict[str, int] = {}
        async with self.db.transaction() as tx:  # each table's owner erases its own rows
            tickets = await self.tickets.erase_person(tx, chat, channel, user_id, now)
            counts["tickets"] = len(tickets)
            counts["questions"] = await erase_questions(tx, chat)
            counts["pending_sends"] = await erase_sends(tx, chat, channel, user_id, tombstone(chat))
            for name, eraser in self.erasers.items():
                counts[name] = await eraser(tx, chat, channel, user_id)
            counts["chat_deleted"] = int(await erase_chat(tx, chat, now))
        for forget in self.forget:
            await forget(channel, user_id)
        busy, _, _ = await self.db.checkpoint()  # no old page of those rows left in the -wal file
        if busy:
            log.warning("privacy: the -wal file could not be emptied after an erasure (a reader held it)")
        log.info("privacy: personal data of a %s user erased (%s)", channel,
                 ", ".join(f"{k} {v}" for k, v in counts.items()))
        await self._scrub_staff_posts(tickets)
        return counts

    async def _scrub_staff_posts(self, tickets: list[int]) -> None:
        """Edit the staff-chat posts of erased tickets so the name no longer shows (best effort)."""
        if self.sender is None:
            return
        for ticket in tickets:
            for post in await self.tickets.posts(ticket):
                reply = Reply(self.say("ticket_erased_post", id=ticket), edit_message_id=post["message_id"])
                try:
                    await self.sender.send(post["channel"], post["chat_id"], reply)
                except (DeliveryError, KeyError) as exc:
                    log.info("privacy: staff post of ticket %d not edited: %s", ticket, exc)

    # ------------------------------------------------------------------ retention

    async def purge(self, now: float | None = None) -> int:
        """Erase personal fields of tickets answered or closed more than `retention_days` ago."""
        now = self.clock() if now is None else now
        cutoff = now - self.retention_days * 86_400
        ids = await self.tickets.purge(cutoff, now)
        if ids:
            log.info("privacy: personal fields of %d closed tickets purged (older than %d days)", len(ids),
                     self.retention_days)
        return len(ids)

    def _date(self, epoch: float | None) -> str:
        if not epoch:
            return "—"
        return datetime.fromtimestamp(float(epoch), self.tz).strftime("%d/%m/%Y")
