"""The channel contract: what every adapter turns platform updates into, and renders from.

No platform type crosses this line. Adapters (telegram, zalo_bot, console) build `Inbound`
from their updates, hand it to the dialogue, and render the `Reply` list the dialogue returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

ChatKind = Literal["private", "group"]
InboundKind = Literal["text", "option", "media", "joined", "left", "migrated"]


@dataclass(frozen=True)
class Option:
    """One choice offered to the person. `data` is what comes back when it is chosen (≤ 64 bytes)."""

    label: str
    data: str


@dataclass(frozen=True)
class Reply:
    """A message to show. `text` is light markup: paragraphs, `- ` bullets and `**bold**` only.

    `chat_id`/`channel` None means "the chat the inbound came from".
    """

    text: str
    options: tuple[Option, ...] = ()
    title: str | None = None
    channel: str | None = None
    chat_id: str | None = None
    edit_message_id: str | None = None
    # A photo sent after the text, as a reply to it: the platform's file id, valid on the channel
    # the reply goes to (a resident's photo forwarded to the staff chat). Adapters that cannot
    # send one by id leave it out; the text says a photo exists.
    photo: str | None = None
    # Called by the adapter with what the platform answered, once the reply was sent (e.g. to
    # remember a message id to edit later). Adapters that cannot tell may skip it.
    on_sent: Callable[[Sent], Awaitable[None]] | None = field(default=None, compare=False, repr=False)
    # Channels that show options as numbered lines (Zalo) number this reply's from here, so the
    # options of one turn's several messages are numbered on (set by the channel's `prepare`).
    first_number: int = 1


@dataclass(frozen=True)
class Inbound:
    """One thing a person did, in platform-neutral form.

    kind: "text" (a message, commands included, starting with "/"), "option" (a button or a
    numbered choice; `option` holds its data), "media" (sticker, photo, voice…; `media_type`
    names it), "joined"/"left" (the bot was added to / removed from a group), "migrated"
    (a group got a new id: `new_chat_id`).
    `addressed` is True in private chats, and in groups only for commands, mentions of the bot
    and replies to its messages: the dialogue never speaks in a group unless addressed.
    """

    channel: str
    chat_id: str
    user_id: str
    kind: InboundKind = "text"
    chat_kind: ChatKind = "private"
    text: str = ""
    option: str | None = None
    media_type: str | None = None
    media_id: str | None = None  # the platform's file id of a photo (kept by flows that accept one)
    display_name: str = ""
    chat_title: str = ""
    message_id: str | None = None
    reply_to_message_id: str | None = None
    addressed: bool = True
    is_group_admin: bool = False
    new_chat_id: str | None = None


ErrorKind = Literal["rate_limited", "gone", "migrated", "bad_request", "transient", "unauthorized"]


@dataclass
class DeliveryError(Exception):
    """A send failed, classified so the delivery worker knows what to do.

    rate_limited: wait `retry_after` seconds (this channel only), then retry.
    gone: blocked, kicked, chat deleted: mark the recipient inactive, do not retry.
    migrated: the group has a new id (`new_chat_id`): update and resend.
    bad_request: the platform refused this message for this chat: failed with `reason`.
    transient: 5xx, network, timeout: retry with backoff, a bounded number of times.
    unauthorized: the token is wrong: stop the channel.
    """

    kind: ErrorKind
    reason: str = ""
    retry_after: float | None = None
    new_chat_id: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


@dataclass
class Sent:
    """What a successful send returns: the platform ids of the messages it produced."""

    message_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PageRoute:
    """A GET page a channel owns (the Zalo OA's OAuth callback): the query → (HTTP status, plain text)."""

    path: str
    handle: Callable[[Mapping[str, str]], Awaitable[tuple[int, str]]]


@dataclass(frozen=True)
class WebhookRoute:
    """A POST route a channel owns on the service's one HTTP server (bot/app/web.py mounts it).

    The server checks `secret` against the `secret_header` in constant time, limits and parses
    the body as a JSON object, then hands it to `receive`, which schedules the update and returns.
    With `verify`, the header is a signature of the raw body instead: `verify(header, raw body)`
    decides (a missing header is 401, a false answer 403). `pages` are served by GET, whether the
    channel is running or not.
    """

    path: str
    secret_header: str
    secret: str
    receive: Callable[[dict], Awaitable[None]]
    verify: Callable[[str, bytes], bool] | None = None
    pages: tuple[PageRoute, ...] = ()


class Channel(Protocol):
    """What the core asks of an adapter: the whole of it (callers never probe with getattr)."""

    name: str
    max_text: int
    can_edit: bool  # Reply.edit_message_id is honoured (else an edit is sent as a new message)

    @property
    def running(self) -> bool:
        """Started and able to send (a stopped or unauthorised channel is not)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, chat_id: str, reply: Reply) -> Sent:
        """Render and send one reply; raise DeliveryError on failure."""
        ...

    def prepare(self, replies: list[Reply]) -> list[Reply]:
        """One turn's replies to one chat, as this channel will send them (merged, numbered on)."""
        ...

    async def is_group_admin(self, chat_id: str, user_id: str) -> bool:
        """Whether the user administers the group (False where the platform cannot tell)."""
        ...

    def webhook_route(self) -> WebhookRoute | None:
        """The route this channel receives updates on, or None when it polls."""
        ...

class ChoiceMemory(Protocol):
    """Where a channel without buttons keeps the numbered choices it showed (bot.conversation.choices)."""

    async def load(self, channel: str) -> dict[str, tuple[Option, ...]]: ...

    def remember(self, channel: str, chat_id: str, options: tuple[Option, ...]) -> None: ...


class Sender(Protocol):
    """Sends one reply to any chat on its own channel (a staff answer to a resident, a ticket to the
    staff chat); exists before the channels start. Raises KeyError when that channel is not running,
    DeliveryError when the send fails."""

    async def send(self, channel: str, chat_id: str, reply: Reply) -> Sent | None:
        """The Sent when it went at once; None when it waits its turn (`reply.on_sent` runs then)."""
        ...
