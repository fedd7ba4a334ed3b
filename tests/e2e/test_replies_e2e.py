"""Nothing a person is owed is lost (issue 11, points 1 and 2): the real app and real PTB against a
fake Bot API that enforces Telegram's limits strictly (1 message a second to a private chat,
20 a minute to a group) and answers 429 past them."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.app.service import App, build_app
from bot.kernel.config import Settings
from tests.conftest import CONTENT
from tests.e2e.test_telegram_e2e import BOT, TOKEN
from tests.fakes.telegram import FakeTelegram

STAFF_CHAT = -1009990001
STAFF = 9001


@pytest.fixture
async def fake():
    async with FakeTelegram(token=TOKEN, username=BOT, limits=(30, 20, 1)) as fake:
        fake.chat(STAFF_CHAT, "supergroup", title="Cán bộ MTTQ")
        yield fake


@pytest.fixture
async def app(tmp_path: Path, fake: FakeTelegram, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="bot")
    app = await build_app(Settings(
        database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT, telegram_bot_token=TOKEN,
        telegram_api_url=fake.url, telegram_staff_ids=frozenset({str(STAFF)}),
        telegram_staff_chat_id=str(STAFF_CHAT)))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def test_greeting_and_menu_both_arrive_in_order_within_the_private_chat_limit(app: App, fake: FakeTelegram):
    fake.push_update(fake.text_update(501, "/start"))
    greeting, menu = await fake.wait_for(lambda m: m.chat_id == 501, count=2, timeout=5)
    assert greeting.text.startswith("Xin chào") and menu.callback_data
    assert fake.limit_breaches == 0  # paced, not refused


async def test_a_burst_of_canbo_gets_every_ticket_number_and_every_staff_post(app: App, fake: FakeTelegram):
    residents = range(601, 631)
    fake.fail_next(STAFF_CHAT, "retry_after", retry_after=1, times=2)  # the staff chat refuses for a moment
    for resident in residents:
        fake.push_update(fake.text_update(resident, f"/canbo Nhà tôi số {resident} bị dột, xin hỗ trợ"))
    for resident in residents:
        [told] = await fake.wait_for(lambda m, r=resident: m.chat_id == r and "#" in m.text, timeout=15)
        assert "Đã chuyển" in told.text
    # 30 cards to a group allowed 20 a minute: 20 go now, the rest are owed in order, none dropped
    await fake.wait_for(lambda m: m.chat_id == STAFF_CHAT, count=20, timeout=15)
    await asyncio.sleep(0.5)
    posted = [m.text for m in fake.sent_to(STAFF_CHAT)]
    owed = [r.text for r in app.core.replies.owed_to("telegram", str(STAFF_CHAT))]
    assert len(posted) + len(owed) == 30
    numbers = [int(t.split("#", 1)[1].split()[0].rstrip(".:,")) for t in posted + owed]
    assert sorted(numbers) == numbers == list(range(1, 31))
    rows = app.core.db
    assert await rows.fetchval("SELECT COUNT(*) FROM replies WHERE chat_id = ?", (str(STAFF_CHAT),)) == len(owed)


async def test_a_429_on_an_answer_is_sent_again_after_retry_after(app: App, fake: FakeTelegram):
    fake.fail_next(701, "retry_after", retry_after=1)
    fake.push_update(fake.text_update(701, "quy vi nguoi ngheo la gi"))
    [answer] = await fake.wait_for(lambda m: m.chat_id == 701, timeout=5)
    assert "Quỹ" in answer.text
