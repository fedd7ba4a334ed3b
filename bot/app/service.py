"""Wires the core to the channels and runs until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from bot.app.web import WebServer, derived_secret
from bot.app.wiring import Core, build_core
from bot.channels.base import DeliveryError, Inbound, Reply
from bot.channels.registry import Channels
from bot.dashboard.http.app import DashboardWeb
from bot.delivery.worker import DeliveryWorker
from bot.kernel.config import Settings
from bot.kernel.heap import freeze_long_lived
from bot.operations.metrics import Metrics
from bot.operations.nightly import start_operations
from bot.store.db import describe

if TYPE_CHECKING:
    from bot.channels.zalo_oa.channel import ZaloOAChannel

log = logging.getLogger(__name__)


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class App:
    """The running service: the core, its channel adapters and the HTTP server, started and stopped
    in order (listen first, then the channels, then the services that send)."""

    def __init__(self, core: Core, web: WebServer | None = None) -> None:
        self.core = core
        self.web = web  # listens before the channels start; None when it could not (polling mode)
        # started in this order after the channels, stopped in reverse: the search process, replies
        # owed from before a restart, the outbox sender, the broadcast progress lines, supervision
        # reminders (their own loop over their table), recurring series (their jobs and the make-up of
        # missed runs), and last the scheduler running the series, ticket re-announcement, retention
        # purge and nightly backup
        self.services: list[Service] = [core.searcher, core.replies, core.worker, core.progress, core.supervision,
                                        core.schedules, core.jobs]
        self.quotas: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {}  # channel → today's counts

    async def quota(self) -> dict[str, Any]:
        """Today's message counts of the channels whose plan has a quota (shown in /healthz)."""
        return {name: await counts() for name, counts in self.quotas.items()}

    @property
    def channels(self) -> Channels:
        return self.core.channels

    @property
    def worker(self) -> DeliveryWorker:
        return self.core.worker

    @property
    def metrics(self) -> Metrics:
        return self.core.metrics

    async def start(self) -> None:
        if self.web is not None:
            await self.web.start()
        for name, channel in self.channels.items():
            try:
                await channel.start()
            except DeliveryError as exc:
                exc.channel = name  # type: ignore[attr-defined]  # for _start_failure
                raise
            log.info("channel %s started", name)
        for service in self.services:
            await service.start()
        freeze_long_lived(collect=True)  # the index and the wiring, built: no collector walks over them

    async def stop(self) -> None:
        for service in reversed(self.services):
            await service.stop()
        if self.web is not None:
            await self.web.stop()
        for name, channel in reversed(list(self.channels.items())):
            try:
                await channel.stop()
            except Exception:
                log.exception("channel %s did not stop cleanly", name)
        await self.core.close()


async def build_app(settings: Settings) -> App:
    """The core, with an adapter for each channel that has a token."""
    core = await build_core(settings)
    handle = core.receive  # adapter → dialogue → reply queue → adapter.send
    hooks = settings.webhook_base_url  # webhooks instead of polling (bot/app/web.py receives them)
    if settings.telegram_bot_token:
        from bot.channels.telegram.channel import TelegramChannel

        core.channels.add(TelegramChannel(
            settings.telegram_bot_token, settings.telegram_api_url, handle,
            webhook_url=f"{hooks}/telegram/webhook" if hooks else None,
            webhook_secret=derived_secret(settings.telegram_bot_token, "telegram") if hooks else None,
        ))
    if settings.zalo_bot_token:
        from bot.channels.zalo_bot.channel import ZaloBotChannel

        say = core.dialogue.say
        core.channels.add(ZaloBotChannel(
            settings.zalo_bot_token, settings.zalo_api_url, handle,
            webhook_url=f"{hooks}/zalo/webhook" if hooks else None,
            webhook_secret=(settings.zalo_webhook_secret or derived_secret(settings.zalo_bot_token, "zalo"))
            if hooks else None,
            hint=lambda number, label: say("options_hint_numbers", number=number, label=label),
            is_command=lambda word: len(word) >= 4 and core.dialogue.has_command(word),  # not "huy" ("huy động")
            choices=core.choices,
        ))
    app = App(core)
    if settings.zalo_oa_app_id:
        oa = zalo_oa_channel(core, settings, handle)
        core.channels.add(oa)
        app.quotas[oa.name] = oa.quota
    return app


