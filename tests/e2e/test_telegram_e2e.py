"""End to end: the real app (`bot.app.service.build_app`, shipped content, a SQLite file) and real PTB,
over HTTP, against the fake Bot API server in tests/fake_telegram.py.

Each test starts the whole service, talks to it only through Telegram updates, and reads only
what the fake recorded (and, for the question log, the SQLite file).

"Nothing more was sent" is made deterministic with a marker: updates of one chat are handled
one after the other, in order, so once the answer to a later "cảm ơn" has arrived, every reply
to the earlier update has been sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import html
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app.service import App, build_app
from bot.kernel.config import Settings
from bot.kernel.content import Content
from tests.conftest import CONTENT, log_everything
from tests.fakes.telegram import FakeTelegram, SentMessage

TOKEN = "424242:AAE2e-Secret_Token_value"
BOT = "LoaPhuongBot"
GROUP = -1001234500
THANKS = "Dạ, không có gì ạ"  # the start of the bot's answer to "cảm ơn" (content/messages.yaml)
MENU = ["Chương trình hỗ trợ", "Đặt câu hỏi", "Tin tức Mặt trận", "Gửi ý kiến", "Liên hệ"]
ACCENTED = "Quỹ vì người nghèo là gì?"
UNACCENTED = "quy vi nguoi ngheo la gi"


@pytest.fixture
async def fake():
    async with FakeTelegram(token=TOKEN, username=BOT) as fake:
        yield fake


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[App]:
    """The whole service on `settings`, started, and stopped afterwards."""
    app = await build_app(settings)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def telegram_settings(tmp_path: Path, fake: FakeTelegram, **changes: object) -> Settings:
    """The service on `fake`, a fresh database under tmp_path, the shipped content; `changes` on top."""
    return dataclasses.replace(Settings(
        database_path=tmp_path / "data" / "bot.sqlite3", content_dir=CONTENT,
        telegram_bot_token=TOKEN, telegram_api_url=fake.url,
        telegram_chat_rate_per_second=50,  # per-chat pacing: test_replies_e2e.py
    ), **changes)


@pytest.fixture
def e2e_settings(tmp_path: Path, fake: FakeTelegram) -> Settings:
    return telegram_settings(tmp_path, fake)


@pytest.fixture
async def app(e2e_settings: Settings, fake: FakeTelegram, caplog: pytest.LogCaptureFixture):
    # Every log line of the run, start-up included, at DEBUG (httpx logs request URLs at INFO).
    log_everything(caplog, "httpx", "httpcore", "telegram", "bot")
    async with running(e2e_settings) as app:
        yield app


def quy_title(content: Content) -> str:
    entry = content.entry("quy-vi-nguoi-ngheo")
    assert entry is not None
    return entry.title


async def exchange(fake: FakeTelegram, update: dict) -> list[SentMessage]:
    """Push `update`, then a "thanks" marker in the same chat; return what the bot sent for `update`."""
    event = update.get("message") or update["callback_query"]["message"]
    chat_id, chat_type = event["chat"]["id"], event["chat"]["type"]
    before = fake.sent_to(chat_id)
    last = max((m.message_id for m in before), default=0)
    fake.push_update(update)
    marker = "cảm ơn" if chat_type == "private" else f"@{BOT} cảm ơn"
    fake.push_update(fake.text_update(chat_id, marker, chat_type=chat_type))
    await fake.wait_for(lambda m: m.chat_id == chat_id and m.message_id > last and m.text.startswith(THANKS),
                        timeout=3)
    sent = fake.sent_to(chat_id)[len(before):]
    assert sent[-1].text.startswith(THANKS), "nothing may follow the marker's answer"
    return sent[:-1]


async def ask(fake: FakeTelegram, chat_id: int, text: str, **kw) -> list[SentMessage]:
    return await exchange(fake, fake.text_update(chat_id, text, **kw))


async def press(fake: FakeTelegram, chat_id: int, data: str, message_id: int | None = None) -> list[SentMessage]:
    """Press the button `data` on the bot's message (default: its last with buttons); check it was answered."""
    shown = {m.message_id: m for m in fake.sent_to(chat_id)}
    message_id = message_id or max(i for i, m in shown.items() if m.callback_data)
    assert data in shown[message_id].callback_data, f"{data!r} is not a button of message {message_id}"
    update = fake.callback_update(chat_id, chat_id, data, message_id)
    sent = await exchange(fake, update)
    query_id = update["callback_query"]["id"]
    assert [c for c in fake.calls_to("answerCallbackQuery") if c.params.get("callback_query_id") == query_id]
    return sent


