"""Wires the core to the channels and runs until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Protocol

from bot.app.web import WebServer, derived_secret
from bot.app.wiring import Core, build_core
from bot.channels.base import DeliveryError
from bot.channels.registry import Channels
from bot.dashboard.http.app import DashboardWeb
from bot.delivery.worker import DeliveryWorker
from bot.kernel.config import Settings
from bot.operations.metrics import Metrics
from bot.operations.nightly import start_operations

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
        # started in this order after the channels, stopped in reverse: the outbox sender, the
        # broadcast progress lines, ticket re-announcement and purge, supervision reminders
        self.services: list[Service] = [core.worker, core.progress, core.handoff, core.supervision]

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
    handle = core.metrics.timed(core.worker.interactive(core.dialogue.handle))  # replies count in the pacing
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
        ))
    return App(core)


def web_server(app: App, settings: Settings) -> WebServer:
    """The one HTTP server: webhooks, /healthz, /metrics and the staff dashboard (/admin/)."""
    return WebServer(app.channels, app.core.db, settings.http_host, settings.http_port, metrics=app.metrics,
                     mounts=[DashboardWeb(app.core.dashboard)])


def _start_failure(exc: DeliveryError, settings: Settings) -> str:
    """One sentence naming the setting to fix when a channel cannot start."""
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
        if settings.webhook_base_url:
            raise
        log.warning("http: cannot listen on %s:%s (%s); /healthz is off, polling goes on",
                    settings.http_host, settings.http_port, exc.strerror)
        return
    app.web = web


async def run_service(settings: Settings) -> int:
    if not (settings.telegram_bot_token or settings.zalo_bot_token):
        print(
            "Chưa cấu hình kênh nào: đặt TELEGRAM_BOT_TOKEN (hoặc ZALO_BOT_TOKEN) trong .env.\n"
            "Muốn thử trợ lý ngay không cần token: python -m bot chat",
            file=sys.stderr,
        )
        return 2
    if (ops := await start_operations(settings)) is None:  # DATABASE.lock for our lifetime; nightly backup
        return 2
    app = await build_app(settings)
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
