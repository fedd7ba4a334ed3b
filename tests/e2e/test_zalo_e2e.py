"""End to end on Zalo: the real app (`bot.app.service.build_app`, shipped content, a SQLite file) in webhook
mode, its HTTP server (bot/web.py) on a loopback port, and the fake Zalo Bot API (tests/fake_zalo.py).

Updates are POSTed by a real HTTP client to /zalo/webhook, as Zalo does; what the bot says is read
from what the fake recorded. `channel.drain()` waits until every accepted update was handled, so
"nothing more was sent" is exact.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from bot.app.service import App, build_app
from bot.app.web import WebServer
from bot.audiences.registration import GroupRecord, register_groups
from bot.broadcasts.store import Target
from bot.kernel.config import Settings
from bot.kernel.content import Content
from tests.conftest import CONTENT, log_everything
from tests.fakes.telegram import FakeTelegram
from tests.fakes.zalo import FakeZalo, SentMessage

TOKEN = "2718281828:zalo-E2E_secret-token"
SECRET = "zalo-hook-Secret-0042"
TG_TOKEN = "424242:AAE2e-Secret_Token_value"
PUBLIC = "https://loaphuong.example.vn"
STAFF_CHAT = "-100777"


@pytest.fixture
async def zalo():
    async with FakeZalo(token=TOKEN) as fake:
        yield fake


def zalo_settings(tmp_path: Path, zalo: FakeZalo, **more) -> Settings:
    return Settings(database_path=tmp_path / "data" / "bot.sqlite3", content_dir=CONTENT, zalo_bot_token=TOKEN,
                    zalo_api_url=zalo.url, zalo_webhook_secret=SECRET, webhook_base_url=PUBLIC, **more)


async def start_service(settings: Settings, zalo: FakeZalo, *, supervision: bool = False) -> App:
    app = await build_app(settings)
    if not supervision:  # its reminders would reach the groups of these tests too (tested on its own)
        app.services.remove(app.core.supervision)
    app.web = WebServer(app.channels, app.core.db, "127.0.0.1", 0)
    await app.start()
    assert zalo.webhook_url == f"{PUBLIC}/zalo/webhook" and zalo.webhook_secret == SECRET
    zalo.webhook_url = f"{app.web.url}/zalo/webhook"  # the reverse proxy in front of the service
    return app


@pytest.fixture
async def service(tmp_path: Path, zalo: FakeZalo, caplog: pytest.LogCaptureFixture):
    log_everything(caplog, "httpx", "httpcore", "aiohttp", "bot")
    app = await start_service(zalo_settings(tmp_path, zalo), zalo)
    try:
        yield app
    finally:
        await app.stop()


async def post(app: App, zalo: FakeZalo, chat_id: str, update: dict, settle: bool = True) -> list[SentMessage]:
    """POST one update to the webhook (a real HTTP request); what the bot sent back to `chat_id` for it."""
    before = len(zalo.sent_to(chat_id))
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{app.web.url}/zalo/webhook", json=update,
                                     headers={"X-Bot-Api-Secret-Token": SECRET})
    assert response.status_code == 200 and response.json() == {"ok": True}
    await app.channels["zalo"].drain()
    if settle:
        await app.core.replies.idle()  # replies owed to the chat's 1-a-second window
    return zalo.sent_to(chat_id)[before:]


async def say(app: App, zalo: FakeZalo, chat_id: str, text: str, **kw) -> list[SentMessage]:
    return await post(app, zalo, chat_id, zalo.text_update(chat_id, text, **kw))


async def settled(app: App, broadcast: int, timeout: float = 5) -> None:  # noqa: ASYNC109
    """Wait until the running worker has nothing pending for `broadcast`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        report = await app.core.broadcasts.report(broadcast)
        if report is not None and report.total and not report.pending:
            return
        assert asyncio.get_running_loop().time() < deadline, f"broadcast {broadcast} still pending"
        await asyncio.sleep(0.02)


def entry_title(content: Content, entry_id: str) -> str:
    entry = content.entry(entry_id)
    assert entry is not None
    return entry.title


