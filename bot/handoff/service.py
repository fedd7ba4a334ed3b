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
(Mon–Fri 7:00–17:00 local time): `remind_due` runs every CHECK_EVERY seconds, and the retention
purge (`privacy.purge`) every PURGE_EVERY, both on the service's scheduler (bot/kernel/jobs.py,
registered by the composition root), the first time as the service starts.

The ticket store (`bot.handoff.tickets.Tickets`) is shared with petitions, privacy and the CLI.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiosqlite

from bot.audiences.chats import Chats, Staff
from bot.audiences.localities import Localities
from bot.channels.base import DeliveryError, Inbound, Option, Reply, Sender, Sent
from bot.conversation.flows import Flows
from bot.conversation.ratelimit import RateLimiter
from bot.conversation.routes import Routes, Turn
from bot.conversation.small_talk import small_talk
from bot.handoff.privacy import Privacy
from bot.handoff.tickets import CHANNEL_NAMES, Ticket, Tickets
from bot.kernel.messages import Messages
from bot.kernel.vietnamese import fold, syllables
from bot.knowledge.question_log import last_declined
from bot.store.db import Database

log = logging.getLogger(__name__)

PREFIX = "hof"
QUESTION_STEP = "handoff.question"  # /canbo's "what is your question?" (its name in Flows)
MAX_TICKET_CHARS = 2000  # one question, petition or follow-up
MAX_FOLLOWUPS = 20  # resident messages appended to one ticket
MAX_OPEN_PER_PERSON = 5  # open tickets one person may have at a time
FOLLOWUP_WINDOW = 30 * 60.0  # seconds after the resident's last message on a ticket
DECLINED_RECENT = 60 * 60.0  # "Hỏi cán bộ" forwards a question declined at most this long ago
CHECK_EVERY = 300.0  # seconds between looks for tickets to re-announce
PURGE_EVERY = 86_400.0
WORK_START, WORK_END = 7, 17  # working hours, local time, Monday to Friday
_ASK_FOR_PERSON = re.compile(
    r"\b(gap|hoi|noi chuyen voi|lien he|ket noi|chuyen cho|chuyen den|cho gap|can) "
    r"(can bo|nguoi that|nhan vien|nguoi truc)\b"
)
ASK_FOR_PERSON_MAX_SYLLABLES = 9  # longer messages are questions about it: the knowledge base answers


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
        tickets: Tickets,
        chats: Chats,
        staff: Staff,
        tree: Localities,
        say: Messages,
        tz: ZoneInfo,
        *,
        sender: Sender | None,
        answers: Callable[[str], bool],
        topic_title: Callable[[str], str],
        privacy: Privacy,
        limiter: RateLimiter,
        flows: Flows,
        staff_chat: tuple[str, str] | None = None,
        remind_hours: float = 4.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`sender` reaches residents and the staff chat (None without running channels: `chat`, `ask`);
        `answers(text)` says whether the knowledge base answers a message (then it is no follow-up);
        `topic_title` names a petition topic; `privacy` holds the retention purge (a job of the service);
        `limiter` is the per-person rate limit, held here for the service's owners (a dialogue gate)."""
        self.db = db
        self.flows = flows
        flows.declare("handoff", steps={QUESTION_STEP: self._got_question}, restart="canbo")
        self.tickets = tickets
        self.chats = chats
        self.staff = staff
        self.tree = tree
        self.say = say
        self.tz = tz
        self.staff_chat = staff_chat
        self.remind_hours = remind_hours
        self.clock = clock
        self.sender = sender
        self.answers = answers
        self.topic_title = topic_title
        self.privacy = privacy
        self.limiter = limiter

    def routes(self) -> Routes:
        """/canbo, /traloi, the "Hỏi cán bộ" button offered with every decline, answers typed in the
        staff chat (after group phrases), and a resident's follow-up to their open question."""
        return Routes(owner="handoff", priority=20, commands={"canbo": self.cmd_canbo, "traloi": self.cmd_traloi},
                      options={PREFIX: self.on_option}, group_text=(self.on_staff_chat_text,),
                      text=(self.on_resident_text,),
                      decline_options=(Option(self.say("handoff_offer_button"), f"{PREFIX}:q"),),
                      audited={"/traloi": "ticket.answer", "hook:on_staff_chat_text": "ticket.answer",
                               f"{PREFIX}:d": "ticket.close"})

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

        async def posted(sent: Sent) -> None:  # now, or when the staff chat's turn comes
            await self.tickets.record_post(ticket, channel, chat_id, sent.message_ids)

        try:
            await self.sender.send(channel, chat_id, dataclasses.replace(reply, on_sent=posted))
        except (DeliveryError, KeyError) as exc:
            log.error("ticket %d: posting to the staff chat failed: %s", ticket, exc)
            return False
        return True

    def staff_text(self, ticket: Ticket, messages: list[aiosqlite.Row]) -> str:
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
        self.flows.expect(turn.inbound, QUESTION_STEP)
        return [Reply(self.say("handoff_ask_prompt"))]

    async def _got_question(self, turn: Turn) -> list[Reply]:
        text = turn.inbound.text.strip()
        if not text:
            self.flows.expect(turn.inbound, QUESTION_STEP)
            return [Reply(self.say("handoff_ask_prompt"))]
        if len(text) > MAX_TICKET_CHARS:
            self.flows.expect(turn.inbound, QUESTION_STEP)
            return [Reply(self.say("handoff_too_long", limit=MAX_TICKET_CHARS))]
        return await self.open_ticket(turn, "question", text)

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
        text = await last_declined(self.db, turn.chat, self.clock() - DECLINED_RECENT)
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
        if self.answers(text):
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
        """A staff answer in the chat: to the resident on their channel, then recorded on the ticket."""
        _, said = await self.answer_as(staff_label(inbound), inbound.display_name, ticket_id, text)
        return [Reply(said)]

    async def answer_as(self, by: str, name: str, ticket_id: int, text: str) -> tuple[bool, str]:
        """A staff answer from the chat or the dashboard (`by` as in `staff_label`): to the resident on
        their channel, then recorded on the ticket; (delivered, the sentence to tell the staff member)."""
        text = text.strip()
        if not text:
            return False, self.say("traloi_usage")
        if len(text) > MAX_TICKET_CHARS * 2:
            return False, self.say("handoff_too_long", limit=MAX_TICKET_CHARS * 2)
        ticket = await self.tickets.get(ticket_id)
        if ticket is None:
            return False, self.say("ticket_missing", id=ticket_id)
        delivered, reason = await self._deliver(ticket, self.say("handoff_answer", id=ticket.id, answer=text))
        if not delivered:
            log.warning("ticket %d: answer by %s not delivered: %s", ticket.id, by, reason)
            return False, self.say("handoff_undelivered", id=ticket.id, reason=reason)
        await self.tickets.answer(ticket.id, text, by)
        log.info("ticket %d answered by %s", ticket.id, by)
        return True, self.say("handoff_answer_sent", id=ticket.id, name=name or by)

    async def _deliver(self, ticket: Ticket, text: str) -> tuple[bool, str]:
        if ticket.chat is None:
            return False, self.say("ticket_reason_erased")
        chat = await self.chats.by_id(ticket.chat)
        if chat is None or self.sender is None:
            return False, self.say("ticket_reason_no_channel")
        try:
            await self.sender.send(chat.channel, chat.chat_id, Reply(text))
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
        rows = await self.tickets.waiting()
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
