"""A person behind the bot: tickets that carry a resident's question (or petition) to staff and
the answer back, on the resident's own channel.

Resident side (private chats only, so an answer never lands in a group):
- the decline offers "Hỏi cán bộ" (`hof:q`): the question just declined becomes a ticket;
- `/canbo` asks for the question (the next message), `/canbo <câu hỏi>` forwards at once;
  "gặp cán bộ" and the like, typed as a short message, start the same;
- while a question ticket is open, messages the knowledge base cannot answer, sent within
  FOLLOWUP_WINDOW of the last one, are appended to it (and posted to staff as a reply).

Staff side: each ticket is posted to the staff chat (TELEGRAM_STAFF_CHAT_ID) as `#<số>` with the
question, the resident's channel, display name and locality only, and the buttons "Trả lời"
(`hof:r:<số>`) and "Đã xử lý" (`hof:d:<số>`). A staff member answers by replying to any message
the bot posted for that ticket (their ids are kept in `ticket_posts`) or with
`/traloi <số> <nội dung>`. A reply from someone who is not staff is ignored and logged.
Open tickets without an answer are announced again every `remind_hours` working hours
(Mon–Fri 7:00–17:00 local time).

The store part (`Tickets`) is shared with petitions, privacy and the CLI.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.audiences.chats import Chats, Staff
from bot.audiences.localities import Localities
from bot.channels.base import DeliveryError, Inbound, Option, Reply, Sent
from bot.conversation.dialogue import Dialogue, Turn
from bot.conversation.small_talk import small_talk
from bot.kernel import tasks
from bot.kernel.messages import Messages
from bot.kernel.vietnamese import fold, syllables
from bot.store.db import Database

log = logging.getLogger(__name__)

PREFIX = "hof"
MAX_TICKET_CHARS = 2000  # one question, petition or follow-up
MAX_FOLLOWUPS = 20  # resident messages appended to one ticket
MAX_OPEN_PER_PERSON = 5  # open tickets one person may have at a time
FOLLOWUP_WINDOW = 30 * 60.0  # seconds after the resident's last message on a ticket
DECLINED_RECENT = 60 * 60.0  # "Hỏi cán bộ" forwards a question declined at most this long ago
CHECK_EVERY = 300.0  # seconds between looks for tickets to re-announce
PURGE_EVERY = 86_400.0
WORK_START, WORK_END = 7, 17  # working hours, local time, Monday to Friday
CHANNEL_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "console": "dòng lệnh"}
_ASK_FOR_PERSON = re.compile(
    r"\b(gap|hoi|noi chuyen voi|lien he|ket noi|chuyen cho|chuyen den|cho gap|can) "
    r"(can bo|nguoi that|nhan vien|nguoi truc)\b"
)
ASK_FOR_PERSON_MAX_SYLLABLES = 9  # longer messages are questions about it: the knowledge base answers

Sender = Callable[[str, str, Reply], Awaitable[Sent]]


@dataclass(frozen=True)
class Ticket:
    id: int
    kind: str
    chat: int | None
    channel: str
    user_id: str | None
    display_name: str | None
    locality: str | None
    topic: str | None
    text: str
    photo: str | None
    status: str
    answer: str | None
    answered_by: str | None
    answered_at: float | None
    closed_by: str | None
    closed_at: float | None
    created_at: float
    updated_at: float
    reminded_at: float | None
    erased_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _ticket(row: Any) -> Ticket:
    return Ticket(**{name: row[name] for name in Ticket.__dataclass_fields__})


class Tickets:
    """The tickets table and its companions; no conversation here."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def create(self, kind: str, chat: int | None, channel: str, user_id: str | None,
                     display_name: str | None, text: str, *, locality: str | None = None,
                     topic: str | None = None, photo: str | None = None, consent: bool = False) -> int:
        now = self.clock()
        return await self.db.write(
            "INSERT INTO tickets (kind, chat, channel, user_id, display_name, locality, topic, text, photo,"
            " consent_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, chat, channel, user_id, display_name or None, locality, topic, text, photo,
             now if consent else None, now, now),
        )

    async def get(self, ticket: int) -> Ticket | None:
        row = await self.db.fetchone("SELECT * FROM tickets WHERE id = ?", (ticket,))
        return _ticket(row) if row else None

    async def list(self, *, status: str | None = None, kind: str | None = None, chat: int | None = None,
                   limit: int | None = None) -> list[Ticket]:
        where, params = ["1 = 1"], []
        for column, value in (("status", status), ("kind", kind), ("chat", chat)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT * FROM tickets WHERE {' AND '.join(where)} ORDER BY id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql} DESC LIMIT {int(limit)}) ORDER BY id"
        return [_ticket(r) for r in await self.db.fetchall(sql, params)]

    async def open_count(self, chat: int) -> int:
        return int(await self.db.fetchval("SELECT COUNT(*) FROM tickets WHERE chat = ? AND status = 'open'", (chat,)))

    async def latest_open_question(self, chat: int) -> Ticket | None:
        row = await self.db.fetchone(
            "SELECT * FROM tickets WHERE chat = ? AND kind = 'question' AND status = 'open' ORDER BY id DESC LIMIT 1",
            (chat,),
        )
        return _ticket(row) if row else None

    async def add_message(self, ticket: int, direction: str, text: str, *, photo: str | None = None,
                          author: str | None = None) -> None:
        now = self.clock()
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO ticket_messages (ticket, direction, text, photo, author, at) VALUES (?, ?, ?, ?, ?, ?)",
                (ticket, direction, text, photo, author, now),
            )
            await tx.execute("UPDATE tickets SET updated_at = ? WHERE id = ?", (now, ticket))

    async def messages(self, ticket: int) -> list[Any]:
        return await self.db.fetchall("SELECT * FROM ticket_messages WHERE ticket = ? ORDER BY id", (ticket,))

    async def followups(self, ticket: int) -> int:
        return int(await self.db.fetchval(
            "SELECT COUNT(*) FROM ticket_messages WHERE ticket = ? AND direction = 'resident'", (ticket,)))

    async def last_resident_activity(self, ticket: Ticket) -> float:
        at = await self.db.fetchval(
            "SELECT MAX(at) FROM ticket_messages WHERE ticket = ? AND direction = 'resident'", (ticket.id,))
        return max(ticket.created_at, at or 0.0)

    async def record_post(self, ticket: int, channel: str, chat_id: str, message_ids: list[str]) -> None:
        now = self.clock()
        await self.db.write_many(
            "INSERT OR REPLACE INTO ticket_posts (channel, chat_id, message_id, ticket, posted_at)"
            " VALUES (?, ?, ?, ?, ?)", [(channel, chat_id, m, ticket, now) for m in message_ids],
        )

    async def by_post(self, channel: str, chat_id: str, message_id: str) -> int | None:
        return await self.db.fetchval(
            "SELECT ticket FROM ticket_posts WHERE channel = ? AND chat_id = ? AND message_id = ?",
            (channel, chat_id, message_id),
        )

    async def posts(self, ticket: int) -> list[Any]:
        return await self.db.fetchall("SELECT * FROM ticket_posts WHERE ticket = ? ORDER BY posted_at", (ticket,))

    async def answer(self, ticket: int, text: str, by: str) -> None:
        now = self.clock()
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE tickets SET status = CASE WHEN status = 'closed' THEN 'closed' ELSE 'answered' END,"
                " answer = CASE WHEN answer IS NULL THEN ? ELSE answer || char(10) || char(10) || ? END,"
                " answered_by = ?, answered_at = ?, updated_at = ? WHERE id = ?",
                (text, text, by, now, now, ticket),
            )
            await tx.execute(
                "INSERT INTO ticket_messages (ticket, direction, text, author, at) VALUES (?, 'staff', ?, ?, ?)",
                (ticket, text, by, now),
            )

    async def close(self, ticket: int, by: str) -> bool:
        """Mark handled; False when it already was."""
        now = self.clock()
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE tickets SET status = 'closed', closed_by = ?, closed_at = ?, updated_at = ?"
                " WHERE id = ? AND status != 'closed'", (by, now, now, ticket),
            )
            return cursor.rowcount == 1

    async def mark_reminded(self, ticket: int, at: float) -> None:
        await self.db.write("UPDATE tickets SET reminded_at = ? WHERE id = ?", (at, ticket))


