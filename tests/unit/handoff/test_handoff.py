"""Handoff below the channels: working hours, re-announcing with a controllable clock, the rate
limiter's window, ticket limits, and cross-channel delivery of an answer (a Zalo resident
answered from the Telegram staff chat) through the app's sender."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app.wiring import Core, build_core
from bot.channels.base import DeliveryError, Inbound, Reply, Sent
from bot.conversation.ratelimit import RateLimiter
from bot.handoff.service import MAX_OPEN_PER_PERSON, MAX_TICKET_CHARS, working_seconds
from bot.kernel.config import Settings
from bot.kernel.messages import Messages
from tests.conftest import CONTENT

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
STAFF_CHAT = "-100555"
STAFF = "77"


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).timestamp()  # 27/11/2026 is a Friday


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """Stands for the app's channel registry: what was sent where, with made-up message ids."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Reply]] = []
        self.fail: dict[str, DeliveryError] = {}

    async def send(self, channel: str, chat_id: str, reply: Reply) -> Sent:
        if chat_id in self.fail:
            raise self.fail[chat_id]
        self.sent.append((channel, chat_id, reply))
        return Sent([str(len(self.sent))])

    def to(self, chat_id: str) -> list[str]:
        return [r.text for _, c, r in self.sent if c == chat_id]


@pytest.fixture
async def core(tmp_path: Path):
    settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT,
                        telegram_staff_ids=frozenset({STAFF}), telegram_staff_chat_id=STAFF_CHAT)
    core = await build_core(settings, Recorder())
    yield core
    await core.close()


def wire(core: Core, clock: Clock) -> Recorder:
    handoff = core.handoff
    assert handoff is not None
    recorder = handoff.sender
    assert isinstance(recorder, Recorder)
    handoff.clock = handoff.tickets.clock = clock
    return recorder


def said(replies: list[Reply]) -> str:
    return "\n".join(r.text for r in replies)


def test_working_seconds_count_only_weekday_office_hours():
    assert working_seconds(at(27, 16), at(27, 17), TZ) == 3600
    assert working_seconds(at(27, 16), at(30, 10), TZ) == 4 * 3600  # Fri 16–17, Mon 7–10
    assert working_seconds(at(28, 8), at(29, 20), TZ) == 0  # the weekend
    assert working_seconds(at(30, 6), at(30, 18), TZ) == 10 * 3600
    assert working_seconds(at(30, 12), at(30, 11), TZ) == 0


async def test_unanswered_ticket_is_announced_again_after_n_working_hours(core: Core):
    clock = Clock(at(27, 16))
    sent = wire(core, clock)
    handoff = core.handoff
    assert handoff is not None and handoff.remind_hours == 4
    replies = await core.dialogue.handle(Inbound("zalo", "z-1", "z-1", text="/canbo Hỏi về thẻ BHYT cho mẹ tôi",
                                                 display_name="Cô Tư"))
    assert "#1" in said(replies)
    assert len(sent.to(STAFF_CHAT)) == 1 and "Cô Tư (Zalo)" in sent.to(STAFF_CHAT)[0]

    for moment in (at(27, 17), at(29, 12), at(30, 9, 59)):
        assert await handoff.remind_due(moment) == []
    assert await handoff.remind_due(at(30, 10)) == [1]
    assert sent.to(STAFF_CHAT)[-1].startswith("⏰ **#1**")
    assert await handoff.remind_due(at(30, 10, 5)) == []
    assert await handoff.remind_due(at(30, 14)) == [1]  # every 4 working hours while unanswered

    # answered from the Telegram staff chat: it goes to the resident on Zalo, with the number
    staff = Inbound("telegram", STAFF_CHAT, STAFF, chat_kind="group", text="/traloi 1 Mẹ bạn thuộc diện được cấp thẻ.",
                    display_name="Hà")
    assert "#1" in said(await core.dialogue.handle(staff))
    [(channel, chat_id, reply)] = [s for s in sent.sent if s[1] == "z-1"]
    assert (channel, chat_id) == ("zalo", "z-1") and "#1" in reply.text and "diện được cấp thẻ" in reply.text
    assert await handoff.remind_due(at(30, 23)) == []