# ---------------------------------------------------------------------- residents


async def test_a_question_is_answered_with_or_without_accents(service: App, zalo: FakeZalo, content: Content):
    title = entry_title(content, "quy-vi-nguoi-ngheo")
    for chat, question in (("r1", "Quỹ vì người nghèo là gì?"), ("r2", "quy vi nguoi ngheo la gi")):
        [answer] = await say(service, zalo, chat, question)
        assert answer.text.split("\n")[0] == title  # the title alone on the first line
        assert "**" not in answer.text and "<b>" not in answer.text and len(answer.text) <= 2000
        assert "\n1. " in answer.text and "Gõ số thứ tự để chọn (ví dụ: gõ 1 để chọn" in answer.text
    rows = sqlite3.connect(service.core.settings.database_path).execute(
        "SELECT channel, entry_id FROM question_log ORDER BY id").fetchall()
    assert rows == [("zalo", "quy-vi-nguoi-ngheo")] * 2


async def test_numbered_options_and_option_words_walk_the_menu(service: App, zalo: FakeZalo, content: Content):
    [hello] = await say(service, zalo, "r3", "/start")  # greeting and menu: one message (quota)
    assert hello.text.startswith("Xin chào!")
    assert "1. Chương trình hỗ trợ\n2. Đặt câu hỏi" in hello.text and "5. Liên hệ" in hello.text
    [programs] = await say(service, zalo, "r3", "1")
    topic = content.topics[0].title
    assert f"1. {topic}" in programs.text
    [topic_list] = await say(service, zalo, "r3", topic.upper())  # the option's words, any case
    first_entry = topic_list.text.split("\n1. ", 1)[1].split("\n", 1)[0]
    [entry] = await say(service, zalo, "r3", "1")
    assert entry.text.startswith(first_entry)


async def test_a_complaint_becomes_a_petition_by_typing_the_number_of_the_offer(service: App, zalo: FakeZalo,
                                                                               content: Content):
    complaint = "Quán karaoke đầu hẻm hát tới khuya, cả xóm không ngủ được"
    [answer] = await say(service, zalo, "r-noise", complaint)
    assert "\n1. Gửi nội dung này thành kiến nghị" in answer.text, answer.text[-400:]
    [kept] = await say(service, zalo, "r-noise", "1")
    assert "Đã ghi lại nội dung" in kept.text and "2. Môi trường" in kept.text
    [place] = await say(service, zalo, "r-noise", "2")
    assert "xã, phường nào" in place.text
    [consent] = await say(service, zalo, "r-noise", "Phan Rang")
    assert "Xem lại ý kiến" in consent.text and complaint in consent.text
    [received] = await say(service, zalo, "r-noise", "1")
    assert "#1" in received.text


async def test_media_gets_one_polite_sentence(service: App, zalo: FakeZalo):
    async with httpx.AsyncClient() as client:
        for update in (zalo.image_update("r4"), zalo.sticker_update("r4"), zalo.unsupported_update("r4")):
            response = await client.post(f"{service.web.url}/zalo/webhook", json={"ok": True, "result": update},
                                         headers={"X-Bot-Api-Secret-Token": SECRET})
            assert response.status_code == 200
    await service.channels["zalo"].drain()
    await service.core.replies.idle()
    assert [m.text for m in zalo.sent_to("r4")] == [service.core.dialogue.say("media_unsupported")] * 3


async def test_a_long_answer_is_split_in_order(service: App, zalo: FakeZalo):
    long_text = "\n\n".join(f"Mục {i}. " + "Mặt trận vận động ủng hộ Quỹ vì người nghèo. " * 8 for i in range(12))
    await service.core.db.write(
        "INSERT INTO chats (channel, chat_id, kind, locality, consent, active, first_seen, last_seen)"
        " VALUES ('zalo', 'r5', 'private', 'phan-rang', 1, 1, 0, 0)")
    broadcast = await service.core.broadcasts.create(long_text, Target("residents", channel="zalo"), title="Tin dài")
    service.worker.notify()
    await settled(service, broadcast)
    pieces = [m.text for m in zalo.sent_to("r5")]
    assert pieces[0].startswith("Tin dài\n\nMục 0.") and all(len(p) <= 2000 for p in pieces)
    joined = "\n\n".join(pieces)
    assert len(pieces) == 3
    assert [joined.index(f"Mục {i}.") for i in range(12)] == sorted(joined.index(f"Mục {i}.") for i in range(12))
    report = await service.core.broadcasts.report(broadcast)
    assert report is not None and report.by_channel == {
        "zalo": {"total": 1, "sent": 1, "pending": 0, "failed": 0, "acknowledged": 0}}


