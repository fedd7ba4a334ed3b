"""End to end on a Zalo Official Account: the real app (`build_app`, shipped content, a SQLite file), its
HTTP server on a loopback port and the fake OA + OAuth server (tests/fakes/zalo_oa.py).

Events are POSTed, signed as Zalo signs them, by a real HTTP client to /zalo-oa/webhook; what the bot
says is read from what the fake recorded. One test runs `python -m bot run` itself and SIGKILLs it
right after a token refresh.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bot.app.service import App, build_app
from bot.app.web import WebServer
from bot.broadcasts.store import Target
from bot.kernel.config import Settings
from bot.kernel.content import Content
from tests.conftest import CONTENT, ROOT, log_everything
from tests.fakes.zalo_oa import FakeZaloOA
from tests.polling import until

PUBLIC = "https://loaphuong.example.vn"


@pytest.fixture
async def fake():
    async with FakeZaloOA() as fake:
        yield fake


def zone_at(hour: int) -> str:
    """A time zone where it is now about `hour` o'clock (the OA's quiet hours follow TIMEZONE)."""
    offset = (hour - datetime.now(UTC).hour + 12) % 24 - 12  # -12..11
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-7 is UTC+7


def oa_settings(tmp_path: Path, fake: FakeZaloOA, seed: str, **more) -> Settings:
    more.setdefault("timezone", zone_at(12))
    return Settings(database_path=tmp_path / "data" / "bot.sqlite3", content_dir=CONTENT,
                    zalo_oa_app_id=fake.app_id, zalo_oa_secret_key=fake.secret_key,
                    zalo_oa_webhook_secret=fake.oa_secret,
                    zalo_oa_refresh_token=seed, zalo_oa_api_url=fake.url, zalo_oa_oauth_url=fake.url,
                    webhook_base_url=PUBLIC, **more)


@pytest.fixture
async def service(tmp_path: Path, fake: FakeZaloOA, caplog: pytest.LogCaptureFixture):
    log_everything(caplog, "aiohttp", "bot", "httpx", "httpcore")
    app = await build_app(oa_settings(tmp_path, fake, fake.issue_refresh_token()))
    app.services.remove(app.core.supervision)
    app.web = WebServer(app.channels, app.core.db, "127.0.0.1", 0, quota=app.quota)
    await app.start()
    fake.webhook_url = f"{app.web.url}/zalo-oa/webhook"
    try:
        yield app
    finally:
        await app.stop()


async def ask(app: App, fake: FakeZaloOA, user: str, text: str, **kw) -> list:
    before = len(fake.sent_to(user))
    assert await fake.deliver(fake.text_event(user, text, **kw)) == 200
    await app.channels["zalo_oa"].drain()
    await app.core.replies.idle()
    return fake.sent_to(user)[before:]


async def settled(app: App, broadcast: int, timeout: float = 10) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        report = await app.core.broadcasts.report(broadcast)
        if report is not None and report.total and not report.pending:
            return
        assert time.monotonic() < deadline, f"broadcast {broadcast} still pending"
        await asyncio.sleep(0.02)


async def test_a_signed_question_is_answered_as_a_consultation_message(service: App, fake: FakeZaloOA,
                                                                       content: Content):
    fake.add_follower("2468013579")
    entry = content.entry("quy-vi-nguoi-ngheo")
    assert entry is not None
    [answer] = await ask(service, fake, "2468013579", "quy vi nguoi ngheo la gi")
    assert answer.kind == "cs" and answer.text.split("\n")[0] == entry.title
    assert "**" not in answer.text and len(answer.text) <= 2000 and "\n1. " in answer.text
    [menu] = await ask(service, fake, "2468013579", "/start")
    assert "1. Chương trình hỗ trợ" in menu.text
    [programs] = await ask(service, fake, "2468013579", "1")  # the numbered option
    assert f"1. {content.topics[0].title}" in programs.text
    rows = sqlite3.connect(service.core.settings.database_path).execute(
        "SELECT channel, entry_id FROM question_log").fetchall()
    assert rows == [("zalo_oa", "quy-vi-nguoi-ngheo")]
    assert all(h.get("access_token") in fake.access for h in fake.headers_seen()[1:])  # the token in a header
    assert not any(token in url for _, url, _ in fake.requests for token in fake.access)  # never in the URL


async def test_forged_or_missing_signatures_are_refused_and_nothing_is_processed(service: App,
                                                                                 fake: FakeZaloOA):
    fake.add_follower("u-forged")
    event = fake.text_event("u-forged", "xin chào")
    assert await fake.deliver(event, signature=None) == 401
    assert await fake.deliver(event, signature="mac=" + "0" * 64) == 403
    assert await fake.deliver(event, signature=fake.sign(b"{}", event["timestamp"])) == 403
    await service.channels["zalo_oa"].drain()
    await service.core.replies.idle()
    assert fake.sent_to("u-forged") == [] and service.channels["zalo_oa"].stats["received"] == 0
    assert await fake.deliver(event) == 200  # the same event, signed: taken (it was never seen)
    await service.channels["zalo_oa"].drain()
    await service.core.replies.idle()
    assert len(fake.sent_to("u-forged")) == 1


async def test_a_repeated_event_is_answered_once(service: App, fake: FakeZaloOA):
    fake.add_follower("u-rep")
    event = fake.text_event("u-rep", "bhyt ho can ngheo")
    statuses = await asyncio.gather(*(fake.deliver(event) for _ in range(3)))
    assert statuses == [200, 200, 200]  # Zalo gets its 200 each time, the bot answers once
    await service.channels["zalo_oa"].drain()
    await service.core.replies.idle()
    assert len(fake.sent_to("u-rep")) == 1


async def test_access_token_expiry_mid_run_refreshes_once_and_answers(service: App, fake: FakeZaloOA):
    fake.add_follower("u-exp")
    assert len(await ask(service, fake, "u-exp", "xin chào")) == 1
    assert fake.refreshes == 1
    fake.expire_access_tokens()
    statuses = await asyncio.gather(*(fake.deliver(fake.text_event("u-exp", "xin chào")) for _ in range(5)))
    await service.channels["zalo_oa"].drain()
    await service.core.replies.idle()
    assert statuses == [200] * 5 and len(fake.sent_to("u-exp")) == 6
    assert fake.refreshes == 2 and fake.spent_presented == 0


async def test_followers_are_subscribed_and_unfollowed_ones_skipped_by_broadcasts(service: App, fake: FakeZaloOA):
    for user in ("f1", "f2", "f3"):
        assert await fake.deliver(fake.follow_event(user)) == 200
    assert await fake.deliver(fake.follow_event("f2", "unfollow")) == 200
    fake.add_follower("f-old", interacted_ago=8 * 86400)  # from `zalo-oa sync`: outside the window
    await service.core.chats.follow("zalo_oa", ["f-old"], True, None)
    rows = dict(sqlite3.connect(service.core.settings.database_path).execute(
        "SELECT chat_id, consent || active FROM chats WHERE channel = 'zalo_oa'").fetchall())
    assert rows == {"f1": "11", "f2": "00", "f3": "11", "f-old": "11"}
    marker = "Thông báo: họp tổ dân phố tối thứ Sáu."
    broadcast = await service.core.broadcasts.create(marker, Target("residents", channel="zalo_oa"))
    service.core.worker.notify()
    await settled(service, broadcast)
    got = {m.user_id for m in fake.sent if marker in m.text}
    assert got == {"f1", "f3"}
    report = await service.core.broadcasts.report(broadcast)
    assert report is not None and report.sent == 2
    assert report.failed == {"bad_request: quá 7 ngày không tương tác": 1}


async def paused(app: App, broadcast: int, *, longer_than: float) -> None:
    deadline = time.monotonic() + 5
    while app.core.worker.pacer("zalo_oa").paused_until <= time.time() + longer_than:
        assert time.monotonic() < deadline, "the channel was not paused"
        await asyncio.sleep(0.02)
    report = await app.core.broadcasts.report(broadcast)
    assert report is not None and report.pending == report.total == 2 and report.failed == {}


@pytest.mark.parametrize("refusal", ["quota", "night"])
async def test_quota_or_the_platforms_quiet_hours_pause_the_channel_and_keep_the_rows(service: App, fake: FakeZaloOA,
                                                                                     refusal: str):
    for user in ("q1", "q2"):
        await fake.deliver(fake.follow_event(user))
    if refusal == "quota":
        fake.quota = 0  # -211
    else:
        fake.night = True  # -234
    broadcast = await service.core.broadcasts.create("Tin báo", Target("residents", channel="zalo_oa"))
    service.core.worker.notify()
    await paused(service, broadcast, longer_than=0.5 if refusal == "night" else 3000)
    assert fake.sent == []
    if refusal == "quota":
        assert (await service.channels["zalo_oa"].quota())["cs"]["refused"] >= 1


async def test_at_night_the_outbox_waits_for_six_without_asking_zalo(tmp_path: Path, fake: FakeZaloOA):
    app = await build_app(oa_settings(tmp_path, fake, fake.issue_refresh_token(), timezone=zone_at(23)))
    app.services.remove(app.core.supervision)
    await app.start()
    try:
        await app.core.chats.follow("zalo_oa", ["n1", "n2"], True, None)
        fake.add_follower("n1")
        fake.add_follower("n2")
        calls = len(fake.requests)
        broadcast = await app.core.broadcasts.create("Tin sáng mai", Target("residents", channel="zalo_oa"))
        app.core.worker.notify()
        await paused(app, broadcast, longer_than=3600)  # until 06:00, 6–7 hours away
        assert len(fake.requests) == calls
    finally:
        await app.stop()


@pytest.mark.parametrize("zalo_refuses", [False, True], ids=["zalo-allows-it", "zalo-refuses-234"])
async def test_at_night_a_follower_who_writes_is_answered_or_the_answer_waits_for_six(tmp_path: Path,
                                                                                   fake: FakeZaloOA,
                                                                                   zalo_refuses: bool):
    """In quiet hours a follower in a conversation still gets the answer (a consultation to their own
    message); if Zalo refuses it (-234), the answer is kept and goes at 06:00, never lost."""
    app = await build_app(oa_settings(tmp_path, fake, fake.issue_refresh_token(), timezone=zone_at(23)))
    app.services.remove(app.core.supervision)
    app.web = WebServer(app.channels, app.core.db, "127.0.0.1", 0, quota=app.quota)
    await app.start()
    fake.webhook_url = f"{app.web.url}/zalo-oa/webhook"
    try:
        fake.add_follower("w1")
        fake.night = zalo_refuses
        if not zalo_refuses:
            answers = await ask(app, fake, "w1", "quy vi nguoi ngheo la gi")
            assert [a.kind for a in answers] == ["cs"] and "Vì người nghèo" in answers[0].text
            return
        assert await fake.deliver(fake.text_event("w1", "quy vi nguoi ngheo la gi")) == 200
        await until(lambda: any("Vì người nghèo" in r.text for r in app.core.replies.owed_to("zalo_oa", "w1")),
                    what="the answer owed until 06:00")
        assert fake.sent_to("w1") == []
    finally:
        await app.stop()


async def test_healthz_lists_the_channel_and_no_secret_reaches_the_log(service: App, fake: FakeZaloOA,
                                                                      caplog: pytest.LogCaptureFixture):
    fake.add_follower("u-log")
    await ask(service, fake, "u-log", "xin chào")
    fake.expire_access_tokens()
    await ask(service, fake, "u-log", "cảm ơn")
    async with httpx.AsyncClient() as client:
        health = (await client.get(f"{service.web.url}/healthz")).json()
    assert health["channels"]["zalo_oa"] is True
    assert health["quota"] == {"zalo_oa": {"cs": {"sent": 2, "refused": 0}}}
    secrets_ = {fake.secret_key, fake.oa_secret, *fake.live_refresh, *fake.spent_refresh, *fake.access}
    assert len(secrets_) >= 7
    text = caplog.text
    assert "zalo_oa" in text and "refreshed" in text  # DEBUG and INFO lines were captured
    assert [s for s in secrets_ if s in text] == []


# ---------------------------------------------------------------------- a real process, killed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def spawn(tmp_path: Path, fake: FakeZaloOA, seed: str, port: int, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_", "DATABASE_URL",
                                                                     "CONTENT_DIR", "WEBHOOK_", "HTTP_"))}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{tmp_path / 'bot.sqlite3'}", CONTENT_DIR=str(CONTENT),
               ZALO_OA_APP_ID=fake.app_id, ZALO_OA_SECRET_KEY=fake.secret_key, ZALO_OA_WEBHOOK_SECRET=fake.oa_secret,
               ZALO_OA_REFRESH_TOKEN=seed, ZALO_OA_API_URL=fake.url, ZALO_OA_OAUTH_URL=fake.url,
               WEBHOOK_BASE_URL=PUBLIC, HTTP_PORT=str(port), LOG_LEVEL="DEBUG", TIMEZONE=zone_at(12))
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
                                                       stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out)
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).json()["channels"].get("zalo_oa"):
                    return process
            except (httpx.HTTPError, ValueError):
                pass
            assert process.returncode is None, "the service stopped; see its log"
            assert time.monotonic() < deadline, "the service did not come up"
            await asyncio.sleep(0.1)


def stored_refresh(path: Path) -> str | None:
    with sqlite3.connect(path) as con:
        row = con.execute("SELECT refresh_token FROM zalo_oa_tokens").fetchone()
    return row[0] if row else None


async def test_sigkill_right_after_a_refresh_then_restart_never_presents_a_spent_token(tmp_path: Path,
                                                                                      fake: FakeZaloOA):
    seed, port, log = fake.issue_refresh_token(), free_port(), tmp_path / "service.log"
    fake.webhook_url = f"http://127.0.0.1:{port}/zalo-oa/webhook"
    fake.add_follower("k1")
    first = await spawn(tmp_path, fake, seed, port, log)
    try:
        assert fake.refreshes == 1  # the seed exchanged at start
        await fake.deliver(fake.text_event("k1", "xin chào"))
        await until(lambda: len(fake.sent_to("k1")) == 1, what="the first answer")
        before = stored_refresh(tmp_path / "bot.sqlite3")
        fake.expire_access_tokens()
        await fake.deliver(fake.text_event("k1", "quy vi nguoi ngheo"))  # -220 → refresh → answer
        await until(lambda: stored_refresh(tmp_path / "bot.sqlite3") != before, what="the rotated token stored")
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert fake.refreshes == 2
    second = await spawn(tmp_path, fake, seed, port, log)  # the same environment: the seed is spent
    try:
        await fake.deliver(fake.text_event("k1", "cảm ơn"))
        await until(lambda: len(fake.sent_to("k1")) >= 3, what="an answer after the restart")
        fake.expire_access_tokens()
        await fake.deliver(fake.text_event("k1", "bhyt"))
        await until(lambda: len(fake.sent_to("k1")) >= 4, what="an answer after another refresh")
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 15)
    assert fake.spent_presented == 0 and fake.refreshes == 3
    assert all(form.get("refresh_token") != seed for form in fake.oauth_forms[1:])
    text = log.read_text(encoding="utf-8", errors="replace")
    leaked = [s for s in {fake.secret_key, fake.oa_secret, *fake.live_refresh, *fake.spent_refresh, *fake.access}
              if s in text]
    assert leaked == [] and "zalo_oa" in text


# ---------------------------------------------------------------------- with the Telegram staff chat

TG_TOKEN = "424243:AAOa-Secret_Token_value"
STAFF_CHAT = "-100778"


async def start_with_staff(tmp_path: Path, fake: FakeZaloOA, telegram, seed: str) -> App:
    settings = oa_settings(tmp_path, fake, seed, telegram_bot_token=TG_TOKEN, telegram_api_url=telegram.url,
                           telegram_staff_chat_id=STAFF_CHAT)
    app = await build_app(settings)
    app.services.remove(app.core.supervision)
    app.web = WebServer(app.channels, app.core.db, "127.0.0.1", 0)
    await app.start()
    fake.webhook_url = f"{app.web.url}/zalo-oa/webhook"
    return app


async def test_a_petition_photo_from_the_oa_reaches_the_staff_chat(tmp_path: Path, fake: FakeZaloOA):
    from tests.fakes.telegram import FakeTelegram

    async with FakeTelegram(token=TG_TOKEN) as telegram:
        app = await start_with_staff(tmp_path, fake, telegram, fake.issue_refresh_token())
        try:
            fake.add_follower("p1")
            await ask(app, fake, "p1", "/gopy")
            await ask(app, fake, "p1", "2")  # Môi trường, vệ sinh
            [prompt] = await ask(app, fake, "p1", "Phan Rang")
            assert "Phường Phan Rang" in prompt.text
            before = len(fake.sent_to("p1"))
            await fake.deliver(fake.image_event("p1", url="https://photo.example.invalid/cong.jpg",
                                                text="Cống ở hẻm 7 bị tắc."))
            await app.channels["zalo_oa"].drain()
            await app.core.replies.idle()
            [consent] = fake.sent_to("p1")[before:]
            assert "Đồng ý gửi" in consent.text
            await ask(app, fake, "p1", "1")
            [row] = sqlite3.connect(app.core.settings.database_path).execute(
                "SELECT channel, photo FROM tickets").fetchall()
            assert row == ("zalo_oa", "https://photo.example.invalid/cong.jpg")
            [card] = await telegram.wait_for(lambda m: m.chat_id == int(STAFF_CHAT) and m.text.startswith("#1 ·"))
            assert "Zalo OA" in card.text
        finally:
            await app.stop()


async def test_a_refused_refresh_token_pauses_the_oa_alerts_staff_once_and_keeps_the_queue(tmp_path: Path,
                                                                                           fake: FakeZaloOA):
    from tests.fakes.telegram import FakeTelegram

    async with FakeTelegram(token=TG_TOKEN) as telegram:
        app = await start_with_staff(tmp_path, fake, telegram, fake.issue_refresh_token())
        try:
            await app.core.chats.follow("zalo_oa", ["z1", "z2"], True, None)
            fake.add_follower("z1")
            fake.add_follower("z2")
            fake.live_refresh.clear()  # Zalo revoked the chain (the OA admin removed the app)
            fake.expire_access_tokens()
            broadcast = await app.core.broadcasts.create("Tin giữ lại", Target("residents", channel="zalo_oa"))
            app.core.worker.notify()
            await telegram.wait_for(lambda m: m.chat_id == int(STAFF_CHAT) and "refresh token" in m.text)
            await asyncio.sleep(0.3)
            alerts = [m for m in telegram.sent if m.chat_id == int(STAFF_CHAT) and "refresh token" in m.text]
            assert len(alerts) == 1
            assert not app.channels["zalo_oa"].running
            report = await app.core.broadcasts.report(broadcast)
            assert report is not None and report.pending == 2 and report.failed == {}
            async with httpx.AsyncClient() as client:
                health = await client.get(f"{app.web.url}/healthz")
            assert health.status_code == 503 and health.json()["channels"]["zalo_oa"] is False
        finally:
            await app.stop()
