"""Residents' opinions and petitions (ý kiến, kiến nghị): `/gopy` (and the menu's "Gửi ý kiến").

The flow, in a private chat: topic (buttons from content/petition_topics.yaml) → locality (typed,
looked up with diacritics or without, close matches offered when wrong; or picked from the
tree; the person's /diaban place offered first) → content (text, or a photo with a caption
where the channel sends photos: its file id is kept) → the consent sentence on how the data is
used → a ticket (`bot.handoff.tickets`, opened by `bot.handoff.service`), posted to staff like a
question, and its number `#<số>`.
`/theodoi <số>` shows status and answer to the ticket's author only. Staff: `/gopy_moi`.

A long free text typed where a choice is expected (the topic, the locality) is the petition itself:
it is kept as the draft's text (never read as a locality name, never answered as a question), and
the flow asks for what is still missing; once topic and locality are known it goes straight to the
consent sentence.

Callback data: `pet:<action>:<arg>` (locality codes ≤ 40 bytes keep it under 64).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.audiences.chats import Staff
from bot.audiences.localities import Localities, Locality
from bot.channels.base import Option, Reply
from bot.conversation.flows import Flows
from bot.conversation.routes import Handler, Routes, Turn
from bot.handoff.service import MAX_TICKET_CHARS, Handoff
from bot.handoff.tickets import Ticket
from bot.kernel.content import Problem, item_line
from bot.kernel.messages import Messages
from bot.kernel.vietnamese import fold, syllables
from bot.knowledge.question_log import last_about
from bot.store.db import Database

log = logging.getLogger(__name__)

OWNER = "handoff.petitions"
PREFIX = "pet"
FILE_NAME = "petition_topics.yaml"
EXCERPT = 300
LIST_LIMIT = 20
FREE_TEXT_WORDS = 7  # a typed answer this long, where a choice is expected, is the petition's text
FREE_TEXT_WINDOW = 1800.0  # seconds after /gopy during which a long text before the topic is the petition


@dataclass(frozen=True)
class PetitionTopic:
    id: str
    title: str


@dataclass
class _Draft:
    topic: str | None = None
    locality: str | None = None
    text: str | None = None
    photo: str | None = None
    started_at: float = 0.0


def load_topics(root: Path) -> tuple[list[PetitionTopic], list[Problem]]:
    path = root / FILE_NAME
    if not path.is_file():
        return [PetitionTopic("khac", "Việc khác")], []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return [], [Problem(path, 1, f"không đọc được danh sách chủ đề góp ý: {exc}")]
    if not isinstance(data, list) or not data:
        return [], [Problem(path, 1, "cần một danh sách các mục - id:, title:")]
    topics, problems, seen = [], [], set()
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict) or not str(item.get("id") or "").strip() or not str(item.get("title") or ""):
            problems.append(Problem(path, item_line(path, number), "mỗi chủ đề góp ý cần id và title"))
            continue
        topic = PetitionTopic(str(item["id"]).strip(), str(item["title"]).strip())
        if topic.id in seen or len(topic.id.encode()) > 40:
            problems.append(Problem(path, item_line(path, number), f"id '{topic.id}' trùng hoặc dài quá 40 ký tự"))
            continue
        seen.add(topic.id)
        topics.append(topic)
    return topics, problems


def title_of(topics: list[PetitionTopic], topic_id: str) -> str:
    """A topic's title (the id itself when unknown): what staff and residents see."""
    return next((t.title for t in topics if t.id == topic_id), topic_id)


def check(root: Path) -> list[Problem]:
    return load_topics(root)[1]


