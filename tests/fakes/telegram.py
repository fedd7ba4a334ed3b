"""A fake Telegram Bot API server over real HTTP, for running real PTB against it in tests.

    async with FakeTelegram(token="123:ABC") as fake:
        channel = TelegramChannel(fake.token, fake.url, handler)
        fake.push_update(fake.text_update(42, "xin chào"))
        [answer] = await fake.wait_for(lambda m: m.chat_id == 42)

It speaks the Bot API the way PTB 22 uses it: `POST /bot{token}/{method}` with a form body
(every value JSON-encoded except plain strings) or a JSON body, answered with
`{"ok": true, "result": …}` or `{"ok": false, "error_code", "description", "parameters"}`.
Long polling is real: `getUpdates` waits until an update arrives or `timeout` runs out, and
`offset` confirms everything before it.

Fault injection, for the delivery worker: `fail_next(chat_id, kind)` queues a failure for the
next call that names that chat, and `limits=(global_per_s, per_group_per_min, per_private_per_s)`
makes `sendMessage` answer 429 when a rate is exceeded (each breach is counted).
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import math
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.fakes.server import Call, LoopbackServer

FaultKind = Literal["retry_after", "blocked", "kicked", "migrated", "chat_not_found", "bad_gateway"]

# Parameters PTB sends JSON-encoded inside a form body; every other form value stays a string.
_JSON_PARAMS = {
    "reply_markup", "allowed_updates", "entities", "caption_entities", "commands", "scope",
    "link_preview_options", "reply_parameters",
}
# Tags Telegram's HTML parse mode accepts.
_HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "code", "pre", "blockquote", "tg-emoji",
}
_HTML_TOKEN = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>"  # a tag
    r"|&(#[0-9]+|#x[0-9a-fA-F]+|lt|gt|amp|quot);"  # an entity Telegram knows
    r"|([<&])"  # a stray < or &: Telegram refuses the message
)
_COMMAND = re.compile(r"^/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{4,31}")
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, code: int, description: str, parameters: dict | None = None):
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters


@dataclass
class SentMessage:
    """A message the bot sent (or edited): `text` as the user sees it, `raw` as it was sent."""

    chat_id: int
    message_id: int
    text: str
    raw: str
    parse_mode: str | None
    reply_markup: dict | None
    params: dict[str, Any]
    date: int
    edited: bool = False

    @property
    def buttons(self) -> list[list[dict]]:
        """The inline keyboard's rows (empty when there is none)."""
        return list((self.reply_markup or {}).get("inline_keyboard") or [])

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for row in self.buttons for b in row if "callback_data" in b]


@dataclass
class _Fault:
    kind: FaultKind
    retry_after: int = 3
    migrate_to: int | None = None