async def test_the_re_announcement_is_a_job_of_the_service_scheduler_every_check_every(core: Core):
    from datetime import timedelta

    from bot.handoff.service import CHECK_EVERY

    job = core.jobs.job("handoff-remind")
    assert job is not None and job.trigger.interval == timedelta(seconds=CHECK_EVERY) == timedelta(minutes=5)
    assert job.next_run_time is not None and job.next_run_time <= datetime.now(TZ)  # first run as it starts
    clock = Clock(at(27, 16))
    sent = wire(core, clock)
    await core.dialogue.handle(Inbound("zalo", "z-1", "z-1", text="/canbo Hỏi về thẻ BHYT", display_name="Cô Tư"))
    clock.now = at(30, 9)
    assert await core.jobs.run("handoff-remind")  # what the scheduler runs
    assert len(sent.to(STAFF_CHAT)) == 1
    clock.now = at(30, 10)
    assert await core.jobs.run("handoff-remind")
    assert sent.to(STAFF_CHAT)[-1].startswith("⏰ **#1**")


async def test_an_answer_that_cannot_be_delivered_leaves_the_ticket_open(core: Core):
    sent = wire(core, Clock(at(30, 9)))
    await core.dialogue.handle(Inbound("telegram", "501", "501", text="/canbo Hỏi về nhà Đại đoàn kết"))
    sent.fail["501"] = DeliveryError("gone", "blocked")
    staff = Inbound("telegram", STAFF, STAFF, text="/traloi 1 Trả lời")
    assert "Chưa gửi được" in said(await core.dialogue.handle(staff))
    ticket = await core.handoff.tickets.get(1)  # type: ignore[union-attr]
    assert ticket is not None and ticket.status == "open" and ticket.answer is None


async def test_ticket_size_and_count_limits(core: Core):
    from bot.conversation.dialogue import Turn

    wire(core, Clock(at(30, 9)))
    handoff = core.handoff
    assert handoff is not None
    long = "x " * MAX_TICKET_CHARS
    assert "dài quá" in said(await core.dialogue.handle(Inbound("telegram", "502", "502", text=f"/canbo {long}")))
    inbound = Inbound("telegram", "503", "503", display_name="An")
    turn = Turn(inbound, await core.chats.touch(inbound))
    for n in range(MAX_OPEN_PER_PERSON):
        assert f"#{n + 1}" in said(await handoff.open_ticket(turn, "petition", f"ý kiến {n}"))
    assert "Bạn đang có 5" in said(await handoff.open_ticket(turn, "petition", "ý kiến thứ sáu"))
    assert len(await handoff.tickets.list()) == MAX_OPEN_PER_PERSON


async def test_staff_commands_are_refused_to_residents(core: Core):
    wire(core, Clock(at(30, 9)))
    for text in ("/traloi 1 xin chào", "/gopy_moi"):
        assert "chỉ dành cho cán bộ" in said(await core.dialogue.handle(Inbound("telegram", "504", "504", text=text)))
    pressed = await core.dialogue.handle(Inbound("telegram", "504", "504", kind="option", option="hof:d:1"))
    assert "chỉ dành cho cán bộ" in said(pressed)


def test_rate_limiter_window_with_a_controllable_clock():
    clock = Clock(0.0)
    limiter = RateLimiter(20, 60, Messages({}), clock=clock)
    verdicts = []
    for i in range(100):  # 100 messages in 10 s
        clock.now = i * 0.1
        verdicts.append(limiter.allow("telegram", "1"))
    assert verdicts.count("ok") == 20 and verdicts.count("warn") == 1 and verdicts.count("drop") == 79
    assert limiter.allow("telegram", "2") == "ok"  # someone else is not affected
    clock.now = 61.0  # the window moved on: answered again, and warned again if it floods again
    assert limiter.allow("telegram", "1") == "ok"
