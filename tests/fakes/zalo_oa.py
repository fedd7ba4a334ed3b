"""A fake Zalo Official Account: the OAuth v4 server and the OA API v3 over real HTTP, with Zalo's rules.

    async with FakeZaloOA() as fake:
        refresh = fake.issue_refresh_token()          # what the OA admin's consent would give
        fake.add_follower("u1")
        status = await fake.deliver(fake.text_event("u1", "xin chào"))   # signed, to fake.webhook_url

What it enforces, as Zalo documents and integrations report:
- OAuth: `POST /v4/oa/access_token` with header `secret_key` and form `app_id`; `grant_type=refresh_token`
  spends the refresh token (single use: presenting it again is refused with -14014 and counted in
  `spent_presented`) and answers a new pair, `expires_in` a string; `grant_type=authorization_code`
  needs a code from `consent()` and the PKCE verifier of its challenge.
- API: the access token in the `access_token` header only (none or unknown: -216, past its life: -220);
  replies `{"error", "message", "data"}`. `/v3.0/oa/message/cs` text 1..2000 characters (else -201),
  only to followers (-213), not banned (-227), who interacted in the last 7 days (-230), never 22:00–06:00
  while `night` is set (-234), within `quota` messages (-211) and `rate_per_minute` requests (-32).
  `/message/promotion` and `/message/transaction` take a template outside the window, with their own quota.
  `GET /v3.0/oa/user/getlist?data={"offset","count"≤50}`, `/v3.0/oa/user/detail`, `/v2.0/oa/getoa`.
- Webhook: events POSTed with `X-ZEvent-Signature: mac=sha256(app_id + body + timestamp + OA secret key)`;
  a follower's event counts as their last interaction.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.server import LoopbackServer

MAX_TEXT = 2000
WINDOW = 7 * 86400


@dataclass
class OAMessage:
    user_id: str
    message_id: str
    text: str
    kind: str  # cs | promotion | transaction
    time: float


@dataclass
class Follower:
    following: bool = True
    last_interaction: float | None = None
    banned: bool = False
    name: str = ""


@dataclass
class FakeZaloOA(LoopbackServer):
    app_id: str = "4318251006482953221"
    secret_key: str = "app-Secret-key-0042xyz"  # the app secret (OAuth)
    oa_secret: str = "oa-Secret-key-for-events-77"  # the OA secret key (webhook signatures)
    oa_id: str = "579745863508352884"
    access_life: float = 90000.0
    quota: int | None = None  # consultation messages allowed; None: unlimited
    promotion_quota: int | None = None
    rate_per_minute: int | None = None
    night: bool = False  # 22:00–06:00: every message refused with -234
    page_limit: int = 50

    def __post_init__(self) -> None:
        self.url = ""
        self._runner = None
        self.webhook_url = ""
        self.followers: dict[str, Follower] = {}
        self.sent: list[OAMessage] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers) of every call
        self.oauth_forms: list[dict[str, str]] = []
        self.live_refresh: set[str] = set()
        self.spent_refresh: set[str] = set()
        self.spent_presented = 0
        self.access: dict[str, float] = {}  # token → its end (time.time())
        self.codes: dict[str, str] = {}  # code → PKCE challenge
        self.refreshes = 0
        self.oauth_down = False  # OAuth answers 503 (a network fault)
        self._faults: dict[str, deque[int]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self._minute: deque[float] = deque()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        await self.listen(self._handle, "/{tail:.*}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.stop_listening()

    # ------------------------------------------------------------------ test helpers

    def issue_refresh_token(self) -> str:
        token = f"rt-{secrets.token_urlsafe(24)}"
        self.live_refresh.add(token)
        return token

    def consent(self, code_challenge: str) -> str:
        """The OA admin consented: the `code` Zalo would pass to the redirect_uri."""
        code = f"code-{secrets.token_urlsafe(12)}"
        self.codes[code] = code_challenge
        return code

    def expire_access_tokens(self) -> None:
        for token in self.access:
            self.access[token] = 0.0

    def add_follower(self, user_id: str, *, interacted_ago: float | None = 0.0, name: str = "") -> None:
        last = None if interacted_ago is None else time.time() - interacted_ago
        self.followers[user_id] = Follower(True, last, name=name)

    def fail_next(self, user_id: str, code: int, *, times: int = 1) -> None:
        for _ in range(times):
            self._faults[user_id].append(code)

    def sent_to(self, user_id: str) -> list[OAMessage]:
        return [m for m in self.sent if m.user_id == user_id]

    def headers_seen(self) -> list[dict[str, str]]:
        return [h for _, _, h in self.requests]

    # ------------------------------------------------------------------ events

    def _event(self, name: str, user_id: str, **more: Any) -> dict:
        return {"app_id": self.app_id, "event_name": name, "timestamp": str(int(time.time() * 1000)),
                "sender": {"id": user_id}, "recipient": {"id": self.oa_id}, "user_id_by_app": f"a{user_id}", **more}

    def text_event(self, user_id: str, text: str, *, msg_id: str | None = None) -> dict:
        return self._event("user_send_text", user_id,
                           message={"msg_id": msg_id or f"msg{next(self._ids):010d}", "text": text})

    def image_event(self, user_id: str, *, url: str = "https://photo.example.invalid/p.jpg", text: str = "") -> dict:
        return self._event("user_send_image", user_id, message={
            "msg_id": f"msg{next(self._ids):010d}", "text": text,
            "attachments": [{"type": "image", "payload": {"thumbnail": url, "url": url}}]})

    def follow_event(self, user_id: str, name: str = "follow") -> dict:
        event = self._event(name, user_id, follower={"id": user_id})
        event["source"] = "oa_profile"
        return event

    def echo_event(self, user_id: str, text: str) -> dict:
        return {**self._event("oa_send_text", self.oa_id, message={"msg_id": f"msg{next(self._ids):010d}",
                                                                    "text": text}), "recipient": {"id": user_id}}

    def sign(self, raw: bytes, timestamp: str) -> str:
        return "mac=" + hashlib.sha256(self.app_id.encode() + raw + timestamp.encode() + self.oa_secret.encode()
                                       ).hexdigest()

    async def deliver(self, event: dict, *, signature: str | None = "valid", url: str | None = None) -> int:
        """POST one event to the webhook as Zalo does ("valid": signed right; None: no header); the status."""
        raw = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "valid":
            headers["X-ZEvent-Signature"] = self.sign(raw, event.get("timestamp", ""))
        elif signature is not None:
            headers["X-ZEvent-Signature"] = signature
        user = str((event.get("sender") or {}).get("id") or "")
        if event.get("event_name") == "follow":
            self.followers.setdefault(user, Follower()).following = True
        elif event.get("event_name") == "unfollow" and user in self.followers:
            self.followers[user].following = False
        if event.get("event_name", "").startswith(("user_send_", "follow")):
            self.followers.setdefault(user, Follower(following=False)).last_interaction = time.time()
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(url or self.webhook_url, data=raw, headers=headers) as response:
            await response.read()
            return response.status

    # ------------------------------------------------------------------ the servers

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path_qs, dict(request.headers)))
        if request.path == "/v4/oa/access_token" and request.method == "POST":
            return await self._oauth(request)
        token = request.headers.get("access_token", "")
        end = self.access.get(token)
        if end is None:
            return _answer(-216, "Access token is invalid")
        if end <= time.time():
            return _answer(-220, "Access token has expired")
        if self.rate_per_minute is not None:
            now = time.monotonic()
            while self._minute and self._minute[0] <= now - 60:
                self._minute.popleft()
            if len(self._minute) >= self.rate_per_minute:
                return _answer(-32, "Exceed the limit of requests per minute")
            self._minute.append(now)
        query: dict[str, Any] = {}
        if "data" in request.query:
            try:
                query = json.loads(request.query["data"])
            except ValueError:
                return _answer(-201, "data is not JSON")
        routes = {
            ("GET", "/v2.0/oa/getoa"): self._getoa, ("GET", "/v3.0/oa/user/getlist"): self._getlist,
            ("GET", "/v3.0/oa/user/detail"): self._detail,
        }
        handler = routes.get((request.method, request.path))
        if handler is not None:
            return handler(query)
        if request.method == "POST" and request.path.startswith("/v3.0/oa/message/"):
            kind = request.path.rsplit("/", 1)[1]
            if kind in ("cs", "promotion", "transaction"):
                try:
                    body = await request.json()
                except ValueError:
                    return _answer(-201, "body is not JSON")
                return self._message(kind, body if isinstance(body, dict) else {})
        return _answer(-14, "Request to an empty api")

    async def _oauth(self, request: web.Request) -> web.Response:
        if self.oauth_down:
            return web.json_response({"error": -1}, status=503)
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.oauth_forms.append(form)
        if request.headers.get("secret_key") != self.secret_key or form.get("app_id") != self.app_id:
            return _oauth_error(-14002, "invalid app_id or secret_key")
        grant = form.get("grant_type")
        if grant == "refresh_token":
            token = form.get("refresh_token", "")
            if token in self.spent_refresh:
                self.spent_presented += 1
                return _oauth_error(-14014, "Refresh token was used")
            if token not in self.live_refresh:
                return _oauth_error(-14014, "Invalid refresh token")
            self.live_refresh.discard(token)
            self.spent_refresh.add(token)
            self.refreshes += 1
        elif grant == "authorization_code":
            challenge = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            if challenge is None or challenge != expected:
                return _oauth_error(-14003, "Invalid code or code_verifier")
        else:
            return _oauth_error(-14001, "unknown grant_type")
        access = f"at-{secrets.token_urlsafe(24)}"
        self.access[access] = time.time() + self.access_life
        return web.json_response({"access_token": access, "refresh_token": self.issue_refresh_token(),
                                  "expires_in": str(int(self.access_life))})

    def _getoa(self, query: dict) -> web.Response:
        return _answer(0, "Success", {"oa_id": self.oa_id, "name": "MTTQ phường Phước Hải", "num_follower":
                                      sum(f.following for f in self.followers.values())})

    def _getlist(self, query: dict) -> web.Response:
        offset, count = query.get("offset"), query.get("count")
        if not isinstance(offset, int) or not isinstance(count, int) or not 1 <= count <= self.page_limit:
            return _answer(-201, "offset and count (1..50) are required")
        ids = [u for u, f in self.followers.items() if f.following]
        page = ids[offset:offset + count]
        return _answer(0, "Success", {"total": len(ids), "count": len(page), "offset": offset,
                                      "users": [{"user_id": u} for u in page]})

    def _detail(self, query: dict) -> web.Response:
        follower = self.followers.get(str(query.get("user_id")))
        if follower is None:
            return _answer(-213, "User has not followed the OA")
        return _answer(0, "Success", {"user_id": query.get("user_id"), "display_name": follower.name,
                                      "user_is_follower": follower.following})

    def _message(self, kind: str, body: dict) -> web.Response:
        user_id = str((body.get("recipient") or {}).get("user_id") or "")
        message = body.get("message") or {}
        if not user_id or not isinstance(message, dict):
            return _answer(-201, "recipient.user_id and message are required")
        if kind == "cs":
            text = message.get("text")
            if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT:
                return _answer(-201, f"text must be 1 to {MAX_TEXT} characters")
        else:
            payload = (message.get("attachment") or {}).get("payload") or {}
            elements = payload.get("elements") or []
            text = " ".join(str(e.get("content") or "") for e in elements if isinstance(e, dict))
            if payload.get("template_type") is None or not 1 <= len(text) <= MAX_TEXT:
                return _answer(-201, "a template with content is required")
        fault = self._faults.get(user_id)
        if fault:
            return _answer(fault.popleft(), "injected fault")
        follower = self.followers.get(user_id)
        if follower is None or not follower.following:
            return _answer(-213, "User has not followed the OA")
        if follower.banned:
            return _answer(-227, "User is banned or inactive for more than 45 days")
        if self.night:
            return _answer(-234, "Messages cannot be sent from 22:00 to 06:00")
        if kind == "cs":
            last = follower.last_interaction
            if last is None or time.time() - last > WINDOW:
                return _answer(-230, "User has not interacted with the OA in the past 7 days")
            if self.quota is not None and sum(m.kind == "cs" for m in self.sent) >= self.quota:
                return _answer(-211, "Out of quota")
        elif self.promotion_quota is not None and sum(m.kind != "cs" for m in self.sent) >= self.promotion_quota:
            return _answer(-211, "Out of quota")
        sent = OAMessage(user_id, f"oamsg{next(self._ids):012d}", text, kind, time.monotonic())
        self.sent.append(sent)
        return _answer(0, "Success", {"message_id": sent.message_id, "user_id": user_id})


def _answer(error: int, message: str, data: Any = None) -> web.Response:
    body: dict[str, Any] = {"error": error, "message": message}
    if data is not None:
        body["data"] = data
    return web.json_response(body)


def _oauth_error(code: int, description: str) -> web.Response:
    return web.json_response({"error": code, "error_name": description, "error_description": description})
