"""The conversation, channel-agnostic: an `Inbound` in, a list of `Reply` out.

The dialogue is a router: its own commands (`/start`, `/help`…) and options (`kb:`, `topic:`,
`menu:`) are one `Routes` like any feature's; features (broadcasts, supervision, handoff…) add
theirs with `include`, which refuses a clash (bot/conversation/routes.py). Multi-step flows take
the person's next message through `Flows` (bot/conversation/flows.py).
"""

from __future__ import annotations

import dataclasses
import logging

from bot.audiences.chats import Chats
from bot.channels.base import Inbound, Option, Reply
from bot.conversation.flows import Flows, Next
from bot.conversation.phrases import match_phrase
from bot.conversation.routes import Handler, Hook, Routes, RouteTable, StaffAction, Turn
from bot.conversation.small_talk import small_talk
from bot.kernel.content import Content, Entry
from bot.kernel.markup import split_text
from bot.kernel.messages import Messages
from bot.kernel.vietnamese import syllables
from bot.knowledge.index import MAX_QUERY_CHARS, Answer, KnowledgeIndex
from bot.knowledge.live import LiveKnowledge
from bot.knowledge.question_log import QuestionLog
from bot.knowledge.searcher import Searcher

log = logging.getLogger(__name__)

# One answer is at most this many characters at a time (one Telegram message, two Zalo ones); the
# rest waits behind "Xem tiếp" (`kb:<id>:<page>`), so one question never floods a chat.
ANSWER_PAGE_CHARS = 3000