def html_title(title: str) -> str:
    return f"<b>{html.escape(title, quote=False)}</b>"


# ---------------------------------------------------------------------- private chat


async def test_start_shows_greeting_and_menu_then_browsing_reaches_an_entry(app: App, fake: FakeTelegram):
    greeting, menu = await ask(fake, 501, "/start")
    assert greeting.text.startswith("Xin chào!") and greeting.parse_mode == "HTML"
    assert [b["text"] for row in menu.buttons for b in row] == MENU
    assert all(d.startswith("menu:") for d in menu.callback_data)

    [programs] = await press(fake, 501, "menu:programs")
    topics = [d for d in programs.callback_data if d.startswith("topic:")]
    assert "topic:quy-vi-nguoi-ngheo" in topics and "menu:main" in programs.callback_data

    [topic] = await press(fake, 501, "topic:quy-vi-nguoi-ngheo")
    first = next(b for row in topic.buttons for b in row if b["callback_data"].startswith("kb:"))

    [entry] = await press(fake, 501, first["callback_data"])
    assert entry.raw.startswith(html_title(first["text"]) + "\n\n")
    assert entry.text.startswith(first["text"])
    assert len(fake.calls_to("answerCallbackQuery")) == 3


async def test_accented_and_unaccented_questions_get_the_same_entry(app: App, fake: FakeTelegram,
                                                                    content: Content):
    title = quy_title(content)
    for chat_id, question in ((502, ACCENTED), (503, UNACCENTED)):
        [answer] = await ask(fake, chat_id, question)
        assert answer.raw.startswith(html_title(title)), (question, answer.text[:80])
        assert "menu:main" in answer.callback_data


async def test_out_of_scope_question_is_declined_with_contact_and_topics(app: App, fake: FakeTelegram,
                                                                         content: Content):
    decline, suggest = await ask(fake, 504, "rạp phim tối nay chiếu phim gì")
    assert "chưa có câu trả lời chắc chắn" in decline.text
    assert content.organization["name"] in decline.text and str(content.organization["phone"]) in decline.text
    topics = [d for d in suggest.callback_data if d.startswith("topic:")]
    assert len(topics) == len(content.topics)


async def test_a_complaint_is_sent_as_a_petition_from_the_button_under_its_answer(app: App, fake: FakeTelegram):
    complaint = "Cống trước nhà tôi tắc mấy tháng rồi, nước thải bốc mùi hôi thối"
    [answer] = await ask(fake, 509, complaint)
    assert answer.callback_data[0] == "pet:q:gui-y-kien-kien-nghi", answer.callback_data
    [kept] = await press(fake, 509, "pet:q:gui-y-kien-kien-nghi")
    assert "Đã ghi lại nội dung" in kept.text
    # The place is asked for next, so no "cảm ơn" marker here (it would be read as the place's name).
    last = max(m.message_id for m in fake.sent_to(509))
    fake.push_update(fake.callback_update(509, 509, "pet:t:moi-truong", kept.message_id))
    await fake.wait_for(lambda m: m.chat_id == 509 and m.message_id > last and "xã, phường nào" in m.text, timeout=3)
    [consent] = await ask(fake, 509, "Phan Rang")
    assert "Xem lại ý kiến" in consent.text and complaint in consent.text
    [received] = await press(fake, 509, "pet:ok:")
    assert "#1" in received.text


# ---------------------------------------------------------------------- groups


async def test_group_answers_only_mentions_and_replies_to_the_bot(app: App, fake: FakeTelegram, content: Content):
    title = quy_title(content)
    unaddressed = fake.push_update(fake.text_update(GROUP, ACCENTED, chat_type="supergroup", user_id=1001))
    # The update was fetched and confirmed, and half a second more passed: still silence.
    await fake.wait_for_call("getUpdates", lambda c: int(c.params.get("offset") or 0) > unaddressed, timeout=3)
    await asyncio.sleep(0.5)
    assert fake.sent_to(GROUP) == []

    [answer] = await ask(fake, GROUP, f"@{BOT} {ACCENTED}", chat_type="supergroup", user_id=1002)
    assert answer.raw.startswith(html_title(title))

    [followup] = await ask(fake, GROUP, "nha dai doan ket dang ky the nao", chat_type="supergroup",
                           user_id=1003, reply_to_bot=True)
    # an answer about it, or a choice between close entries: either way, spoken to
    seen = followup.text + " ".join(b["text"] for row in followup.buttons for b in row)
    assert "Đại đoàn kết" in seen and any(d.startswith("kb:") for d in followup.callback_data)
    assert all(m.chat_id == GROUP for m in fake.sent) and len(fake.sent_to(GROUP)) == 4  # + 2 markers


