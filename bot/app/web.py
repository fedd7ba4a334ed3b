"""One HTTP server for the service (aiohttp): the channels' webhooks, /healthz and /metrics.

    POST <route.path>        each channel in webhook mode owns one `WebhookRoute` (bot/channels/base.py):
                             /telegram/webhook, /zalo/webhook, /zalo-oa/webhook; its secret header must
                             match (or, for the Zalo OA, sign the raw body)
    GET  <page.path>         a channel's pages (/zalo-oa/oauth: the OA admin's consent comes back here)
    GET  /healthz            {"ok", "database", "channels": {name: up}, "outbox_pending"}: 200 or 503;
                             with the Zalo OA, "quota": {"zalo_oa": {type: {"sent", "refused"}}} for today
                             ("database" false, 503, also when the file can be read but not written)
    GET  /metrics            Prometheus text (bot/operations/metrics.py); keep it, like /healthz, off the internet

A webhook is checked before its body is read: a missing secret is 401, a wrong one 403 (compared
with hmac.compare_digest), each with one log line and nothing processed. Bodies over MAX_BODY are
413, bodies that are not a JSON object (or nested too deeply to parse) 400; every answer is JSON.
An accepted update is handed to its channel, which schedules it and returns at once: the platform
gets its 200 before the dialogue runs (the reply goes out through the platform's send API, not in the webhook answer).

`run` starts the server before the channels (so the first webhook calls find it listening) on
HTTP_HOST:HTTP_PORT: always, because /healthz is useful in polling mode too. In webhook mode
(WEBHOOK_BASE_URL set) not being able to listen stops start-up; in polling mode it is one warning.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web

from bot.channels.base import Channel, PageRoute, WebhookRoute
from bot.operations.metrics import CONTENT_TYPE, Metrics
from bot.store.db import Database

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Mount(Protocol):
    """Routes another part of the service adds to this server (the dashboard's /admin/)."""

    def mount(self, app: web.Application) -> None: ...

MAX_BODY = 1024 * 1024  # 1 MB: a webhook update is a few kilobytes
HEALTH_TIMEOUT = 2.0


def derived_secret(token: str, purpose: str) -> str:
    """A webhook secret derived from a bot token (64 hex characters: valid for Telegram and Zalo)."""
    return hmac.new(token.encode(), f"loaphuong-webhook:{purpose}".encode(), hashlib.sha256).hexdigest()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """aiohttp's own errors (404, 405, 413…) as JSON too."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason or "error")


class WebServer:
    """The aiohttp application and its listener. `channels` and `db` are read at request time."""

    def __init__(self, channels: Mapping[str, Channel], db: Database, host: str = "127.0.0.1", port: int = 8080, *,
                 max_body: int = MAX_BODY, metrics: Metrics | None = None,
                 quota: Callable[[], Awaitable[dict[str, Any]]] | None = None, mounts: Sequence[Mount] = ()) -> None:
        self.channels = channels
        self.quota = quota  # today's message counts of channels with a plan quota (the Zalo OA)
        self.metrics = metrics or Metrics()
        self.db = db
        self.host = host
        self.port = port
        self.max_body = max_body
        self.mounts = tuple(mounts)
        self.rejected = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    def application(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body, middlewares=[_json_errors])
        for name, channel in self.channels.items():  # each channel owns its route (None: it polls)
            route = channel.webhook_route()
            if route is not None:
                app.router.add_post(route.path, self._webhook_handler(name, channel, route))
                for page in route.pages:
                    app.router.add_get(page.path, self._page_handler(page))
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_page)
        for mount in self.mounts:
            mount.mount(app)
        return app

    async def start(self) -> None:
        """Listen (port 0: any free port; `self.port` and `self.url` then say which). Raises OSError."""
        if self._runner is not None:
            return
        runner = web.AppRunner(self.application(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port, backlog=1024).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.port = port
        self.url = f"http://{host}:{port}"
        log.info("http: listening on %s (webhooks, /healthz, /metrics)", self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # ------------------------------------------------------------------ webhooks

    def _webhook_handler(self, name: str, channel: Channel, route: WebhookRoute) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            return await self._webhook(request, name, channel, route)

        return handle

    async def _webhook(self, request: web.Request, name: str, channel: Channel, route: WebhookRoute) -> web.Response:
        if not channel.running:
            self._reject(request, name, "channel not running")
            return _error(404, "not found")
        header, expected = route.secret_header, route.secret
        given = request.headers.get(header)
        if given is None:
            self._reject(request, name, f"no {header} header")
            return _error(401, "missing secret token")
        if route.verify is None and not hmac.compare_digest(given.encode(), expected.encode()):
            self._reject(request, name, f"wrong {header}")
            return _error(403, "wrong secret token")
        if request.content_length is not None and request.content_length > self.max_body:
            self._reject(request, name, f"body of {request.content_length} bytes")
            return _error(413, f"body over {self.max_body} bytes")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self._reject(request, name, "body too large")
            return _error(413, f"body over {self.max_body} bytes")
        if route.verify is not None and not route.verify(given, raw):
            self._reject(request, name, f"wrong {header}")
            return _error(403, "wrong signature")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self._reject(request, name, "body is not JSON")
            return _error(400, "body is not JSON")
        except RecursionError:  # 200,000 nested "[": the parser's stack, not ours, gives out
            self._reject(request, name, "body nested too deeply")
            return _error(400, "body is nested too deeply")
        if not isinstance(body, dict):
            self._reject(request, name, "body is not a JSON object")
            return _error(400, "body is not a JSON object")
        await route.receive(body)
        return web.json_response({"ok": True})

    @staticmethod
    def _page_handler(page: PageRoute) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            status, text = await page.handle(dict(request.query))
            return web.Response(status=status, text=text, content_type="text/plain", charset="utf-8")

        return handle

    def _reject(self, request: web.Request, name: str, why: str) -> None:
        self.rejected += 1
        log.warning("http: %s webhook from %s rejected: %s", name, request.remote, why)

    # ------------------------------------------------------------------ health

    async def healthz(self, request: web.Request) -> web.Response:
        """Healthy: the database answers a read and takes a write (a read-only file or folder reads fine
        and fails every write), and every channel runs. A write lock held longer than HEALTH_TIMEOUT by
        another process (a CLI import) is busy, not broken: it does not make the service unhealthy."""
        started = time.monotonic()
        database, pending = True, None
        try:
            pending = int(await asyncio.wait_for(
                self.db.fetchval("SELECT COUNT(*) FROM outbox WHERE status = 'pending'"), HEALTH_TIMEOUT))
            # shielded: a timeout must not cancel the probe between its BEGIN and its COMMIT
            await asyncio.wait_for(asyncio.shield(self.db.check_writable()), HEALTH_TIMEOUT)
        except TimeoutError:
            if pending is None:
                database = False
            log.warning("http: /healthz: the database did not answer within %.0f s", HEALTH_TIMEOUT)
        except Exception as exc:
            database = False
            log.warning("http: /healthz: database check failed: %s", exc)
        channels = {name: channel.running for name, channel in self.channels.items()}
        ok = database and all(channels.values())
        body: dict[str, Any] = {"ok": ok, "database": database, "channels": channels, "outbox_pending": pending}
        if self.quota is not None:
            try:
                body["quota"] = await asyncio.wait_for(self.quota(), HEALTH_TIMEOUT)
            except Exception as exc:
                log.warning("http: /healthz: quota check failed: %s", exc)
        body["ms"] = round((time.monotonic() - started) * 1000, 1)
        return web.json_response(body, status=200 if ok else 503)

    async def metrics_page(self, request: web.Request) -> web.Response:
        text = await self.metrics.render(self.db, self.channels)
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})