class Dialogue:
    def __init__(
        self,
        knowledge: LiveKnowledge,
        searcher: Searcher,
        chats: Chats,
        questions: QuestionLog,
        flows: Flows,
        staff_action: StaffAction | None = None,
    ) -> None:
        """`staff_action`: told of each audited command or option (Routes.audited) after it ran."""
        self.knowledge = knowledge  # content and index, swapped whole when staff edit knowledge
        self.searcher = searcher  # where residents' questions are searched (a search process, or here)
        self.staff_action = staff_action
        self.chats = chats
        self.questions = questions
        self.flows = flows
        self.say = Messages(knowledge.content.messages)
        self.routes = RouteTable()
        self.routes.include(Routes(
            owner="dialogue",
            commands={"start": self._start, "menu": self._menu, "help": self._help, "trogiup": self._help,
                      "lienhe": self._contact},
            options={"menu": self._menu_option, "topic": self._topic, "kb": self._entry_option,
                     "flow": self._restart_flow},
        ))
        self.menu_items: list[tuple[str, str]] = [
            (self.say("menu_programs"), "menu:programs"),
            (self.say("menu_ask"), "menu:ask"),
            (self.say("menu_news"), "menu:news"),
            (self.say("menu_feedback"), "menu:feedback"),
            (self.say("menu_contact"), "menu:contact"),
        ]
        self._menu_defaults: dict[str, Handler] = {
            "programs": self._programs,
            "ask": self._ask_prompt,
            "news": self._news,
            "feedback": self._feedback,
            "contact": self._contact,
        }


    @property
    def content(self) -> Content:
        return self.knowledge.content

    @property
    def index(self) -> KnowledgeIndex:
        return self.knowledge.index

    def render_answer(self, answer: Answer) -> list[Reply]:
        """The replies a resident gets for `answer` (the dashboard's "try a question" shows them)."""
        return self._render_answer(answer)

    def include(self, routes: Routes) -> None:
        """Plug one feature's commands, options, phrases and hooks in (RouteClash on a clash)."""
        self.routes.include(routes)

    def has_command(self, name: str) -> bool:
        return name in self.routes.commands

    # ------------------------------------------------------------------ entry point

    async def handle(self, inbound: Inbound) -> list[Reply]:
        """Never raises: a failure is logged and the person gets a polite sentence."""
        try:
            replies = await self._handle(inbound)
        except Exception:
            log.exception(
                "dialogue failed on %s %s from user %s in chat %s",
                inbound.channel, inbound.kind, inbound.user_id, inbound.chat_id,
            )
            replies = [Reply(self.say("error"))] if inbound.addressed else []
        try:  # the step and drafts this message left, written through before the replies go out
            await self.flows.save(inbound)
        except Exception:
            log.exception("flows: the conversation state of %s user %s was not saved (kept in memory)",
                          inbound.channel, inbound.user_id)
        return replies

    async def _handle(self, inbound: Inbound) -> list[Reply]:
        if inbound.kind in ("joined", "left", "migrated"):
            return await self._membership(inbound)
        for gate in self.routes.gates if inbound.addressed else ():
            stopped = await gate(inbound)
            if stopped is not None:
                return stopped
        chat = await self.chats.touch(inbound)
        if not inbound.addressed:
            return []
        if inbound.kind == "media" and self.flows.waiting(inbound):  # a flow that takes a photo
            step = self.flows.take(inbound)
            if step is not None:
                return await self._step(step, Turn(inbound, chat))
        if inbound.kind == "media":
            log.info("media (%s) from %s chat %s", inbound.media_type, inbound.channel, inbound.chat_id)
            return [Reply(self.say("media_unsupported"))]
        if inbound.kind == "option":
            return await self._option(Turn(inbound, chat))
        text = inbound.text.strip()
        if text.startswith("/"):
            name, _, args = text[1:].partition(" ")
            name = name.split("@", 1)[0].lower()
            turn = Turn(inbound, chat, name, args.strip())
            self.flows.drop_step(inbound)
            handler = self.routes.commands.get(name)
            if handler is None:
                log.info("unknown command /%s from %s %s", name[:32], inbound.channel, inbound.user_id)
                return [Reply(self.say("unknown_command"))]
            replies = await handler(turn)
            await self._audited(inbound, f"/{name}", f"/{name} {turn.args}".strip(), replies)
            return replies
        turn = Turn(inbound, chat)
        step = self.flows.take(inbound)
        if step is not None:
            return await self._step(step, turn)
        hooks: list[Hook] = []
        if inbound.chat_kind == "group":
            phrase = match_phrase(text, self.routes.phrases)
            if phrase is not None:
                hooks.append(self.routes.phrases[phrase])
            hooks += self.routes.group_text
        for hook in (*hooks, *self.routes.text):
            replies = await hook(turn)
            if replies is not None:
                await self._audited(inbound, f"hook:{getattr(hook, '__name__', '')}", text[:120], replies)
                return replies
        return await self.answer_text(turn)

    async def _step(self, step: Next, turn: Turn) -> list[Reply]:
        """The step a message was waited for, with its arg; or, when it expired, one sentence and
        the way to start again."""
        inbound = turn.inbound
        if step.step is not None:
            replies = await step.step(Turn(inbound, turn.chat, args=step.arg))
            await self._audited(inbound, f"step:{step.name}", inbound.text.strip()[:120], replies)
            return replies
        log.info("flows: a step of %s for %s user %s had expired; offered to start again", step.owner or "-",
                 inbound.channel, inbound.user_id)
        hours = f"{self.flows.ttl / 3600:g}".replace(".", ",")
        if step.restart and step.restart in self.routes.commands:
            return [Reply(self.say("flow_expired", hours=hours, command=f"/{step.restart}"),
                          options=(Option(self.say("flow_restart_button"), f"flow:{step.restart}"),))]
        return [Reply(self.say("flow_expired_plain", hours=hours))]

    async def _restart_flow(self, turn: Turn) -> list[Reply]:
        """The "Bắt đầu lại" button under an expired step: the command that starts that flow."""
        handler = self.routes.commands.get(turn.args)
        if handler is None:
            return [Reply(self.say("stale_option")), self.main_menu()]
        self.flows.drop_step(turn.inbound)
        return await handler(Turn(turn.inbound, turn.chat, command=turn.args))

    async def _membership(self, inbound: Inbound) -> list[Reply]:
        if inbound.kind == "left":
            await self.chats.set_active(inbound.channel, inbound.chat_id, False)
            log.info("removed from %s group %s", inbound.channel, inbound.chat_id)
            replies: list[Reply] = []
        elif inbound.kind == "migrated":
            replies = []
        else:
            await self.chats.touch(inbound)
            await self.chats.set_active(inbound.channel, inbound.chat_id, True)
            log.info("added to %s group %s (%s)", inbound.channel, inbound.chat_id, inbound.chat_title)
            replies = [Reply(self.say("group_joined"))]
        turn = Turn(inbound, 0)
        for hook in self.routes.events:
            replies = [*replies, *await hook(turn)]
        return replies

    # ------------------------------------------------------------------ free text

    async def answer_text(self, turn: Turn) -> list[Reply]:
        text = turn.inbound.text.strip()
        if not syllables(text):
            return [Reply(self.say("not_understood"))]
        kind = small_talk(text)
        if kind is not None:
            return [Reply(self.say(f"small_talk_{kind}"))]
        answer = await self.searcher.search(text)
        await self.questions.record(turn.chat, turn.inbound.channel, text, answer)
        log.info(
            "question on %s: %s (%s, confidence %.2f)",
            turn.inbound.channel, answer.decision, answer.best.entry.id if answer.best else "-",
            answer.best.confidence if answer.best else 0.0,
        )
        replies = [Reply(self.say("too_long", limit=MAX_QUERY_CHARS))] if len(text) > MAX_QUERY_CHARS else []
        replies += self._render_answer(answer)
        if turn.inbound.chat_kind == "private":
            replies = self._with_offers(replies, answer)
        return replies

    def _render_answer(self, answer: Answer) -> list[Reply]:
        if answer.decision == "answer" and answer.best:
            return [self.entry_reply(answer.best.entry, answer)]
        if answer.decision == "choices":
            options = tuple(Option(h.entry.title, f"kb:{h.entry.id}") for h in answer.hits)
            return [Reply(self.say("choices_intro"), options=(*options, self._menu_button()))]
        return self.decline(answer.outside)

    def _with_offers(self, replies: list[Reply], answer: Answer) -> list[Reply]:
        """The features' options for the entry the message was about (`Routes.answer_options`: an
        entry naming `/gopy` in its keywords offers to send the message as a petition), first under
        the answer; under a decline too when that entry was nearly sure (a complaint the search
        could not place for certain is still a complaint)."""
        best = answer.best
        if not replies or best is None or answer.outside is not None or not self.routes.answer_options:
            return replies
        if answer.decision != "answer" and best.confidence < self.index.thresholds.choices:
            return replies
        offers = tuple(Option(option.label, f"{option.data}:{best.entry.id}")
                       for command, option in self.routes.answer_options.items()
                       if f"/{command}" in best.entry.keywords)
        if not offers:
            return replies
        at = -2 if answer.decision == "decline" else -1  # a decline's first reply carries its options
        target = replies[at]
        return [*replies[:at], dataclasses.replace(target, options=(*offers, *target.options)),
                *replies[len(replies) + at + 1:]]

    def decline(self, outside: Entry | None = None) -> list[Reply]:
        """The honest "I don't know": say so, give the contact, suggest topics. For a known
        out-of-scope topic (content/out_of_scope.yaml), name it and say where to ask instead."""
        topics = tuple(Option(t.title, f"topic:{t.id}") for t in self.content.topics)
        offer = tuple(self.routes.decline_options)
        first = self.say("decline")
        if outside is not None:
            first = self.say("decline_outside", topic=outside.title)
            if outside.body:
                first += "\n" + outside.body
        return [
            Reply(first + "\n\n" + self.contact_text(), options=offer),
            Reply(self.say("decline_suggest"), options=topics),
        ]

    def entry_reply(self, entry: Entry, answer: Answer | None = None, page: int = 1) -> Reply:
        pages = split_text(entry.body, ANSWER_PAGE_CHARS) or [entry.body]
        page = min(max(page, 1), len(pages))
        if page < len(pages):
            more = Option(self.say("answer_more", page=page + 1, pages=len(pages)), f"kb:{entry.id}:{page + 1}")
            return Reply(pages[page - 1], title=entry.title, options=(more, self._menu_button()))
        related: list[Entry] = []
        if answer is not None:
            related += [h.entry for h in answer.hits[1:] if h.confidence >= self.index.thresholds.choices]
        for tag in entry.tags:
            related += self.content.entries_for_topic(tag)
        seen = {entry.id}
        options = []
        for other in related:
            if other.id not in seen and len(options) < 3:
                seen.add(other.id)
                options.append(Option(other.title, f"kb:{other.id}"))
        text = f"{pages[-1]}\n\n{self.say('answer_footer')}"
        if options:
            text += f"\n\n{self.say('related_intro')}"
        return Reply(text, title=entry.title, options=(*options, self._menu_button()))

    # ------------------------------------------------------------------ commands and options

    async def _start(self, turn: Turn) -> list[Reply]:
        payload = turn.args.strip()
        if payload:
            prefix, _, rest = payload.partition("_")
            if prefix == "kb" and self.content.entry(rest):
                return [self.entry_reply(self.content.entry(rest))]  # type: ignore[arg-type]
            if prefix == "topic" and any(t.id == rest for t in self.content.topics):
                return await self._topic(Turn(turn.inbound, turn.chat, args=rest))
            log.info("unknown /start payload %r", payload[:64])
        org = str(self.content.organization.get("short_name") or self.content.organization.get("name") or "")
        return [Reply(self.say("greeting", org=org)), self.main_menu()]

    def main_menu(self) -> Reply:
        return Reply(self.say("menu_prompt"), options=tuple(Option(label, data) for label, data in self.menu_items))

    def _menu_button(self) -> Option:
        return Option(self.say("back_to_menu"), "menu:main")

    async def _menu(self, turn: Turn) -> list[Reply]:
        return [self.main_menu()]

    async def _help(self, turn: Turn) -> list[Reply]:
        return [Reply(self.say("help"), options=(self._menu_button(),))]

    async def _option(self, turn: Turn) -> list[Reply]:
        data = turn.inbound.option or ""
        prefix, _, rest = data.partition(":")
        handler = self.routes.options.get(prefix)
        if handler is None:
            log.info("stale or unknown option %r from %s", data[:64], turn.inbound.channel)
            return [Reply(self.say("stale_option")), self.main_menu()]
        replies = await handler(Turn(turn.inbound, turn.chat, args=rest))
        await self._audited(turn.inbound, f"{prefix}:{rest.partition(':')[0]}", data, replies)
        return replies

    async def _audited(self, inbound: Inbound, key: str, typed: str, replies: list[Reply]) -> None:
        """The one place staff actions in a chat reach the audit log (the recorder checks staff): what
        was typed or pressed, and the start of the bot's answer (which says whether it was done)."""
        action = self.routes.audited.get(key)
        if action is None or self.staff_action is None:
            return
        said = " ".join(replies[0].text.split())[:160] if replies else ""
        detail = f"{typed} → {said}" if said else typed
        try:
            await self.staff_action(inbound, action, detail)
        except Exception:  # the action happened; a failed audit write must not undo the reply
            log.exception("audit: %s by %s user %s not recorded", action, inbound.channel, inbound.user_id)

    async def _menu_option(self, turn: Turn) -> list[Reply]:
        handler = self.routes.menu.get(turn.args) or self._menu_defaults.get(turn.args)
        return [self.main_menu()] if handler is None else await handler(turn)

    async def _programs(self, turn: Turn) -> list[Reply]:
        topics = tuple(Option(t.title, f"topic:{t.id}") for t in self.content.topics)
        return [Reply(self.say("programs_intro"), options=(*topics, self._menu_button()))]

    async def _topic(self, turn: Turn) -> list[Reply]:
        topic = next((t for t in self.content.topics if t.id == turn.args), None)
        if topic is None:
            return [Reply(self.say("stale_option")), self.main_menu()]
        entries = self.content.entries_for_topic(topic.id)
        options = tuple(Option(e.title, f"kb:{e.id}") for e in entries)
        return [Reply(self.say("topic_intro", topic=topic.title), options=(*options, self._menu_button()))]

    async def _entry_option(self, turn: Turn) -> list[Reply]:
        entry_id, _, page = turn.args.partition(":")  # "kb:<id>" or, for "Xem tiếp", "kb:<id>:<page>"
        entry = self.content.entry(entry_id)
        if entry is None:
            return [Reply(self.say("stale_option")), self.main_menu()]
        return [self.entry_reply(entry, page=int(page) if page.isdigit() else 1)]

    async def _ask_prompt(self, turn: Turn) -> list[Reply]:
        return [Reply(self.say("ask_prompt"))]

    async def _news(self, turn: Turn) -> list[Reply]:
        entries = self.content.entries_for_topic("tin-tuc")
        options = tuple(Option(e.title, f"kb:{e.id}") for e in entries)
        return [Reply(self.say("news_intro"), options=(*options, self._menu_button()))]

    async def _feedback(self, turn: Turn) -> list[Reply]:
        return [Reply(self.say("feedback_info") + "\n\n" + self.contact_text(), options=(self._menu_button(),))]

    async def _contact(self, turn: Turn) -> list[Reply]:
        return [Reply(self.contact_text(), options=(self._menu_button(),))]

    def contact_text(self) -> str:
        org = self.content.organization
        fields = ("name", "address", "phone", "hotline", "email", "website", "opening_hours")
        values = {k: str(org.get(k) or "—") for k in fields}
        return self.say("contact_card", **values)