# ---------------------------------------------------------------------- working hours


def working_seconds(start: float, end: float, tz: ZoneInfo) -> float:
    """Seconds of working time (Mon–Fri, WORK_START–WORK_END local) between two instants."""
    if end <= start:
        return 0.0
    total = 0.0
    day = datetime.fromtimestamp(start, tz).date()
    last = datetime.fromtimestamp(end, tz).date()
    while day <= last:
        if day.weekday() < 5:
            opens = datetime(day.year, day.month, day.day, WORK_START, tzinfo=tz).timestamp()
            closes = datetime(day.year, day.month, day.day, WORK_END, tzinfo=tz).timestamp()
            total += max(0.0, min(end, closes) - max(start, opens))
        day += timedelta(days=1)
    return total


# ---------------------------------------------------------------------- the service


class Handoff:
    def __init__(
        self,
        db: Database,
        chats: Chats,
        staff: Staff,
        tree: Localities,
        say: Messages,
        tz: ZoneInfo,
        *,
        staff_chat: tuple[str, str] | None = None,
        remind_hours: float = 4.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.tickets = Tickets(db, clock)
        self.chats = chats
        self.staff = staff
        self.tree = tree
        self.say = say
        self.tz = tz
        self.staff_chat = staff_chat
        self.remind_hours = remind_hours
        self.clock = clock
        self.sender: Sender | None = None  # wired by bot.app.service to the running channels
        self.periodic: list[Callable[[float], Awaitable[Any]]] = []  # privacy's retention purge, …
        self._dialogue: Dialogue | None = None
        self._task: asyncio.Task[None] | None = None
        self.petitions: Any = None  # set by install_all
        self.privacy: Any = None
        self.limiter: Any = None

    def install(self, dialogue: Dialogue) -> None:
        self._dialogue = dialogue
        dialogue.commands.update({"canbo": self.cmd_canbo, "traloi": self.cmd_traloi})
        dialogue.options[PREFIX] = self.on_option
        dialogue.group_text_hooks.append(self.on_staff_chat_text)
        dialogue.text_hooks.append(self.on_resident_text)

    # ------------------------------------------------------------------ life cycle (run by bot.app.service)

    async def start(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(sleep), name="handoff")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await tasks.cancel(task)

    async def _loop(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        last_purge = -PURGE_EVERY
        while True:
            now = self.clock()
            try:
                if now - last_purge >= PURGE_EVERY:  # at start, then daily
                    last_purge = now
                    for job in self.periodic:
                        await job(now)
                await self.remind_due(now)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handoff: periodic work failed; trying again in %ss", CHECK_EVERY)
            await sleep(CHECK_EVERY)

    # ------------------------------------------------------------------ opening tickets

    async def open_ticket(self, turn: Turn, kind: str, text: str, *, locality: str | None = None,
                          topic: str | None = None, photo: str | None = None, consent: bool = False) -> list[Reply]:
        """Store a ticket for the person of `turn`, post it to staff, and say so to the person."""
        inbound = turn.inbound
        text = text.strip()
        if len(text) > MAX_TICKET_CHARS:
            return [Reply(self.say("handoff_too_long", limit=MAX_TICKET_CHARS))]
        if await self.tickets.open_count(turn.chat) >= MAX_OPEN_PER_PERSON:
            return [Reply(self.say("handoff_too_many", count=MAX_OPEN_PER_PERSON))]
        if locality is None:
            chat = await self.chats.get(inbound.channel, inbound.chat_id)
            locality = chat.locality if chat else None
        ticket = await self.tickets.create(kind, turn.chat, inbound.channel, inbound.user_id, inbound.display_name,
                                           text, locality=locality, topic=topic, photo=photo, consent=consent)
        log.info("ticket %d (%s) opened by %s user %s", ticket, kind, inbound.channel, inbound.user_id)
        await self.post(ticket)
        key = "petition_received" if kind == "petition" else "handoff_forwarded"
        return [Reply(self.say(key, id=ticket))]

    async def post(self, ticket: int, intro: str = "") -> bool:
        """Post the ticket to the staff chat with its buttons; remember the message ids."""
        found = await self.tickets.get(ticket)
        if found is None:
            return False
        text = self.staff_text(found, await self.tickets.messages(ticket))
        if intro:
            text = f"{intro}\n\n{text}"
        options = (Option(self.say("handoff_button_answer"), f"{PREFIX}:r:{ticket}"),
                   Option(self.say("handoff_button_done"), f"{PREFIX}:d:{ticket}"))
        # The resident's photo goes along: a file id of the staff chat's own channel, or a link
        # (Zalo sends links, which Telegram fetches itself).
        photo = found.photo if found.photo and self.staff_chat and (
            found.channel == self.staff_chat[0] or found.photo.startswith(("https://", "http://"))) else None
        return await self._to_staff(ticket, Reply(text, options=options, photo=photo))

    async def _to_staff(self, ticket: int, reply: Reply) -> bool:
        if self.staff_chat is None or self.sender is None:
            log.warning("ticket %d not posted: %s", ticket,
                        "TELEGRAM_STAFF_CHAT_ID is not set" if self.staff_chat is None else "no channel running")
            return False
        channel, chat_id = self.staff_chat
        try:
            sent = await self.sender(channel, chat_id, reply)
        except (DeliveryError, KeyError) as exc:
            log.error("ticket %d: posting to the staff chat failed: %s", ticket, exc)
            return False
        await self.tickets.record_post(ticket, channel, chat_id, sent.message_ids)
        return True

    def staff_text(self, ticket: Ticket, messages: list[Any]) -> str:
        """What staff see: number, kind, channel, display name, locality, the text. Nothing else."""
        place = self.tree.get(ticket.locality)
        who = self.say(
            "handoff_staff_card", id=ticket.id,
            kind=self.say("ticket_kind_petition" if ticket.kind == "petition" else "ticket_kind_question"),
            channel=CHANNEL_NAMES.get(ticket.channel, ticket.channel),
            name=ticket.display_name or self.say("ticket_anonymous"),
            place=place.name if place else self.say("ticket_no_locality"),
            when=self.local(ticket.created_at), text=ticket.text,
        )
        if ticket.topic:
            who += "\n" + self.say("ticket_topic_line", topic=self.topic_title(ticket.topic))
        if ticket.photo:
            who += "\n" + self.say("ticket_photo_line")
        extra = [m for m in messages if m["direction"] == "resident"]
        for m in extra[-5:]:
            who += "\n" + self.say("ticket_followup_line", when=self.local(m["at"]), text=m["text"])
        return who + "\n\n" + self.say("handoff_staff_howto", id=ticket.id)

    def topic_title(self, topic: str) -> str:
        return topic  # petitions replace it with the topic's title

    # ------------------------------------------------------------------ resident commands and buttons

    async def cmd_canbo(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        if inbound.chat_kind != "private":
            return [Reply(self.say("handoff_private_only"))]
        text = turn.args.strip()
        if not text:
            return await self._ask_question(turn)
        open_ticket = await self.tickets.latest_open_question(turn.chat)
        if open_ticket is not None:
            return await self.append(turn, open_ticket, text)
        return await self.open_ticket(turn, "question", text)

    async def _ask_question(self, turn: Turn) -> list[Reply]:
        assert self._dialogue is not None

        async def got(next_turn: Turn) -> list[Reply]:
            text = next_turn.inbound.text.strip()
            if not text:
                self._dialogue.expect(next_turn.inbound, got)  # type: ignore[union-attr]
                return [Reply(self.say("handoff_ask_prompt"))]
            if len(text) > MAX_TICKET_CHARS:
                self._dialogue.expect(next_turn.inbound, got)  # type: ignore[union-attr]
                return [Reply(self.say("handoff_too_long", limit=MAX_TICKET_CHARS))]
            return await self.open_ticket(next_turn, "question", text)

        self._dialogue.expect(turn.inbound, got)
        return [Reply(self.say("handoff_ask_prompt"))]

    async def on_option(self, turn: Turn) -> list[Reply]:
        action, _, arg = turn.args.partition(":")
        if action == "q":
            return await self._forward_declined(turn)
        if action in ("r", "d"):
            if not arg.isdigit():
                return [Reply(self.say("stale_option"))]
            if not await self.staff.is_staff(turn.inbound.channel, turn.inbound.user_id):
                log.warning("handoff: %s user %s pressed a staff button (%s) and is not staff; ignored",
                            turn.inbound.channel, turn.inbound.user_id, turn.args[:20])
                return [Reply(self.say("staff_only"))] if turn.inbound.chat_kind == "private" else []
            if action == "r":
                return await self._answer_prompt(turn, int(arg))
            return await self._mark_done(turn, int(arg))
        return [Reply(self.say("stale_option"))]

    async def _forward_declined(self, turn: Turn) -> list[Reply]:
        if turn.inbound.chat_kind != "private":
            return [Reply(self.say("handoff_private_only"))]
        text = await self.db.fetchval(
            "SELECT text FROM question_log WHERE chat = ? AND outcome = 'declined' AND asked_at >= ?"
            " ORDER BY id DESC LIMIT 1", (turn.chat, self.clock() - DECLINED_RECENT),
        )
        if not text:
            return await self._ask_question(turn)
        open_ticket = await self.tickets.latest_open_question(turn.chat)
        if open_ticket is not None and open_ticket.text == text:
            return [Reply(self.say("handoff_already", id=open_ticket.id))]
        return await self.open_ticket(turn, "question", text[:MAX_TICKET_CHARS])

    async def on_resident_text(self, turn: Turn) -> list[Reply] | None:
        """Follow-ups to an open question, and "gặp cán bộ" typed as words."""
        inbound = turn.inbound
        if inbound.chat_kind != "private":
            return None
        text = inbound.text.strip()
        words = syllables(text)
        if not words or small_talk(text) is not None:
            return None
        if len(words) <= ASK_FOR_PERSON_MAX_SYLLABLES and _ASK_FOR_PERSON.search(" ".join(fold(w) for w in words)):
            return await self._ask_question(turn)
        ticket = await self.tickets.latest_open_question(turn.chat)
        if ticket is None or self.clock() - await self.tickets.last_resident_activity(ticket) > FOLLOWUP_WINDOW:
            return None
        assert self._dialogue is not None
        if self._dialogue.index.search(text).decision == "answer":
            return None  # a question the bot can answer: answer it
        return await self.append(turn, ticket, text)

    async def append(self, turn: Turn, ticket: Ticket, text: str, photo: str | None = None) -> list[Reply]:
        if len(text) > MAX_TICKET_CHARS:
            return [Reply(self.say("handoff_too_long", limit=MAX_TICKET_CHARS))]
        if await self.tickets.followups(ticket.id) >= MAX_FOLLOWUPS:
            return [Reply(self.say("handoff_followups_full", id=ticket.id))]
        await self.tickets.add_message(ticket.id, "resident", text, photo=photo)
        log.info("ticket %d: follow-up from %s user %s", ticket.id, turn.inbound.channel, turn.inbound.user_id)
        await self._to_staff(ticket.id, Reply(self.say("handoff_followup_staff", id=ticket.id, text=text)))
        return [Reply(self.say("handoff_appended", id=ticket.id))]

    # ------------------------------------------------------------------ staff

    def is_staff_chat(self, inbound: Inbound) -> bool:
        return self.staff_chat is not None and (inbound.channel, inbound.chat_id) == self.staff_chat

    async def on_staff_chat_text(self, turn: Turn) -> list[Reply] | None:
        """A reply, in the staff chat, to a message the bot posted for a ticket: the answer."""
        inbound = turn.inbound
        if not self.is_staff_chat(inbound) or not inbound.reply_to_message_id:
            return None
        ticket = await self.tickets.by_post(inbound.channel, inbound.chat_id, inbound.reply_to_message_id)
        if ticket is None:
            return None
        if not await self.staff.is_staff(inbound.channel, inbound.user_id):
            log.warning("handoff: reply to ticket %d in the staff chat from %s user %s (%s), who is not staff;"
                        " ignored", ticket, inbound.channel, inbound.user_id, inbound.display_name or "?")
            return []
        return await self.answer(inbound, ticket, inbound.text)

    async def cmd_traloi(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        if not await self.staff.is_staff(inbound.channel, inbound.user_id):
            log.warning("/traloi refused: %s user %s is not staff", inbound.channel, inbound.user_id)
            return [Reply(self.say("staff_only"))]
        number, _, text = turn.args.strip().lstrip("#").partition(" ")
        if not number.isdigit() or not text.strip():
            return [Reply(self.say("traloi_usage"))]
        return await self.answer(inbound, int(number), text)

    async def _answer_prompt(self, turn: Turn, ticket: int) -> list[Reply]:
        if await self.tickets.get(ticket) is None:
            return [Reply(self.say("ticket_missing", id=ticket))]
        prompt = Reply(self.say("handoff_answer_prompt", id=ticket))
        if self.is_staff_chat(turn.inbound) and await self._to_staff(ticket, prompt):
            return []  # posted (and remembered) so that a reply to it answers the ticket
        return [Reply(self.say("traloi_usage"))]

    async def _mark_done(self, turn: Turn, ticket: int) -> list[Reply]:
        if await self.tickets.get(ticket) is None:
            return [Reply(self.say("ticket_missing", id=ticket))]
        by = staff_label(turn.inbound)
        if not await self.tickets.close(ticket, by):
            return [Reply(self.say("handoff_already_done", id=ticket))]
        log.info("ticket %d closed by %s", ticket, by)
        return [Reply(self.say("handoff_done", id=ticket, name=turn.inbound.display_name or by))]

    async def answer(self, inbound: Inbound, ticket_id: int, text: str) -> list[Reply]:
        """A staff answer: to the resident on their channel, then recorded on the ticket."""
        text = text.strip()
        if not text:
            return [Reply(self.say("traloi_usage"))]
        if len(text) > MAX_TICKET_CHARS * 2:
            return [Reply(self.say("handoff_too_long", limit=MAX_TICKET_CHARS * 2))]
        ticket = await self.tickets.get(ticket_id)
        if ticket is None:
            return [Reply(self.say("ticket_missing", id=ticket_id))]
        by = staff_label(inbound)
        delivered, reason = await self._deliver(ticket, self.say("handoff_answer", id=ticket.id, answer=text))
        if not delivered:
            log.warning("ticket %d: answer by %s not delivered: %s", ticket.id, by, reason)
            return [Reply(self.say("handoff_undelivered", id=ticket.id, reason=reason))]
        await self.tickets.answer(ticket.id, text, by)
        log.info("ticket %d answered by %s", ticket.id, by)
        return [Reply(self.say("handoff_answer_sent", id=ticket.id, name=inbound.display_name or by))]

    async def _deliver(self, ticket: Ticket, text: str) -> tuple[bool, str]:
        if ticket.chat is None:
            return False, self.say("ticket_reason_erased")
        row = await self.db.fetchone("SELECT channel, chat_id FROM chats WHERE id = ?", (ticket.chat,))
        if row is None or self.sender is None:
            return False, self.say("ticket_reason_no_channel")
        try:
            await self.sender(row["channel"], row["chat_id"], Reply(text))
        except KeyError:
            return False, self.say("ticket_reason_no_channel")
        except DeliveryError as exc:
            return False, exc.kind
        return True, ""

    # ------------------------------------------------------------------ re-announcing

    async def remind_due(self, now: float | None = None) -> list[int]:
        """Announce again the open, unanswered tickets that waited `remind_hours` working hours."""
        now = self.clock() if now is None else now
        due_after = self.remind_hours * 3600
        rows = await self.db.fetchall(
            "SELECT id, created_at, reminded_at FROM tickets WHERE status = 'open' AND answered_at IS NULL"
            " ORDER BY id")
        reminded = []
        for row in rows:
            since = row["reminded_at"] or row["created_at"]
            if working_seconds(since, now, self.tz) < due_after:
                continue
            waited = working_seconds(row["created_at"], now, self.tz) / 3600
            intro = self.say("handoff_reminder", id=row["id"], hours=f"{waited:.0f}")
            if await self.post(row["id"], intro):
                await self.tickets.mark_reminded(row["id"], now)
                reminded.append(row["id"])
        if reminded:
            log.info("handoff: re-announced tickets %s", ", ".join(f"#{i}" for i in reminded))
        return reminded

    def local(self, epoch: float) -> str:
        return datetime.fromtimestamp(epoch, self.tz).strftime("%d/%m/%Y %H:%M")


def staff_label(inbound: Inbound) -> str:
    name = f" ({inbound.display_name})" if inbound.display_name else ""
    return f"{inbound.channel}:{inbound.user_id}{name}"


# ---------------------------------------------------------------------- wiring (bot.app.wiring)


def install_all(db: Database, chats: Chats, staff: Staff, tree: Localities, dialogue: Dialogue,
                settings: Any) -> Handoff:
    """Handoff, petitions, privacy and the per-person rate limit, plugged into the dialogue."""
    from bot.conversation.ratelimit import RateLimiter
    from bot.handoff.petitions import Petitions, load_topics
    from bot.handoff.privacy import Privacy

    staff_chat = ("telegram", settings.telegram_staff_chat_id) if settings.telegram_staff_chat_id else None
    handoff = Handoff(db, chats, staff, tree, dialogue.say, settings.tz, staff_chat=staff_chat,
                      remind_hours=settings.handoff_remind_hours)
    handoff.install(dialogue)
    handoff.petitions = Petitions(handoff, tree, load_topics(settings.content_dir)[0], dialogue.say, staff)
    handoff.petitions.install(dialogue)
    handoff.privacy = Privacy(db, tree, dialogue.say, handoff, settings.ticket_retention_days)
    handoff.privacy.install(dialogue)
    handoff.limiter = RateLimiter(settings.rate_limit_messages, settings.rate_limit_seconds, dialogue.say,
                                  staff.is_staff)
    dialogue.gates.append(handoff.limiter.gate)
    return handoff
