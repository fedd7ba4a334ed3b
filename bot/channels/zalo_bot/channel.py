"""The Zalo Bot Platform adapter: updates → `Inbound`, `Reply` → plain-text messages.

Two parts, both thin:
- `ZaloBotClient`: the HTTP API (`{ZALO_API_URL}/bot{token}/{method}`, JSON in, the envelope
  `{ok, result, error_code, description}` out) on aiohttp's client, every failure raised as the delivery
  worker's `DeliveryError` (429 → rate_limited "quota", 401 → unauthorized, 403/404 → gone,
  400 → bad_request, 5xx / timeout / network → transient). The token sits in the URL, so it is
  registered with `bot.kernel.logs.add_secret` and every reason is passed through `redact`. aiohttp, not
  httpx: measured on this machine, an httpx request costs 1.3–1.8 ms of CPU against 0.2 ms for
  aiohttp (bench/webhook.py: 158 → 230 answered updates/s); aiohttp is a dependency already.
- `ZaloBotChannel`: the adapter the core sees. Zalo has no buttons and no edits: options become
  numbered lines and a hint sentence; the options last shown in a chat are remembered, so that
  "1" (or the option's words) comes back as `Inbound(kind="option")`. Updates arrive by webhook
  (`process_update`, fed by bot/web.py) or by polling getUpdates (an empty poll is HTTP 408; the
  same update can come twice, so both paths deduplicate on `message_id`; at most one poll a second).
  Updates run concurrently, but those of one chat one after another, in arrival order.

Groups (beta on Zalo): the platform only passes on messages that mention the bot or reply to it,
so every group message that arrives is addressed; the mention is cut from the text, and a first
word that is a command ("@Bot dangky phuoc-dan") is read as that command ("/dangky phuoc-dan").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bot.channels.base import ChatKind, ChoiceMemory, DeliveryError, Inbound, Option, Reply, Sent, WebhookRoute
from bot.channels.zalo_bot.render import MAX_TEXT, Hint, merge_replies, render
from bot.kernel.logs import add_secret, redact
from bot.kernel.markup import to_plain
from bot.kernel.vietnamese import fold

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Bot-Api-Secret-Token"  # the webhook secret, sent with each update

OnInbound = Callable[[Inbound], Awaitable[list[Reply]]]
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

QUOTA_RETRY_AFTER = 3600.0  # a 429 on Zalo means the plan's monthly quota: no point retrying soon
SEND_TIMEOUT = 15.0
SEEN_IDS = 20_000  # message ids remembered for deduplication
REMEMBERED_CHATS = 20_000  # chats whose last options (and kind) are remembered
STOP_GRACE = 3.0
EVENT_MEDIA = {
    "message.image.received": "photo",
    "message.sticker.received": "sticker",
    "message.unsupported.received": "unsupported",
}
_MENTION = re.compile(r"^@\S+\s*")
_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)


# ---------------------------------------------------------------------- the HTTP client


class ZaloBotClient:
    """The Zalo Bot API over aiohttp. Every method returns the envelope's `result` or raises DeliveryError."""

    def __init__(self, token: str, api_url: str, *, timeout: float = SEND_TIMEOUT) -> None:
        add_secret(token)
        self._base = f"{api_url.rstrip('/')}/bot{token}"
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, params: dict[str, Any] | None = None, *,
                   timeout: float | None = None, quiet: tuple[int, ...] = ()) -> Any:  # noqa: ASYNC109
        """POST `params` as JSON to `method`; the envelope's result, or DeliveryError.

        An error whose code is in `quiet` returns None instead (getUpdates: 408 is "nothing new").
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        url = f"{self._base}/{method}"
        try:
            async with self._session.post(url, json=params or {},
                                          timeout=aiohttp.ClientTimeout(total=timeout or self._timeout)) as response:
                status, raw = response.status, await response.read()
            log.debug("zalo: POST %s: HTTP %s", redact(url), status)
        except TimeoutError:
            raise DeliveryError("transient", f"{method}: timed out") from None
        except aiohttp.ClientError as exc:
            raise DeliveryError("transient", redact(f"{method}: {type(exc).__name__}: {exc}")) from None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {"ok": False, "error_code": status, "description": f"HTTP {status}, not a JSON envelope"}
        if status < 400 and body.get("ok") is True:
            return body.get("result")
        code = body.get("error_code") if isinstance(body.get("error_code"), int) else status
        if code in quiet or status in quiet:
            return None
        raise classify(method, code, str(body.get("description") or ""))

    async def get_me(self) -> dict[str, Any]:
        return await self.call("getMe") or {}

    async def get_updates(self, timeout: int = 30) -> list[dict[str, Any]]:  # noqa: ASYNC109
        """Long poll: the updates waiting (one object or a list), [] when the server says 408."""
        result = await self.call("getUpdates", {"timeout": str(timeout)}, timeout=timeout + 10, quiet=(408,))
        if isinstance(result, list):
            return [u for u in result if isinstance(u, dict)]
        return [result] if isinstance(result, dict) and result else []

    async def set_webhook(self, url: str, secret_token: str) -> Any:
        return await self.call("setWebhook", {"url": url, "secret_token": secret_token})

    async def delete_webhook(self) -> Any:
        return await self.call("deleteWebhook")

    async def get_webhook_info(self) -> dict[str, Any]:
        return await self.call("getWebhookInfo") or {}

    async def send_message(self, chat_id: str, text: str) -> dict[str, Any]:
        return await self.call("sendMessage", {"chat_id": chat_id, "text": text}) or {}

    async def send_photo(self, chat_id: str, photo: str, caption: str | None = None) -> dict[str, Any]:
        params = {"chat_id": chat_id, "photo": photo}
        if caption:
            params["caption"] = caption
        return await self.call("sendPhoto", params) or {}

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> Any:
        return await self.call("sendChatAction", {"chat_id": chat_id, "action": action})


def _photo_url(message: dict[str, Any]) -> str | None:
    """A received photo's address (Zalo sends a link, not a file id); None when there is none."""
    for key in ("photo_url", "photo", "url"):
        value = message.get(key)
        if isinstance(value, str) and value.startswith(("https://", "http://")):
            return value
    return None


