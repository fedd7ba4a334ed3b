"""Issue 11 against the fake Bot API, through real PTB: a petition typed where a choice is expected
(4), supervision plans only for their own groups (5), acknowledgements only from recipients (6), a
deeply nested webhook body (9), erasure leaves no copy (10: tests/e2e/test_handoff_e2e.py scans the
files' bytes), and an answer never floods a chat (11)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from bot.app.service import App, build_app
from bot.app.web import WebServer, derived_secret
from bot.audiences.registration import GroupRecord, register_groups
from bot.broadcasts.store import Target
from bot.kernel.config import Settings
from bot.supervision.plans_io import build
from tests.conftest import CONTENT, run_cli
from tests.e2e.test_telegram_e2e import BOT, TOKEN, ask, exchange
from tests.fakes.telegram import FakeTelegram

OURS, THEIRS, NOWHERE = -1001100, -1002200, -1003300  # groups of phan-rang, of thuan-nam, of no locality
ADMIN = 5001
COMPLAINT = "Đường vào xóm tôi bị ngập mỗi khi mưa to, xe máy không đi được"


@pytest.fixture
async def fake():
    async with FakeTelegram(token=TOKEN, username=BOT) as fake:
        yield fake


async def started(settings: Settings) -> App:
    app = await build_app(settings)
    app.web = WebServer(app.channels, app.core.db, "127.0.0.1", 0)
    await app.start()
    return app


@pytest.fixture
async def app(tmp_path: Path, fake: FakeTelegram, calendar_quiet_content: Path):
    app = await started(Settings(database_path=tmp_path / "data" / "bot.sqlite3", content_dir=calendar_quiet_content,
                                 telegram_bot_token=TOKEN, telegram_api_url=fake.url))
    try:
        yield app
    finally:
        await app.stop()


async def step(fake: FakeTelegram, chat: int, update: dict) -> list:
    """Push `update` and wait for the bot's next message (a flow step takes the "thanks" marker too)."""
    last = max((m.message_id for m in fake.sent_to(chat)), default=0)
    fake.push_update(update)
    return await fake.wait_for(lambda m: m.chat_id == chat and m.message_id > last, timeout=5)


def group_says(fake: FakeTelegram, chat: int, text: str) -> dict:
    return fake.text_update(chat, f"@{BOT} {text}" if not text.startswith("/") else text, user_id=ADMIN,
                            chat_type="supergroup")


async def test_4_a_complaint_typed_instead_of_the_topic_is_kept_as_the_petition(app: App, fake: FakeTelegram):
    resident = 6301
    [topics] = await ask(fake, resident, "/gopy")
    assert "pet:t:ha-tang" in topics.callback_data
    [kept] = await ask(fake, resident, COMPLAINT)
    assert kept.text.startswith("Đã ghi lại nội dung") and "pet:t:ha-tang" in kept.callback_data
    [where] = await step(fake, resident, fake.callback_update(resident, resident, "pet:t:ha-tang"))
    assert "xã, phường nào" in where.text
    [consent] = await step(fake, resident, fake.text_update(resident, "phan rang"))
    assert COMPLAINT in consent.text and "pet:ok:" in consent.callback_data
    [received] = await exchange(fake, fake.callback_update(resident, resident, "pet:ok:"))
    assert "#1" in received.text
    with sqlite3.connect(app.core.settings.database_path) as db:
        assert db.execute("SELECT text, topic, locality FROM tickets").fetchall() == [(COMPLAINT, "ha-tang",
                                                                                      "phan-rang")]
        assert db.execute("SELECT COUNT(*) FROM question_log").fetchone()[0] == 0  # not a question, not a gap


async def test_5_a_plan_is_reported_only_from_its_own_groups(app: App, fake: FakeTelegram,
                                                            caplog: pytest.LogCaptureFixture):
    core = app.core
    for chat, title in ((OURS, "Tổ 1 Phan Rang"), (THEIRS, "Tổ 2 Thuận Nam"), (NOWHERE, "Nhóm mới lập")):
        fake.chat(chat, "supergroup", title=title)
        fake.set_admin(chat, ADMIN)
    await register_groups(core.db, [GroupRecord("telegram", str(OURS), "phan-rang", "Tổ 1"),
                                    GroupRecord("telegram", str(THEIRS), "thuan-nam", "Tổ 2")])
    sv = core.supervision
    plan_id = await sv.add(build({"locality": "phan-rang", "title": "Giám sát BHYT", "due": "2030-12-15 17:00"},
                                 core.localities, sv.config, core.settings.tz, now=time.time()))
    say = core.dialogue.say
    for chat in (THEIRS, NOWHERE):  # the admin of another locality's group, of a group of no locality
        for update in (fake.callback_update(chat, ADMIN, f"sv:done:{plan_id}"),
                       fake.callback_update(chat, ADMIN, f"sv:ext:{plan_id}"),
                       group_says(fake, chat, f"/baocao_gs {plan_id} Da xong"),
                       group_says(fake, chat, f"đã hoàn thành #{plan_id} xong")):
            [refused] = await exchange(fake, update)
            assert refused.text == say("sv_not_yours", id=plan_id), refused.text
        [missing] = await exchange(fake, group_says(fake, chat, "/baocao_gs 987 Da xong"))
        assert missing.text == say("sv_not_yours", id=987)  # a guessed id tells nothing either
    assert (await sv.get(plan_id)).status == "planned"
    assert sum("not one of the plan's groups" in r.getMessage() for r in caplog.records) == 10
    [done] = await exchange(fake, group_says(fake, OURS, f"/baocao_gs {plan_id} Đã giám sát 12 hộ"))
    assert (await sv.get(plan_id)).status == "done" and "12 hộ" in done.text