@dataclass
class FakeTelegram(LoopbackServer):
    token: str = "123:ABC"
    username: str = "LoaPhuongBot"
    first_name: str = "Loa Phường"
    limits: tuple[float, float, float] | None = None
    admins: dict[int, set[int]] = field(default_factory=dict)  # chat -> admin user ids
    creators: dict[int, int] = field(default_factory=dict)  # chat -> owner user id

    def __post_init__(self) -> None:
        self.bot_id = int(self.token.split(":", 1)[0])
        self.calls: list[Call] = []
        self.messages: dict[int, list[SentMessage]] = defaultdict(list)
        self.sent: list[SentMessage] = []  # every chat, in sending order
        self.limit_breaches = 0
        self.webhook_url = ""
        self.commands: list[dict] = []
        self._updates: list[tuple[int, Any]] = []  # (update_id, update) not yet confirmed
        self._next_update_id = 1
        self._message_ids: dict[int, itertools.count] = defaultdict(lambda: itertools.count(1))
        self._chats: dict[int, dict] = {}
        self._faults: dict[int, deque[_Fault]] = defaultdict(deque)
        self._stamps_global: deque[float] = deque()
        self._stamps_chat: dict[int, deque[float]] = defaultdict(deque)
        self._callback_ids = itertools.count(1)
        self._file_ids: set[str] = set()  # photos this server handed out in updates
        self._changed: asyncio.Condition | None = None
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        self._changed = asyncio.Condition()
        await self.listen(self._handle)

    async def close(self) -> None:
        self._closing = True
        await self._notify()  # long polls answer at once
        await self.stop_listening()

    # ------------------------------------------------------------------ test helpers

    def push_update(self, update: dict) -> int:
        """Queue an update for getUpdates; assigns and returns its update_id."""
        update = {**update, "update_id": self._next_update_id}
        return self._queue(update)

    def push_raw(self, obj: Any) -> int:
        """Queue anything as an update, as-is (a dict without update_id gets one)."""
        if isinstance(obj, dict) and "update_id" not in obj:
            obj = {**obj, "update_id": self._next_update_id}
        return self._queue(obj)

    def _queue(self, obj: Any) -> int:
        update_id = obj["update_id"] if isinstance(obj, dict) and "update_id" in obj else None
        if not isinstance(update_id, int):
            update_id = self._next_update_id
        self._next_update_id = max(self._next_update_id, update_id + 1)
        self._updates.append((update_id, obj))
        asyncio.get_running_loop().create_task(self._notify())
        return update_id

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    def sent_to(self, chat_id: int | str) -> list[SentMessage]:
        return list(self.messages.get(int(chat_id), []))

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self, predicate: Callable[[SentMessage], bool], timeout: float = 5, *, count: int = 1  # noqa: ASYNC109
    ) -> list[SentMessage]:
        """Wait until at least `count` sent messages match; return all that match, in order."""
        return await self._wait(lambda: [m for m in self.sent if predicate(m)], timeout, count,
                                "sent messages")

    async def wait_for_call(
        self, method: str, predicate: Callable[[Call], bool] = lambda c: True,
        timeout: float = 5,  # noqa: ASYNC109
    ) -> list[Call]:
        """Wait until a call to `method` matches; return all matching calls."""
        return await self._wait(lambda: [c for c in self.calls_to(method) if predicate(c)],
                                timeout, 1, f"a call to {method}")

    async def _wait(self, found: Callable[[], list], timeout: float, count: int, what: str) -> list:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            matches = found()
            if len(matches) >= count:
                return matches
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what} ({len(matches)}/{count} found)")
            await asyncio.sleep(0.01)

    def fail_next(
        self, chat_id: int | str, kind: FaultKind, *, retry_after: int = 3,
        migrate_to: int | None = None, times: int = 1,
    ) -> None:
        """Make the next `times` calls naming `chat_id` fail the way Telegram does."""
        if kind == "migrated" and migrate_to is None:
            migrate_to = int(f"-100{abs(int(chat_id))}")
        for _ in range(times):
            self._faults[int(chat_id)].append(_Fault(kind, retry_after, migrate_to))

    def set_admin(self, chat_id: int, user_id: int, *, creator: bool = False) -> None:
        if creator:
            self.creators[chat_id] = user_id
        else:
            self.admins.setdefault(chat_id, set()).add(user_id)

    # ------------------------------------------------------------------ update builders

    @property
    def bot_user(self) -> dict:
        return {"id": self.bot_id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def chat(self, chat_id: int, chat_type: str = "private", *, title: str = "Tổ dân phố 3",
             first_name: str = "Lan") -> dict:
        """The Chat object for `chat_id` (remembered, so later messages agree with it)."""
        if chat_id not in self._chats:
            if chat_type == "private":
                self._chats[chat_id] = {"id": chat_id, "type": "private", "first_name": first_name}
            else:
                self._chats[chat_id] = {"id": chat_id, "type": chat_type, "title": title}
        return self._chats[chat_id]

    def user(self, user_id: int, first_name: str = "Lan", last_name: str | None = None) -> dict:
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "vi"}
        if last_name:
            user["last_name"] = last_name
        return user

    def _message(self, chat_id: int, user_id: int | None, chat_type: str, first_name: str,
                 title: str) -> dict:
        if user_id is None:
            user_id = chat_id if chat_type == "private" else 1001
        return {
            "message_id": next(self._message_ids[chat_id]),
            "date": int(time.time()),
            "chat": self.chat(chat_id, chat_type, title=title, first_name=first_name),
            "from": self.user(user_id, first_name),
        }

    def text_update(
        self, chat_id: int, text: str, *, user_id: int | None = None, chat_type: str = "private",
        reply_to_bot: bool = False, entities: list[dict] | None = None, first_name: str = "Lan",
        title: str = "Tổ dân phố 3",
    ) -> dict:
        """A text message; entities for commands and @mentions are made as Telegram would."""
        message = self._message(chat_id, user_id, chat_type, first_name, title)
        message["text"] = text
        entities = _auto_entities(text) if entities is None else entities
        if entities:
            message["entities"] = entities
        if reply_to_bot:
            message["reply_to_message"] = self._bot_message_for_reply(chat_id)
        return {"message": message}

    def _bot_message_for_reply(self, chat_id: int) -> dict:
        sent = self.messages.get(chat_id)
        if sent:
            last = sent[-1]
            return {"message_id": last.message_id, "date": last.date, "chat": self.chat(chat_id),
                    "from": self.bot_user, "text": last.text}
        return {"message_id": next(self._message_ids[chat_id]), "date": int(time.time()),
                "chat": self.chat(chat_id), "from": self.bot_user, "text": "…"}

    def callback_update(self, chat_id: int, user_id: int, data: str, message_id: int | None = None,
                        *, first_name: str = "Lan") -> dict:
        """A button press on the bot's message `message_id` (default: its last one in the chat)."""
        sent = {m.message_id: m for m in self.messages.get(chat_id, [])}
        if message_id is None and sent:
            message_id = max(sent)
        if message_id is None:
            message_id = next(self._message_ids[chat_id])
        shown = sent.get(message_id)
        message = {"message_id": message_id, "date": shown.date if shown else int(time.time()),
                   "chat": self.chat(chat_id), "from": self.bot_user, "text": shown.text if shown else "…"}
        if shown and shown.reply_markup:
            message["reply_markup"] = shown.reply_markup
        return {"callback_query": {
            "id": str(next(self._callback_ids)), "from": self.user(user_id, first_name),
            "chat_instance": f"ci{chat_id}", "data": data, "message": message,
        }}

    def sticker_update(self, chat_id: int, *, user_id: int | None = None, chat_type: str = "private",
                       emoji: str = "👍") -> dict:
        message = self._message(chat_id, user_id, chat_type, "Lan", "Tổ dân phố 3")
        message["sticker"] = {"file_id": "CAACAgIAAx", "file_unique_id": "AgADx", "type": "regular",
                              "width": 512, "height": 512, "is_animated": False, "is_video": False,
                              "emoji": emoji}
        return {"message": message}

    def photo_update(self, chat_id: int, *, user_id: int | None = None, chat_type: str = "private",
                     caption: str | None = None) -> dict:
        message = self._message(chat_id, user_id, chat_type, "Lan", "Tổ dân phố 3")
        message["photo"] = [
            {"file_id": f"AgAC{size}", "file_unique_id": f"AQAD{size}", "width": size, "height": size}
            for size in (90, 320, 800)
        ]
        self._file_ids.update(p["file_id"] for p in message["photo"])
        if caption is not None:
            message["caption"] = caption
            if entities := _auto_entities(caption):
                message["caption_entities"] = entities
        return {"message": message}

    def my_chat_member_update(self, chat_id: int, new_status: str, *, old_status: str | None = None,
                              chat_type: str = "group", by_user_id: int = 1001,
                              title: str = "Tổ dân phố 3") -> dict:
        """The bot's own membership changed: "member"/"administrator" (added), "left"/"kicked"."""
        if old_status is None:
            old_status = "left" if new_status in ("member", "administrator", "restricted") else "member"
        return {"my_chat_member": {
            "chat": self.chat(chat_id, chat_type, title=title),
            "from": self.user(by_user_id),
            "date": int(time.time()),
            "old_chat_member": _member(old_status, self.bot_user),
            "new_chat_member": _member(new_status, self.bot_user),
        }}

    def migrate_update(self, old_id: int, new_id: int, *, user_id: int = 1001) -> dict:
        """The service message a group gets when it becomes a supergroup."""
        message = self._message(old_id, user_id, "group", "Lan", "Tổ dân phố 3")
        message["migrate_to_chat_id"] = new_id
        return {"message": message}

    # ------------------------------------------------------------------ the HTTP side

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        method = request.match_info["method"]
        try:
            params = await _read_params(request)
        except ValueError:
            return _error(ApiError(400, "Bad Request: can't parse request body"))
        self.calls.append(Call(method, params, time.monotonic()))
        handler = getattr(self, f"_api_{method.lower()}", None)
        if handler is None:
            return _error(ApiError(404, "Not Found"))
        try:
            self._check_fault(params)
            result = await handler(params)
        except ApiError as exc:
            if exc.code == 502:
                return web.Response(status=502, text=_BAD_GATEWAY_HTML, content_type="text/html")
            return _error(exc)
        return web.json_response({"ok": True, "result": result})

    def _check_fault(self, params: dict) -> None:
        chat_id = _opt_int(params.get("chat_id"))
        if chat_id is None or not self._faults.get(chat_id):
            return
        fault = self._faults[chat_id].popleft()
        match fault.kind:
            case "retry_after":
                raise ApiError(429, f"Too Many Requests: retry after {fault.retry_after}",
                               {"retry_after": fault.retry_after})
            case "blocked":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            case "kicked":
                raise ApiError(403, "Forbidden: bot was kicked from the group chat")
            case "migrated":
                raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                               {"migrate_to_chat_id": fault.migrate_to})
            case "chat_not_found":
                raise ApiError(400, "Bad Request: chat not found")
            case "bad_gateway":
                raise ApiError(502, "Bad Gateway")

    def _check_limits(self, chat_id: int) -> None:
        if self.limits is None:
            return
        global_per_s, group_per_min, private_per_s = self.limits
        now = time.monotonic()
        if chat_id < 0:
            window, allowed = 60.0, group_per_min
        else:
            window, allowed = 1.0, private_per_s
        waits = [_window_wait(self._stamps_global, now, 1.0, global_per_s),
                 _window_wait(self._stamps_chat[chat_id], now, window, allowed)]
        wait = max(waits)
        if wait > 0:
            self.limit_breaches += 1
            retry_after = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})
        self._stamps_global.append(now)
        self._stamps_chat[chat_id].append(now)

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    # ------------------------------------------------------------------ the methods

    async def _api_getme(self, params: dict) -> dict:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    async def _api_getupdates(self, params: dict) -> list:
        offset = _opt_int(params.get("offset")) or 0
        limit = _opt_int(params.get("limit")) or 100
        timeout = float(params.get("timeout") or 0)
        if offset > 0:  # confirms every update before it
            self._updates = [(uid, u) for uid, u in self._updates if uid >= offset]
        assert self._changed is not None

        def ready() -> list:
            return [u for uid, u in self._updates if uid >= offset][:limit]

        if not ready() and timeout > 0 and not self._closing:
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait_for(lambda: bool(ready()) or self._closing),
                                           timeout)
                except TimeoutError:
                    pass
        return ready()

    async def _api_sendmessage(self, params: dict) -> dict:
        chat_id = _chat_id(params)
        text, raw, markup = self._validate_text(params)
        self._check_limits(chat_id)
        message = SentMessage(chat_id=chat_id, message_id=next(self._message_ids[chat_id]), text=text,
                              raw=raw, parse_mode=params.get("parse_mode"), reply_markup=markup,
                              params=params, date=int(time.time()))
        self.messages[chat_id].append(message)
        self.sent.append(message)
        return self._message_json(message)

    async def _api_sendphoto(self, params: dict) -> dict:
        """A photo by file id or link: only ids this server handed out are known (as on Telegram,
        where a file id works for the bot that received it); a link is accepted, not fetched."""
        chat_id = _chat_id(params)
        photo = params.get("photo")
        is_link = isinstance(photo, str) and photo.startswith(("https://", "http://"))
        if not isinstance(photo, str) or (photo not in self._file_ids and not is_link):
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        self._check_limits(chat_id)
        caption = str(params.get("caption") or "")
        message = SentMessage(chat_id=chat_id, message_id=next(self._message_ids[chat_id]), text=caption,
                              raw=caption, parse_mode=params.get("parse_mode"), reply_markup=None,
                              params=params, date=int(time.time()))
        self.messages[chat_id].append(message)
        self.sent.append(message)
        out = self._message_json(message)
        del out["text"]
        if caption:
            out["caption"] = caption
        out["photo"] = [{"file_id": photo, "file_unique_id": "AQADsent", "width": 800, "height": 800}]
        return out

    async def _api_editmessagetext(self, params: dict) -> dict:
        chat_id = _chat_id(params)
        message_id = _opt_int(params.get("message_id"))
        found = next((m for m in self.messages.get(chat_id, []) if m.message_id == message_id), None)
        if found is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        text, raw, markup = self._validate_text(params)
        if text == found.text and markup == found.reply_markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message content "
                                "and reply markup are exactly the same as a current content and reply "
                                "markup of the message")
        found.text, found.raw, found.reply_markup, found.params = text, raw, markup, params
        found.parse_mode, found.edited = params.get("parse_mode"), True
        return {**self._message_json(found), "edit_date": int(time.time())}

    def _validate_text(self, params: dict) -> tuple[str, str, dict | None]:
        raw = params.get("text")
        if raw is None or raw == "":
            raise ApiError(400, "Bad Request: message text is empty")
        raw = str(raw)
        mode = (params.get("parse_mode") or "").upper()
        text = _parse_html(raw) if mode == "HTML" else raw
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if markup is not None:
            _validate_markup(markup)
        return text, raw, markup

    def _message_json(self, message: SentMessage) -> dict:
        out = {"message_id": message.message_id, "from": self.bot_user, "date": message.date,
               "chat": self._chat_for(message.chat_id), "text": message.text}
        if message.reply_markup:
            out["reply_markup"] = message.reply_markup
        return out

    def _chat_for(self, chat_id: int) -> dict:
        if chat_id in self._chats:
            return self._chats[chat_id]
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Lan"}
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": kind, "title": "Nhóm"}

    async def _api_answercallbackquery(self, params: dict) -> bool:
        if not params.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or "
                                "query ID is invalid")
        return True

    async def _api_getchatmember(self, params: dict) -> dict:
        chat_id, user_id = _chat_id(params), _opt_int(params.get("user_id"))
        if user_id is None:
            raise ApiError(400, "Bad Request: invalid user_id specified")
        user = self.bot_user if user_id == self.bot_id else self.user(user_id)
        if self.creators.get(chat_id) == user_id:
            return _member("creator", user)
        if user_id in self.admins.get(chat_id, set()):
            return _member("administrator", user)
        return _member("member", user)

    async def _api_getchat(self, params: dict) -> dict:
        chat = self._chat_for(_chat_id(params))
        return {**chat, "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                        "unique_gifts": False, "premium_subscription": False,
                                        "gifts_from_channels": False}}

    async def _api_sendchataction(self, params: dict) -> bool:
        _chat_id(params)
        return True

    async def _api_setmycommands(self, params: dict) -> bool:
        self.commands = list(params.get("commands") or [])
        return True

    async def _api_getmycommands(self, params: dict) -> list:
        return self.commands

    async def _api_deletewebhook(self, params: dict) -> bool:
        self.webhook_url = ""
        if _bool(params.get("drop_pending_updates")):
            self._updates.clear()
        return True

    async def _api_setwebhook(self, params: dict) -> bool:
        self.webhook_url = str(params.get("url") or "")
        return True

    async def _api_getwebhookinfo(self, params: dict) -> dict:
        return {"url": self.webhook_url, "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}


# ---------------------------------------------------------------------- helpers


async def _read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json() if request.can_read_body else {}
        if not isinstance(body, dict):
            raise ValueError("body is not an object")
        params.update(body)
    elif request.can_read_body:
        form = await request.post()
        for key, value in form.items():
            params[key] = value if isinstance(value, str) else value.file.read().decode()
    for key in _JSON_PARAMS & params.keys():
        if isinstance(params[key], str):
            params[key] = json.loads(params[key])
    return params


def _error(exc: ApiError) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
    if exc.parameters:
        body["parameters"] = exc.parameters
    return web.json_response(body, status=exc.code)


def _opt_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _chat_id(params: dict) -> int:
    chat_id = _opt_int(params.get("chat_id"))
    if chat_id is None:
        raise ApiError(400, "Bad Request: chat not found")
    return chat_id


def _window_wait(stamps: deque[float], now: float, window: float, allowed: float) -> float:
    """Seconds until one more event fits in `window` (0 when it fits now)."""
    while stamps and stamps[0] <= now - window:
        stamps.popleft()
    if len(stamps) < allowed:
        return 0.0
    return stamps[0] + window - now


def _parse_html(raw: str) -> str:
    """Telegram's HTML parse mode: the visible text, or 400 for what Telegram refuses."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    for match in _HTML_TOKEN.finditer(raw):
        out.append(raw[pos:match.start()])
        pos = match.end()
        closing, tag, _attrs, entity, stray = match.groups()
        at = len(raw[:match.start()].encode())
        if stray:
            raise ApiError(400, f"Bad Request: can't parse entities: unexpected '{stray}' "
                                f"at byte offset {at}")
        if entity:
            out.append(html.unescape(f"&{entity};"))
            continue
        tag = tag.lower()
        if tag not in _HTML_TAGS:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}" '
                                f"at byte offset {at}")
        if not closing:
            stack.append(tag)
        elif not stack or stack.pop() != tag:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Can\'t find end tag corresponding '
                                f'to start tag "{tag}"')
    if stack:
        raise ApiError(400, f'Bad Request: can\'t parse entities: Can\'t find end tag corresponding to '
                            f'start tag "{stack[-1]}"')
    out.append(raw[pos:])
    return "".join(out)


def _validate_markup(markup: Any) -> None:
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return  # another keyboard kind: not checked here
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError(400, "Bad Request: can't parse inline keyboard button: field \"inline_keyboard\" "
                            "must be an Array of Arrays")
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise ApiError(400, "Bad Request: can't parse inline keyboard button: Text buttons are "
                                    "unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _auto_entities(text: str) -> list[dict]:
    """The bot_command and mention entities Telegram attaches to a text by itself."""
    entities = []
    if command := _COMMAND.match(text):
        entities.append({"type": "bot_command", "offset": 0, "length": _utf16(command.group())})
    for mention in _MENTION.finditer(text):
        if command and mention.start() < command.end():
            continue
        entities.append({"type": "mention", "offset": _utf16(text[:mention.start()]),
                         "length": _utf16(mention.group())})
    return entities


def _member(status: str, user: dict) -> dict:
    """A ChatMember object with every field PTB requires for its status."""
    member: dict[str, Any] = {"status": status, "user": user}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member.update(dict.fromkeys(
            ("can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages",
             "can_manage_video_chats", "can_restrict_members", "can_promote_members", "can_change_info",
             "can_invite_users", "can_post_stories", "can_edit_stories", "can_delete_stories"), False))
        member["can_manage_chat"] = True
    elif status == "kicked":
        member["until_date"] = 0
    elif status == "restricted":
        member.update(dict.fromkeys(
            ("is_member", "can_change_info", "can_invite_users", "can_pin_messages", "can_send_messages",
             "can_send_polls", "can_send_other_messages", "can_add_web_page_previews", "can_manage_topics",
             "can_send_audios", "can_send_documents", "can_send_photos", "can_send_videos",
             "can_send_video_notes", "can_send_voice_notes", "can_edit_tag", "can_react_to_messages"), False))
        member["is_member"] = True
        member["until_date"] = 0
    return member
