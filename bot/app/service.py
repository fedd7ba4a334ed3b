"""Wires the core to the channels and runs until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.app.web import WebServer, derived_secret
from bot.app.wiring import Core, build_core
from bot.broadcasts.progress import broadcast_progress
from bot.channels.base import Channel, DeliveryError, Inbound, Reply, Sent
from bot.delivery.worker import DeliveryWorker, limits_from_settings
from bot.kernel.config import Settings
from bot.operations.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass
class App:
    core: Core
    channels: dict[str, Channel] = field(default_factory=dict)
    worker: DeliveryWorker | None = None
    web: Any = None  # bot.app.web.WebServer, set by run_service: listens before the channels start
    metrics: Metrics = field(default_factory=Metrics)  # GET /metrics; the worker and the replies record into it

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
        if self.worker is not None:
            await self.worker.start()
        if self.core.handoff is not None:
            await self.core.handoff.start()  # re-announces unanswered tickets; retention purge
        if self.core.supervision is not None:
            await self.core.supervision.start()  # content plans upserted, reminder timer running

    async def stop(self) -> None:
        if self.core.supervision is not None:
            await self.core.supervision.stop()
        if self.core.handoff is not None:
            await self.core.handoff.stop()
        if self.worker is not None:
            await self.worker.stop()
        if self.web is not None:
            await self.web.stop()
        for name, channel in reversed(list(self.channels.items())):
            try:
                await channel.stop()
            except Exception:
                log.exception("channel %s did not stop cleanly", name)
        await self.core.close()


async def build_app(settings: Settings) -> App:
    core = await build_core(settings)
    app = App(core)
    app.worker = DeliveryWorker(core.db, app.channels, limits_from_settings(settings),
                                ack_label=core.dialogue.say("ack_button"), resolve=core.broadcasts.resolve_due,
                                on_pause=app.metrics.channel_paused, wakeup=core.outbox_wakeup)
    app.worker.progress = broadcast_progress(core, app.channels, app.worker)
    handle = app.metrics.timed(app.worker.interactive(core.dialogue.handle))  # replies count in the pacing
    hooks = settings.webhook_base_url  # webhooks instead of polling (bot/web.py receives them)
    if settings.telegram_bot_token:
        from bot.channels.telegram.channel import TelegramChannel

        app.channels["telegram"] = TelegramChannel(
            settings.telegram_bot_token, settings.telegram_api_url, handle,
            webhook_url=f"{hooks}/telegram/webhook" if hooks else None,
            webhook_secret=derived_secret(settings.telegram_bot_token, "telegram") if hooks else None,
        )
    if settings.zalo_bot_token:
        from bot.channels.zalo_bot.channel import ZaloBotChannel

        say = core.dialogue.say
        app.channels["zalo"] = ZaloBotChannel(
            settings.zalo_bot_token, settings.zalo_api_url, handle,
            webhook_url=f"{hooks}/zalo/webhook" if hooks else None,
            webhook_secret=(settings.zalo_webhook_secret or derived_secret(settings.zalo_bot_token, "zalo"))
            if hooks else None,
            hint=lambda number, label: say("options_hint_numbers", number=number, label=label),
            is_command=lambda word: len(word) >= 4 and word in core.dialogue.commands,  # not "huy" ("huy động")
        )
    app.worker.on_alert = _staff_alert(core, app.channels, settings)
    core.registration.is_admin = _group_admin_check(app.channels)
    if core.handoff is not None:
        core.handoff.sender = _direct_sender(app)
    return app


def _direct_sender(app: App) -> Callable[[str, str, Reply], Awaitable[Sent]]:
    """Send one reply to any chat on its own channel (a staff answer to a Zalo resident, a ticket to
    the staff chat), counted in the delivery worker's pacing like other interactive replies."""

    async def send(channel: str, chat_id: str, reply: Reply) -> Sent:
        sent = await app.channels[channel].send(chat_id, reply)  # KeyError: that channel is not running
        if app.worker is not None:
            app.worker.note_interactive(channel, "group" if chat_id.startswith("-") else "private", chat_id)
        return sent

    return send


def _group_admin_check(channels: dict[str, Channel]) -> Callable[[Inbound], Awaitable[bool]]:
    """Ask the inbound's channel whether its sender administers the group (no platform import here)."""

    async def check(inbound: Inbound) -> bool:
        ask = getattr(channels.get(inbound.channel), "is_group_admin", None)
        return bool(await ask(inbound.chat_id, inbound.user_id)) if ask is not None else False

    return check


def _staff_alert(core: Core, channels: dict[str, Channel],
                 settings: Settings) -> Callable[[str, str], Awaitable[None]]:
    """Tell the staff chat (TELEGRAM_STAFF_CHAT_ID) that a channel stopped on its quota."""

    async def alert(channel: str, reason: str) -> None:
        staff_chat, telegram = settings.telegram_staff_chat_id, channels.get("telegram")
        if not staff_chat or telegram is None or channel == "telegram":
            log.error("%s: %s exceeded and no staff chat to tell (TELEGRAM_STAFF_CHAT_ID)", channel, reason)
            return
        text = core.dialogue.say("channel_quota_alert", channel=channel.capitalize())
        await telegram.send(staff_chat, Reply(text))

    return alert


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
    app = await build_app(settings)
    app.web = WebServer(app.channels, app.core.db, settings.http_host, settings.http_port, metrics=app.metrics)
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
    return 0
