"""The Zalo OA API v3 and OAuth v4 over aiohttp, every failure raised as a `DeliveryError`.

Tokens: the access token travels in the `access_token` header (never in a URL) and is refreshed
ahead of its end and on -216/-220 (then the call is retried once), one refresh at a time. A
refresh token works once: `OAStore.rotate` does the OAuth call inside a write transaction and
stores the new pair before anything uses it, so neither a crash nor a second process (`zalo-oa
sync` while `run` runs) ever presents a spent token. When Zalo refuses the refresh token for good,
the client is `paused` (every call raises unauthorized; the outbox keeps its rows) and `on_paused`
is told once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bot.channels.base import DeliveryError
from bot.channels.zalo_oa.store import OAStore, Tokens
from bot.kernel.logs import add_secret, redact

log = logging.getLogger(__name__)

TIMEOUT = 15.0
REFRESH_AHEAD = 3600.0  # refresh when the access token has less than this left
DEFAULT_LIFE = 90000.0  # what Zalo answers in expires_in (25 h), when it says nothing usable
TOKEN_ERRORS = (-216, -220)  # access token invalid / expired
GONE = (-213, -227)  # not a follower; banned or inactive over 45 days
OUTSIDE_WINDOW = (-230, -232)  # no interaction in the last 7 days
QUIET_HOURS, QUOTA, RATE_LIMITED = -234, -211, -32
WINDOW_REASON = "quá 7 ngày không tương tác"  # shown in the broadcast report's failures
QUOTA_RETRY_AFTER = 3600.0
RATE_RETRY_AFTER = 60.0  # the limit is counted a minute at a time


class TokenRefused(Exception):
    """OAuth answered with an error: the refresh token (or code) is spent, expired or wrong."""


def classify(path: str, code: int, message: str, quiet_wait: Callable[[], float]) -> DeliveryError:
    """An error answer of the OA API → the delivery worker's DeliveryError."""
    reason = redact(f"{path}: {code} {message}".strip())
    if code in GONE:
        return DeliveryError("gone", reason)
    if code in OUTSIDE_WINDOW:
        return DeliveryError("bad_request", WINDOW_REASON)
    if code == QUIET_HOURS:
        return DeliveryError("rate_limited", "quiet_hours", retry_after=quiet_wait())
    if code == QUOTA:
        return DeliveryError("rate_limited", "quota", retry_after=QUOTA_RETRY_AFTER)
    if code == RATE_LIMITED:
        return DeliveryError("rate_limited", reason, retry_after=RATE_RETRY_AFTER)
    if code in TOKEN_ERRORS:
        return DeliveryError("unauthorized", reason)
    return DeliveryError("bad_request", reason)


