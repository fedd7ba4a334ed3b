"""Wires the core to the channels and runs until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.channels.base import Channel, DeliveryError, Inbound
from bot.config import Settings
from bot.core import Core, build_core
from bot.delivery import DeliveryWorker, limits_from_settings

log = logging.getLogger(__name__)


@dataclass
class App:
    core: Core
    channels: dict[str, Channel] = field(default_factory=dict)
    worker: DeliveryWorker | None = None

    async def start(self) -> None:
        for name, channel in self.channels.items():
            await channel.start()
            log.info("channel %s started", name)
        if self.worker is not None:
            await self.worker.start()

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
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
                                ack_label=core.dialogue.say("ack_button"))
    handle = app.worker.interactive(core.dialogue.handle)  # replies count in the broadcast pacing
    if settings.telegram_bot_token:
        from bot.channels.telegram import TelegramChannel

        app.channels["telegram"] = TelegramChannel(
            settings.telegram_bot_token, settings.telegram_api_url, handle
        )
    core.registration.is_admin = _group_admin_check(app.channels)
    return app


def _group_admin_check(channels: dict[str, Channel]) -> Callable[[Inbound], Awaitable[bool]]:
    """Ask the inbound's channel whether its sender administers the group (no platform import here)."""

    async def check(inbound: Inbound) -> bool:
        ask = getattr(channels.get(inbound.channel), "is_group_admin", None)
        return bool(await ask(inbound.chat_id, inbound.user_id)) if ask is not None else False

    return check


def _start_failure(exc: DeliveryError, settings: Settings) -> str:
    """One sentence naming the setting to fix when a channel cannot start."""
    if exc.kind == "unauthorized":
        return (
            "Telegram từ chối TELEGRAM_BOT_TOKEN (hoặc TELEGRAM_API_URL không phải máy chủ Bot API): "
            "kiểm tra lại token lấy từ @BotFather."
        )
    return (
        f"Không kết nối được tới TELEGRAM_API_URL={settings.telegram_api_url} ({exc.kind}); "
        "kiểm tra mạng hoặc địa chỉ này rồi chạy lại."
    )


async def run_service(settings: Settings) -> int:
    if not (settings.telegram_bot_token or settings.zalo_bot_token):
        print(
            "Chưa cấu hình kênh nào: đặt TELEGRAM_BOT_TOKEN (hoặc ZALO_BOT_TOKEN) trong .env.\n"
            "Muốn thử trợ lý ngay không cần token: python -m bot chat",
            file=sys.stderr,
        )
        return 2
    app = await build_app(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await app.start()
        except DeliveryError as exc:
            print(_start_failure(exc, settings), file=sys.stderr)
            log.error("start-up failed: %s", exc)
            return 2
        log.info("service running; stop with Ctrl+C")
        await stop.wait()
    finally:
        log.info("stopping")
        await app.stop()
    return 0
