"""The conversation itself, channel-free, on the shipped content and a real SQLite file."""

import pytest

from bot.app.wiring import build_core
from bot.channels.base import Inbound
from bot.conversation.routes import Routes


@pytest.fixture
async def core(settings):
    core = await build_core(settings)
    yield core
    await core.close()


def said(inbound_text: str, **kw) -> Inbound:
    return Inbound("telegram", kw.pop("chat_id", "42"), kw.pop("user_id", "42"), text=inbound_text, **kw)


def option(data: str) -> Inbound:
    return Inbound("telegram", "42", "42", kind="option", option=data)


async def test_start_greets_and_shows_the_five_menu_items(core):
    replies = await core.dialogue.handle(said("/start"))
    assert "Xin chào" in replies[0].text
    labels = [o.label for o in replies[-1].options]
    assert labels == ["Chương trình hỗ trợ", "Đặt câu hỏi", "Tin tức Mặt trận", "Gửi ý kiến", "Liên hệ"]
    assert all(len(o.data.encode()) <= 64 for o in replies[-1].options)


async def test_start_payload_opens_an_entry(core):
    replies = await core.dialogue.handle(said("/start kb_nha-dai-doan-ket"))
    assert replies[0].title == core.knowledge.content.entry("nha-dai-doan-ket").title


async def test_browse_programs_then_topic_then_entry(core):
    programs = await core.dialogue.handle(option("menu:programs"))
    topic = next(o for o in programs[0].options if o.data.startswith("topic:quy-vi"))
    entries = await core.dialogue.handle(option(topic.data))
    first = entries[0].options[0]
    assert first.data.startswith("kb:")
    answer = await core.dialogue.handle(option(first.data))
    assert answer[0].title == first.label
    assert all(len(o.data.encode()) <= 64 for r in (programs, entries, answer) for o in r[0].options)


@pytest.mark.parametrize("question", ["Quỹ vì người nghèo là gì?", "quy vi nguoi ngheo la gi"])
async def test_question_answered_with_title_and_related(core, question):
    replies = await core.dialogue.handle(said(question))
    assert replies[0].title == core.knowledge.content.entry("quy-vi-nguoi-ngheo").title
    assert any(o.data.startswith("kb:") for o in replies[0].options)


async def test_out_of_scope_is_declined_with_contact_and_topics(core):
    replies = await core.dialogue.handle(said("rạp phim tối nay chiếu phim gì"))
    assert "chưa có câu trả lời" in replies[0].text
    assert core.knowledge.content.organization["name"] in replies[0].text
    assert any(o.data.startswith("topic:") for o in replies[1].options)


async def test_every_question_is_logged_with_its_outcome(core):
    await core.dialogue.handle(said("nha dai doan ket la gi"))
    await core.dialogue.handle(said("rạp phim tối nay"))
    rows = await core.db.fetchall("SELECT text, outcome, entry_id FROM question_log ORDER BY id")
    assert [(r["text"], r["outcome"]) for r in rows] == [
        ("nha dai doan ket la gi", "answered"),
        ("rạp phim tối nay", "declined"),
    ]


@pytest.mark.parametrize(
    ("text", "key"), [("Xin chào", "small_talk_hello"), ("cảm ơn ad nhiều nha", "small_talk_thanks")]
)
async def test_small_talk_gets_a_short_reply_not_an_answer(core, text, key):
    replies = await core.dialogue.handle(said(text))
    assert [r.text for r in replies] == [core.dialogue.say(key)]
    assert await core.db.fetchval("SELECT COUNT(*) FROM question_log") == 0


@pytest.mark.parametrize("text", ["🙂🙂🙂", "   ", "\x00\x01\x02", "?!..."])
async def test_no_words_gets_a_polite_sentence(core, text):
    replies = await core.dialogue.handle(said(text))
    assert [r.text for r in replies] == [core.dialogue.say("not_understood")]


async def test_huge_message_is_answered_and_says_it_was_cut(core):
    text = "Cho tôi hỏi quỹ vì người nghèo là gì? " + "Tôi ở thôn xa lắm. " * 600
    replies = await core.dialogue.handle(said(text))
    assert "ký tự đầu" in replies[0].text
    assert len(replies) >= 2


async def test_media_and_unknown_command_and_stale_option(core):
    media = await core.dialogue.handle(Inbound("telegram", "42", "42", kind="media", media_type="sticker"))
    assert media[0].text == core.dialogue.say("media_unsupported")
    unknown = await core.dialogue.handle(said("/khongcolenhnay"))
    assert unknown[0].text == core.dialogue.say("unknown_command")
    stale = await core.dialogue.handle(option("kb:khong-ton-tai"))
    assert stale[0].text == core.dialogue.say("stale_option")


async def test_group_is_silent_unless_addressed(core):
    quiet = await core.dialogue.handle(said("quỹ vì người nghèo là gì", chat_id="-100", chat_kind="group",
                                            addressed=False))
    assert quiet == []
    spoken = await core.dialogue.handle(said("quỹ vì người nghèo là gì", chat_id="-100", chat_kind="group"))
    assert spoken and spoken[0].title


async def test_chats_are_recorded_with_first_and_last_seen(core):
    await core.dialogue.handle(said("/start", display_name="Bà Tư"))
    row = await core.db.fetchone("SELECT * FROM chats WHERE chat_id = '42'")
    assert row["kind"] == "private" and row["display_name"] == "Bà Tư"
    assert row["first_seen"] <= row["last_seen"]


async def test_a_failing_handler_becomes_a_polite_error(core):
    async def broken(turn):
        raise RuntimeError("boom")

    core.dialogue.include(Routes(owner="test", commands={"hong": broken}))
    replies = await core.dialogue.handle(said("/hong"))
    assert replies[0].text == core.dialogue.say("error")
