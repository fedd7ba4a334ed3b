"""End to end, the person behind the bot: the real app and real PTB over HTTP against the fake Bot
API server; assertions on what the fake recorded and on the SQLite file.

Residents, the staff chat and staff members are all Telegram here; the answer goes back through
the app's channel registry, the same road a Zalo resident's answer takes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from bot.app.service import App
from bot.broadcasts.store import Target
from bot.kernel.config import Settings
from tests.e2e.test_telegram_e2e import BOT, TOKEN, UNACCENTED, ask, exchange, press, running, telegram_settings
from tests.fakes.telegram import FakeTelegram, SentMessage

STAFF_CHAT = -1009990001
STAFF = 9001  # in TELEGRAM_STAFF_IDS
OUTSIDER = 9002  # a member of the staff chat without staff rights
DECLINED = "xe buýt ra sân bay mấy giờ chạy"  # out of scope: the bot declines it


@pytest.fixture
async def fake():
    async with FakeTelegram(token=TOKEN, username=BOT) as fake:
        fake.chat(STAFF_CHAT, "supergroup", title="Cán bộ MTTQ")
        yield fake


@pytest.fixture
def e2e_settings(tmp_path: Path, fake: FakeTelegram) -> Settings:
    return telegram_settings(tmp_path, fake, telegram_staff_ids=frozenset({str(STAFF)}),
                             telegram_staff_chat_id=str(STAFF_CHAT))


@pytest.fixture
async def app(e2e_settings: Settings, fake: FakeTelegram, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="bot")
    async with running(e2e_settings) as app:
        yield app


def db_rows(settings: Settings, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    with sqlite3.connect(settings.database_path) as db:
        db.row_factory = sqlite3.Row
        return db.execute(sql, params).fetchall()


async def staff_reply(fake: FakeTelegram, post: SentMessage, user_id: int, text: str,
                      first_name: str = "Cán bộ Hà") -> list[SentMessage]:
    """`user_id` replies (Telegram's reply) to the bot's message `post` in the staff chat."""
    update = fake.text_update(STAFF_CHAT, text, chat_type="supergroup", user_id=user_id, first_name=first_name,
                              title="Cán bộ MTTQ", reply_to_bot=True)
    update["message"]["reply_to_message"]["message_id"] = post.message_id
    return await exchange(fake, update)


async def step(fake: FakeTelegram, update: dict, count: int = 1) -> list[SentMessage]:
    """Push `update` while a flow waits for the next message (a "cảm ơn" marker would be taken as
    that message), and return the `count` messages the bot sends to that chat next."""
    event = update.get("message") or update["callback_query"]["message"]
    chat_id = event["chat"]["id"]
    last = max((m.message_id for m in fake.sent_to(chat_id)), default=0)
    fake.push_update(update)
    return await fake.wait_for(lambda m: m.chat_id == chat_id and m.message_id > last, count=count)


async def ticket_post(fake: FakeTelegram, number: int) -> SentMessage:
    [post] = await fake.wait_for(lambda m: m.chat_id == STAFF_CHAT and m.text.startswith(f"#{number} ·"))
    return post


# ---------------------------------------------------------------------- questions


async def test_declined_question_forwarded_answered_by_a_staff_reply_reaches_the_resident(
        app: App, fake: FakeTelegram, e2e_settings: Settings):
    resident = 6101
    decline, _suggest = await ask(fake, resident, DECLINED)
    assert "hof:q" in decline.callback_data

    [forwarded] = await press(fake, resident, "hof:q", decline.message_id)
    assert "#1" in forwarded.text and "/theodoi 1" in forwarded.text

    post = await ticket_post(fake, 1)
    assert DECLINED in post.text and "Lan (Telegram)" in post.text
    assert str(resident) not in post.text  # display name and channel, never the ids
    assert post.callback_data == ["hof:r:1", "hof:d:1"]
    assert [b["text"] for row in post.buttons for b in row] == ["Trả lời", "Đã xử lý"]

    [confirm] = await staff_reply(fake, post, STAFF, "Bạn xem lịch xe buýt ở bến xe; tuyến số 5 ra sân bay.")
    assert "#1" in confirm.text
    [answer] = await fake.wait_for(lambda m: m.chat_id == resident and "trả lời câu hỏi #1" in m.text)
    assert "tuyến số 5 ra sân bay" in answer.text

    [row] = db_rows(e2e_settings, "SELECT * FROM tickets WHERE id = 1")
    assert row["status"] == "answered" and row["answered_by"].startswith(f"telegram:{STAFF}")
    assert row["answered_at"] is not None and row["chat"] is not None


async def test_reply_from_someone_who_is_not_staff_is_ignored(app: App, fake: FakeTelegram,
                                                              e2e_settings: Settings, caplog):
    resident = 6102
    [forwarded] = await ask(fake, resident, "/canbo Xin hỏi lịch tiếp công dân tháng này của xã?")
    assert "#1" in forwarded.text
    post = await ticket_post(fake, 1)

    assert await staff_reply(fake, post, OUTSIDER, "Tôi trả lời thay nhé", first_name="Người lạ") == []
    await asyncio.sleep(0.2)
    assert not [m for m in fake.sent_to(resident) if "trả lời câu hỏi" in m.text]
    [row] = db_rows(e2e_settings, "SELECT status, answer FROM tickets WHERE id = 1")
    assert (row["status"], row["answer"]) == ("open", None)
    assert f"user {OUTSIDER}" in caplog.text and "not staff" in caplog.text

    # the same through the button and /traloi: refused for the outsider, fine for staff
    [refused] = await ask(fake, OUTSIDER, "/traloi 1 Tôi trả lời")
    assert "chỉ dành cho cán bộ" in refused.text
    [sent] = await ask(fake, STAFF, "/traloi 1 Lịch tiếp công dân niêm yết tại trụ sở UBND xã.")
    assert "#1" in sent.text
    await fake.wait_for(lambda m: m.chat_id == resident and "trả lời câu hỏi #1" in m.text)

    # "Trả lời" posts a prompt in the staff chat; replying to it answers the same ticket
    [prompt] = await step(fake, fake.callback_update(STAFF_CHAT, STAFF, "hof:r:1", post.message_id))
    assert prompt.text.startswith("#1:")
    assert "#1" in (await staff_reply(fake, prompt, STAFF, "Bổ sung: sáng thứ Hai hằng tuần."))[0].text
    await fake.wait_for(lambda m: m.chat_id == resident and "sáng thứ Hai" in m.text)
    [row] = db_rows(e2e_settings, "SELECT status, answer FROM tickets WHERE id = 1")
    assert row["status"] == "answered" and "niêm yết" in row["answer"] and "sáng thứ Hai" in row["answer"]


async def test_followups_are_appended_and_asking_for_a_person_in_words_works(app: App, fake: FakeTelegram,
                                                                             e2e_settings: Settings):
    resident = 6103
    [prompt] = await step(fake, fake.text_update(resident, "cho tôi gặp cán bộ"))
    assert "Mời gõ câu hỏi" in prompt.text
    [forwarded] = await ask(fake, resident, "Nhà tôi bị sạt lở sau bão, xin hỏi ai hỗ trợ?")
    assert "#1" in forwarded.text
    [appended] = await ask(fake, resident, "Nhà ở thôn Phước Thiện, từ tuần trước")
    assert "#1" in appended.text
    [answered] = await ask(fake, resident, UNACCENTED)  # a question the bot can answer is answered
    assert "Quỹ" in answered.text
    rows = db_rows(e2e_settings, "SELECT ticket, direction, text FROM ticket_messages ORDER BY id")
    assert [(r[0], r[1], r[2]) for r in rows] == [(1, "resident", "Nhà ở thôn Phước Thiện, từ tuần trước")]
    await fake.wait_for(lambda m: m.chat_id == STAFF_CHAT and "bổ sung" in m.text and "Phước Thiện" in m.text)

    post = await ticket_post(fake, 1)
    [done] = await step(fake, fake.callback_update(STAFF_CHAT, STAFF, "hof:d:1", post.message_id))
    assert "#1" in done.text and "đã xử lý" in done.text
    [row] = db_rows(e2e_settings, "SELECT status, closed_by FROM tickets WHERE id = 1")
    assert row["status"] == "closed"


# ---------------------------------------------------------------------- petitions


async def test_petition_with_a_wrong_locality_corrected_and_theodoi_only_for_its_author(
        app: App, fake: FakeTelegram, e2e_settings: Settings):
    author, other = 6201, 6202
    await ask(fake, author, "/start")
    [topics] = await press(fake, author, "menu:feedback")  # the menu's "Gửi ý kiến" starts /gopy
    assert "pet:t:moi-truong" in topics.callback_data

    [where] = await step(fake, fake.callback_update(author, author, "pet:t:moi-truong"))
    assert "xã, phường nào" in where.text
    [wrong] = await step(fake, fake.text_update(author, "phan rag"))
    assert "Không tìm thấy" in wrong.text and "pet:l:phan-rang" in wrong.callback_data
    [content_prompt] = await step(fake, fake.callback_update(author, author, "pet:l:phan-rang"))
    assert "Phường Phan Rang" in content_prompt.text

    [consent] = await exchange(fake, fake.photo_update(author, caption="Rác thải đổ ở đầu hẻm 12 đã 2 tuần."))
    assert "Đồng ý gửi" in [b["text"] for row in consent.buttons for b in row]
    assert "chỉ cán bộ phụ trách được xem" in consent.text
    [received] = await press(fake, author, "pet:ok:")
    assert "#1" in received.text and "/theodoi 1" in received.text

    [row] = db_rows(e2e_settings, "SELECT * FROM tickets WHERE id = 1")
    assert (row["kind"], row["topic"], row["locality"], row["photo"]) == ("petition", "moi-truong", "phan-rang",
                                                                          "AgAC800")
    assert row["consent_at"] is not None and row["text"] == "Rác thải đổ ở đầu hẻm 12 đã 2 tuần."
    post = await ticket_post(fake, 1)
    assert "Ý kiến, kiến nghị" in post.text and "Phan Rang" in post.text and "Môi trường" in post.text
    # The resident's photo follows the card in the staff chat, as a reply to it.
    [photo] = await fake.wait_for_call("sendPhoto")
    assert photo.params["photo"] == "AgAC800" and str(photo.params["chat_id"]) == str(STAFF_CHAT)
    assert photo.params["reply_parameters"]["message_id"] == post.message_id

    [refused] = await ask(fake, other, "/theodoi 1")
    assert "Không tìm thấy" in refused.text and "Rác thải" not in refused.text
    [mine] = await ask(fake, author, "/theodoi 1")
    assert "đang chờ trả lời" in mine.text and "Rác thải" in mine.text

    [listing] = await ask(fake, STAFF, "/gopy_moi")
    assert "#1" in listing.text and "Môi trường" in listing.text
    [not_staff] = await ask(fake, other, "/gopy_moi")
    assert "chỉ dành cho cán bộ" in not_staff.text


# ---------------------------------------------------------------------- privacy


async def test_xoadulieu_removes_every_personal_row_and_broadcasts_stop(app: App, fake: FakeTelegram,
                                                                        e2e_settings: Settings):
    resident, name = 777000123, "Trần Thị Mười"
    [consent] = await ask(fake, resident, "/diaban phan-rang", first_name=name)
    update = fake.callback_update(resident, resident, "sub:y:phan-rang", consent.message_id, first_name=name)
    await exchange(fake, update)
    await ask(fake, resident, DECLINED, first_name=name)
    await ask(fake, resident, "/canbo Tôi muốn hỏi về hộ cận nghèo", first_name=name)
    post = await ticket_post(fake, 1)
    assert name in post.text

    broadcasts = app.core.broadcasts
    first = await broadcasts.create("Thông báo họp tổ dân phố", Target("residents", "phan-rang"))
    assert app.worker is not None
    app.worker.notify()
    await fake.wait_for(lambda m: m.chat_id == resident and "họp tổ dân phố" in m.text)

    [data] = await ask(fake, resident, "/dulieu", first_name=name)
    assert name in data.text and str(resident) in data.text and "Phan Rang" in data.text and "#1" in data.text

    [confirm] = await ask(fake, resident, "/xoadulieu", first_name=name)
    assert confirm.callback_data == ["prv:y", "prv:n"]
    fake.push_update(fake.callback_update(resident, resident, "prv:y", confirm.message_id, first_name=name))
    await fake.wait_for(lambda m: m.chat_id == resident and m.text.startswith("Đã xóa dữ liệu"))

    # every text column of every table: neither the id nor the name is left anywhere
    with sqlite3.connect(e2e_settings.database_path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            for column in columns:
                hits = db.execute(f"SELECT COUNT(*) FROM {table} WHERE CAST({column} AS TEXT) LIKE ?"
                                  f" OR CAST({column} AS TEXT) LIKE ?", (f"%{resident}%", f"%{name}%")).fetchone()[0]
                assert hits == 0, f"{table}.{column} still holds personal data"
        ticket = db.execute("SELECT chat, user_id, display_name, status, text FROM tickets WHERE id = 1").fetchone()
        assert ticket[:4] == (None, None, None, "closed") and "cận nghèo" in ticket[4]  # anonymous, counted
        assert db.execute("SELECT COUNT(*) FROM question_log WHERE text = ?", (DECLINED,)).fetchone()[0] == 1
        assert db.execute("SELECT total FROM broadcasts WHERE id = ?", (first,)).fetchone()[0] == 1
    # nor in the bytes of the files, while the service runs (what a SIGKILL now would leave on disk):
    # freed space is overwritten (secure_delete) and the -wal file was checkpointed and truncated
    path = e2e_settings.database_path
    for file in (path, path.with_name(path.name + "-wal")):
        data = file.read_bytes() if file.exists() else b""
        assert data.count(str(resident).encode()) == 0 and data.count(name.encode()) == 0, file

    # the staff-chat post no longer shows the name
    await fake.wait_for(lambda m: m.message_id == post.message_id and m.chat_id == STAFF_CHAT and m.edited)
    assert all(name not in m.text for m in fake.sent_to(STAFF_CHAT))

    second = await broadcasts.create("Thông báo thứ hai", Target("residents", "phan-rang"))
    app.worker.notify()
    await asyncio.sleep(0.5)
    assert not [m for m in fake.sent_to(resident) if "thứ hai" in m.text]
    report = await broadcasts.report(second)
    assert report is not None and report.total == 0


# ---------------------------------------------------------------------- abuse limits


async def test_a_flood_gets_one_notice_and_others_are_still_answered(app: App, fake: FakeTelegram):
    flooder, neighbour = 6301, 6302
    limiter = app.core.handoff.limiter  # type: ignore[union-attr]
    for _ in range(100):
        fake.push_update(fake.text_update(flooder, UNACCENTED))
    [answer] = await ask(fake, neighbour, UNACCENTED)
    assert "Quỹ" in answer.text
    for _ in range(300):
        if limiter.dropped >= 80:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    # one private chat gets at most one message a second: what is not sent yet is owed, in order
    texts = [m.text for m in fake.sent_to(flooder)]
    texts += [r.text for r in app.core.replies.owed_to("telegram", str(flooder))]
    notices = [t for t in texts if "Vui lòng chờ" in t]
    assert len(notices) == 1 and limiter.dropped == 80
    assert len(texts) == 21 and texts[-1] == notices[0]  # 20 answers, then the notice, then silence
    [again] = await ask(fake, neighbour, UNACCENTED)
    assert "Quỹ" in again.text
