"""The Telegram adapter, on python-telegram-bot 22: updates → `Inbound`, `Reply` → HTML messages.

Thin on purpose: it knows Telegram (HTML parse mode, inline keyboards, mentions, group
migrations, PTB's error classes) and nothing of the conversation. Every update becomes one
`Inbound` handed to `on_inbound`; the replies it returns are sent back at once.

Two PTB behaviours are worked around here:
- PTB parses a getUpdates batch in one go; one update it cannot parse makes the Updater log and
  poll again from the same offset, forever, so every later update is stuck. `_TolerantBot`
  checks each raw update on its own, drops (and logs) the bad ones and confirms them.
- PTB runs updates one at a time by default; here they run concurrently, but in order per chat.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from telegram import (
    CallbackQuery,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, BaseUpdateProcessor, ContextTypes, ExtBot, TypeHandler
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.channels.base import ChatKind, DeliveryError, Inbound, Option, Reply, Sent, WebhookRoute
from bot.kernel.logs import add_secret, redact
from bot.kernel.markup import split_text, to_html

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # the webhook secret, sent with each update

# PTB 22.2+ reads RetryAfter.retry_after itself while building the exception (telegram/error.py),
# which warns "will be of type timedelta" on every 429 unless PTB_TIMEDELTA is set. `_classify`
# copes with both forms, so exactly this deprecation is silenced; any other stays visible under
# -W. (Setting PTB_TIMEDELTA from here would change the types PTB hands to all other code.)
warnings.filterwarnings("ignore", message=r".*attribute `retry_after`", category=PTBDeprecationWarning)

OnInbound = Callable[[Inbound], Awaitable[list[Reply]]]

ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
# Message attributes that make a message "media", checked in this order (an animation also
# carries `document`, a venue also carries `location`).
MEDIA_TYPES = (
    "sticker", "photo", "animation", "video", "video_note", "voice", "audio", "document",
    "venue", "location", "contact", "poll", "dice", "story", "game", "invoice", "paid_media",
)
_PRESENT = {ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER}
_ADMIN = {ChatMember.ADMINISTRATOR, ChatMember.OWNER}
SHORT_LABEL = 18  # buttons go two to a row when every label is at most this long
MAX_CALLBACK_BYTES = 64
ADMIN_CACHE_SECONDS = 300.0
STOP_TIMEOUT = 3.0


class TelegramChannel:
    name = "telegram"
    max_text = 4096
    can_edit = True  # Reply.edit_message_id is honoured (progress lines of broadcasts)

    def __init__(self, token: str, api_url: str, on_inbound: OnInbound, *, poll_timeout: float = 10,
                 webhook_url: str | None = None, webhook_secret: str | None = None):
        add_secret(token)
        add_secret(webhook_secret)
        # webhook mode (bot/web.py posts each update to process_update) instead of polling
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self._token = token
        self._api_url = api_url.rstrip("/")
        self._on_inbound = on_inbound
        self._poll_timeout = max(1, round(poll_timeout))  # Telegram takes whole seconds
        self._app: Application | None = None
        self.bot_id: str = ""
        self.username: str = ""
        self._admin_cache: dict[tuple[str, str], tuple[float, bool]] = {}

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Connect, learn who we are (getMe) and start long polling. Raises DeliveryError."""
        if self._app is not None:
            return
        bot = _TolerantBot(
            self._token,
            base_url=f"{self._api_url}/bot",
            base_file_url=f"{self._api_url}/file/bot",
            request=HTTPXRequest(connection_pool_size=32),
            get_updates_request=HTTPXRequest(connection_pool_size=1),
        )
        app = (
            Application.builder()
            .bot(bot)
            .job_queue(None)  # schedules live in SQLite, not here
            .concurrent_updates(_PerChatOrder(max_concurrent_updates=64))
            .build()
        )
        app.add_handler(TypeHandler(Update, self._handle_update))
        app.add_error_handler(self._handle_error)
        try:
            await app.initialize()  # getMe
        except TelegramError as exc:
            await bot.shutdown()  # the HTTP clients were opened before getMe failed
            raise _classify(exc) from None
        self.bot_id, self.username = str(bot.id), bot.username or ""
        self._app = app
        try:
            await app.start()
            if self.webhook_url:
                await self.set_webhook(self.webhook_url, self.webhook_secret or "")
                log.info("telegram: webhook set for @%s (id %s)", self.username, self.bot_id)
                return
            assert app.updater is not None
            await app.updater.start_polling(
                timeout=self._poll_timeout,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=False,
                error_callback=_log_polling_error,
            )
        except TelegramError as exc:
            await self.stop()
            raise _classify(exc) from None
        log.info("telegram: polling as @%s (id %s)", self.username, self.bot_id)

    @property
    def running(self) -> bool:
        return self._app is not None

    async def set_webhook(self, url: str, secret: str) -> None:
        """Have Telegram POST updates to `url` with `secret` in X-Telegram-Bot-Api-Secret-Token."""
        await self._bot().set_webhook(url=url, secret_token=secret or None, allowed_updates=list(ALLOWED_UPDATES))

    def webhook_route(self) -> WebhookRoute | None:
        if not self.webhook_url or not self.webhook_secret:
            return None
        return WebhookRoute("/telegram/webhook", SECRET_HEADER, self.webhook_secret, self._receive)

    async def _receive(self, body: dict) -> None:
        await self.process_update(body)

    async def process_update(self, data: dict) -> bool:
        """Take one update pushed to the webhook; it runs like a polled one. False if unreadable."""
        app = self._app
        if app is None:
            raise DeliveryError("transient", "telegram channel is not started")
        try:
            update = Update.de_json(data, app.bot)
        except Exception as exc:
            log.error("telegram: webhook update %s is malformed and was skipped: %r",
                      data.get("update_id") if isinstance(data, dict) else None, exc)
            return False
        await app.update_queue.put(update)
        return True

    async def stop(self) -> None:
        app, self._app = self._app, None
        if app is None:
            return
        if app.updater is not None and app.updater.running:
            try:
                # PTB sleeps its error back-off (up to 30 s) before it sees the stop: bound it.
                await asyncio.wait_for(app.updater.stop(), STOP_TIMEOUT)
            except TimeoutError:
                log.warning("telegram: polling did not stop within %ss; abandoned", STOP_TIMEOUT)
        if app.running:
            await app.stop()
        await app.shutdown()

    # ------------------------------------------------------------------ sending

    async def send(self, chat_id: str, reply: Reply) -> Sent:
        """Render `reply` and send it (or edit `reply.edit_message_id`). Raises DeliveryError."""
        bot = self._bot()
        pieces = render(reply, self.max_text)
        if not pieces:
            raise DeliveryError("bad_request", "empty message")
        keyboard = keyboard_for(reply.options)
        ids: list[str] = []
        try:
            for i, piece in enumerate(pieces):
                markup = keyboard if i == len(pieces) - 1 else None
                if i == 0 and reply.edit_message_id:
                    ids.append(await self._edit(bot, chat_id, reply.edit_message_id, piece, markup))
                    continue
                message = await bot.send_message(
                    chat_id=chat_id, text=piece, parse_mode=ParseMode.HTML, reply_markup=markup,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
                ids.append(str(message.message_id))
        except TelegramError as exc:
            error = _classify(exc)
            if ids:
                error.reason = f"{error.reason} (after {len(ids)} of {len(pieces)} pieces were sent)"
            raise error from None
        if reply.photo:
            ids.extend(await self._send_photo(bot, chat_id, reply.photo, ids[0]))
        return Sent(message_ids=ids)

    def prepare(self, replies: list[Reply]) -> list[Reply]:
        return replies  # each reply is its own message, with its own buttons

    async def _send_photo(self, bot: ExtBot, chat_id: str, photo: str, reply_to: str) -> list[str]:
        """The photo after its text, replying to it. The text is what matters and was sent, so a
        photo Telegram refuses (an expired or foreign file id) is logged, not raised."""
        try:
            message = await bot.send_photo(
                chat_id=chat_id, photo=photo,
                reply_parameters=ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True),
            )
        except TelegramError as exc:
            log.warning("telegram: photo %s to chat %s not sent: %s", photo, chat_id, redact(str(exc)))
            return []
        return [str(message.message_id)]

    async def _edit(self, bot: ExtBot, chat_id: str, message_id: str, text: str,
                    markup: InlineKeyboardMarkup | None) -> str:
        try:
            await bot.edit_message_text(
                chat_id=chat_id, message_id=int(message_id), text=text, parse_mode=ParseMode.HTML,
                reply_markup=markup, link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():  # the same button pressed twice
                raise
        return message_id

    async def is_group_admin(self, chat_id: str, user_id: str) -> bool:
        """True when `user_id` is the creator or an administrator of the group `chat_id`."""
        try:
            member = await self._bot().get_chat_member(chat_id=chat_id, user_id=int(user_id))
        except TelegramError as exc:
            log.warning("telegram: getChatMember %s/%s failed: %s", chat_id, user_id, redact(str(exc)))
            return False
        return member.status in _ADMIN

    def _bot(self) -> ExtBot:
        if self._app is None:
            raise DeliveryError("transient", "telegram channel is not started")
        return self._app.bot

    # ------------------------------------------------------------------ receiving

    async def _handle_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.callback_query is not None:
            await self._answer_callback(update.callback_query, update.update_id)
        try:
            inbound = self.to_inbound(update)
        except Exception:
            log.exception("telegram: update %s could not be read; skipped", update.update_id)
            return
        if inbound is None:
            return
        if inbound.chat_kind == "group" and inbound.addressed and inbound.kind in ("text", "option"):
            admin = await self._cached_admin(inbound.chat_id, inbound.user_id)
            inbound = replace(inbound, is_group_admin=admin)
        try:
            replies = await self._on_inbound(inbound)
        except Exception:
            log.exception("telegram: handling update %s failed", update.update_id)
            return
        for reply in replies or ():
            if reply.channel not in (None, self.name):
                log.warning("telegram: update %s: reply for channel %s dropped",
                            update.update_id, reply.channel)
                continue
            target = reply.chat_id or inbound.chat_id
            try:
                sent = await self.send(target, reply)
            except Exception as exc:
                log.warning("telegram: update %s: reply to %s failed: %s", update.update_id, target,
                            redact(str(exc)))
                continue
            if reply.on_sent is not None:
                try:
                    await reply.on_sent(sent)
                except Exception:
                    log.exception("telegram: update %s: after-send hook failed", update.update_id)

    async def _answer_callback(self, query: CallbackQuery, update_id: int) -> None:
        try:
            await query.answer()  # stops the button's spinner
        except TelegramError as exc:
            log.warning("telegram: update %s: answerCallbackQuery failed: %s", update_id, redact(str(exc)))

    async def _cached_admin(self, chat_id: str, user_id: str) -> bool:
        now = time.monotonic()
        cached = self._admin_cache.get((chat_id, user_id))
        if cached and cached[0] > now:
            return cached[1]
        result = await self.is_group_admin(chat_id, user_id)
        if len(self._admin_cache) > 10_000:
            self._admin_cache = {k: v for k, v in self._admin_cache.items() if v[0] > now}
        self._admin_cache[(chat_id, user_id)] = (now + ADMIN_CACHE_SECONDS, result)
        return result

    async def _handle_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = getattr(update, "update_id", None)
        log.error("telegram: update %s failed: %s", update_id, redact(repr(context.error)),
                  exc_info=context.error)

    def to_inbound(self, update: Update) -> Inbound | None:
        """The platform-neutral form of `update`, or None for what the dialogue never sees."""
        if update.callback_query is not None:
            return self._from_callback(update.callback_query)
        if update.my_chat_member is not None:
            return self._from_membership(update)
        if update.message is not None:
            return self._from_message(update.message)
        return None

    def _from_callback(self, query: CallbackQuery) -> Inbound | None:
        message = query.message
        if message is None or query.data is None:  # inline-mode message, or a game button
            return None
        chat = message.chat
        return Inbound(
            channel=self.name, chat_id=str(chat.id), user_id=str(query.from_user.id), kind="option",
            chat_kind=_chat_kind(chat.type), option=query.data, display_name=query.from_user.full_name,
            chat_title=chat.title or "", message_id=str(message.message_id), addressed=True,
        )

    def _from_membership(self, update: Update) -> Inbound | None:
        change = update.my_chat_member
        assert change is not None
        was, now = _present(change.old_chat_member), _present(change.new_chat_member)
        if was == now:  # e.g. promoted to administrator: still there
            return None
        return Inbound(
            channel=self.name, chat_id=str(change.chat.id), user_id=str(change.from_user.id),
            kind="joined" if now else "left", chat_kind=_chat_kind(change.chat.type),
            display_name=change.from_user.full_name, chat_title=change.chat.title or "",
        )

    def _from_message(self, message: Message) -> Inbound | None:
        chat = message.chat
        sender = message.from_user
        replied = message.reply_to_message
        user_id = str(sender.id if sender else (message.sender_chat or chat).id)
        base: dict[str, Any] = {
            "channel": self.name, "chat_id": str(chat.id), "user_id": user_id,
            "chat_kind": _chat_kind(chat.type), "display_name": sender.full_name if sender else "",
            "chat_title": chat.title or "", "message_id": str(message.message_id),
            "reply_to_message_id": str(replied.message_id) if replied else None,
        }
        if message.migrate_to_chat_id:
            return Inbound(**base, kind="migrated", new_chat_id=str(message.migrate_to_chat_id))
        if message.text is not None:
            text, entities = message.text, message.entities
            kind, media_type = "text", None
        elif media_type := next((m for m in MEDIA_TYPES if getattr(message, m, None)), None):
            text, entities = message.caption or "", message.caption_entities
            kind = "media"
        else:
            return None  # service messages: members joining, title changes, pins…
        addressed, text = self._addressing(message, text, entities)
        if base["chat_kind"] == "private":
            addressed = True
        media_id = message.photo[-1].file_id if media_type == "photo" and message.photo else None
        return Inbound(**base, kind=kind, text=text, media_type=media_type, media_id=media_id, addressed=addressed)

    def _addressing(self, message: Message, text: str, entities: Sequence[MessageEntity]) -> tuple[bool, str]:
        """Whether a message speaks to this bot, and its text without the bot's @mention."""
        addressed = False
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and str(replied.from_user.id) == self.bot_id:
            addressed = True
        cuts: list[tuple[int, int]] = []  # UTF-16 spans to remove
        me = f"@{self.username}".lower()
        for entity in entities:
            piece = _utf16_slice(text, entity.offset, entity.length)
            if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
                command, _, target = piece.partition("@")
                if not target:
                    addressed = True
                elif f"@{target}".lower() == me:
                    addressed = True
                    cuts.append((entity.offset + _utf16_len(command), entity.length - _utf16_len(command)))
            elif entity.type == MessageEntity.MENTION and piece.lower() == me:
                addressed = True
                cuts.append((entity.offset, entity.length))
            elif entity.type == MessageEntity.TEXT_MENTION and entity.user and (
                str(entity.user.id) == self.bot_id
            ):
                addressed = True
                cuts.append((entity.offset, entity.length))
        if not entities and text.startswith("/") and "@" not in text.split(maxsplit=1)[0]:
            addressed = True  # a bare command without entities (a client that sent none)
        return addressed, _tidy(_utf16_cut(text, cuts)) if cuts else text.strip()


# ---------------------------------------------------------------------- rendering


def render(reply: Reply, limit: int = 4096) -> list[str]:
    """The HTML pieces of `reply`: bold title, then the text; each at most `limit` visible characters.

    Splitting happens on the light markup, before escaping, so that no piece is cut inside an
    HTML entity or tag; escaping does not change the visible length Telegram counts.
    """
    source = reply.text.strip()
    if reply.title:
        title = reply.title.replace("*", "").strip()
        source = f"**{title}**\n\n{source}" if source else f"**{title}**"
    return [to_html(piece) for piece in split_text(source, limit)]


def keyboard_for(options: Sequence[Option]) -> InlineKeyboardMarkup | None:
    """One button a row, or two a row when every label is short. Over-long data is dropped."""
    buttons = []
    for option in options:
        size = len(option.data.encode())
        if not 1 <= size <= MAX_CALLBACK_BYTES:
            log.warning("telegram: option %r dropped: callback data is %d bytes (1..%d allowed)",
                        option.label, size, MAX_CALLBACK_BYTES)
            continue
        buttons.append(InlineKeyboardButton(option.label, callback_data=option.data))
    if not buttons:
        return None
    per_row = 2 if all(len(b.text) <= SHORT_LABEL for b in buttons) and len(buttons) > 1 else 1
    return InlineKeyboardMarkup([buttons[i:i + per_row] for i in range(0, len(buttons), per_row)])


# ---------------------------------------------------------------------- errors


def _classify(exc: TelegramError) -> DeliveryError:
    """PTB's exception → the delivery worker's DeliveryError (token scrubbed from the reason)."""
    reason = redact(exc.message)
    if isinstance(exc, RetryAfter):
        with warnings.catch_warnings():  # PTB 22.2+ warns on the int form
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            after = exc.retry_after
        seconds = after.total_seconds() if isinstance(after, dtm.timedelta) else float(after)
        return DeliveryError("rate_limited", reason, retry_after=seconds)
    if isinstance(exc, ChatMigrated):
        return DeliveryError("migrated", reason, new_chat_id=str(exc.new_chat_id))
    if isinstance(exc, Forbidden):
        return DeliveryError("gone", reason)
    if isinstance(exc, InvalidToken):
        return DeliveryError("unauthorized", reason)
    if isinstance(exc, BadRequest):  # before NetworkError: BadRequest is one in PTB
        if "chat not found" in reason.lower():
            reason = "chat not found"
        return DeliveryError("bad_request", reason)
    if isinstance(exc, NetworkError):  # TimedOut, 5xx, connection errors
        return DeliveryError("transient", reason)
    return DeliveryError("transient", reason)  # e.g. an unparsable server answer


def _log_polling_error(exc: TelegramError) -> None:
    log.warning("telegram: polling failed, retrying: %s", redact(str(exc)))


# ---------------------------------------------------------------------- PTB plumbing


class _TolerantBot(ExtBot):
    """An ExtBot whose getUpdates skips updates PTB cannot parse instead of stalling on them."""

    __slots__ = ("_confirm_from",)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._confirm_from = 0  # the lowest offset still worth asking for

    async def get_updates(self, offset: int | None = None, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        if self._confirm_from and (offset is None or offset < self._confirm_from):
            offset = self._confirm_from  # confirms dropped updates even when none follow them
        return await super().get_updates(offset, *args, **kwargs)

    async def _post(self, endpoint: str, data: Any = None, *args: Any, **kwargs: Any) -> Any:
        result = await super()._post(endpoint, data, *args, **kwargs)
        if endpoint != "getUpdates" or not isinstance(result, list):
            return result
        good = []
        for item in result:
            try:
                Update.de_json(item, self)
            except Exception as exc:
                update_id = item.get("update_id") if isinstance(item, dict) else None
                log.error("telegram: update %s is malformed and was skipped: %r", update_id, exc)
                if isinstance(update_id, int):
                    self._confirm_from = max(self._confirm_from, update_id + 1)
                continue
            good.append(item)
        return good


class _PerChatOrder(BaseUpdateProcessor):
    """Updates run concurrently, but those of one chat one after another, in arrival order."""

    def __init__(self, max_concurrent_updates: int):
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock, users = self._locks.get(chat.id, (asyncio.Lock(), 0))
        self._locks[chat.id] = (lock, users + 1)
        try:
            async with lock:
                await coroutine
        finally:
            lock, users = self._locks[chat.id]
            if users <= 1:
                del self._locks[chat.id]
            else:
                self._locks[chat.id] = (lock, users - 1)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


# ---------------------------------------------------------------------- small helpers


def _chat_kind(chat_type: str) -> ChatKind:
    return "private" if chat_type == "private" else "group"


def _present(member: ChatMember) -> bool:
    return member.status in _PRESENT or (member.status == ChatMember.RESTRICTED and bool(
        getattr(member, "is_member", False)))


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _utf16_slice(text: str, offset: int, length: int) -> str:
    """Telegram entity offsets count UTF-16 code units."""
    raw = text.encode("utf-16-le")
    return raw[2 * offset: 2 * (offset + length)].decode("utf-16-le", "replace")


def _utf16_cut(text: str, spans: list[tuple[int, int]]) -> str:
    raw = text.encode("utf-16-le")
    for offset, length in sorted(spans, reverse=True):
        raw = raw[: 2 * offset] + raw[2 * (offset + length):]
    return raw.decode("utf-16-le", "replace")


def _tidy(text: str) -> str:
    """After cutting a mention: single spaces, no leading ',' or ':' left over ("@Bot, hỏi…")."""
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return "\n".join(lines).strip().lstrip(",:;").strip()