def zalo_oa_channel(core: Core, settings: Settings,
                    handle: Callable[[Inbound], Awaitable[list[Reply]]]) -> ZaloOAChannel:
    """The Zalo Official Account adapter on the core's database; followers kept in `chats`."""
    from bot.channels.zalo_oa.channel import ZaloOAChannel, quiet_wait
    from bot.channels.zalo_oa.client import OAClient
    from bot.channels.zalo_oa.store import OAStore

    say, roots = core.dialogue.say, core.localities.roots()
    province = roots[0].code if len(roots) == 1 else None  # a follower's locality until /diaban
    alert = core.worker.on_alert

    async def on_paused(why: str) -> None:
        if alert is not None:
            await alert("zalo_oa", "token")

    async def on_follow(channel: str, user_ids: list[str], following: bool) -> None:
        await core.chats.follow(channel, user_ids, following, province)

    assert settings.zalo_oa_app_id and settings.zalo_oa_secret_key and settings.zalo_oa_webhook_secret
    client = OAClient(settings.zalo_oa_app_id, settings.zalo_oa_secret_key, settings.zalo_oa_api_url,
                      settings.zalo_oa_oauth_url, OAStore(core.db), seed=settings.zalo_oa_refresh_token,
                      quiet_wait=lambda: max(1.0, quiet_wait(time.time(), settings.tz)), on_paused=on_paused)
    return ZaloOAChannel(
        client, handle, webhook_secret=settings.zalo_oa_webhook_secret, tz=settings.tz, on_follow=on_follow,
        template=settings.zalo_oa_template, public_url=settings.webhook_base_url,
        hint=lambda number, label: say("options_hint_numbers", number=number, label=label),
        is_command=lambda word: len(word) >= 4 and core.dialogue.has_command(word),
        callback_texts={"done": say("zalo_oa_connected"), "unknown": say("zalo_oa_consent_unknown"),
                        "refused": say("zalo_oa_consent_refused")},
        choices=core.choices,
    )


def web_server(app: App, settings: Settings) -> WebServer:
    """The one HTTP server: webhooks, /healthz, /metrics and the staff dashboard (/admin/)."""
    return WebServer(app.channels, app.core.db, settings.http_host, settings.http_port, metrics=app.metrics,
                     quota=app.quota if app.quotas else None, mounts=[DashboardWeb(app.core.dashboard)])


def _start_failure(exc: DeliveryError, settings: Settings) -> str:
    """One sentence naming the setting to fix when a channel cannot start."""
    if getattr(exc, "channel", None) == "zalo_oa":
        return (f"Không kết nối được tới ZALO_OA_API_URL={settings.zalo_oa_api_url} hoặc ZALO_OA_OAUTH_URL="
                f"{settings.zalo_oa_oauth_url} ({exc.kind}); kiểm tra mạng hoặc các địa chỉ này rồi chạy lại.")
    if getattr(exc, "channel", None) == "zalo":
        if exc.kind == "unauthorized":
            return "Zalo từ chối ZALO_BOT_TOKEN: kiểm tra lại token của Zalo Bot (Zalo Bot Manager)."
        if exc.kind == "bad_request" and "setWebhook" in exc.reason:
            return (f"Zalo không nhận địa chỉ webhook {settings.webhook_base_url}/zalo/webhook ({exc.reason}); "
                    "kiểm tra WEBHOOK_BASE_URL (https) và ZALO_WEBHOOK_SECRET (8–256 ký tự).")
        return (f"Không kết nối được tới ZALO_API_URL={settings.zalo_api_url} ({exc.kind}); "
                "kiểm tra mạng hoặc địa chỉ này rồi chạy lại.")
    if exc.kind == "unauthorized":
        return (
            "Telegram từ chối TELEGRAM_BOT_TOKEN (hoặc TELEGRAM_API_URL không phải máy chủ Bot API): "
            "kiểm tra lại token lấy từ @BotFather."
        )
    return (
        f"Không kết nối được tới TELEGRAM_API_URL={settings.telegram_api_url} ({exc.kind}); "
        "kiểm tra mạng hoặc địa chỉ này rồi chạy lại."
    )


async def _start_web(app: App, settings: Settings) -> None:
    """Listen first. In webhook mode a port that cannot be opened stops start-up; when polling,
    the server only serves /healthz, so it is a warning and the service runs without it."""
    web, app.web = app.web, None
    try:
        await web.start()
    except OSError as exc:
        if settings.webhook_base_url or settings.zalo_oa_app_id:  # the Zalo OA has no polling: webhooks only
            raise
        log.warning("http: cannot listen on %s:%s (%s); /healthz is off, polling goes on",
                    settings.http_host, settings.http_port, exc.strerror)
        return
    app.web = web


async def run_service(settings: Settings) -> int:
    if not (settings.telegram_bot_token or settings.zalo_bot_token or settings.zalo_oa_app_id):
        print(
            "Chưa cấu hình kênh nào: đặt TELEGRAM_BOT_TOKEN (hoặc ZALO_BOT_TOKEN, ZALO_OA_APP_ID) trong .env.\n"
            "Muốn thử trợ lý ngay không cần token: python -m bot chat",
            file=sys.stderr,
        )
        return 2
    try:
        ops = await start_operations(settings)  # DATABASE.lock for our lifetime
    except OSError as exc:  # the database's folder cannot be written: one sentence (bot.cli.main)
        raise describe(settings.database_path, exc) from exc
    if ops is None:
        return 2
    try:
        app = await build_app(settings)  # StorageError, ContentError: the lock is released first
    except BaseException:
        await ops.stop()
        raise
    app.web = web_server(app, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await _start_web(app, settings)
            await app.start()
        except DeliveryError as exc:
            print(_start_failure(exc, settings), file=sys.stderr)
            log.error("start-up failed: %s", exc)
            return 2
        except OSError as exc:  # webhook mode and the port is taken
            print(f"Không mở được cổng HTTP_HOST={settings.http_host} HTTP_PORT={settings.http_port} "
                  f"({exc.strerror}); chọn cổng khác rồi chạy lại.", file=sys.stderr)
            return 2
        log.info("service running; stop with Ctrl+C")
        await stop.wait()
    finally:
        log.info("stopping")
        await app.stop()
        await ops.stop()
    return 0
