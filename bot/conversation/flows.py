"""The one mechanism for multi-step conversations: what a person's next message goes to, and the
draft a feature keeps for them meanwhile ("now send the text of the announcement").

A person is (channel, chat, user). A step is valid only while the draft it was set for is still
the feature's current draft for that person: when the draft was replaced (the command started
again) or ended (cancelled by a button), the waiting step is dropped and the message is handled
as if nothing waited for it. State lives in memory (a restart forgets it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.channels.base import Inbound, Reply

Who = tuple[str, str, str]
Step = Callable[[Any], Awaitable[list[Reply]]]  # takes the Turn of the person's next message


def who(inbound: Inbound) -> Who:
    return (inbound.channel, inbound.chat_id, inbound.user_id)


@dataclass(frozen=True)
class _Waiting:
    step: Step
    owner: str | None
    draft: object | None
    still: Callable[[], bool] | None


class Flows:
    def __init__(self) -> None:
        self._waiting: dict[Who, _Waiting] = {}
        self._drafts: dict[tuple[str, Who], object] = {}

    # ------------------------------------------------------------------ drafts

    def start(self, owner: str, inbound: Inbound, draft: Any) -> Any:
        """Begin (or restart) `owner`'s draft for this person; returns the draft."""
        self._drafts[(owner, who(inbound))] = draft
        return draft

    def draft(self, owner: str, inbound: Inbound) -> Any | None:
        return self._drafts.get((owner, who(inbound)))

    def end(self, owner: str, inbound: Inbound) -> Any | None:
        """Forget `owner`'s draft for this person (and a step waiting on it); returns it."""
        draft = self._drafts.pop((owner, who(inbound)), None)
        waiting = self._waiting.get(who(inbound))
        if waiting is not None and waiting.owner == owner:
            del self._waiting[who(inbound)]
        return draft

    # ------------------------------------------------------------------ steps

    def expect(self, inbound: Inbound, step: Step, *, owner: str | None = None, draft: object | None = None,
               still: Callable[[], bool] | None = None) -> None:
        """Send this person's next message in this chat to `step` (while `draft`, if given, is
        still `owner`'s current draft, and while `still()`, if given, says so)."""
        self._waiting[who(inbound)] = _Waiting(step, owner, draft, still)

    def waiting(self, inbound: Inbound) -> bool:
        return who(inbound) in self._waiting

    def take(self, inbound: Inbound) -> Step | None:
        """The step this person's message goes to, removed; None when nothing (valid) waits."""
        waiting = self._waiting.pop(who(inbound), None)
        if waiting is None:
            return None
        if waiting.owner is not None and waiting.draft is not None:
            if self._drafts.get((waiting.owner, who(inbound))) is not waiting.draft:
                return None  # the draft was replaced or ended meanwhile
        if waiting.still is not None and not waiting.still():
            return None
        return waiting.step

    def drop_step(self, inbound: Inbound) -> None:
        """A command interrupts whatever step was waiting (drafts stay until their owner ends them)."""
        self._waiting.pop(who(inbound), None)