# ---------------------------------------------------------------------- groups


async def test_a_group_registers_by_mention(service: App, zalo: FakeZalo):
    group = {"chat_type": "GROUP", "user_id": "leader-1", "name": "Tổ trưởng Hòa"}
    [refused] = await say(service, zalo, "grp-1", "@Loa Phường dangky phan-rang", **group)
    assert refused.text == service.core.dialogue.say("dangky_not_admin")  # Zalo cannot tell admins: staff only
    await service.core.staff.add("zalo", "leader-1")
    [done] = await say(service, zalo, "grp-1", "@Loa Phường dangky phan-rang", **group)
    assert done.text.startswith(service.core.dialogue.say("dangky_done", place="")[:12])
    chat = await service.core.chats.get("zalo", "grp-1")
    assert chat is not None and (chat.kind, chat.locality, chat.consent) == ("group", "phan-rang", True)


async def test_a_broadcast_reaches_telegram_and_zalo_and_is_reported_per_channel(tmp_path: Path, zalo: FakeZalo):
    async with FakeTelegram(token=TG_TOKEN) as telegram:
        settings = zalo_settings(tmp_path, zalo, telegram_bot_token=TG_TOKEN, telegram_api_url=telegram.url)
        app = await start_service(settings, zalo)
        try:
            assert telegram.webhook_url == f"{PUBLIC}/telegram/webhook"
            await register_groups(app.core.db, [GroupRecord("zalo", "zg-1", "phan-rang", "Tổ 1"),
                                                GroupRecord("zalo", "zg-2", "phan-rang", "Tổ 2"),
                                                GroupRecord("telegram", "-1001", "phan-rang", "Tổ 3")])
            broadcast = await app.core.broadcasts.create("Họp tổ lúc 19h ngày 01/07/2025.", Target("groups"),
                                                         title="Thông báo")
            app.worker.notify()
            await zalo.wait_for(lambda m: m.chat_id.startswith("zg-"), count=2)
            await telegram.wait_for(lambda m: m.chat_id == -1001)
            [zalo_text] = [m.text for m in zalo.sent_to("zg-1")]
            assert zalo_text == ("Thông báo\n\nHọp tổ lúc 19h ngày 01/07/2025.\n\n1. Đã nhận\n\n"
                                 "Gõ số thứ tự để chọn (ví dụ: gõ 1 để chọn “Đã nhận”), hoặc gõ câu hỏi khác.")
            # group leaders answer by replying: the number in one group, the words in the other
            [ack1] = await say(app, zalo, "zg-1", "@Loa Phường 1", chat_type="GROUP", user_id="l1", name="Hòa")
            [ack2] = await say(app, zalo, "zg-2", "Đã nhận ạ", chat_type="GROUP", user_id="l2", name="Bình")
            assert ack1.text.startswith("Cảm ơn Hòa") and ack2.text.startswith("Cảm ơn Bình")
            [again] = await say(app, zalo, "zg-2", "đã nhận", chat_type="GROUP", user_id="l2", name="Bình")
            assert again.text == app.core.dialogue.say("ack_already")
            await settled(app, broadcast)
            report = await app.core.broadcasts.report(broadcast)
            assert report is not None and (report.total, report.sent, report.acknowledged) == (3, 3, 2)
            assert report.by_channel == {
                "telegram": {"total": 1, "sent": 1, "pending": 0, "failed": 0, "acknowledged": 0},
                "zalo": {"total": 2, "sent": 2, "pending": 0, "failed": 0, "acknowledged": 2},
            }
        finally:
            await app.stop()


