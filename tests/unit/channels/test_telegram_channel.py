"""The Telegram adapter, with real PTB over real HTTP against tests/fake_telegram.py."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from bot.channels.base import DeliveryError, Inbound, Option, Reply
from bot.channels.telegram.channel import TelegramChannel, keyboard_for, render
from tests.fakes.telegram import FakeTelegram

# PTB itself reads RetryAfter.retry_after when building the exception, which warns until
# PTB_TIMEDELTA is set; the adapter copes with both the int and the timedelta form.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

TOKEN = "987654:AAHsecret-Token_value"
BOT = "LoaPhuongBot"
LONG_PARAGRAPH = "Mặt trận & nhân dân <cùng> chung tay. " * 20  # ≈ 760 characters


class Echo:
    """The tiny dialogue under test: echoes what arrived, with two options."""

    def __init__(self) -> None:
        self.seen: list[Inbound] = []
        self.fail_on: str | None = None

    async def __call__(self, inbound: Inbound) -> list[Reply]:
        self.seen.append(inbound)
        if self.fail_on and inbound.text == self.fail_on:
            raise RuntimeError("the dialogue broke")
        if not inbound.addressed:
            return []
        if inbound.text == "dài":
            return [Reply(text="\n\n".join(f"Đoạn {i}. {LONG_PARAGRAPH}" for i in range(13)))]
        said = inbound.text or inbound.option or inbound.media_type or inbound.new_chat_id or ""
        return [Reply(text=f"{inbound.kind}: {said}", title="Loa Phường",
                      options=(Option("Có", "yes"), Option("Không", "no")))]

    async def wait(self, predicate) -> Inbound:
        async with asyncio.timeout(3):
            while True:
                for inbound in self.seen:
                    if predicate(inbound):
                        return inbound
                await asyncio.sleep(0.01)


@pytest.fixture
async def fake():
    async with FakeTelegram(token=TOKEN, username=BOT) as fake:
        yield fake


@pytest.fixture
async def echo() -> Echo:
    return Echo()


@pytest.fixture
async def channel(fake: FakeTelegram, echo: Echo):
    channel = TelegramChannel(TOKEN, fake.url, echo, poll_timeout=1)
    await channel.start()
    try:
        yield channel
    finally:
        await channel.stop()


def to(chat_id: int):
    return lambda m: m.chat_id == chat_id


# ---------------------------------------------------------------------- conversations


async def test_start_learns_identity(channel: TelegramChannel, fake: FakeTelegram):
    assert channel.username == BOT
    assert channel.bot_id == TOKEN.split(":")[0]
    assert fake.calls_to("getMe")


async def test_private_text_is_answered_with_buttons(channel, fake, echo):
    fake.push_update(fake.text_update(42, "quy vi nguoi ngheo", first_name="Hoa"))
    [answer] = await fake.wait_for(to(42))
    assert answer.text == "Loa Phường\n\ntext: quy vi nguoi ngheo"
    assert answer.raw.startswith("<b>Loa Phường</b>")
    assert answer.parse_mode == "HTML"
    assert answer.params["link_preview_options"] == {"is_disabled": True}
    assert answer.callback_data == ["yes", "no"]
    assert len(answer.buttons) == 1  # short labels: two on a row
    inbound = echo.seen[0]
    assert (inbound.channel, inbound.chat_id, inbound.user_id) == ("telegram", "42", "42")
    assert inbound.kind == "text" and inbound.text == "quy vi nguoi ngheo"
    assert inbound.chat_kind == "private" and inbound.addressed and inbound.display_name == "Hoa"


async def test_user_text_is_html_escaped(channel, fake):
    fake.push_update(fake.text_update(43, "<b>&amp; 1 < 2 & x"))
    [answer] = await fake.wait_for(to(43))  # the fake refuses unparsable HTML with a 400
    assert answer.text.endswith("text: <b>&amp; 1 < 2 & x")
    assert "&lt;b&gt;&amp;amp; 1 &lt; 2 &amp; x" in answer.raw


async def test_start_payload_arrives_whole(channel, fake, echo):
    fake.push_update(fake.text_update(44, "/start to-dan-pho-3"))
    await fake.wait_for(to(44))
    assert echo.seen[0].text == "/start to-dan-pho-3" and echo.seen[0].addressed


async def test_button_press_is_answered_and_delivered(channel, fake, echo):
    fake.push_update(fake.text_update(45, "xin chào"))
    [question] = await fake.wait_for(to(45))
    fake.push_update(fake.callback_update(45, 45, "yes", question.message_id))
    await fake.wait_for_call("answerCallbackQuery")
    answers = await fake.wait_for(to(45), count=2)
    assert answers[-1].text.endswith("option: yes")
    inbound = echo.seen[-1]
    assert inbound.kind == "option" and inbound.option == "yes"
    assert inbound.message_id == str(question.message_id)


async def test_callback_is_answered_even_when_the_dialogue_fails(channel, fake, echo):
    async def broken(inbound: Inbound) -> list[Reply]:
        raise RuntimeError("boom")

    channel._on_inbound = broken
    fake.push_update(fake.callback_update(46, 46, "yes"))
    await fake.wait_for_call("answerCallbackQuery")


# ---------------------------------------------------------------------- groups


async def test_group_message_without_mention_is_not_addressed(channel, fake, echo):
    fake.push_update(fake.text_update(-100, "hôm nay họp tổ", chat_type="group"))
    fake.push_update(fake.text_update(-100, "@LoaPhuongBot, quỹ vì người nghèo?", chat_type="group"))
    [answer] = await fake.wait_for(to(-100))
    first, second = echo.seen
    assert first.addressed is False and first.chat_kind == "group" and first.chat_title == "Tổ dân phố 3"
    assert second.addressed is True and second.text == "quỹ vì người nghèo?"
    assert answer.text.endswith("text: quỹ vì người nghèo?")
    assert len(fake.sent_to(-100)) == 1  # nothing said to the unaddressed message


async def test_mention_in_the_middle_with_emoji_is_stripped(channel, fake, echo):
    fake.push_update(fake.text_update(-101, "🙂 hỏi @loaphuongbot về BHYT", chat_type="supergroup"))
    await fake.wait_for(to(-101))
    assert echo.seen[0].addressed and echo.seen[0].text == "🙂 hỏi về BHYT"


async def test_text_mention_addresses_the_bot(channel, fake, echo):
    update = fake.text_update(-102, "Loa Phường ơi", chat_type="group", entities=[
        {"type": "text_mention", "offset": 0, "length": 10, "user": fake.bot_user}])
    fake.push_update(update)
    await fake.wait_for(to(-102))
    assert echo.seen[0].addressed and echo.seen[0].text == "ơi"


async def test_reply_to_the_bot_is_addressed(channel, fake, echo):
    fake.push_update(fake.text_update(-103, "/tin", chat_type="group"))
    await fake.wait_for(to(-103))
    fake.push_update(fake.text_update(-103, "cảm ơn", chat_type="group", reply_to_bot=True))
    await fake.wait_for(to(-103), count=2)
    assert echo.seen[1].addressed and echo.seen[1].reply_to_message_id is not None


async def test_commands_for_this_bot_or_none_only(channel, fake, echo):
    fake.push_update(fake.text_update(-104, "/help@OtherBot", chat_type="group"))
    fake.push_update(fake.text_update(-104, "/diaban@LoaPhuongBot phuong-1", chat_type="group"))
    fake.push_update(fake.text_update(-104, "/help", chat_type="group"))
    await fake.wait_for(to(-104), count=2)
    other, mine, bare = echo.seen
    assert other.addressed is False
    assert mine.addressed is True and mine.text == "/diaban phuong-1"
    assert bare.addressed is True


async def test_group_admin_flag(channel, fake, echo):
    fake.set_admin(-105, 7)
    fake.set_admin(-105, 8, creator=True)
    for user in (7, 8, 9):
        fake.push_update(fake.text_update(-105, "/xacnhan", chat_type="group", user_id=user))
    await fake.wait_for(to(-105), count=3)
    assert [i.is_group_admin for i in echo.seen] == [True, True, False]
    assert await channel.is_group_admin("-105", "7") is True
    assert await channel.is_group_admin("-105", "9") is False


# ---------------------------------------------------------------------- long texts, media, service


async def test_long_answer_is_split_at_paragraphs_in_order(channel, fake):
    fake.push_update(fake.text_update(47, "dài"))
    await fake.wait_for(to(47), count=3)
    await asyncio.sleep(0.05)  # nothing more comes
    pieces = fake.sent_to(47)
    assert len(pieces) == 3
    assert all(len(p.text) <= 4096 for p in pieces)
    assert sum(len(p.text) for p in pieces) > 10_000
    joined = "\n\n".join(p.text for p in pieces)
    positions = [joined.index(f"Đoạn {i}.") for i in range(13)]
    assert positions == sorted(positions)
    assert all(p.text.startswith("Đoạn ") and p.text.endswith("chung tay.") for p in pieces)


async def test_sticker_and_photo_are_media(channel, fake, echo):
    fake.push_update(fake.sticker_update(48))
    fake.push_update(fake.photo_update(48, caption="ảnh hiện trường"))
    await fake.wait_for(to(48), count=2)
    sticker, photo = echo.seen
    assert (sticker.kind, sticker.media_type) == ("media", "sticker")
    assert (photo.kind, photo.media_type, photo.text) == ("media", "photo", "ảnh hiện trường")


async def test_membership_and_migration(channel, fake, echo):
    fake.push_update(fake.my_chat_member_update(-106, "member"))
    fake.push_update(fake.my_chat_member_update(-106, "administrator", old_status="member"))  # no change
    fake.push_update(fake.text_update(-106, "ai đó vào nhóm", chat_type="group"))
    update = fake.text_update(-106, "", chat_type="group")
    del update["message"]["text"]
    update["message"]["new_chat_members"] = [fake.user(5)]
    fake.push_update(update)  # a service message: ignored
    fake.push_update(fake.my_chat_member_update(-106, "kicked"))
    fake.push_update(fake.my_chat_member_update(-107, "left", old_status="administrator"))
    fake.push_update(fake.migrate_update(-108, -1001234567890))
    for chat in ("-106", "-107", "-108"):  # chats run concurrently: wait for the last of each
        await echo.wait(lambda i, chat=chat: i.chat_id == chat and i.kind in ("left", "migrated"))
    by_chat = {chat: [i.kind for i in echo.seen if i.chat_id == chat] for chat in ("-106", "-107", "-108")}
    assert by_chat == {"-106": ["joined", "text", "left"], "-107": ["left"], "-108": ["migrated"]}
    migrated = next(i for i in echo.seen if i.kind == "migrated")
    assert migrated.new_chat_id == "-1001234567890"
    assert echo.seen[0].chat_kind == "group" and echo.seen[0].addressed


# ---------------------------------------------------------------------- robustness


@pytest.mark.parametrize("garbage", [
    {"message": "garbage"},
    {"message": {"message_id": 1}},  # no date, no chat
    {"message": {"message_id": 1, "date": 0, "chat": {"id": 1}}},  # chat without type
])
async def test_malformed_update_is_skipped(channel, fake, echo, garbage, caplog):
    fake.push_update(fake.text_update(49, "một"))
    bad = fake.push_raw(garbage)
    fake.push_update(fake.text_update(49, "hai"))
    await fake.wait_for(to(49), count=2)
    assert [i.text for i in echo.seen] == ["một", "hai"]
    assert f"update {bad} is malformed" in caplog.text


async def test_malformed_update_at_the_end_of_a_batch_is_confirmed(channel, fake, echo):
    bad = fake.push_raw({"message": "garbage"})
    await fake.wait_for_call("getUpdates", lambda c: int(c.params.get("offset") or 0) > bad)
    fake.push_update(fake.text_update(50, "sau đó"))
    await fake.wait_for(to(50))
    assert fake.pending_updates <= 1


async def test_errors_in_the_dialogue_or_a_send_do_not_stop_polling(channel, fake, echo, caplog):
    echo.fail_on = "hỏng"
    fake.push_update(fake.text_update(51, "hỏng"))
    fake.fail_next(52, "blocked")
    fake.push_update(fake.text_update(52, "bị chặn"))
    fake.push_update(fake.text_update(51, "tiếp"))
    [answer] = await fake.wait_for(to(51))
    assert answer.text.endswith("text: tiếp")
    update_ids = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert any("handling update 1 failed" in m for m in update_ids)
    assert any("update 2: reply to 52 failed" in m for m in update_ids)


# ---------------------------------------------------------------------- send() and its errors


async def test_send_edit_and_empty(channel, fake):
    sent = await channel.send("53", Reply(text="**Tin** mới", options=(Option("Đã nhận", "ack:1"),)))
    [message] = fake.sent_to(53)
    assert sent.message_ids == [str(message.message_id)] and message.raw == "<b>Tin</b> mới"
    again = await channel.send("53", Reply(text="Đã xác nhận", edit_message_id=sent.message_ids[0]))
    assert again.message_ids == sent.message_ids and message.edited and message.text == "Đã xác nhận"
    await channel.send("53", Reply(text="Đã xác nhận", edit_message_id=sent.message_ids[0]))  # not modified
    with pytest.raises(DeliveryError) as err:
        await channel.send("53", Reply(text="   "))
    assert err.value.kind == "bad_request"


async def test_photo_follows_its_text_and_a_refused_photo_keeps_the_text(channel, fake, caplog):
    fake.photo_update(55)  # the fake now knows the file ids of this photo, as Telegram would
    sent = await channel.send("55", Reply(text="#3 · Ý kiến", photo="AgAC800"))
    text, photo = fake.sent_to(55)
    assert sent.message_ids == [str(text.message_id), str(photo.message_id)]
    assert photo.params["photo"] == "AgAC800" and photo.params["reply_parameters"]["message_id"] == text.message_id
    with caplog.at_level(logging.WARNING, logger="bot.channels.telegram.channel"):
        kept = await channel.send("55", Reply(text="#4 · Ý kiến", photo="AgAC-unknown"))
    assert len(kept.message_ids) == 1 and fake.sent_to(55)[-1].text == "#4 · Ý kiến"
    assert "photo AgAC-unknown to chat 55 not sent" in caplog.text and "wrong file identifier" in caplog.text.lower()


@pytest.mark.parametrize(("fault", "kind", "extra"), [
    ("retry_after", "rate_limited", {"retry_after": 7.0}),
    ("blocked", "gone", {}),
    ("kicked", "gone", {}),
    ("migrated", "migrated", {"new_chat_id": "-100777"}),
    ("chat_not_found", "bad_request", {"reason": "chat not found"}),
    ("bad_gateway", "transient", {}),
])
async def test_send_error_mapping(channel, fake, fault, kind, extra):
    fake.fail_next(-777 if fault == "migrated" else 777, fault, retry_after=7)
    with pytest.raises(DeliveryError) as err:
        await channel.send("-777" if fault == "migrated" else "777", Reply(text="Thông báo"))
    assert err.value.kind == kind
    for key, value in extra.items():
        assert getattr(err.value, key) == value
    await channel.send("777", Reply(text="Thông báo"))  # the fault was used up


async def test_rate_limits_of_the_fake_answer_429(channel, fake):
    fake.limits = (30, 20, 1)
    await channel.send("54", Reply(text="một"))
    with pytest.raises(DeliveryError) as err:
        await channel.send("54", Reply(text="hai"))
    assert err.value.kind == "rate_limited" and err.value.retry_after == 1
    assert fake.limit_breaches == 1
    await channel.send("55", Reply(text="một chat khác"))


async def test_network_failure_is_transient(fake):
    channel = TelegramChannel(TOKEN, fake.url, Echo(), poll_timeout=1)
    await channel.start()
    await fake.close()
    try:
        with pytest.raises(DeliveryError) as err:
            await channel.send("56", Reply(text="x"))
        assert err.value.kind == "transient"
    finally:
        await channel.stop()


async def test_wrong_token_is_unauthorized(fake, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "111:WrongTokenValue"
    channel = TelegramChannel(wrong, fake.url, Echo(), poll_timeout=1)
    with pytest.raises(DeliveryError) as err:
        await channel.start()
    assert err.value.kind == "unauthorized"
    assert wrong not in str(err.value) and wrong not in caplog.text


# ---------------------------------------------------------------------- rendering and logs


def test_render_and_keyboard():
    rendered = render(Reply(text="a < b & **c**\n- một", title="T*"))
    assert rendered == ["<b>T</b>\n\na &lt; b &amp; <b>c</b>\n• một"]
    assert render(Reply(text="")) == []
    wide = keyboard_for([Option("Một lựa chọn rất dài để đọc", "a"), Option("Hai", "b")])
    assert [len(row) for row in wide.inline_keyboard] == [1, 1]
    dropped = keyboard_for([Option("Quá dài", "x" * 65), Option("Được", "ok")])
    assert [b.callback_data for row in dropped.inline_keyboard for b in row] == ["ok"]
    assert keyboard_for([]) is None


async def test_token_never_logged(fake, echo, caplog):
    caplog.set_level(logging.DEBUG)
    channel = TelegramChannel(TOKEN, fake.url, echo, poll_timeout=1)
    await channel.start()
    try:
        fake.push_update(fake.text_update(57, "xin chào"))
        fake.push_raw({"message": "garbage"})
        fake.push_update(fake.callback_update(57, 57, "yes"))
        await fake.wait_for(to(57), count=2)
        for fault in ("retry_after", "blocked", "bad_gateway"):
            fake.fail_next(58, fault)
            with pytest.raises(DeliveryError):
                await channel.send("58", Reply(text="x"))
    finally:
        await channel.stop()
    assert any("getUpdates" in r.getMessage() for r in caplog.records)  # DEBUG really was on
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx's URL lines too
    assert TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text


# ---------------------------------------------------------------------- the fake itself


async def test_fake_speaks_json_and_refuses_like_telegram(fake):
    async with httpx.AsyncClient(base_url=fake.url) as http:
        wrong = await http.post("/bot1:nope/getMe")
        assert wrong.status_code == 401 and wrong.json()["description"] == "Unauthorized"
        api = f"/bot{TOKEN}"
        too_long = await http.post(f"{api}/sendMessage", json={"chat_id": 1, "text": "x" * 4097})
        assert too_long.status_code == 400 and "too long" in too_long.json()["description"]
        escaped = await http.post(f"{api}/sendMessage", json={
            "chat_id": 1, "text": "<b>" + "&amp;" * 4096 + "</b>", "parse_mode": "HTML"})
        assert escaped.json()["ok"]  # 4096 characters once the entities are parsed
        button = {"inline_keyboard": [[{"text": "a", "callback_data": "x" * 65}]]}
        too_much = await http.post(f"{api}/sendMessage",
                                   json={"chat_id": 1, "text": "a", "reply_markup": button})
        assert too_much.json()["description"] == "Bad Request: BUTTON_DATA_INVALID"

        started = asyncio.get_running_loop().time()
        empty = await http.post(f"{api}/getUpdates", json={"timeout": 0.2})
        assert empty.json()["result"] == [] and asyncio.get_running_loop().time() - started >= 0.2
        poll = asyncio.create_task(http.post(f"{api}/getUpdates", json={"timeout": 5}))
        await asyncio.sleep(0.05)
        first = fake.push_update(fake.text_update(1, "a"))
        assert [u["update_id"] for u in (await poll).json()["result"]] == [first]
        fake.push_update(fake.text_update(1, "b"))
        confirmed = await http.post(f"{api}/getUpdates", data={"offset": str(first + 1), "timeout": "0"})
        assert [u["message"]["text"] for u in confirmed.json()["result"]] == ["b"]
        assert fake.pending_updates == 1
