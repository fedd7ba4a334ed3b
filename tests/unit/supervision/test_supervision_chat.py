"""Staff enter a supervision plan step by step (/themgiamsat) and move a due date (/doihan) from
the chat: the whole dialogue, a real SQLite file, a fake clock."""

from __future__ import annotations

import logging

import pytest

from bot.app.wiring import Core
from bot.channels.base import Inbound, Reply
from tests.unit.supervision.test_supervision import STAFF, STAFF_CHAT, Clock, at, local, plan

STRANGER = "501"


@pytest.fixture
def clock() -> Clock:
    return Clock("2026-11-27 10:00")


def private(text: str = "", *, user: str = STAFF, option: str | None = None) -> Inbound:
    return Inbound("telegram", user, user, kind="option" if option else "text", text=text, option=option,
                   display_name="Cán bộ A")


async def say(core: Core, text: str = "", **kw) -> Reply:
    [reply] = await core.dialogue.handle(private(text, **kw))
    return reply


def data(reply: Reply) -> list[str]:
    return [o.data for o in reply.options]


async def test_staff_enter_a_plan_step_by_step(core: Core, clock: Clock):
    sv, m = core.supervision, core.dialogue.say
    first = await say(core, "/themgiamsat")
    assert first.text == m("sv_add_locality") and data(first) == ["sva:x"]
    typo = await say(core, "phan rag")
    assert typo.text == m("sv_add_locality_suggest", text="phan rag") and "sva:l:phan-rang" in data(typo)
    assert typo.options[0].label == "Phường Phan Rang, Tỉnh Khánh Hòa"
    kind = await say(core, option="sva:l:phan-rang")
    assert "Phường Phan Rang" in kind.text and data(kind) == ["sva:k:giam_sat", "sva:k:phan_bien", "sva:x"]
    title = await say(core, "Phản biện")  # typed instead of pressed
    assert title.text == m("sv_add_title", kind="phản biện xã hội")
    too_long = await say(core, "x" * 301)
    assert too_long.text == m("sv_add_title_invalid", limit=300)
    due = await say(core, "Phản biện   dự thảo quy hoạch khu dân cư")
    assert due.text.startswith("Bước 4/5") and "11/12/2026 17:00" in due.text  # the example: 14 days on
    assert (await say(core, "31/02/2027")).text.startswith('"31/02/2027" chưa đúng dạng')
    assert (await say(core, "01/11/2026 09:00")).text.startswith("Hạn 01/11/2026 09:00 đã qua")
    remind = await say(core, "15/12/2026")  # no time: 17:00
    assert remind.text == m("sv_add_remind", default="14d,7d,1d,0d") and data(remind) == ["sva:r", "sva:x"]
    assert (await say(core, "3w")).text == m("sv_add_remind_invalid", value="3w")
    summary = await say(core, "7d, 2h")
    assert "- Hạn: 15/12/2026 17:00 (tính chỉ tiêu kỳ 2026-Q4)" in summary.text
    assert "- Loại: phản biện xã hội" in summary.text and "Phản biện dự thảo quy hoạch khu dân cư" in summary.text
    assert "- trước hạn 7 ngày: 08/12/2026 08:00\n- trước hạn 2 giờ: 15/12/2026 15:00" in summary.text
    assert "chưa có nhóm" not in summary.text and data(summary) == ["sva:s", "sva:x"]
    saved = await say(core, option="sva:s")
    [stored] = await sv.plans()
    assert saved.text.startswith(f"Đã lưu kế hoạch #{stored.id}") and f"/doihan {stored.id}" in saved.text
    assert (stored.locality, stored.kind, stored.remind, stored.due_at) == ("phan-rang", "phan_bien", "7d,2h",
                                                                           at("2026-12-15 17:00"))
    row = await core.db.fetchone("SELECT source FROM supervision_plans WHERE id = ?", (stored.id,))
    assert row["source"] == "chat"
    assert [(r["offset_label"], r["state"]) for r in await sv.reminders(stored.id)] == [("7d", "pending"),
                                                                                        ("2h", "pending")]
    assert (await say(core, option="sva:s")).text == m("sv_add_already", id=stored.id)  # pressed twice: one plan
    assert len(await sv.plans()) == 1


async def test_locality_with_the_command_default_reminders_and_a_warning(core: Core, clock: Clock):
    clock.set("2026-12-03 10:00")
    kind = await say(core, "/themgiamsat Xa Ca Na")  # a name without diacritics, given with the command
    assert "Xã Cà Ná" in kind.text
    await say(core, option="sva:k:giam_sat")
    await say(core, "Giám sát quỹ Vì người nghèo")
    await say(core, "16/12/2026 08:30")
    summary = await say(core, option="sva:r")
    assert "- trước hạn 7 ngày: 09/12/2026 08:00" in summary.text and "- ngày đến hạn: 16/12/2026 08:00" in summary.text
    assert "- đã qua, không gửi: trước hạn 14 ngày" in summary.text
    assert core.dialogue.say("sv_add_no_groups", place="Xã Cà Ná, Tỉnh Khánh Hòa") in summary.text
    await say(core, option="sva:s")
    [stored] = await core.supervision.plans()
    assert (stored.kind, stored.remind, local(stored.due_at)) == ("giam_sat", "14d,7d,1d,0d", "2026-12-16 08:30")


