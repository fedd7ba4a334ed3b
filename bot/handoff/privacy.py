"""Residents' control of their data (Nghị định 13/2023/NĐ-CP on personal data protection).

- `/dulieu`: what is stored about the person, in plain words.
- `/xoadulieu`: after a confirmation button, erase it: the chat link (platform chat id) and name,
  the locality subscription (no more broadcasts; pending sends to them are dropped), ticket
  authorship (name, user id, link, photo), acknowledgements they pressed. Questions they asked stay
  as unlinked text (question_log.chat → NULL) and tickets stay as anonymous records, so counts
  and `kb gaps` keep working. The chats row is deleted; if other rows still point to it (sent
  broadcasts, whose per-recipient rows make the delivery reports), it stays as an anonymous
  tombstone (`chat_id` "xoa:<n>", no name, no locality, inactive) so those counts stay true.
  Staff-chat posts of the erased tickets are edited to drop the name.
- Retention: tickets answered or closed more than TICKET_RETENTION_DAYS ago lose their personal
  fields the same way (run at start and daily by the handoff loop).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.audiences.localities import Localities
from bot.channels.base import DeliveryError, Option, Reply
from bot.conversation.dialogue import Dialogue, Turn
from bot.handoff.service import CHANNEL_NAMES, Handoff
from bot.kernel.messages import Messages
from bot.store.db import Database

log = logging.getLogger(__name__)

PREFIX = "prv"


class Privacy:
    def __init__(self, db: Database, tree: Localities, say: Messages, handoff: Handoff, retention_days: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.tree = tree
        self.say = say
        self.handoff = handoff
        self.retention_days = retention_days
        self.clock = clock

    def install(self, dialogue: Dialogue) -> None:
        dialogue.commands.update({"dulieu": self.cmd_dulieu, "xoadulieu": self.cmd_xoadulieu})
        dialogue.options[PREFIX] = self.on_option
        self.handoff.periodic.append(self.purge)

    # ------------------------------------------------------------------ /dulieu

    async def cmd_dulieu(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        if inbound.chat_kind != "private":
            return [Reply(self.say("privacy_private_only"))]
        chat = await self.db.fetchone("SELECT * FROM chats WHERE id = ?", (turn.chat,))
        assert chat is not None
        place = self.tree.full_name(chat["locality"]) if chat["locality"] else self.say("privacy_no_locality")
        if chat["consent"]:
            subscription = self.say("privacy_subscribed", place=place, since=self._date(chat["consent_at"]))
        else:
            subscription = self.say("privacy_not_subscribed")
        questions = await self.db.fetchval("SELECT COUNT(*) FROM question_log WHERE chat = ?", (turn.chat,))
        received = await self.db.fetchval("SELECT COUNT(*) FROM outbox WHERE chat = ? AND status = 'sent'",
                                          (turn.chat,))
        tickets = await self.handoff.tickets.list(chat=turn.chat)
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
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "SELECT id FROM tickets WHERE chat = ? OR (channel = ? AND user_id = ?)", (chat, channel, user_id))
            tickets = [r[0] for r in await cursor.fetchall()]
            marks = ", ".join("?" for _ in tickets)
            if tickets:
                await tx.execute(
                    "UPDATE tickets SET chat = NULL, user_id = NULL, display_name = NULL, photo = NULL, erased_at = ?,"
                    " closed_by = CASE WHEN status = 'open' THEN 'xoadulieu' ELSE closed_by END,"
                    " closed_at = CASE WHEN status = 'open' THEN ? ELSE closed_at END,"
                    f" status = CASE WHEN status = 'open' THEN 'closed' ELSE status END WHERE id IN ({marks})",
                    (now, now, *tickets),
                )
                await tx.execute(f"UPDATE ticket_messages SET photo = NULL WHERE ticket IN ({marks})", tickets)
            counts["tickets"] = len(tickets)
            cursor = await tx.execute("UPDATE question_log SET chat = NULL WHERE chat = ?", (chat,))
            counts["questions"] = max(cursor.rowcount, 0)
            cursor = await tx.execute("DELETE FROM outbox WHERE chat = ? AND status = 'pending'", (chat,))
            counts["pending_sends"] = max(cursor.rowcount, 0)
            tombstone = f"xoa:{chat}"
            await tx.execute("UPDATE outbox SET chat_id = ? WHERE chat = ?", (tombstone, chat))
            await tx.execute(
                "UPDATE acknowledgements SET user_id = '', display_name = NULL WHERE user_id = ?"
                " AND chat IN (SELECT id FROM chats WHERE channel = ?)", (user_id, channel),
            )
            await tx.execute(
                "UPDATE chats SET chat_id = ?, display_name = NULL, locality = NULL, consent = 0, consent_at = NULL,"
                " active = 0, first_seen = ?, last_seen = ? WHERE id = ?", (tombstone, now, now, chat),
            )
            await tx.execute("SAVEPOINT drop_chat")
            try:
                await tx.execute("DELETE FROM chats WHERE id = ?", (chat,))
                counts["chat_deleted"] = 1
            except sqlite3.IntegrityError:  # sent broadcasts still count it: keep the anonymous tombstone
                await tx.execute("ROLLBACK TO drop_chat")
                counts["chat_deleted"] = 0
            await tx.execute("RELEASE drop_chat")
        log.info("privacy: personal data of a %s user erased (%s)", channel,
                 ", ".join(f"{k} {v}" for k, v in counts.items()))
        await self._scrub_staff_posts(tickets)
        return counts

    async def _scrub_staff_posts(self, tickets: list[int]) -> None:
        """Edit the staff-chat posts of erased tickets so the name no longer shows (best effort)."""
        if self.handoff.sender is None:
            return
        for ticket in tickets:
            for post in await self.handoff.tickets.posts(ticket):
                reply = Reply(self.say("ticket_erased_post", id=ticket), edit_message_id=post["message_id"])
                try:
                    await self.handoff.sender(post["channel"], post["chat_id"], reply)
                except (DeliveryError, KeyError) as exc:
                    log.info("privacy: staff post of ticket %d not edited: %s", ticket, exc)

    # ------------------------------------------------------------------ retention

    async def purge(self, now: float | None = None) -> int:
        """Erase personal fields of tickets answered or closed more than `retention_days` ago."""
        now = self.clock() if now is None else now
        cutoff = now - self.retention_days * 86_400
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "SELECT id FROM tickets WHERE status IN ('answered', 'closed') AND erased_at IS NULL"
                " AND COALESCE(closed_at, answered_at, updated_at) <= ?", (cutoff,),
            )
            ids = [r[0] for r in await cursor.fetchall()]
            if ids:
                marks = ", ".join("?" for _ in ids)
                await tx.execute(
                    "UPDATE tickets SET chat = NULL, user_id = NULL, display_name = NULL, photo = NULL,"
                    f" erased_at = ? WHERE id IN ({marks})", (now, *ids),
                )
                await tx.execute(f"UPDATE ticket_messages SET photo = NULL WHERE ticket IN ({marks})", ids)
        if ids:
            log.info("privacy: personal fields of %d closed tickets purged (older than %d days)", len(ids),
                     self.retention_days)
        return len(ids)

    def _date(self, epoch: Any) -> str:
        if not epoch:
            return "—"
        return datetime.fromtimestamp(float(epoch), self.handoff.tz).strftime("%d/%m/%Y")
