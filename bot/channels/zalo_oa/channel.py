"""The Zalo Official Account adapter: webhook events → `Inbound`, `Reply` → consultation messages.

It speaks like the Zalo Bot adapter (plain text, numbered options, a follower's turn handled in
order, replies merged to spare the quota), so it reuses that adapter's turn handling and rendering
and replaces what differs: the API and its tokens (client.py), the signed webhook (webhook.py),
the event deduplication (kept across restarts) and the followers' windows (store.py), follow / unfollow (told to
`on_follow`, which keeps the audience), and the OA's rules on what the outbox sends:

- nothing 22:00–06:00 (TIMEZONE): a send then is `rate_limited` until 06:00 (the worker pauses this
  channel and keeps the rows); an answer to a follower who just wrote goes at once;
- consultation messages reach a follower who interacted within 7 days; past that the send fails
  with the reason "quá 7 ngày không tương tác", or goes as the promotion / transaction template
  ZALO_OA_TEMPLATE names, when the OA's plan allows it;
- -213 / -227 are `gone`, -211 (quota) and -32 (rate) pause the channel, -216 / -220 refresh the token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from bot.channels.base import ChoiceMemory, DeliveryError, Inbound, PageRoute, Reply, Sent, WebhookRoute
from bot.channels.zalo_bot.channel import SEEN_IDS, Hint, OnInbound, ZaloBotChannel
from bot.channels.zalo_oa.client import WINDOW_REASON, OAClient
from bot.channels.zalo_oa.store import OAStore, local_day
from bot.channels.zalo_oa.webhook import SIGNATURE_HEADER, Event, read_event, verify
from bot.kernel.logs import add_secret, redact

log = logging.getLogger(__name__)

NAME = "zalo_oa"
WEBHOOK_PATH = "/zalo-oa/webhook"
CALLBACK_PATH = "/zalo-oa/oauth"
MAX_TEXT = 2000
WINDOW_DAYS = 7
QUIET_START, QUIET_END = 22, 6  # local hours
# A follower who wrote this recently is in a conversation: at night the answer is still tried (a
# consultation to their own message; if Zalo refuses it with -234 it waits for 06:00 like the rest).
CONVERSATION_SECONDS = 900.0
KEEPER_INTERVAL = 600.0  # the token keeper's look at the access token's end
FLUSH_INTERVAL = 1.0  # interaction times and quota counts are written this often
OnFollow = Callable[[str, list[str], bool], Awaitable[None]]  # (channel, user ids, following)


def quiet_wait(now: float, tz: ZoneInfo) -> float:
    """Seconds until 06:00 when `now` is in 22:00–06:00 local time, else 0."""
    local = datetime.fromtimestamp(now, tz)
    if QUIET_END <= local.hour < QUIET_START:
        return 0.0
    end = local.replace(hour=QUIET_END, minute=0, second=0, microsecond=0)
    if local.hour >= QUIET_START:
        end += timedelta(days=1)
    return max(1.0, end.timestamp() - now)


def pkce() -> tuple[str, str, str]:
    """(code_verifier, code_challenge, state) for a consent link: S256, base64url without padding."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge, secrets.token_urlsafe(16)


def consent_url(oauth_url: str, app_id: str, redirect_uri: str, challenge: str, state: str) -> str:
    query = urlencode({"app_id": app_id, "redirect_uri": redirect_uri, "code_challenge": challenge, "state": state})
    return f"{oauth_url.rstrip('/')}/v4/oa/permission?{query}"