# ---------------------------------------------------------------------- odd input


async def test_odd_messages_each_get_a_polite_reply_and_the_service_keeps_running(app: App, fake: FakeTelegram,
                                                                                  content: Content):
    chat = 505
    ramble = ("Dạ thưa cán bộ, nhà tôi ở xóm dưới, mấy năm nay làm ăn khó khăn lắm, con cái đi làm xa. " * 120)
    ramble = ramble[:10_000]
    assert len(ramble) == 10_000
    long_replies = await ask(fake, chat, ramble)
    assert long_replies[0].text.startswith("Tin nhắn khá dài")  # says it read only the beginning
    assert 1 <= len(long_replies) <= 3 and all(len(m.text) <= 4096 for m in long_replies)

    [emoji] = await ask(fake, chat, "🙏🙏😀🎉")
    assert emoji.text.startswith("Trợ lý chỉ đọc được câu hỏi bằng chữ")

    polite = "Trợ lý hiện chỉ đọc được tin nhắn chữ"
    [sticker] = await exchange(fake, fake.sticker_update(chat))
    assert polite in sticker.text
    [photo] = await exchange(fake, fake.photo_update(chat, caption="ảnh giấy tờ"))
    assert polite in photo.text

    [answer] = await ask(fake, chat, UNACCENTED)
    assert answer.raw.startswith(html_title(quy_title(content)))
    assert app.channels["telegram"]._app.running  # type: ignore[attr-defined]


@pytest.mark.parametrize("garbage", [
    {"message": {"message_id": "not a number", "chat": "nowhere"}},
    {"callback_query": 42},
    ["not", "an", "update"],
])
async def test_malformed_update_is_skipped_and_the_next_question_answered(app: App, fake: FakeTelegram,
                                                                          content: Content, garbage, caplog):
    bad = fake.push_raw(garbage)
    [answer] = await ask(fake, 506, ACCENTED)
    assert answer.raw.startswith(html_title(quy_title(content)))
    assert f"update {bad if isinstance(garbage, dict) else None} is malformed" in caplog.text


# ---------------------------------------------------------------------- logs and the store


async def test_bot_token_never_appears_in_the_logs(app: App, fake: FakeTelegram, caplog):
    await ask(fake, 507, "/start")
    await press(fake, 507, "menu:contact")
    await ask(fake, 507, UNACCENTED)
    await exchange(fake, fake.sticker_update(507))
    fake.push_raw({"message": "garbage"})
    fake.fail_next(508, "blocked")  # a send that fails: logged with Telegram's error
    fake.push_update(fake.text_update(508, ACCENTED))
    fake.push_update(fake.text_update(GROUP, f"@{BOT} {UNACCENTED}", chat_type="supergroup"))
    await fake.wait_for(lambda m: m.chat_id == GROUP, timeout=3)
    await fake.wait_for_call("sendMessage", lambda c: c.params.get("chat_id") in (508, "508"), timeout=3)
    await app.stop()  # shut-down lines too (the fixture's second stop is a no-op)

    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request: POST" in text, "httpx request lines were not captured: the check would be empty"
    assert "/bot***/getUpdates" in text
    assert "reply to 508 failed" in text
    secret = TOKEN.split(":", 1)[1]
    assert TOKEN not in text and secret not in text


async def test_questions_are_logged_with_their_outcome(app: App, fake: FakeTelegram, e2e_settings: Settings):
    await ask(fake, 509, ACCENTED)
    await ask(fake, 509, UNACCENTED)
    await ask(fake, 509, "rạp phim tối nay chiếu phim gì")
    await ask(fake, 509, "/start")  # commands and thanks are not questions
    with sqlite3.connect(e2e_settings.database_path) as db:
        rows = db.execute(
            "SELECT q.text, q.outcome, q.entry_id, q.channel, c.chat_id FROM question_log q"
            " JOIN chats c ON c.id = q.chat ORDER BY q.id"
        ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        (ACCENTED, "answered"), (UNACCENTED, "answered"), ("rạp phim tối nay chiếu phim gì", "declined"),
    ]
    assert rows[0][2] == rows[1][2] == "quy-vi-nguoi-ngheo"
    assert {(r[3], r[4]) for r in rows} == {("telegram", "509")}