async def test_da_nhan_after_a_restart_still_acknowledges_the_last_broadcast(service: App, zalo: FakeZalo):
    await register_groups(service.core.db, [GroupRecord("zalo", "zg-9", "phan-rang", "Tổ 9")])
    first = await service.core.broadcasts.create("Tin một", Target("groups"))
    second = await service.core.broadcasts.create("Tin hai", Target("groups"))
    service.worker.notify()
    await settled(service, second)
    service.channels["zalo"]._options.clear()  # what the adapter remembered is gone (a restart)
    [ack] = await say(service, zalo, "zg-9", "da nhan", chat_type="GROUP", user_id="l9", name="Chín")
    assert ack.text.startswith("Cảm ơn Chín")
    acked = await service.core.db.fetchall("SELECT broadcast FROM acknowledgements")
    assert [r["broadcast"] for r in acked] == [second] and first != second
    [nothing] = await say(service, zalo, "zg-other", "đã nhận", chat_type="GROUP", user_id="x", name="X")
    assert nothing.text == service.core.dialogue.say("ack_nothing")


async def test_a_number_typed_after_a_restart_still_picks_the_option_shown_before(tmp_path: Path, zalo: FakeZalo,
                                                                                 content: Content):
    settings = zalo_settings(tmp_path, zalo)
    app = await start_service(settings, zalo)
    try:
        await say(app, zalo, "r20", "/start")
    finally:
        await app.stop()
    app = await start_service(settings, zalo)  # a new process: only the database remembers the menu
    try:
        [programs] = await say(app, zalo, "r20", "1")
        assert f"1. {content.topics[0].title}" in programs.text
    finally:
        await app.stop()


# ---------------------------------------------------------------------- quota


async def test_zalo_quota_pauses_zalo_only_keeps_the_rest_queued_and_tells_staff_once(tmp_path: Path,
                                                                                     zalo: FakeZalo):
    async with FakeTelegram(token=TG_TOKEN) as telegram:
        settings = zalo_settings(tmp_path, zalo, telegram_bot_token=TG_TOKEN, telegram_api_url=telegram.url,
                                 telegram_staff_chat_id=STAFF_CHAT)
        app = await start_service(settings, zalo)
        try:
            zalo.quota = 2
            await register_groups(app.core.db, [GroupRecord("zalo", f"zq-{i}", "phan-rang") for i in range(5)]
                                  + [GroupRecord("telegram", "-2002", "phan-rang")])
            broadcast = await app.core.broadcasts.create("Tin khẩn", Target("groups"))
            app.worker.notify()
            await telegram.wait_for(lambda m: m.chat_id == int(STAFF_CHAT))
            await telegram.wait_for(lambda m: m.chat_id == -2002)
            report = await app.core.broadcasts.report(broadcast)
            assert report is not None
            assert report.by_channel["zalo"] == {"total": 5, "sent": 2, "pending": 3, "failed": 0,
                                                 "acknowledged": 0}
            assert report.by_channel["telegram"]["sent"] == 1
            [alert] = telegram.sent_to(int(STAFF_CHAT))
            assert "Zalo" in alert.text and "hàng đợi" in alert.text
            assert app.worker.pacer("zalo").paused_until > app.worker.clock() + 600
        finally:
            await app.stop()


# ---------------------------------------------------------------------- logs