async def test_6_only_a_chat_that_received_a_broadcast_acknowledges_it_once(app: App, fake: FakeTelegram):
    core = app.core
    fake.chat(OURS, "supergroup", title="Tổ 1")
    await register_groups(core.db, [GroupRecord("telegram", str(OURS), "phan-rang", "Tổ 1")])
    broadcast = await core.broadcasts.create("Họp tổ dân phố tối thứ Bảy", Target("groups", "phan-rang"))
    core.worker.notify()
    [sent] = await fake.wait_for(lambda m: m.chat_id == OURS and "Họp tổ" in m.text, timeout=10)
    for private in (7101, 7102, 7103, 7104):
        [refused] = await exchange(fake, fake.callback_update(private, private, f"ack:{broadcast}"))
        assert refused.text == core.dialogue.say("ack_not_recipient")
    [thanks] = await exchange(fake, fake.callback_update(OURS, 8001, f"ack:{broadcast}", sent.message_id))
    [again] = await exchange(fake, fake.callback_update(OURS, 8002, f"ack:{broadcast}", sent.message_id))
    assert "đã ghi nhận" in thanks.text and again.text == core.dialogue.say("ack_already")
    report = await core.broadcasts.report(broadcast)
    assert (report.total, report.sent, report.acknowledged) == (1, 1, 1)


async def test_9_a_deeply_nested_webhook_body_is_400_json(tmp_path: Path, fake: FakeTelegram):
    app = await started(Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT, telegram_bot_token=TOKEN,
                                 telegram_api_url=fake.url, webhook_base_url="https://loaphuong.example.vn"))
    try:
        headers = {"X-Telegram-Bot-Api-Secret-Token": derived_secret(TOKEN, "telegram"),
                   "Content-Type": "application/json"}
        async with httpx.AsyncClient() as client:
            nested = await client.post(f"{app.web.url}/telegram/webhook", content=b"[" * 200_000, headers=headers)
            still = await client.post(f"{app.web.url}/telegram/webhook", headers=headers,
                                      json={**fake.text_update(77, "cảm ơn"), "update_id": 9})
        assert nested.status_code == 400 and nested.json() == {"ok": False, "error": "body is nested too deeply"}
        assert still.status_code == 200  # and the service goes on
        await fake.wait_for(lambda m: m.chat_id == 77, timeout=5)
    finally:
        await app.stop()


async def test_11_a_long_answer_is_one_page_at_a_time_and_content_check_names_an_oversized_one(
        tmp_path: Path, fake: FakeTelegram):
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    body = "\n\n".join(f"Đoạn {i}: " + "quy định về hỗ trợ sửa nhà cho hộ nghèo " * 8 for i in range(18))
    assert 5000 < len(body) < 6000  # under the limit of content check, over two pages
    (content / "knowledge" / "dai.md").write_text(
        "---\nid: dai\ntitle: Hướng dẫn rất dài\nquestions:\n  - hướng dẫn sửa nhà rất dài\n---\n" + body,
        encoding="utf-8")
    app = await started(Settings(database_path=tmp_path / "bot.sqlite3", content_dir=content,
                                 telegram_bot_token=TOKEN, telegram_api_url=fake.url))
    try:
        pages = [await ask(fake, 6401, "hướng dẫn sửa nhà rất dài")]
        while any(d.startswith("kb:dai:") for d in pages[-1][-1].callback_data):
            more = next(d for d in pages[-1][-1].callback_data if d.startswith("kb:dai:"))
            pages.append(await exchange(fake, fake.callback_update(6401, 6401, more)))
    finally:
        await app.stop()
    assert len(pages) == 2 and all(len(page) == 1 for page in pages)  # one message each, not 257
    assert "Xem tiếp (2/2)" in [b["text"] for row in pages[0][0].buttons for b in row]
    assert "Đoạn 0:" in pages[0][0].text and "Đoạn 17:" in pages[1][0].text

    (content / "knowledge" / "dai.md").write_text(
        "---\nid: dai\ntitle: Quá dài\n---\n" + "\n".join("nội dung " * 20 for _ in range(8000)), encoding="utf-8")
    checked = run_cli("content", "check", env={"CONTENT_DIR": str(content)})
    assert checked.returncode == 1
    assert f"{content / 'knowledge' / 'dai.md'}:" in checked.stdout and "quá giới hạn 6.000 ký tự" in checked.stdout