async def test_unknown_place_without_close_match_asks_again(core: Core):
    await say(core, "/themgiamsat")
    again = await say(core, "zzzz qqqq")
    example = core.localities.children("khanh-hoa")[0].name  # the first commune of the tree
    assert again.text == core.dialogue.say("sv_add_locality_none", text="zzzz qqqq", example=example)
    assert "Phường Đông Hải" in (await say(core, "dong hai")).text


async def test_cancel_leaves_nothing_and_the_next_message_is_an_ordinary_one(core: Core):
    m = core.dialogue.say
    await say(core, "/themgiamsat phan-rang")
    await say(core, option="sva:k:giam_sat")  # now the bot waits for a title
    assert (await say(core, option="sva:x")).text == m("sv_add_cancelled")
    replies = await core.dialogue.handle(private("quy vi nguoi ngheo"))  # a question, not a title
    assert all(not r.text.startswith("Bước 4/5") for r in replies) and len(replies) >= 1
    assert (await say(core, option="sva:k:giam_sat")).text == m("sv_add_stale")
    assert (await say(core, option="sva:s")).text == m("sv_add_stale")
    await say(core, "/themgiamsat phan-rang")
    await say(core, "/menu")  # another command abandons the step
    assert (await say(core, option="sva:r")).text == m("sv_add_stale")  # not at that step
    assert await core.supervision.plans() == []


async def test_saving_after_the_due_time_passed_asks_for_a_new_date(core: Core, clock: Clock):
    for text in ("/themgiamsat phan-rang", "giám sát", "Giám sát BHYT", "27/11/2026 11:00"):
        await say(core, text)
    await say(core, option="sva:r")
    clock.set("2026-11-27 11:05")  # the summary waited
    late = await say(core, option="sva:s")
    assert late.text.startswith("Hạn 27/11/2026 11:00 đã qua")
    summary = await say(core, "28/11/2026 11:00")  # straight back to the summary: the offsets stay
    assert "- Hạn: 28/11/2026 11:00" in summary.text and data(summary) == ["sva:s", "sva:x"]
    assert (await say(core, option="sva:s")).text.startswith("Đã lưu kế hoạch #")


async def test_non_staff_are_refused_politely_with_a_log_line(core: Core, caplog: pytest.LogCaptureFixture):
    m = core.dialogue.say
    with caplog.at_level(logging.WARNING, logger="bot.supervision.staff_chat"):
        assert (await say(core, "/themgiamsat", user=STRANGER)).text == m("staff_only")
        assert (await say(core, option="sva:s", user=STRANGER)).text == m("staff_only")
        assert (await say(core, "/doihan 1 20/12/2026 09:00", user=STRANGER)).text == m("staff_only")
    assert [r.getMessage().split(" refused")[0] for r in caplog.records] == [
        "supervision /themgiamsat", "supervision option sva:s", "supervision /doihan"]
    assert STRANGER in caplog.records[0].getMessage()
    in_group = Inbound("telegram", STAFF_CHAT, STAFF, chat_kind="group", text="/themgiamsat")
    [reply] = await core.dialogue.handle(in_group)
    assert reply.text == m("staff_private_only")


async def test_doihan_moves_the_due_date_from_the_staff_chat(core: Core, clock: Clock):
    sv, m = core.supervision, core.dialogue.say
    plan_id = await sv.add(plan())

    async def staff_chat(text: str) -> str:
        [reply] = await core.dialogue.handle(Inbound("telegram", STAFF_CHAT, STAFF, chat_kind="group", text=text))
        return reply.text

    moved = await staff_chat(f"/doihan {plan_id} 20/12/2026 09:30")
    assert "từ 15/12/2026 17:00 sang 20/12/2026 09:30" in moved
    assert "- trước hạn 14 ngày: 06/12/2026 08:00" in moved and "- ngày đến hạn: 20/12/2026 08:00" in moved
    assert (await sv.get(plan_id)).due_at == at("2026-12-20 09:30")
    assert {r["offset_label"]: local(r["fire_at"]) for r in await sv.reminders(plan_id)}["1d"] == "2026-12-19 08:00"
    example = "11/12/2026 17:00"
    for bad in ("/doihan", f"/doihan {plan_id}", f"/doihan {plan_id} mai", "/doihan x 20/12/2026"):
        assert await staff_chat(bad) == m("sv_edit_usage", example=example)
    assert await staff_chat(f"/doihan #{plan_id} 01/11/2026 08:00") == m("sv_edit_past", due="01/11/2026 08:00",
                                                                          example=example)
    assert await staff_chat("/doihan 999 20/12/2026") == m("sv_missing", id="999")
    await sv.complete(plan_id, "xong", "cli")
    assert await staff_chat(f"/doihan {plan_id} 21/12/2026") == m("sv_already_done", id=plan_id,
                                                                   title="Giám sát BHYT hộ cận nghèo")
