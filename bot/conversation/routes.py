"""What a feature plugs into the conversation, declared in one value, and the table that merges them.

A feature (registration, broadcasts, handoff, supervision…) builds one `Routes` and the dialogue
takes it with `Dialogue.include`. The table refuses a clash instead of letting the later feature
win silently: two owners of one command, option prefix, menu entry or group phrase, or two
features whose hooks would run at the same priority in the same stage (their order would depend
on the order of `include` calls, which nobody reads). Hooks run lowest priority first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from bot.channels.base import Inbound, Option, Reply


@dataclass(frozen=True)
class Turn:
    """One inbound with what the dialogue learnt about it."""

    inbound: Inbound
    chat: int  # row id in `chats`
    command: str = ""  # "start" for "/start@Bot payload"
    args: str = ""  # "payload"


Handler = Callable[[Turn], Awaitable[list[Reply]]]
Hook = Callable[[Turn], Awaitable[list[Reply] | None]]  # None: not mine, let the next one look
Gate = Callable[[Inbound], Awaitable[list[Reply] | None]]  # a list stops the message before anything
# A staff action taken in the chat, for the audit log: (inbound, action name, detail).
StaffAction = Callable[[Inbound, str, str], Awaitable[None]]


@dataclass(frozen=True)
class Routes:
    """Everything one feature adds to the conversation.

    commands: `/name` → handler. options: the prefix before ":" in an option's data → handler.
    menu: a main-menu entry ("feedback") this feature answers instead of the dialogue's default.
    phrases: folded words typed in a group that stand for a button ("da nhan"), tried before
    the group hooks. gates run before a message is processed; group_text hooks for addressed
    group text, text hooks for any text before the knowledge search; events for joined/left/
    migrated. decline_options are offered with every honest "I don't know". answer_options:
    a command name → the option offered under an answer whose entry names `/<command>` among
    its keywords (content data: "send what you just wrote as a petition" under the petition
    entry); its data gets ":<entry id>" appended, so the handler finds the message it was under.
    audited: the staff actions among them, for the audit log: "/traloi" (a command), "ath:ok" (an
    option's prefix and first part), "step:broadcasts.time" (a typed step, by its name in Flows) or
    "hook:on_staff_chat_text" (a text hook that answered, by its function's name) → an action name
    ("ticket.answer"); the dialogue records them, one place for all (staff only).
    """

    owner: str
    priority: int = 100
    commands: Mapping[str, Handler] = field(default_factory=dict)
    options: Mapping[str, Handler] = field(default_factory=dict)
    menu: Mapping[str, Handler] = field(default_factory=dict)
    phrases: Mapping[str, Hook] = field(default_factory=dict)
    gates: tuple[Gate, ...] = ()
    group_text: tuple[Hook, ...] = ()
    text: tuple[Hook, ...] = ()
    events: tuple[Handler, ...] = ()
    decline_options: tuple[Option, ...] = ()
    audited: Mapping[str, str] = field(default_factory=dict)
    answer_options: Mapping[str, Option] = field(default_factory=dict)


class RouteClash(ValueError):
    """Two features claimed the same thing; the message names both."""


@dataclass
class RouteTable:
    """The merged routes of every included feature."""

    commands: dict[str, Handler] = field(default_factory=dict)
    options: dict[str, Handler] = field(default_factory=dict)
    menu: dict[str, Handler] = field(default_factory=dict)
    phrases: dict[str, Hook] = field(default_factory=dict)
    gates: list[Gate] = field(default_factory=list)
    group_text: list[Hook] = field(default_factory=list)
    text: list[Hook] = field(default_factory=list)
    events: list[Handler] = field(default_factory=list)
    decline_options: list[Option] = field(default_factory=list)
    audited: dict[str, str] = field(default_factory=dict)
    answer_options: dict[str, Option] = field(default_factory=dict)
    _owners: dict[tuple[str, str], str] = field(default_factory=dict)
    _hooks: dict[str, list[tuple[int, str, Callable]]] = field(default_factory=dict)

    def include(self, routes: Routes) -> None:
        """Add one feature's routes; raise RouteClash (and add nothing) if any part is taken."""
        claims = [(kind, key) for kind in ("commands", "options", "menu", "phrases", "answer_options")
                  for key in getattr(routes, kind)]
        for claim in claims:
            owner = self._owners.get(claim)
            if owner is not None:
                raise RouteClash(f"{routes.owner}: {claim[0]} {claim[1]!r} already belongs to {owner}")
        stages = [stage for stage in ("gates", "group_text", "text", "events") if getattr(routes, stage)]
        for stage in stages:
            for priority, owner, _ in self._hooks.get(stage, ()):
                if priority == routes.priority and owner != routes.owner:
                    raise RouteClash(f"{routes.owner}: {stage} hooks at priority {priority} clash with {owner}")
        for claim in claims:
            self._owners[claim] = routes.owner
        for kind in ("commands", "options", "menu", "phrases", "answer_options"):
            getattr(self, kind).update(getattr(routes, kind))
        for stage in stages:
            entries = self._hooks.setdefault(stage, [])
            entries.extend((routes.priority, routes.owner, hook) for hook in getattr(routes, stage))
            entries.sort(key=lambda entry: entry[0])  # stable: one feature's hooks keep their order
            getattr(self, stage)[:] = [hook for _, _, hook in entries]
        self.decline_options.extend(routes.decline_options)
        self.audited.update(routes.audited)