class ZaloOAChannel(ZaloBotChannel):
    name = NAME
    max_text = MAX_TEXT
    can_edit = False

    def __init__(self, client: OAClient, on_inbound: OnInbound, *, webhook_secret: str,
                 tz: ZoneInfo, on_follow: OnFollow | None = None, template: str = "none",
                 hint: Hint | None = None, is_command: Callable[[str], bool] | None = None,
                 clock: Callable[[], float] = time.time, public_url: str | None = None,
                 callback_texts: Mapping[str, str] | None = None, choices: ChoiceMemory | None = None) -> None:
        super().__init__("", "", on_inbound, hint=hint, is_command=is_command, choices=choices)
        add_secret(webhook_secret)
        self.oa = client
        self.store: OAStore = client.store
        self._webhook_secret = webhook_secret
        self._tz = tz
        self._on_follow = on_follow
        self.template = template
        self._now = clock
        self.public_url = public_url
        self._texts = dict(callback_texts or {})
        self.started = False
        self._keeper: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.oa_name = ""
        self.stats.update({"follows": 0, "unfollows": 0, "ignored": 0})

    # ------------------------------------------------------------------ life cycle

    @property
    def running(self) -> bool:
        return self.started and not self.oa.paused

    async def start(self) -> None:
        """Load (and if due, refresh) the tokens, then getoa. Paused, not failed, when the OA is not
        connected or Zalo refused its token: the consent callback can connect it while running."""
        if self.started:
            return
        for key in await self.store.recent_events(SEEN_IDS):  # repeats after a restart are still repeats
            self._seen[key] = None
        if self._choices is not None:  # what a number typed now means, from before a restart
            self._options.update(await self._choices.load(self.name))
        try:
            await self.oa.load()
            info = await self.oa.get_oa()
            self.oa_name = str(info.get("name") or "")
        except DeliveryError as exc:
            if exc.kind != "unauthorized":
                await self.oa.aclose()
                raise
            self.oa.paused = True
            log.error("zalo_oa: not connected (%s); open `python -m bot zalo-oa auth-url` and give consent",
                      redact(exc.reason))
        where = f"{self.public_url}{WEBHOOK_PATH}" if self.public_url else f"<WEBHOOK_BASE_URL>{WEBHOOK_PATH}"
        log.info("zalo_oa: OA %s; set its webhook URL in Zalo's developer console to %s",
                 self.oa_name or "?", where)
        self.started = True
        self._keeper = asyncio.create_task(self._keep_tokens(), name="zalo-oa-tokens")
        self._flusher = asyncio.create_task(self._flush_loop(), name="zalo-oa-flush")

    async def stop(self) -> None:
        for task in (self._keeper, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._keeper = self._flusher = None
        await super().stop()
        await self.store.flush()
        await self.oa.aclose()
        self.started = False

    async def _keep_tokens(self) -> None:
        """Refresh ahead of the access token's end even when nothing is sent; prune old events."""
        while True:
            await asyncio.sleep(KEEPER_INTERVAL)
            try:
                if not self.oa.paused:
                    await self.oa.access_token()
                await self.store.prune()
            except DeliveryError as exc:
                log.warning("zalo_oa: token check failed: %s", exc)
            except Exception:
                log.exception("zalo_oa: token check failed")

    async def _flush_loop(self) -> None:
        """Followers' interaction times and quota counts, written once a second in one transaction."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self.store.flush()
            except Exception:
                log.exception("zalo_oa: writing interaction times and quota counts failed; retrying")

    # ------------------------------------------------------------------ sending

    async def send(self, chat_id: str, reply: Reply) -> Sent:
        """Every message: in quiet hours held back without asking Zalo, unless the follower is in a
        conversation (wrote in the last CONVERSATION_SECONDS: the answer to them is tried); refused
        past the 7-day window."""
        wait = quiet_wait(self._now(), self._tz)
        last = await self.store.last_interaction(chat_id) if wait or self.template == "none" else None
        if wait and (last is None or self._now() - last > CONVERSATION_SECONDS):
            raise DeliveryError("rate_limited", "quiet_hours", retry_after=wait)
        if self.template == "none":
            if last is not None and self._now() - last > WINDOW_DAYS * 86400:
                raise DeliveryError("bad_request", WINDOW_REASON)
        return await super().send(chat_id, reply)

    async def _send_text(self, chat_id: str, text: str) -> str:
        day = local_day(self._now(), self._tz)
        kind = "cs"
        try:
            try:
                message_id = await self.oa.send_text(chat_id, text, kind)
            except DeliveryError as exc:
                if exc.reason != WINDOW_REASON or self.template == "none":
                    raise
                kind = self.template
                message_id = await self.oa.send_text(chat_id, text, kind)
        except DeliveryError as exc:
            if exc.reason == "quota":
                self.store.count(day, kind, refused=True)
            raise
        self.store.count(day, kind)
        return message_id

    def _client(self) -> Any:
        raise DeliveryError("bad_request", "zalo_oa sends text only")  # send_photo: not on the OA

    async def is_group_admin(self, chat_id: str, user_id: str) -> bool:
        return False  # an OA has followers, not groups

    async def quota(self) -> dict[str, dict[str, int]]:
        """Today's messages sent and refused on quota, by type (shown in /healthz and reports)."""
        return await self.store.quota(local_day(self._now(), self._tz))

    # ------------------------------------------------------------------ receiving

    def webhook_route(self) -> WebhookRoute | None:
        return WebhookRoute(WEBHOOK_PATH, SIGNATURE_HEADER, "", self._receive,
                            verify=lambda header, raw: verify(header, raw, self.oa.app_id, self._webhook_secret),
                            pages=(PageRoute(CALLBACK_PATH, self.consent_callback),))

    async def _receive(self, body: dict) -> None:
        await self.process_update(body)

    async def process_update(self, data: Any) -> bool:
        """One signed webhook body: recorded (once: repeats are dropped on msg_id), then handled in the
        background. Returns at once; False when it was a repeat, ignored or unreadable.

        The keys seen are remembered in memory (the newest SEEN_IDS reloaded at start) and written
        with the once-a-second flush, so the hot path makes no database trip; a crash forgets at
        most the last second's keys."""
        self.stats["received"] += 1
        try:
            event = read_event(data) if isinstance(data, dict) else None
        except ValueError as exc:
            self.stats["unreadable"] += 1
            log.warning("zalo_oa: an event could not be read (%s); skipped", exc)
            return False
        if event is None:
            self.stats["ignored"] += 1
            return False
        if event.key in self._seen:
            self.stats["duplicates"] += 1
            log.debug("zalo_oa: event %s seen before; skipped", event.key)
            return False
        self._remember(self._seen, event.key, None)
        self.store.seen(event.key)
        following = {"follow": True, "unfollow": False}.get(event.name)
        self.store.note(event.user_id, self._now() if event.from_user or following else None, following)
        if following is not None:
            self.stats["follows" if following else "unfollows"] += 1
            await self.store.flush()
            if self._on_follow is not None:
                await self._on_follow(self.name, [event.user_id], following)
            return True
        self._spawn(self._inbound(event))
        return True

    def _inbound(self, event: Event) -> Inbound:
        base: dict[str, Any] = {"channel": self.name, "chat_id": event.user_id, "user_id": event.user_id,
                                "message_id": event.msg_id or event.key}
        if event.media_type is None:
            return Inbound(**base, kind="text", text=event.text.strip())
        return Inbound(**base, kind="media", media_type=event.media_type, text=event.text.strip(),
                       media_id=event.media_url if event.media_type == "photo" else None)

    # ------------------------------------------------------------------ connecting the OA

    async def consent_callback(self, query: Mapping[str, str]) -> tuple[int, str]:
        """GET /zalo-oa/oauth?code=…&state=…: exchange the code with the link's verifier, store the tokens."""
        code, state = query.get("code") or "", query.get("state") or ""
        verifier = await self.store.take_consent(state) if code and state else None
        if verifier is None:
            log.warning("zalo_oa: consent callback without a known state; ignored")
            return 400, self._texts.get("unknown", "Liên kết không hợp lệ hoặc đã dùng.")
        try:
            tokens = await self.oa.exchange_code(code, verifier)
        except Exception as exc:
            log.error("zalo_oa: the consent code was refused: %s", redact(str(exc)))
            return 502, self._texts.get("refused", "Zalo từ chối mã ủy quyền.")
        await self.store.store_first(tokens)
        await self.oa.load()
        self.oa.paused = False
        log.info("zalo_oa: connected by the OA admin's consent")
        return 200, self._texts.get("done", "Đã kết nối.")