class Petitions:
    def __init__(self, handoff: Handoff, tree: Localities, topics: list[PetitionTopic], say: Messages,
                 staff: Staff, flows: Flows, db: Database) -> None:
        self.handoff = handoff
        self.db = db  # the question log, read for the message a "send this as a petition" button was under
        self.flows = flows
        self._steps: dict[str, Handler] = {"petition.locality": self._got_locality,
                                           "petition.content": self._got_content}
        flows.declare(OWNER, steps=self._steps, draft=_Draft, restart="gopy")
        self.tree = tree
        self.topics = topics
        self.say = say
        self.staff = staff

    def routes(self) -> Routes:
        """/gopy (also the main menu's "Góp ý"), /theodoi, /gopy_moi and the petition buttons; under an
        answer about petitions (an entry naming /gopy), "send what you wrote as a petition"."""
        return Routes(owner=OWNER, priority=15, commands={"gopy": self.cmd_gopy, "theodoi": self.cmd_theodoi,
                                                          "gopy_moi": self.cmd_gopy_moi},
                      options={PREFIX: self.on_option}, menu={"feedback": self.cmd_gopy},
                      text=(self.on_text_before_topic,),
                      answer_options={"gopy": Option(self.say("petition_offer_button"), f"{PREFIX}:q")})

    def topic_title(self, topic_id: str) -> str:
        return title_of(self.topics, topic_id)

    # ------------------------------------------------------------------ the flow

    async def cmd_gopy(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        if inbound.chat_kind != "private":
            return [Reply(self.say("petition_private_only"))]
        self.flows.start(OWNER, turn.inbound, _Draft(started_at=time.time()))
        return [self._topic_reply("petition_topic")]

    def _topic_reply(self, key: str) -> Reply:
        options = tuple(Option(t.title, f"{PREFIX}:t:{t.id}") for t in self.topics)
        return Reply(self.say(key), options=(*options, self._cancel()))

    async def on_text_before_topic(self, turn: Turn) -> list[Reply] | None:
        """Text typed while the topic buttons wait (nothing else waits for it): a topic's title or
        number, or, if long and soon after /gopy, the petition itself. Anything else: None (as usual)."""
        draft = self.flows.draft(OWNER, turn.inbound)
        if draft is None or draft.topic is not None or draft.text or turn.inbound.chat_kind != "private":
            return None
        text = turn.inbound.text.strip()
        wanted = fold(text)
        topic = next((t for i, t in enumerate(self.topics, start=1) if wanted in (str(i), fold(t.title), t.id)), None)
        if topic is not None:
            draft.topic = topic.id
            return await self._after_topic(turn)
        if not _is_free_text(text) or time.time() - draft.started_at > FREE_TEXT_WINDOW:
            return None
        kept = self._keep_text(turn, draft, text)
        return kept if kept is not None else [self._topic_reply("petition_text_kept")]

    def _keep_text(self, turn: Turn, draft: _Draft, text: str) -> list[Reply] | None:
        """Keep `text` as the petition; a refusal when it is over the limit, else None."""
        if len(text) > MAX_TICKET_CHARS:
            if draft.topic is not None:
                self._expect(turn, self._got_locality)
            return [Reply(self.say("handoff_too_long", limit=MAX_TICKET_CHARS))]
        draft.text = text
        log.info("petition: free text kept as the petition's content where a choice was expected (%s %s)",
                 turn.inbound.channel, turn.inbound.chat_id)
        return None

    async def _from_question(self, turn: Turn, entry_id: str) -> list[Reply]:
        """The button under an answer to a complaint: a petition whose text is the message it was
        under (the chat's latest question about that entry, from the last half hour), kept; the
        resident picks the topic and the place and confirms. Without that message: /gopy as usual."""
        if turn.inbound.chat_kind != "private":
            return [Reply(self.say("petition_private_only"))]
        now = time.time()
        text = await last_about(self.db, turn.chat, entry_id, now - FREE_TEXT_WINDOW) if entry_id else None
        draft = _Draft(started_at=now)
        self.flows.start(OWNER, turn.inbound, draft)
        if not text:
            log.info("petition: offered from an answer, but no recent message about %s (%s %s): /gopy as usual",
                     entry_id[:40], turn.inbound.channel, turn.inbound.chat_id)
            return [self._topic_reply("petition_topic")]
        kept = self._keep_text(turn, draft, text)
        return kept if kept is not None else [self._topic_reply("petition_text_kept")]

    async def _after_topic(self, turn: Turn) -> list[Reply]:
        draft = self.flows.draft(OWNER, turn.inbound)
        if draft is not None and draft.locality and draft.text:
            return self._consent(draft)
        return await self._ask_locality(turn)

    def _after_locality(self, turn: Turn, draft: _Draft) -> list[Reply]:
        if draft.text:
            return self._consent(draft)
        return self._ask_content(turn)

    async def on_option(self, turn: Turn) -> list[Reply]:
        action, _, arg = turn.args.partition(":")
        draft = self.flows.draft(OWNER, turn.inbound)
        if action == "x":
            self.flows.end(OWNER, turn.inbound)
            return [Reply(self.say("petition_cancelled"))]
        if action == "q":
            return await self._from_question(turn, arg)
        if draft is None or turn.inbound.chat_kind != "private":
            return [Reply(self.say("petition_stale"))]
        if action == "t" and any(t.id == arg for t in self.topics):
            draft.topic = arg
            return await self._after_topic(turn)
        if action == "n" and (not arg or arg in self.tree):
            return [self._tree_reply(arg or None)]
        if action == "l" and arg in self.tree and draft.topic:
            draft.locality = arg
            return self._after_locality(turn, draft)
        if action == "ok" and draft.topic and draft.locality and draft.text:
            self.flows.end(OWNER, turn.inbound)
            return await self.handoff.open_ticket(turn, "petition", draft.text, locality=draft.locality,
                                                  topic=draft.topic, photo=draft.photo, consent=True)
        return [Reply(self.say("petition_stale"))]

    async def _ask_locality(self, turn: Turn, key: str = "petition_locality") -> list[Reply]:
        chat = await self.handoff.chats.get(turn.inbound.channel, turn.inbound.chat_id)
        options: list[Option] = []
        if chat is not None and chat.locality and chat.locality in self.tree:
            place = self.tree.get(chat.locality)
            assert place is not None
            options.append(Option(self.say("locality_pick_this", place=place.name), f"{PREFIX}:l:{place.code}"))
        options.append(Option(self.say("locality_browse"), f"{PREFIX}:n:"))
        self._expect(turn, self._got_locality)
        return [Reply(self.say(key), options=tuple(options))]

    async def _got_locality(self, turn: Turn) -> list[Reply]:
        draft = self.flows.draft(OWNER, turn.inbound)
        if draft is None:
            return [Reply(self.say("petition_stale"))]
        wanted = turn.inbound.text.strip()
        found = self.tree.lookup(wanted) if wanted else None
        if found is not None:
            draft.locality = found.code
            return self._after_locality(turn, draft)
        if _is_free_text(wanted) and not draft.text:  # the petition itself, not a place's name
            kept = self._keep_text(turn, draft, wanted)
            return kept if kept is not None else await self._ask_locality(turn, "petition_text_kept_locality")
        self._expect(turn, self._got_locality)
        close = self.tree.suggest(wanted) if wanted else []
        if close:
            text = self.say("locality_unknown_suggest", code=wanted[:40],
                            suggestions=", ".join(i.name for i in close))
        else:
            text = self.say("locality_unknown", code=wanted[:40])
        options = tuple(Option(i.name, f"{PREFIX}:l:{i.code}") for i in close)
        return [Reply(text + "\n" + self.say("petition_locality_retry"),
                      options=(*options, Option(self.say("locality_browse"), f"{PREFIX}:n:")))]

    def _tree_reply(self, code: str | None) -> Reply:
        roots = self.tree.roots()
        if code is None and len(roots) == 1:
            code = roots[0].code
        level: list[Locality] = self.tree.children(code) if code else roots
        options: list[Option] = []
        node = self.tree.get(code)
        if node is not None:
            options.append(Option(self.say("locality_pick_this", place=node.name), f"{PREFIX}:l:{node.code}"))
        for item in level:
            action = "n" if self.tree.children(item.code) else "l"
            options.append(Option(f"{item.name} ›" if action == "n" else item.name, f"{PREFIX}:{action}:{item.code}"))
        if node is not None and node.parent is not None:
            options.append(Option(self.say("locality_up"), f"{PREFIX}:n:{node.parent}"))
        return Reply(self.say("petition_locality"), options=tuple(options))

    def _ask_content(self, turn: Turn) -> list[Reply]:
        self._expect(turn, self._got_content)
        draft = self.flows.draft(OWNER, turn.inbound)
        place = self.tree.full_name(draft.locality or "")
        return [Reply(self.say("petition_content", place=place, limit=MAX_TICKET_CHARS))]

    async def _got_content(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        draft = self.flows.draft(OWNER, turn.inbound)
        if draft is None:
            return [Reply(self.say("petition_stale"))]
        if inbound.kind == "media":
            if inbound.media_type != "photo" or not inbound.media_id:
                self._expect(turn, self._got_content)
                return [Reply(self.say("petition_media_unsupported"))]
            draft.photo = inbound.media_id
        text = inbound.text.strip()
        if not text:
            self._expect(turn, self._got_content)
            return [Reply(self.say("petition_photo_received" if draft.photo else "petition_content_empty"))]
        if len(text) > MAX_TICKET_CHARS:
            self._expect(turn, self._got_content)
            return [Reply(self.say("handoff_too_long", limit=MAX_TICKET_CHARS))]
        draft.text = text
        return self._consent(draft)

    def _consent(self, draft: _Draft) -> list[Reply]:
        text = draft.text or ""
        shown = text if len(text) <= EXCERPT else text[:EXCERPT].rstrip() + " …"
        consent = self.say("petition_consent", topic=self.topic_title(draft.topic or ""),
                           place=self.tree.full_name(draft.locality or ""), text=shown,
                           photo=self.say("petition_with_photo") if draft.photo else "")
        return [Reply(consent, options=(Option(self.say("petition_agree"), f"{PREFIX}:ok:"), self._cancel()))]

    def _cancel(self) -> Option:
        return Option(self.say("compose_cancel"), f"{PREFIX}:x:")

    def _expect(self, turn: Turn, handler: Handler) -> None:
        """The next message goes to `handler` (one of `self._steps`, by its name: it survives a restart)
        while this petition's draft is the current one."""
        name = next((name for name, step in self._steps.items() if step == handler), None)
        if name is None:
            raise KeyError(f"{handler.__name__} is not a declared step: add it to Petitions._steps")
        self.flows.expect(turn.inbound, name, owner=OWNER)

    # ------------------------------------------------------------------ following up

    async def cmd_theodoi(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        if inbound.chat_kind != "private":
            return [Reply(self.say("petition_private_only"))]
        arg = turn.args.strip().lstrip("#")
        tickets = self.handoff.tickets
        if not arg:
            mine = await tickets.list(chat=turn.chat, limit=10)
            if not mine:
                return [Reply(self.say("theodoi_none"))]
            lines = [self.say("theodoi_line", id=t.id, status=self._status(t), when=self.handoff.local(t.created_at))
                     for t in mine]
            return [Reply(self.say("theodoi_list") + "\n" + "\n".join(lines))]
        if not arg.isdigit():
            return [Reply(self.say("theodoi_usage"))]
        ticket = await tickets.get(int(arg))
        if ticket is None or ticket.chat is None or ticket.chat != turn.chat:
            log.warning("/theodoi %s refused for %s user %s: not the author", arg[:12], inbound.channel,
                        inbound.user_id)
            return [Reply(self.say("theodoi_refused", id=arg[:12]))]
        text = self.say("theodoi_status", id=ticket.id, status=self._status(ticket),
                        when=self.handoff.local(ticket.created_at), text=_excerpt(ticket.text))
        if ticket.answer:
            text += "\n\n" + self.say("theodoi_answer", answer=ticket.answer,
                                      when=self.handoff.local(ticket.answered_at or ticket.updated_at))
        return [Reply(text)]

    def _status(self, ticket: Ticket) -> str:
        return self.say(f"ticket_status_{ticket.status}")

    async def cmd_gopy_moi(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        if not await self.staff.is_staff(inbound.channel, inbound.user_id):
            log.warning("/gopy_moi refused: %s user %s is not staff", inbound.channel, inbound.user_id)
            return [Reply(self.say("staff_only"))]
        if inbound.chat_kind != "private" and not self.handoff.is_staff_chat(inbound):
            return [Reply(self.say("staff_private_only"))]
        waiting = await self.handoff.tickets.list(status="open", kind="petition", limit=LIST_LIMIT)
        if not waiting:
            return [Reply(self.say("gopy_moi_none"))]
        lines = []
        for t in waiting:
            place = self.tree.get(t.locality)
            lines.append(self.say("gopy_moi_line", id=t.id, when=self.handoff.local(t.created_at),
                                  topic=self.topic_title(t.topic or ""), place=place.name if place else "—",
                                  text=_excerpt(t.text, 120)))
        return [Reply(self.say("gopy_moi_intro", count=len(waiting)) + "\n" + "\n".join(lines))]



def _is_free_text(text: str) -> bool:
    """Long enough to be what the person wants to say rather than a choice or a place's name."""
    return len(syllables(text)) >= FREE_TEXT_WORDS


def _excerpt(text: str, limit: int = EXCERPT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rstrip() + " …"
