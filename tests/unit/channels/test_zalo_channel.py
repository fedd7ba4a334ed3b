"""The Zalo adapter alone, over real HTTP against tests/fake_zalo.py: the client's error classes,
rendering (plain text, numbered options, splitting), reading updates, polling (408, repeats)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.channels.base import DeliveryError, Inbound, Option, Reply
from bot.channels.zalo_bot.channel import ZaloBotChannel, ZaloBotClient, merge_replies, render
from tests.fakes.zalo import FakeZalo

TOKEN = "3141592653:zalo-Channel_secret-KEY"


def hint(number: int, label: str) -> str:
    return f"Gõ {number} để chọn “{label}”."


@pytest.fixture
async def fake():
    async with FakeZalo(token=TOKEN, max_poll_wait=0.05) as fake:
        yield fake


class Echo:
    """A dialogue stand-in: records inbounds, answers with what it was given."""

    def __init__(self, replies: list[Reply] | None = None) -> None:
        self.seen: list[Inbound] = []
        self.replies = replies

    async def __call__(self, inbound: Inbound) -> list[Reply]:
        self.seen.append(inbound)
        if self.replies is not None:
            return self.replies
        return [Reply(f"echo: {inbound.kind} {inbound.option or inbound.text}")]


def channel_for(fake: FakeZalo, handler, **kw) -> ZaloBotChannel:
    kw.setdefault("webhook_url", "https://bot.example.vn/zalo/webhook")
    kw.setdefault("webhook_secret", "webhook-secret-1")
    return ZaloBotChannel(fake.token, fake.url, handler, hint=hint, **kw)


# ---------------------------------------------------------------------- the client


async def test_client_maps_every_error_to_the_workers_classes(fake: FakeZalo):
    client = ZaloBotClient(TOKEN, fake.url)
    try:
        assert (await client.get_me())["id"] == fake.bot_id
        assert (await client.send_message("u1", "chào"))["message_id"]
        for code, kind in ((403, "gone"), (404, "gone"), (500, "transient"), (502, "transient")):
            fake.fail_next("u1", code)
            with pytest.raises(DeliveryError) as caught:
                await client.send_message("u1", "x")
            assert caught.value.kind == kind, code
        with pytest.raises(DeliveryError) as caught:
            await client.send_message("u1", "x" * 2001)
        assert caught.value.kind == "bad_request" and "2000" in caught.value.reason
        fake.quota = len(fake.sent)
        with pytest.raises(DeliveryError) as caught:
            await client.send_message("u1", "x")
        assert (caught.value.kind, caught.value.reason) == ("rate_limited", "quota")
        assert caught.value.retry_after and caught.value.retry_after >= 600
        assert await client.get_updates(1) == []  # 408: nothing new
        await client.set_webhook("https://bot.example.vn/zalo/webhook", "webhook-secret-1")
        assert (await client.get_webhook_info())["url"] == "https://bot.example.vn/zalo/webhook"
        await client.delete_webhook()
        fake.quota = None
        assert (await client.send_photo("u1", "https://example.vn/a.jpg", "Ảnh"))["message_id"]
        await client.send_chat_action("u1")
    finally:
        await client.aclose()
    bad = ZaloBotClient("3141592653:wrong-token-value", fake.url)
    try:
        with pytest.raises(DeliveryError) as caught:
            await bad.get_me()
        assert caught.value.kind == "unauthorized"
    finally:
        await bad.aclose()
    dead = ZaloBotClient(TOKEN, "http://127.0.0.1:9", timeout=1)
    try:
        with pytest.raises(DeliveryError) as caught:
            await dead.get_me()
        assert caught.value.kind == "transient" and TOKEN not in caught.value.reason
    finally:
        await dead.aclose()


async def test_a_refused_token_stops_the_channel_with_one_clear_line(fake: FakeZalo, caplog):
    caplog.set_level(logging.INFO)
    channel = channel_for(fake, Echo())
    await channel.start()
    try:
        fake.token = "3141592653:rotated-token-now"  # the token was revoked while running
        with pytest.raises(DeliveryError) as caught:
            await channel.send("u1", Reply("xin chào"))
        assert caught.value.kind == "unauthorized" and not channel.running
        with pytest.raises(DeliveryError):
            await channel.send("u1", Reply("xin chào"))
        lines = [r for r in caplog.records if "ZALO_BOT_TOKEN" in r.getMessage()]
        assert len(lines) == 1 and lines[0].levelno == logging.ERROR
    finally:
        await channel.stop()
    assert TOKEN not in caplog.text


# ---------------------------------------------------------------------- rendering


def test_render_is_plain_text_with_the_title_alone_and_numbered_options():
    reply = Reply("Quỹ do **Ban vận động** quản lý.\n- giúp hộ nghèo\n- giúp khi thiên tai", title="Quỹ **VNN**",
                  options=(Option("Ủng hộ thế nào?", "kb:a"), Option("Về menu chính", "menu:main")))
    [text] = render(reply, 2000, hint)
    assert text == (
        "Quỹ VNN\n\nQuỹ do Ban vận động quản lý.\n• giúp hộ nghèo\n• giúp khi thiên tai\n\n"
        "1. Ủng hộ thế nào?\n2. Về menu chính\n\nGõ 1 để chọn “Ủng hộ thế nào?”."
    )
    assert "*" not in text and "<" not in text


def test_long_text_is_split_in_order_under_2000_with_options_last():
    paragraphs = [f"Đoạn {i}. " + "Nội dung thông báo của Mặt trận. " * 20 for i in range(12)]
    reply = Reply("\n\n".join(paragraphs), options=(Option("Đã nhận", "ack:1"),))
    pieces = render(reply, 2000, hint)
    assert len(pieces) >= 4 and all(len(p) <= 2000 for p in pieces)
    joined = "\n\n".join(pieces)
    assert [joined.index(f"Đoạn {i}.") for i in range(12)] == sorted(joined.index(f"Đoạn {i}.") for i in range(12))
    assert pieces[-1].endswith("1. Đã nhận\n\nGõ 1 để chọn “Đã nhận”.")
    assert all(p.startswith("Đoạn") for p in pieces[:-1])  # cut at paragraph breaks


def test_replies_of_one_turn_are_merged_to_save_quota():
    merged = merge_replies([Reply("Xin chào!"), Reply("Chọn mục:", options=(Option("A", "a"),)), Reply("Sau")])
    assert [m.text for m in merged] == ["Xin chào!\n\nChọn mục:", "Sau"]
    assert merged[0].options == (Option("A", "a"),)


# ---------------------------------------------------------------------- receiving


async def test_numbers_and_option_words_come_back_as_options(fake: FakeZalo):
    menu = [Reply("Chào bạn"), Reply("Chọn:", options=(Option("Chương trình hỗ trợ", "menu:programs"),
                                                        Option("Liên hệ", "menu:contact")))]
    echo = Echo(menu)
    channel = channel_for(fake, echo)
    await channel.start()
    try:
        for text in ("/start", "2", "chuong trinh ho tro", "Liên hệ!", "3", "dangky phan-rang", "huy dong quy"):
            await channel.process_update(fake.text_update("u1", text))
            await channel.drain()
    finally:
        await channel.stop()
    got = [(i.kind, i.option or i.text) for i in echo.seen]
    assert got == [("text", "/start"), ("option", "menu:contact"), ("option", "menu:programs"),
                   ("option", "menu:contact"), ("text", "3"), ("text", "/dangky phan-rang"),
                   ("text", "huy dong quy")]
    [first] = fake.sent_to("u1")[:1]
    assert first.text == ("Chào bạn\n\nChọn:\n\n1. Chương trình hỗ trợ\n2. Liên hệ\n\n"
                          "Gõ 1 để chọn “Chương trình hỗ trợ”.")


async def test_options_of_several_messages_in_one_turn_are_numbered_on(fake: FakeZalo):
    replies = [Reply("Chưa có câu trả lời.", options=(Option("Gặp cán bộ", "hof:q"),)),
               Reply("Hoặc chủ đề:", options=(Option("BHYT", "topic:bhyt"), Option("Quỹ", "topic:quy")))]
    echo = Echo(replies)
    channel = channel_for(fake, echo)
    await channel.start()
    try:
        await channel.process_update(fake.text_update("u1", "abc"))
        await channel.drain()
        await channel.process_update(fake.text_update("u1", "3"))
        await channel.drain()
    finally:
        await channel.stop()
    first, second = fake.sent_to("u1")[:2]
    assert "1. Gặp cán bộ" in first.text and "2. BHYT\n3. Quỹ" in second.text
    assert echo.seen[-1].option == "topic:quy"


async def test_updates_are_read_whatever_they_carry(fake: FakeZalo):
    echo = Echo()
    channel = channel_for(fake, echo)
    await channel.start()
    try:
        group = fake.text_update("g1", "@Loa Phường  hỏi về bhyt", chat_type="GROUP", user_id="u7", name="Tư")
        assert await channel.process_update(group)
        assert not await channel.process_update(group)  # the same message_id again: skipped
        await channel.process_update(fake.text_update("g1", "@bot.loaphuong DangKy phan-rang", chat_type="GROUP"))
        await channel.process_update(fake.image_update("u1"))
        await channel.process_update(fake.sticker_update("u1"))
        await channel.process_update(fake.unsupported_update("u1"))
        await channel.process_update({"event_name": "message.unsupported.received"})  # no message: ignored
        bot_said = fake.text_update("u2", "hi")
        bot_said["message"]["from"]["is_bot"] = True
        await channel.process_update(bot_said)
        assert not await channel.process_update(["not", "an", "object"])
        await channel.drain()
    finally:
        await channel.stop()
    first, second = [i for i in echo.seen if i.chat_id == "g1"]
    assert (first.chat_kind, first.chat_id, first.user_id, first.display_name, first.text, first.addressed) == (
        "group", "g1", "u7", "Tư", "hỏi về bhyt", True)
    assert second.text == "/dangky phan-rang"
    assert [(i.kind, i.media_type, i.media_id) for i in echo.seen if i.chat_id == "u1"] == [
        ("media", "photo", "https://example.invalid/a.jpg"), ("media", "sticker", None), ("media", "unsupported", None)]
    assert channel.stats["duplicates"] == 1 and channel.stats["unreadable"] == 1


async def test_updates_of_one_chat_run_in_order_others_concurrently(fake: FakeZalo):
    order: list[str] = []
    gate = asyncio.Event()

    async def slow(inbound: Inbound) -> list[Reply]:
        if inbound.text == "first":
            await gate.wait()
        order.append(f"{inbound.chat_id}:{inbound.text}")
        return []

    channel = channel_for(fake, slow)
    await channel.start()
    try:
        await channel.process_update(fake.text_update("a", "first"))
        await channel.process_update(fake.text_update("a", "second"))
        await channel.process_update(fake.text_update("b", "other"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert order == ["b:other"]  # chat a waits for its first message; chat b does not
        gate.set()
        await channel.drain()
    finally:
        await channel.stop()
    assert order == ["b:other", "a:first", "a:second"]


# ---------------------------------------------------------------------- polling


async def test_polling_dedupes_repeated_updates_and_polls_at_most_once_a_second(fake: FakeZalo):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0.005)  # the poll pacing is checked on what was asked, not waited

    echo = Echo()
    channel = ZaloBotChannel(fake.token, fake.url, echo, hint=hint, poll_timeout=1, sleep=sleep)
    fake.webhook_url = "https://old.example.vn/hook"  # left over: start() must delete it to poll
    await channel.start()
    try:
        assert fake.webhook_url == "" and fake.calls_to("deleteWebhook")
        fake.push_update(fake.text_update("u1", "câu hỏi"), repeat=2)
        await fake.wait_for(lambda m: m.chat_id == "u1")
        while fake.pending_updates or fake.polls_empty < 2:  # noqa: ASYNC110 (the fake's counters)
            await asyncio.sleep(0.01)
        await channel.drain()
    finally:
        await channel.stop()
    assert [i.text for i in echo.seen] == ["câu hỏi"]  # delivered three times, handled once
    assert len(fake.sent_to("u1")) == 1 and channel.stats["duplicates"] == 2
    polls = fake.calls_to("getUpdates")
    assert len(polls) >= 5 and all(c.params["timeout"] == "1" for c in polls)
    # after each poll the channel waits out the rest of its second
    assert len(waits) >= len(polls) - 1 and all(0.85 <= w <= 1.0 for w in waits[:4])
