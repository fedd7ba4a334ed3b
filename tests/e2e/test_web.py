"""bot/web.py, the one HTTP server: webhook checks (secret, size, JSON), /healthz, Telegram webhook mode.

The real app runs against the fake platforms; requests come from a real HTTP client.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import httpx
import pytest

from bot.app.service import App, build_app
from bot.app.web import WebServer, derived_secret
from bot.kernel.config import Settings
from tests.conftest import CONTENT
from tests.e2e.test_zalo_e2e import SECRET, TOKEN, start_service, zalo_settings
from tests.fakes.telegram import FakeTelegram
from tests.fakes.zalo import FakeZalo

TG_TOKEN = "515151:AAWeb-hook_Token_value"


@pytest.fixture
async def zalo():
    async with FakeZalo(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def service(tmp_path: Path, zalo: FakeZalo):
    app = await start_service(zalo_settings(tmp_path, zalo), zalo)
    try:
        yield app
    finally:
        await app.stop()


def chats_in(app: App) -> int:
    return sqlite3.connect(app.core.settings.database_path).execute("SELECT COUNT(*) FROM chats").fetchone()[0]


async def test_forged_or_broken_webhooks_are_rejected_with_nothing_processed(
    service: App, zalo: FakeZalo, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    url = f"{service.web.url}/zalo/webhook"
    update = zalo.text_update("r1", "quy vi nguoi ngheo")
    huge = {**update, "padding": "x" * (2 * 1024 * 1024)}
    async with httpx.AsyncClient() as client:
        cases = [
            (await client.post(url, json=update, headers={"X-Bot-Api-Secret-Token": "wrong-secret"}), 403),
            (await client.post(url, json=update), 401),
            (await client.post(url, json=update, headers={"X-Bot-Api-Secret-Token": SECRET[:-1]}), 403),
            (await client.post(url, json=huge, headers={"X-Bot-Api-Secret-Token": SECRET}), 413),
            (await client.post(url, json=huge, headers={"X-Bot-Api-Secret-Token": "wrong-secret"}), 403),
            (await client.post(url, content=b'{"event_name": "message.text.rec', headers={
                "X-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}), 400),
            (await client.post(url, content=b"\xff\xfe not utf-8", headers={"X-Bot-Api-Secret-Token": SECRET}), 400),
            (await client.post(url, json=[update], headers={"X-Bot-Api-Secret-Token": SECRET}), 400),
        ]
    for response, status in cases:
        assert response.status_code == status
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["ok"] is False and response.json()["error"]
    await service.channels["zalo"].drain()
    assert service.channels["zalo"].stats["received"] == 0 and zalo.sent == [] and chats_in(service) == 0
    rejected = [r for r in caplog.records if r.name == "bot.app.web" and "rejected" in r.getMessage()]
    assert len(rejected) == len(cases) and service.web.rejected == len(cases)  # one line each
    assert SECRET not in caplog.text


async def test_other_paths_and_methods_answer_json(service: App):
    async with httpx.AsyncClient() as client:
        missing = await client.get(f"{service.web.url}/nope")
        wrong_method = await client.get(f"{service.web.url}/zalo/webhook")
        telegram_off = await client.post(f"{service.web.url}/telegram/webhook", json={},
                                         headers={"X-Telegram-Bot-Api-Secret-Token": "x"})
    assert (missing.status_code, wrong_method.status_code, telegram_off.status_code) == (404, 405, 404)
    assert all(r.json()["ok"] is False for r in (missing, wrong_method, telegram_off))


async def test_healthz_reports_database_channels_and_outbox(service: App, zalo: FakeZalo):
    async with httpx.AsyncClient() as client:
        healthy = await client.get(f"{service.web.url}/healthz")
        zalo.token = "0000000000:revoked-token"
        async with httpx.AsyncClient() as poster:
            await poster.post(f"{service.web.url}/zalo/webhook", json=zalo.text_update("r2", "xin chào"),
                              headers={"X-Bot-Api-Secret-Token": SECRET})
        await service.channels["zalo"].drain()  # the reply got 401: the channel stopped
        sick = await client.get(f"{service.web.url}/healthz")
    assert healthy.status_code == 200
    body = healthy.json()
    assert body["ok"] is True and body["database"] is True and body["channels"] == {"zalo": True}
    assert body["outbox_pending"] == 0
    assert sick.status_code == 503 and sick.json()["channels"] == {"zalo": False}


async def test_polling_mode_has_no_zalo_webhook(tmp_path: Path, zalo: FakeZalo):
    settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT, zalo_bot_token=TOKEN,
                        zalo_api_url=zalo.url, zalo_webhook_secret=SECRET)
    app = await build_app(settings)
    app.services.remove(app.core.supervision)
    app.web = WebServer(app.channels, app.core.db, "127.0.0.1", 0)
    await app.start()
    try:
        assert zalo.calls_to("deleteWebhook") and not zalo.calls_to("setWebhook")
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{app.web.url}/zalo/webhook", json=zalo.text_update("r3", "hi"),
                                         headers={"X-Bot-Api-Secret-Token": SECRET})
        assert response.status_code == 404 and app.channels["zalo"].stats["received"] == 0
        zalo.push_update(zalo.text_update("r3", "cảm ơn"), repeat=1)  # polled, twice
        [thanks] = await zalo.wait_for(lambda m: m.chat_id == "r3")
        assert thanks.text.startswith("Dạ, không có gì ạ")
    finally:
        await app.stop()


async def test_telegram_webhook_mode_takes_updates_pushed_to_it(tmp_path: Path):
    async with FakeTelegram(token=TG_TOKEN) as telegram:
        settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT, telegram_bot_token=TG_TOKEN,
                            telegram_api_url=telegram.url, webhook_base_url="https://loaphuong.example.vn")
        app = await build_app(settings)
        app.services.remove(app.core.supervision)
        app.web = WebServer(app.channels, app.core.db, "127.0.0.1", 0)
        await app.start()
        try:
            [call] = telegram.calls_to("setWebhook")
            secret = derived_secret(TG_TOKEN, "telegram")
            assert call.params["url"] == "https://loaphuong.example.vn/telegram/webhook"
            assert call.params["secret_token"] == secret and TG_TOKEN not in secret
            url = f"{app.web.url}/telegram/webhook"
            async with httpx.AsyncClient() as client:
                forged = await client.post(url, json=telegram.text_update(77, "cảm ơn"),
                                           headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
                ok = await client.post(url, json={**telegram.text_update(77, "cảm ơn"), "update_id": 5},
                                       headers={"X-Telegram-Bot-Api-Secret-Token": secret})
                broken = await client.post(url, json={"update_id": "x", "message": 5},
                                           headers={"X-Telegram-Bot-Api-Secret-Token": secret})
            assert (forged.status_code, ok.status_code, broken.status_code) == (403, 200, 200)
            [answer] = await telegram.wait_for(lambda m: m.chat_id == 77)
            assert answer.text.startswith("Dạ, không có gì ạ")
            assert not telegram.calls_to("getUpdates")
        finally:
            await app.stop()