async def test_the_token_and_the_secret_never_reach_the_logs(service: App, zalo: FakeZalo,
                                                              caplog: pytest.LogCaptureFixture):
    await say(service, zalo, "r9", "bhyt ho can ngheo")
    zalo.fail_next("r9", 500)
    await say(service, zalo, "r9", "cảm ơn")  # the reply fails: a warning with the reason
    async with httpx.AsyncClient() as client:
        await client.post(f"{service.web.url}/zalo/webhook", json={}, headers={"X-Bot-Api-Secret-Token": "nope"})
    zalo.token = "2718281828:another-token"
    # 401: the channel stops, one error line; the reply stays owed until the token is fixed
    await post(service, zalo, "r9", zalo.text_update("r9", "xin chào"), settle=False)
    for _ in range(300):  # sent once the chat's 1-a-second window allows
        if "ZALO_BOT_TOKEN" in caplog.text:
            break
        await asyncio.sleep(0.01)
    assert [r.text for r in service.core.replies.owed_to("zalo", "r9")]
    text = caplog.text
    assert "sendMessage" in text or "HTTP Request" in text  # httpx did log its requests
    for secret in (TOKEN, TOKEN.split(":", 1)[1], SECRET):
        assert secret not in text
    assert "ZALO_BOT_TOKEN" in text


# ---------------------------------------------------------------------- supervision (issue 4's service)


async def test_a_reminder_reaches_a_zalo_group_and_da_hoan_thanh_marks_it_done(tmp_path: Path, zalo: FakeZalo):
    from datetime import datetime

    from bot.supervision.plans_io import build

    app = await start_service(zalo_settings(tmp_path, zalo), zalo, supervision=True)
    try:
        core, sv = app.core, app.core.supervision
        assert sv is not None
        await register_groups(core.db, [GroupRecord("zalo", "zs-1", "phan-rang", "Tổ 5")])
        start = time.time()
        due = datetime.fromtimestamp(start + 1.5, core.settings.tz).isoformat(timespec="seconds")
        plan = build({"locality": "phan-rang", "title": "Giám sát BHYT hộ cận nghèo", "remind": "0s", "due": due},
                     core.localities, sv.config, core.settings.tz, now=start)
        plan_id = await sv.add(plan)
        [reminder] = await zalo.wait_for(lambda m: m.chat_id == "zs-1" and "Giám sát BHYT" in m.text, timeout=10)
        assert "1. Đã hoàn thành\n2. Xin gia hạn" in reminder.text and "**" not in reminder.text
        [done] = await say(app, zalo, "zs-1", "@Loa Phường đã hoàn thành: đã giám sát 12 hộ, kiến nghị 2 nội dung",
                           chat_type="GROUP", user_id="leader-5", name="Năm")
        stored = await sv.get(plan_id)
        assert stored is not None and stored.status == "done", done.text
        assert "12 hộ" in (stored.result or "")
    finally:
        await app.stop()


# ---------------------------------------------------------------------- a petition with a photo


async def test_a_petition_photo_from_zalo_reaches_the_telegram_staff_chat(tmp_path: Path, zalo: FakeZalo):
    async with FakeTelegram(token=TG_TOKEN) as telegram:
        settings = zalo_settings(tmp_path, zalo, telegram_bot_token=TG_TOKEN, telegram_api_url=telegram.url,
                                 telegram_staff_chat_id=STAFF_CHAT)
        app = await start_service(settings, zalo)
        try:
            await say(app, zalo, "r-photo", "/gopy")
            await say(app, zalo, "r-photo", "2")  # Môi trường, vệ sinh
            [content_prompt] = await say(app, zalo, "r-photo", "Phan Rang")
            assert "Phường Phan Rang" in content_prompt.text
            [consent] = await post(app, zalo, "r-photo",
                                   zalo.image_update("r-photo", caption="Cống ở hẻm 7 bị tắc, nước tràn ra đường."))
            assert "Đồng ý gửi" in consent.text
            await say(app, zalo, "r-photo", "1")
            [row] = sqlite3.connect(settings.database_path).execute("SELECT channel, photo FROM tickets").fetchall()
            assert row == ("zalo", "https://example.invalid/a.jpg")
            [card] = await telegram.wait_for(lambda m: m.chat_id == int(STAFF_CHAT) and m.text.startswith("#1 ·"))
            assert "Zalo" in card.text and "ảnh đính kèm" in card.text
            [photo] = await telegram.wait_for_call("sendPhoto")
            assert photo.params["photo"] == "https://example.invalid/a.jpg"
            assert photo.params["reply_parameters"]["message_id"] == card.message_id
        finally:
            await app.stop()
