"""A fake Zalo Bot Platform API over real HTTP, for running the real adapter against it.

    async with FakeZalo(token="1234567890:zalo-Secret") as fake:
        channel = ZaloBotChannel(fake.token, fake.url, handler)
        fake.push_update(fake.text_update("u1", "xin chào"))
        [answer] = await fake.wait_for(lambda m: m.chat_id == "u1")

It behaves as the docs and DESIGN.md say: `POST /bot{token}/{method}` with a JSON body, answered
with `{"ok": true, "result": …}` or `{"ok": false, "error_code", "description"}` (the HTTP status
is the error code). A wrong token is 401. getUpdates has no offset: it long-polls, hands out one
update a call, and answers HTTP 408 when nothing came within `timeout` (capped by `max_poll_wait`
so tests stay fast); an update pushed with `repeat=n` is handed out n more times (Zalo repeats
updates). getUpdates fails while a webhook is set; with a webhook set, pushed updates are POSTed to
it with `X-Bot-Api-Secret-Token`, as Zalo does. sendMessage refuses text outside 1..2000 characters
(400); `quota` messages in total may be sent, then every send answers 429 "quota exceeded";
`fail_next(chat_id, code)` makes the next send to that chat fail with that code.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from tests.fakes.server import Call, LoopbackServer

MAX_TEXT = 2000


class ApiError(Exception):
    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code, self.description = code, description


@dataclass
class SentMessage:
    chat_id: str
    message_id: str
    text: str
    time: float
    method: str = "sendMessage"
    photo: str | None = None


@dataclass
class FakeZalo(LoopbackServer):
    token: str = "1234567890:zalo-Secret_token"
    bot_id: str = "1459232241454765289"
    display_name: str = "Loa Phường"
    account_name: str = "bot.loaphuong"
    quota: int | None = None  # messages allowed in total; None: unlimited
    max_poll_wait: float = 0.5  # an empty long poll answers 408 after min(timeout, this)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sent: list[SentMessage] = []
        self.webhook_url = ""
        self.webhook_secret = ""
        self.webhook_posts: list[tuple[int, float]] = []  # (HTTP status, seconds) of each delivery
        self.polls_empty = 0
        self._queue: deque[dict] = deque()
        self._faults: dict[str, deque[int]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self._changed: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._deliveries: set[asyncio.Task] = set()
        self._closing = False
        self.url = ""

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        self._changed = asyncio.Event()
        await self.listen(self._handle)

    async def close(self) -> None:
        self._closing = True
        if self._changed is not None:
            self._changed.set()
        if self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        await self.stop_listening()

    # ------------------------------------------------------------------ test helpers

    def push_update(self, update: dict, *, repeat: int = 0) -> None:
        """Deliver `update`: POSTed to the webhook when one is set, else queued for getUpdates
        (`repeat` more copies queued too)."""
        if self.webhook_url:
            task = asyncio.get_running_loop().create_task(self.deliver(update))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
            return
        for _ in range(repeat + 1):
            self._queue.append(update)
        assert self._changed is not None
        self._changed.set()

    async def deliver(self, update: dict, *, wrapped: bool = False) -> int:
        """POST one update to the registered webhook, as Zalo does; the HTTP status."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = {"ok": True, "result": update} if wrapped else update
        started = time.monotonic()
        async with self._session.post(self.webhook_url, json=body,
                                      headers={"X-Bot-Api-Secret-Token": self.webhook_secret}) as response:
            await response.read()
            self.webhook_posts.append((response.status, time.monotonic() - started))
            return response.status

    @property
    def pending_updates(self) -> int:
        return len(self._queue)

    def fail_next(self, chat_id: str, code: int, *, times: int = 1) -> None:
        for _ in range(times):
            self._faults[str(chat_id)].append(code)

    def sent_to(self, chat_id: str) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == str(chat_id)]

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Callable[[SentMessage], bool], timeout: float = 5,  # noqa: ASYNC109
                       *, count: int = 1) -> list[SentMessage]:
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.sent if predicate(m)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for sent messages ({len(found)}/{count} found)")
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------------ update builders

    def _message(self, chat_id: str, user_id: str | None, chat_type: str, name: str,
                 message_id: str | None) -> dict:
        return {
            "message_id": message_id or f"m{next(self._ids):08x}",
            "chat": {"id": str(chat_id), "chat_type": chat_type},
            "from": {"id": str(user_id or chat_id), "display_name": name, "is_bot": False},
            "date": int(time.time() * 1000),
        }

    def text_update(self, chat_id: str, text: str, *, user_id: str | None = None, chat_type: str = "PRIVATE",
                    name: str = "Lan", message_id: str | None = None) -> dict:
        message = self._message(chat_id, user_id, chat_type, name, message_id)
        message["text"] = text
        return {"event_name": "message.text.received", "message": message}

    def image_update(self, chat_id: str, *, caption: str = "", chat_type: str = "PRIVATE",
                     user_id: str | None = None) -> dict:
        message = self._message(chat_id, user_id, chat_type, "Lan", None)
        message.update({"photo_url": "https://example.invalid/a.jpg", "caption": caption})
        return {"event_name": "message.image.received", "message": message}

    def sticker_update(self, chat_id: str, *, chat_type: str = "PRIVATE") -> dict:
        message = self._message(chat_id, None, chat_type, "Lan", None)
        message.update({"sticker": "0e078a2fb66a5f34067b", "url": "https://example.invalid/s.png"})
        return {"event_name": "message.sticker.received", "message": message}

    def unsupported_update(self, chat_id: str, *, chat_type: str = "PRIVATE") -> dict:
        return {"event_name": "message.unsupported.received",
                "message": self._message(chat_id, None, chat_type, "Lan", None)}

    # ------------------------------------------------------------------ the API

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await request.json() if request.can_read_body else {}
        except ValueError:
            return _error(ApiError(400, "Bad Request: body is not JSON"))
        if not isinstance(params, dict):
            return _error(ApiError(400, "Bad Request: body is not an object"))
        self.calls.append(Call(method, params, time.monotonic()))
        if request.match_info["token"] != self.token:
            return _error(ApiError(401, "Unauthorized"))
        handler = getattr(self, f"_api_{method.lower()}", None)
        if handler is None:
            return _error(ApiError(404, f"Not Found: method {method}"))
        try:
            result = await handler(params)
        except ApiError as exc:
            return _error(exc)
        return web.json_response({"ok": True, "result": result})

    async def _api_getme(self, params: dict) -> dict:
        return {"id": self.bot_id, "account_name": self.account_name, "display_name": self.display_name,
                "account_type": "BASIC", "can_join_groups": True}

    async def _api_getupdates(self, params: dict) -> dict:
        if self.webhook_url:
            raise ApiError(400, "Bad Request: getUpdates is not available while a webhook is set")
        try:
            wait = min(float(params.get("timeout") or 30), self.max_poll_wait)
        except ValueError:
            raise ApiError(400, "Bad Request: timeout must be a number of seconds") from None
        assert self._changed is not None
        deadline = time.monotonic() + wait
        while not self._queue and not self._closing:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                break
        if not self._queue:
            self.polls_empty += 1
            raise ApiError(408, "Request timeout")
        return self._queue.popleft()

    async def _api_setwebhook(self, params: dict) -> dict:
        url, secret = str(params.get("url") or ""), str(params.get("secret_token") or "")
        if not url.startswith(("https://", "http://")):
            raise ApiError(400, "Bad Request: url must be an https URL")
        if not 8 <= len(secret) <= 256:
            raise ApiError(400, "Bad Request: secret_token must be 8 to 256 characters")
        self.webhook_url, self.webhook_secret = url, secret
        return {"url": url, "updated_at": int(time.time() * 1000)}

    async def _api_deletewebhook(self, params: dict) -> dict:
        self.webhook_url, self.webhook_secret = "", ""
        return {"url": "", "updated_at": int(time.time() * 1000)}

    async def _api_getwebhookinfo(self, params: dict) -> dict:
        return {"url": self.webhook_url, "updated_at": int(time.time() * 1000)}

    def _check_send(self, params: dict, text_key: str, required: bool) -> tuple[str, str]:
        chat_id = str(params.get("chat_id") or "")
        if not chat_id:
            raise ApiError(400, "Bad Request: chat_id is required")
        fault = self._faults.get(chat_id)
        if fault:
            code = fault.popleft()
            raise ApiError(code, {403: "Forbidden: user blocked the bot", 404: "Not Found: chat not found",
                                  500: "Internal Server Error", 502: "Bad Gateway"}.get(code, "error"))
        text = params.get(text_key)
        text = "" if text is None else str(text)
        if (required or text) and not 1 <= len(text) <= MAX_TEXT:
            raise ApiError(400, f"Bad Request: {text_key} must be 1 to {MAX_TEXT} characters")
        if self.quota is not None and len(self.sent) >= self.quota:
            raise ApiError(429, "Quota exceeded")
        return chat_id, text

    def _record(self, chat_id: str, text: str, method: str, photo: str | None = None) -> dict:
        message = SentMessage(chat_id, f"s{next(self._ids):08x}", text, time.monotonic(), method, photo)
        self.sent.append(message)
        return {"message_id": message.message_id, "date": int(time.time() * 1000)}

    async def _api_sendmessage(self, params: dict) -> dict:
        chat_id, text = self._check_send(params, "text", True)
        return self._record(chat_id, text, "sendMessage")

    async def _api_sendphoto(self, params: dict) -> dict:
        if not str(params.get("photo") or "").startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: photo must be a URL")
        chat_id, caption = self._check_send(params, "caption", False)
        return self._record(chat_id, caption, "sendPhoto", str(params["photo"]))

    async def _api_sendsticker(self, params: dict) -> dict:
        chat_id, _ = self._check_send(params, "sticker", True)
        return self._record(chat_id, "", "sendSticker")

    async def _api_sendchataction(self, params: dict) -> None:
        if params.get("action") not in ("typing", "upload_photo"):
            raise ApiError(400, "Bad Request: unknown action")
        return None


def _error(exc: ApiError) -> web.Response:
    return web.json_response({"ok": False, "error_code": exc.code, "description": exc.description},
                             status=exc.code)