def classify(method: str, code: int, description: str) -> DeliveryError:
    """An error answer of the Zalo Bot API → the delivery worker's DeliveryError."""
    reason = redact(f"{method}: {code} {description}".strip())
    if code == 429:
        return DeliveryError("rate_limited", "quota", retry_after=QUOTA_RETRY_AFTER)
    if code == 401:
        return DeliveryError("unauthorized", reason)
    if code in (403, 404):
        return DeliveryError("gone", reason)
    if code == 408 or code >= 500:
        return DeliveryError("transient", reason)
    return DeliveryError("bad_request", reason)


# ---------------------------------------------------------------------- the adapter


class ZaloBotChannel:
    name = "zalo"
    max_text = MAX_TEXT
    can_edit = False  # Zalo has no edits: Reply.edit_message_id is sent as a new message

    def __init__(
        self,
        token: str,
        api_url: str,
        on_inbound: OnInbound,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        hint: Hint | None = None,
        is_command: Callable[[str], bool] | None = None,
        poll_timeout: int = 30,
        min_poll_interval: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_concurrent: int = 64,
        choices: ChoiceMemory | None = None,
    ) -> None:
        add_secret(token)
        add_secret(webhook_secret)
        self._token = token
        self._api_url = api_url
        self._on_inbound = on_inbound
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self._hint = hint
        self._is_command = is_command or (lambda word: word == "dangky")
        self._poll_timeout = max(1, int(poll_timeout))
        self._min_poll_interval = min_poll_interval
        self._clock = clock
        self._sleep = sleep
        self._slots = asyncio.Semaphore(max_concurrent)
        self.client: ZaloBotClient | None = None
        self.bot_id = ""
        self.names: list[str] = []  # how the bot may be mentioned: display name, account name
        self.unauthorized = False
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._options: OrderedDict[str, tuple[Option, ...]] = OrderedDict()
        self._choices = choices  # what a typed number means survives a restart (None: memory only)
        self.stats = {"received": 0, "duplicates": 0, "handled": 0, "unreadable": 0}

    # ------------------------------------------------------------------ life cycle

    @property
    def running(self) -> bool:
        return self.client is not None and not self.unauthorized

    async def start(self) -> None:
        """getMe, then register the webhook (webhook mode) or start polling. Raises DeliveryError."""
        if self.client is not None:
            return
        client = ZaloBotClient(self._token, self._api_url)
        if self._choices is not None:
            self._options.update(await self._choices.load(self.name))
        try:
            me = await client.get_me()
            self.bot_id = str(me.get("id") or "")
            names = {str(me.get(k) or "").strip() for k in ("display_name", "name", "account_name")}
            self.names = sorted((n for n in names if n), key=len, reverse=True)
            if self.webhook_url:
                await client.set_webhook(self.webhook_url, self.webhook_secret or "")
            else:
                await client.delete_webhook()  # getUpdates answers nothing while a webhook is set
        except DeliveryError as exc:
            await client.aclose()
            if exc.kind == "unauthorized":
                log.error("zalo: the Bot API refused ZALO_BOT_TOKEN (%s); channel not started", exc.reason)
            raise
        self.client = client
        self.unauthorized = False
        if self.webhook_url:
            log.info("zalo: webhook registered at %s as %s (id %s)", redact(self.webhook_url),
                     self.names[0] if self.names else "?", self.bot_id)
        else:
            self._poller = asyncio.create_task(self._poll_loop(), name="zalo-polling")
            log.info("zalo: polling as %s (id %s)", self.names[0] if self.names else "?", self.bot_id)

    async def stop(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()

    async def drain(self) -> None:
        """Wait until every update received so far has been handled (tests, benches)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ sending

    async def send(self, chat_id: str, reply: Reply) -> Sent:
        """Render `reply` as plain text pieces and send them in order. Raises DeliveryError.

        Its options become what a number typed in that chat picks: numbered from
        `reply.first_number`, after the options already shown this turn (see `prepare`)."""
        sent = await self._send(chat_id, reply, reply.first_number)
        if reply.options:
            earlier = self._options.get(chat_id, ()) if reply.first_number > 1 else ()
            self._remember(self._options, chat_id, (*earlier[: reply.first_number - 1], *reply.options))
            if self._choices is not None:
                self._choices.remember(self.name, chat_id, self._options[chat_id])
        return sent

    def prepare(self, replies: list[Reply]) -> list[Reply]:
        """Join consecutive replies into as few messages as fit (every message counts against
        Zalo's quota) and number the turn's options on across its messages."""
        prepared, number = [], 1
        for reply in merge_replies(replies, self.max_text):
            prepared.append(dataclasses.replace(reply, first_number=number) if number > 1 else reply)
            number += len(reply.options)
        return prepared

    async def _send(self, chat_id: str, reply: Reply, first_number: int) -> Sent:
        pieces = render(reply, self.max_text, self._hint, first_number)
        if not pieces:
            raise DeliveryError("bad_request", "empty message")
        ids: list[str] = []
        try:
            for piece in pieces:
                ids.append(await self._send_text(chat_id, piece))
        except DeliveryError as exc:
            if ids:
                exc.reason = f"{exc.reason} (after {len(ids)} of {len(pieces)} pieces were sent)"
            raise
        return Sent(message_ids=ids)

    async def _send_text(self, chat_id: str, text: str) -> str:
        """One plain-text message; its id (the Zalo OA adapter sends its own way)."""
        try:
            result = await self._client().send_message(chat_id, text)
        except DeliveryError as exc:
            self._note_failure(exc)
            raise
        return str(result.get("message_id") or "")

    async def send_photo(self, chat_id: str, photo_url: str, caption: str = "") -> Sent:
        caption = to_plain(caption).strip()[: self.max_text]
        try:
            result = await self._client().send_photo(chat_id, photo_url, caption or None)
        except DeliveryError as exc:
            self._note_failure(exc)
            raise
        return Sent(message_ids=[str(result.get("message_id") or "")])

    def _client(self) -> ZaloBotClient:
        if self.unauthorized:
            raise DeliveryError("unauthorized", "zalo channel stopped: ZALO_BOT_TOKEN was refused")
        if self.client is None:
            raise DeliveryError("transient", "zalo channel is not started")
        return self.client

    def _note_failure(self, exc: DeliveryError) -> None:
        if exc.kind == "unauthorized" and not self.unauthorized:
            self.unauthorized = True
            log.error("zalo: the Bot API refused ZALO_BOT_TOKEN (%s); the Zalo channel is stopped until "
                      "the token is fixed and the service restarted", exc.reason)
            if self._poller is not None:
                self._poller.cancel()

    # ------------------------------------------------------------------ receiving

    def webhook_route(self) -> WebhookRoute | None:
        if not self.webhook_url or not self.webhook_secret:
            return None
        return WebhookRoute("/zalo/webhook", SECRET_HEADER, self.webhook_secret, self._receive)

    async def _receive(self, body: dict) -> None:
        """A webhook body: one event, sometimes wrapped in {"ok", "result"}, or a list of them."""
        update = _unwrap(body)
        for item in update if isinstance(update, list) else [update]:
            await self.process_update(item)

    async def is_group_admin(self, chat_id: str, user_id: str) -> bool:
        return False  # the Zalo Bot API cannot tell group admins: staff rights stand in

    async def process_update(self, data: Any) -> bool:
        """Take one update (a webhook body, already unwrapped, or one polled item) and schedule it.

        Returns at once; False when it was a duplicate or could not be read (logged).
        """
        self.stats["received"] += 1
        try:
            inbound = self.to_inbound(data)
        except Exception:
            self.stats["unreadable"] += 1
            log.exception("zalo: an update could not be read; skipped")
            return False
        if inbound is None:
            return False
        if inbound.message_id:
            if inbound.message_id in self._seen:
                self.stats["duplicates"] += 1
                log.debug("zalo: message %s seen before; skipped", inbound.message_id)
                return False
            self._seen[inbound.message_id] = None
            while len(self._seen) > SEEN_IDS:
                self._seen.popitem(last=False)
        self._spawn(inbound)
        return True

    def _spawn(self, inbound: Inbound) -> None:
        lock, users = self._locks.get(inbound.chat_id, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[inbound.chat_id] = (lock, users + 1)
        task = asyncio.create_task(self._run(inbound, lock), name=f"zalo-{inbound.message_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, inbound: Inbound, lock: asyncio.Lock) -> None:
        try:
            async with lock, self._slots:  # in arrival order per chat (asyncio.Lock is FIFO)
                await self._handle(self.interpret(inbound))
        finally:
            lock, users = self._locks[inbound.chat_id]
            if users <= 1:
                del self._locks[inbound.chat_id]
            else:
                self._locks[inbound.chat_id] = (lock, users - 1)

    async def _handle(self, inbound: Inbound) -> None:
        try:
            replies = await self._on_inbound(inbound)
        except Exception:
            log.exception("zalo: handling message %s failed", inbound.message_id)
            return
        self.stats["handled"] += 1
        # standalone use: the service's handler returns nothing (bot.delivery.replies sends)
        targets: dict[str, list[Reply]] = {}
        for reply in replies or ():
            if reply.channel not in (None, self.name):
                log.warning("zalo: message %s: reply for channel %s dropped", inbound.message_id, reply.channel)
                continue
            targets.setdefault(reply.chat_id or inbound.chat_id, []).append(reply)
        for target, batch in targets.items():
            for reply in self.prepare(batch):
                try:
                    sent = await self.send(target, reply)
                except Exception as exc:
                    log.warning("zalo: message %s: reply to %s failed: %s", inbound.message_id, target,
                                redact(str(exc)))
                    continue
                try:
                    await reply.on_sent(sent) if reply.on_sent else None
                except Exception:
                    log.exception("zalo: message %s: after-send hook failed", inbound.message_id)

    def to_inbound(self, update: Any) -> Inbound | None:
        """The platform-neutral form of one update, or None for what the dialogue never sees."""
        if not isinstance(update, dict):
            raise ValueError(f"an update must be an object, not {type(update).__name__}")
        event = str(update.get("event_name") or "")
        message = update.get("message")
        if not isinstance(message, dict):
            log.info("zalo: event %s without a message; ignored", event[:64] or "?")
            return None
        chat = message.get("chat") or {}
        sender = message.get("from") or {}
        if sender.get("is_bot"):
            return None
        chat_id = str(chat.get("id") or sender.get("id") or "")
        if not chat_id:
            raise ValueError("message without chat.id")
        kind: ChatKind = "group" if str(chat.get("chat_type") or "").upper() == "GROUP" else "private"
        base: dict[str, Any] = {
            "channel": self.name, "chat_id": chat_id, "user_id": str(sender.get("id") or chat_id),
            "chat_kind": kind,
            "display_name": str(sender.get("display_name") or sender.get("first_name") or sender.get("name") or ""),
            "chat_title": str(chat.get("title") or chat.get("name") or ""),
            "message_id": str(message["message_id"]) if message.get("message_id") else None,
            "addressed": True,  # private chat, or a group message the platform passed on: a mention or a reply
        }
        text = message.get("text")
        if event == "message.text.received" or (not event and isinstance(text, str)):
            return Inbound(**base, kind="text", text=self._strip_mention(str(text or ""), kind))
        media = EVENT_MEDIA.get(event, "unsupported")
        caption = str(message.get("caption") or "")
        return Inbound(**base, kind="media", media_type=media, text=self._strip_mention(caption, kind),
                       media_id=_photo_url(message) if media == "photo" else None)

    def _strip_mention(self, text: str, kind: ChatKind) -> str:
        stripped = text
        for name in self.names:
            stripped = re.sub(rf"@{re.escape(name)}\b", " ", stripped, flags=re.IGNORECASE)
        if stripped == text and kind == "group":
            stripped = _MENTION.sub("", text.lstrip(), count=1)
        return _tidy(stripped)

    def interpret(self, inbound: Inbound) -> Inbound:
        """A number or an option's words → that option; "dangky …" → "/dangky …". Else unchanged."""
        if inbound.kind != "text":
            return inbound
        text = inbound.text.strip()
        options = self._options.get(inbound.chat_id)
        if options:
            chosen = _choose(text, options)
            if chosen is not None:
                return dataclasses.replace(inbound, kind="option", option=chosen.data)
        first, _, rest = text.partition(" ")
        if first and not first.startswith("/") and self._is_command(first.lower()):
            return dataclasses.replace(inbound, text=f"/{first.lower()} {rest}".strip())
        return inbound

    @staticmethod
    def _remember(table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > REMEMBERED_CHATS:
            table.popitem(last=False)

    # ------------------------------------------------------------------ polling

    async def _poll_loop(self) -> None:
        """getUpdates until stopped: at most one poll a second; errors back off, 401 stops the channel."""
        backoff = 1.0
        while True:
            started = self._clock()
            try:
                assert self.client is not None
                updates = await self.client.get_updates(self._poll_timeout)
            except asyncio.CancelledError:
                raise
            except DeliveryError as exc:
                self._note_failure(exc)
                if exc.kind == "unauthorized":
                    return
                log.warning("zalo: polling failed (%s); retrying in %.0fs", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except Exception:
                log.exception("zalo: polling failed; retrying in %.0fs", backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            for update in updates:
                await self.process_update(_unwrap(update))
            wait = self._min_poll_interval - (self._clock() - started)
            if wait > 0:
                await self._sleep(wait)


# ---------------------------------------------------------------------- helpers


def _unwrap(body: Any) -> Any:
    """`{"ok": true, "result": {...}}` → `{...}`; anything else as it is."""
    if isinstance(body, dict) and "result" in body and "event_name" not in body and "message" not in body:
        return body["result"]
    return body



def _words(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", fold(text)).split())


def _choose(text: str, options: tuple[Option, ...]) -> Option | None:
    stripped = text.strip().rstrip(".)")
    if stripped.isdigit():
        number = int(stripped)
        return options[number - 1] if 1 <= number <= len(options) else None
    said = _words(text)
    if not said:
        return None
    for option in options:
        if _words(option.label) == said:
            return option
    return None


def _tidy(text: str) -> str:
    """After cutting a mention: single spaces, no leading ',' or ':' left over ("@Bot, hỏi…")."""
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return "\n".join(lines).strip().lstrip(",:;").strip()
