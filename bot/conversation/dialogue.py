"""The conversation, channel-agnostic: an `Inbound` in, a list of `Reply` out.

Commands (`/start`, `/help`…) and option prefixes (`kb:`, `topic:`, `menu:`) are looked up in
two registries, so other services (broadcasts, supervision, handoff) plug their own in
without touching this file's flow. `expect()` lets a flow take the person's next message
("now send the text of the announcement").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.audiences.chats import Chats
from bot.channels.base import Inbound, Option, Reply
from bot.conversation.small_talk import small_talk
from bot.kernel.content import Content, Entry
from bot.kernel.messages import Messages
from bot.kernel.vietnamese import syllables
from bot.knowledge.index import MAX_QUERY_CHARS, Answer, KnowledgeIndex
from bot.knowledge.question_log import QuestionLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Turn:
    """One inbound with what the dialogue learnt about it."""

    inbound: Inbound
    chat: int  # row id in `chats`
    command: str = ""  # "start" for "/start@Bot payload"
    args: str = ""  # "payload"


Handler = Callable[[Turn], Awaitable[list[Reply]]]


class Dialogue:
    def __init__(
        self,
        content: Content,
        index: KnowledgeIndex,
        chats: Chats,
        questions: QuestionLog,
    ) -> None:
        self.content = content
        self.index = index
        self.chats = chats
        self.questions = questions
        self.say = Messages(content.messages)
        self.commands: dict[str, Handler] = {
            "start": self._start,
            "menu": self._menu,
            "help": self._help,
            "trogiup": self._help,
            "lienhe": self._contact,
        }
        self.options: dict[str, Handler] = {
            "menu": self._menu_option,
            "topic": self._topic,
            "kb": self._entry_option,
        }
        self.menu_items: list[tuple[str, str]] = [
            (self.say("menu_programs"), "menu:programs"),
            (self.say("menu_ask"), "menu:ask"),
            (self.say("menu_news"), "menu:news"),
            (self.say("menu_feedback"), "menu:feedback"),
            (self.say("menu_contact"), "menu:contact"),
        ]
        self.menu_handlers: dict[str, Handler] = {
            "programs": self._programs,
            "ask": self._ask_prompt,
            "news": self._news,
            "feedback": self._feedback,
            "contact": self._contact,
        }
        self._expecting: dict[tuple[str, str, str], Handler] = {}
        self.group_text_hooks: list[Callable[[Turn], Awaitable[list[Reply] | None]]] = []
        # every chat, before the knowledge search (handoff follow-ups, "gặp cán bộ")
        self.text_hooks: list[Callable[[Turn], Awaitable[list[Reply] | None]]] = []
        # before anything is processed (rate limit): a list stops the message, None lets it through
        self.gates: list[Callable[[Inbound], Awaitable[list[Reply] | None]]] = []
        self.event_hooks: list[Callable[[Turn], Awaitable[list[Reply]]]] = []

    # ------------------------------------------------------------------ entry point

    async def handle(self, inbound: Inbound) -> list[Reply]:
        """Never raises: a failure is logged and the person gets a polite sentence."""
        try:
            return await self._handle(inbound)
        except Exception:
            log.exception(
                "dialogue failed on %s %s from user %s in chat %s",
                inbound.channel, inbound.kind, inbound.user_id, inbound.chat_id,
            )
            return [Reply(self.say("error"))] if inbound.addressed else []

    async def _handle(self, inbound: Inbound) -> list[Reply]:
        if inbound.kind in ("joined", "left", "migrated"):
            return await self._membership(inbound)
        for gate in self.gates if inbound.addressed else ():
            stopped = await gate(inbound)
            if stopped is not None:
                return stopped
        chat = await self.chats.touch(inbound)
        if not inbound.addressed:
            return []
        if inbound.kind == "media" and _who(inbound) in self._expecting:  # a flow that takes a photo
            return await self._expecting.pop(_who(inbound))(Turn(inbound, chat))
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
            self._expecting.pop(_who(inbound), None)
            handler = self.commands.get(name)
            if handler is None:
                log.info("unknown command /%s from %s %s", name[:32], inbound.channel, inbound.user_id)
                return [Reply(self.say("unknown_command"))]
            return await handler(turn)
        turn = Turn(inbound, chat)
        pending = self._expecting.pop(_who(inbound), None)
        if pending is not None:
            return await pending(turn)
        for hook in self.group_text_hooks if inbound.chat_kind == "group" else ():
            replies = await hook(turn)
            if replies is not None:
                return replies
        for hook in self.text_hooks:
            replies = await hook(turn)
            if replies is not None:
                return replies
        return await self.answer_text(turn)

    def expect(self, inbound: Inbound, handler: Handler) -> None:
        """Send this person's next message in this chat to `handler`."""
        self._expecting[_who(inbound)] = handler

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
        for hook in self.event_hooks:
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
        answer = self.index.search(text)
        await self.questions.record(turn.chat, turn.inbound.channel, text, answer)
        log.info(
            "question on %s: %s (%s, confidence %.2f)",
            turn.inbound.channel, answer.decision, answer.best.entry.id if answer.best else "-",
            answer.best.confidence if answer.best else 0.0,
        )
        replies = [Reply(self.say("too_long", limit=MAX_QUERY_CHARS))] if len(text) > MAX_QUERY_CHARS else []
        return replies + self._render_answer(answer)

    def _render_answer(self, answer: Answer) -> list[Reply]:
        if answer.decision == "answer" and answer.best:
            return [self.entry_reply(answer.best.entry, answer)]
        if answer.decision == "choices":
            options = tuple(Option(h.entry.title, f"kb:{h.entry.id}") for h in answer.hits)
            return [Reply(self.say("choices_intro"), options=(*options, self._menu_button()))]
        return self.decline(answer.outside)

    def decline(self, outside: Entry | None = None) -> list[Reply]:
        """The honest "I don't know": say so, give the contact, suggest topics. For a known
        out-of-scope topic (content/out_of_scope.yaml), name it and say where to ask instead."""
        topics = tuple(Option(t.title, f"topic:{t.id}") for t in self.content.topics)
        offer = (Option(self.say("handoff_offer_button"), "hof:q"),) if "hof" in self.options else ()
        first = self.say("decline")
        if outside is not None:
            first = self.say("decline_outside", topic=outside.title)
            if outside.body:
                first += "\n" + outside.body
        return [
            Reply(first + "\n\n" + self.contact_text(), options=offer),
            Reply(self.say("decline_suggest"), options=topics),
        ]

    def entry_reply(self, entry: Entry, answer: Answer | None = None) -> Reply:
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
        text = f"{entry.body}\n\n{self.say('answer_footer')}"
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
        handler = self.options.get(prefix)
        if handler is None:
            log.info("stale or unknown option %r from %s", data[:64], turn.inbound.channel)
            return [Reply(self.say("stale_option")), self.main_menu()]
        return await handler(Turn(turn.inbound, turn.chat, args=rest))

    async def _menu_option(self, turn: Turn) -> list[Reply]:
        handler = self.menu_handlers.get(turn.args)
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
        entry = self.content.entry(turn.args)
        if entry is None:
            return [Reply(self.say("stale_option")), self.main_menu()]
        return [self.entry_reply(entry)]

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


def _who(inbound: Inbound) -> tuple[str, str, str]:
    return (inbound.channel, inbound.chat_id, inbound.user_id)