class OAClient:
    def __init__(self, app_id: str, secret_key: str, api_url: str, oauth_url: str, store: OAStore, *,
                 seed: str | None = None, clock: Callable[[], float] = time.time,
                 quiet_wait: Callable[[], float] = lambda: 3600.0, timeout: float = TIMEOUT,
                 on_paused: Callable[[str], Awaitable[None]] | None = None) -> None:
        add_secret(secret_key)
        add_secret(seed)
        self.app_id = app_id
        self._secret_key = secret_key
        self._api = api_url.rstrip("/")
        self._oauth = oauth_url.rstrip("/")
        self.store = store
        self._seed = seed
        self._clock = clock
        self._quiet_wait = quiet_wait
        self._timeout = timeout
        self._on_paused = on_paused
        self._tokens: Tokens | None = None
        self._refreshing = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.paused = False
        self.refreshes = 0

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        return self._session

    # ------------------------------------------------------------------ tokens

    async def load(self) -> None:
        """The stored tokens (or ZALO_OA_REFRESH_TOKEN for a new chain); unauthorized when there are none."""
        tokens = await self.store.tokens(self._seed)
        if tokens is None:
            raise DeliveryError("unauthorized", "no refresh token: set ZALO_OA_REFRESH_TOKEN or run `zalo-oa auth-url`")
        self._remember(tokens)
        if tokens.failed:
            await self._pause("the stored refresh token was refused before")

    def _remember(self, tokens: Tokens) -> None:
        add_secret(tokens.refresh_token)
        add_secret(tokens.access_token)
        self._tokens = tokens

    async def access_token(self) -> str:
        """A valid access token, refreshed first when it ends within REFRESH_AHEAD."""
        if self.paused:
            raise DeliveryError("unauthorized", "zalo_oa paused: the refresh token was refused")
        tokens = self._tokens
        if tokens is None:
            await self.load()
            tokens = self._tokens
        assert tokens is not None
        if tokens.access_token and tokens.expires_at - self._clock() > REFRESH_AHEAD:
            return tokens.access_token
        return await self.refresh(tokens.access_token)

    async def refresh(self, stale: str | None) -> str:
        """Exchange the refresh token (once, however many callers find `stale` wanting)."""
        async with self._refreshing:
            tokens = self._tokens
            if tokens is not None and tokens.access_token and tokens.access_token != stale \
                    and tokens.expires_at - self._clock() > 60:
                return tokens.access_token  # another caller refreshed while this one waited
            if self.paused:
                raise DeliveryError("unauthorized", "zalo_oa paused: the refresh token was refused")
            try:
                fresh = await self.store.rotate(self._seed, self._exchange_refresh, fresh_enough=stale,
                                                refused=TokenRefused)
            except TokenRefused as exc:
                await self._pause(str(exc))
                raise DeliveryError("unauthorized", redact(f"refresh refused: {exc}")) from None
            if fresh.failed:
                await self._pause("the stored refresh token was refused before")
                raise DeliveryError("unauthorized", "zalo_oa paused: the refresh token was refused")
            self._remember(fresh)
            assert fresh.access_token
            return fresh.access_token

    async def _pause(self, why: str) -> None:
        if self.paused:
            return
        self.paused = True
        log.error("zalo_oa: Zalo refused the OA's refresh token (%s); the channel is paused, queued messages are "
                  "kept. Connect the OA again: `python -m bot zalo-oa auth-url`", redact(why))
        if self._on_paused is not None:
            try:
                await self._on_paused(why)
            except Exception:
                log.exception("zalo_oa: the staff alert failed")

    async def _exchange_refresh(self, current: Tokens) -> Tokens:
        fresh = await self._oauth_call({"app_id": self.app_id, "grant_type": "refresh_token",
                                        "refresh_token": current.refresh_token})
        self.refreshes += 1
        log.info("zalo_oa: access token refreshed (valid %.1f h)", (fresh.expires_at - self._clock()) / 3600)
        return fresh

    async def exchange_code(self, code: str, verifier: str) -> Tokens:
        """The first tokens, from the consent callback's code and the link's PKCE verifier."""
        return await self._oauth_call({"app_id": self.app_id, "grant_type": "authorization_code", "code": code,
                                       "code_verifier": verifier})

    async def _oauth_call(self, form: dict[str, str]) -> Tokens:
        url = f"{self._oauth}/v4/oa/access_token"
        try:
            async with self._http().post(url, data=form, headers={"secret_key": self._secret_key},
                                         timeout=aiohttp.ClientTimeout(total=self._timeout)) as response:
                status, raw = response.status, await response.read()
        except TimeoutError:
            raise DeliveryError("transient", "oauth: timed out") from None
        except aiohttp.ClientError as exc:
            raise DeliveryError("transient", redact(f"oauth: {type(exc).__name__}: {exc}")) from None
        log.debug("zalo_oa: POST %s: HTTP %s", url, status)
        if status >= 500:
            raise DeliveryError("transient", f"oauth: HTTP {status}")
        body = _json(raw)
        access, refresh = body.get("access_token"), body.get("refresh_token")
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
            why = body.get("error_description") or body.get("error_name") or ""
            raise TokenRefused(redact(f"{body.get('error', status)} {why}".strip()))
        try:
            life = float(body.get("expires_in") or DEFAULT_LIFE)  # a string, "90000"
        except (TypeError, ValueError):
            life = DEFAULT_LIFE
        add_secret(access)
        add_secret(refresh)
        return Tokens(refresh, access, self._clock() + life)

    # ------------------------------------------------------------------ the API

    async def call(self, method: str, path: str, *, payload: dict[str, Any] | None = None,
                   query: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API call; its `data`. On -216/-220 the token is refreshed and the call retried once."""
        token = await self.access_token()
        code, message, data = await self._request(method, path, token, payload, query)
        if code in TOKEN_ERRORS:
            log.info("zalo_oa: %s answered %s; refreshing the access token", path, code)
            token = await self.refresh(token)
            code, message, data = await self._request(method, path, token, payload, query)
        if code != 0:
            raise classify(path, code, message, self._quiet_wait)
        return data if isinstance(data, dict) else {}

    async def _request(self, method: str, path: str, token: str, payload: dict[str, Any] | None,
                       query: dict[str, Any] | None) -> tuple[int, str, Any]:
        params = {"data": json.dumps(query, separators=(",", ":"))} if query is not None else None
        try:
            async with self._http().request(method, f"{self._api}{path}", json=payload, params=params,
                                            headers={"access_token": token},
                                            timeout=aiohttp.ClientTimeout(total=self._timeout)) as response:
                status, raw = response.status, await response.read()
        except TimeoutError:
            raise DeliveryError("transient", f"{path}: timed out") from None
        except aiohttp.ClientError as exc:
            raise DeliveryError("transient", redact(f"{path}: {type(exc).__name__}: {exc}")) from None
        log.debug("zalo_oa: %s %s: HTTP %s", method, path, status)
        body = _json(raw)
        if status >= 500 or "error" not in body:
            raise DeliveryError("transient", f"{path}: HTTP {status}")
        try:
            code = int(body.get("error") or 0)
        except (TypeError, ValueError):
            code = -1
        return code, str(body.get("message") or ""), body.get("data")

    async def send_text(self, user_id: str, text: str, kind: str = "cs") -> str:
        """A consultation (`cs`) text, or the same text as a promotion / transaction template; its message id."""
        if kind == "cs":
            message: dict[str, Any] = {"text": text}
        else:
            message = {"attachment": {"type": "template", "payload": {
                "template_type": "promotion" if kind == "promotion" else "transaction_event", "language": "VI",
                "elements": [{"type": "text", "align": "left", "content": text}]}}}
        data = await self.call("POST", f"/v3.0/oa/message/{kind}",
                               payload={"recipient": {"user_id": user_id}, "message": message})
        return str(data.get("message_id") or "")

    async def get_oa(self) -> dict[str, Any]:
        return await self.call("GET", "/v2.0/oa/getoa")

    async def followers(self, offset: int, count: int = 50) -> tuple[list[str], int]:
        """One page of the follower list (count ≤ 50): their user ids and the total."""
        data = await self.call("GET", "/v3.0/oa/user/getlist", query={"offset": offset, "count": min(count, 50)})
        users = data.get("users") or data.get("followers") or []
        ids = [str(u.get("user_id")) for u in users if isinstance(u, dict) and u.get("user_id")]
        return ids, int(data.get("total") or 0)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
