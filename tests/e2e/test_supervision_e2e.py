"""End to end: the real app and real PTB against the fake Bot API server. A plan due in 6 s with
reminders 4 s and 0 s before (the brief's "due in 90 s, --remind 1m,0m", scaled down 15×) reaches
the registered group through the outbox and the delivery worker, each within a second or two of
its time, with both buttons; the admin's button press and one-line result mark the plan done, and
the staff chat hears of it. A staff member enters a plan step by step in a private chat
(/themgiamsat) and moves its due date (/doihan)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from bot.app.service import build_app
from bot.audiences.registration import GroupRecord, register_groups
from bot.kernel.config import Settings
from bot.supervision.plans_io import build
from tests.conftest import CONTENT
from tests.fakes.telegram import FakeTelegram

TOKEN = "424242:AAE2e-Secret_Token_value"
GROUP = -1001234500
STAFF_CHAT = -1009990001
ADMIN = 1001
MEMBER = 1002


@pytest.fixture
async def fake():
    async with FakeTelegram(token=TOKEN, username="LoaPhuongBot") as fake:
        yield fake


async def test_reminders_reach_the_group_on_time_and_the_button_marks_done(fake: FakeTelegram, tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="bot")  # shown if it fails: when each reminder was queued and sent
    settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT, telegram_bot_token=TOKEN,
                        telegram_api_url=fake.url,
                        telegram_chat_rate_per_second=50,  # per-chat pacing: test_replies_e2e.py
                        telegram_staff_chat_id=str(STAFF_CHAT))
    fake.chat(GROUP, "supergroup", title="Tổ dân phố 3")
    fake.set_admin(GROUP, ADMIN)
    app = await build_app(settings)
    await app.start()
    try:
        core = app.core
        sv = core.supervision
        assert sv is not None
        await register_groups(core.db, [GroupRecord("telegram", str(GROUP), "phan-rang", "Tổ dân phố 3")])
        start = time.time()
        plan = build({"locality": "phan-rang", "title": "Giám sát BHYT hộ cận nghèo", "remind": "4s,0s",
                      "due": _iso(start + 6)}, core.localities, sv.config, settings.tz, now=start)
        plan_id = await sv.add(plan)
        due = plan.due_at
        arrived = []
        for count in (1, 2):  # wall time at which the fake had received each reminder
            found = await fake.wait_for(lambda m: m.chat_id == GROUP and "Nhắc lịch" in m.text, count=count,
                                        timeout=10)
            arrived.append(time.time())
        first, second = found
        for message, fire, when in ((first, due - 4, arrived[0]), (second, due, arrived[1])):
            assert fire - 0.05 <= when <= fire + 2.0, (when - fire)
            assert message.callback_data == [f"sv:done:{plan_id}", f"sv:ext:{plan_id}"]
            assert [b["text"] for row in message.buttons for b in row] == ["Đã hoàn thành", "Xin gia hạn"]
        assert "Giám sát BHYT hộ cận nghèo" in first.text and _local(due) in first.text

        fake.push_update(fake.callback_update(GROUP, MEMBER, f"sv:done:{plan_id}", second.message_id))
        [refusal] = await fake.wait_for(lambda m: m.chat_id == GROUP and "chỉ quản trị viên" in m.text, timeout=5)
        fake.push_update(fake.callback_update(GROUP, ADMIN, f"sv:done:{plan_id}", second.message_id))
        [prompt] = await fake.wait_for(lambda m: m.chat_id == GROUP and m.text.startswith("Xin trả lời tin nhắn"),
                                       timeout=5)
        fake.push_update(fake.text_update(GROUP, "Đã giám sát 12 hộ, kiến nghị 2 nội dung", user_id=ADMIN,
                                          chat_type="supergroup", reply_to_bot=True))
        [done] = await fake.wait_for(lambda m: m.chat_id == GROUP and m.text.startswith("Đã ghi nhận"), timeout=5)
        stored = await sv.get(plan_id)
        assert stored is not None and stored.status == "done"
        assert stored.result == "Đã giám sát 12 hộ, kiến nghị 2 nội dung"
        [staff] = await fake.wait_for(lambda m: m.chat_id == STAFF_CHAT and "Hoàn thành kế hoạch" in m.text,
                                      timeout=5)
        assert "12 hộ" in staff.text
        assert prompt.message_id < done.message_id and refusal.message_id < prompt.message_id
    finally:
        await app.stop()
    await asyncio.sleep(0)


async def test_staff_enter_a_plan_in_a_private_chat_then_move_its_due_date(fake: FakeTelegram, tmp_path: Path):
    settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT, telegram_bot_token=TOKEN,
                        telegram_api_url=fake.url,
                        telegram_chat_rate_per_second=50,  # per-chat pacing: test_replies_e2e.py
                        telegram_staff_ids=frozenset({str(ADMIN)}))
    app = await build_app(settings)
    await app.start()
    try:
        sv = app.core.supervision
        assert sv is not None
        due = _local(time.time() + 30 * 86400)[:10] + " 09:30"
        moved = _local(time.time() + 40 * 86400)[:10] + " 16:00"

        async def step(update: dict, starts: str, count: int = 1) -> object:
            fake.push_update(update)
            found = await fake.wait_for(lambda m: m.chat_id == ADMIN and m.text.startswith(starts), count=count,
                                        timeout=5)
            return found[-1]

        await step(fake.text_update(ADMIN, "/themgiamsat", user_id=ADMIN), "Thêm kế hoạch giám sát")
        kind = await step(fake.text_update(ADMIN, "phan rang", user_id=ADMIN), "Địa bàn: Phường Phan Rang")
        assert [b["text"] for row in kind.buttons for b in row] == ["Giám sát", "Phản biện", "Hủy"]
        await step(fake.callback_update(ADMIN, ADMIN, "sva:k:giam_sat"), "Bước 3/5")
        await step(fake.text_update(ADMIN, "Giám sát BHYT hộ cận nghèo", user_id=ADMIN), "Bước 4/5")
        await step(fake.text_update(ADMIN, due, user_id=ADMIN), "Bước 5/5")
        summary = await step(fake.callback_update(ADMIN, ADMIN, "sva:r"), "Mời kiểm tra kế hoạch")
        assert f"Hạn: {due}" in summary.text and summary.callback_data == ["sva:s", "sva:x"]
        saved = await step(fake.callback_update(ADMIN, ADMIN, "sva:s"), "Đã lưu kế hoạch #")
        [stored] = await sv.plans()
        assert f"#{stored.id}" in saved.text and _local(stored.due_at) == due
        changed = await step(fake.text_update(ADMIN, f"/doihan {stored.id} {moved}", user_id=ADMIN), "Đã đổi hạn")
        assert moved in changed.text and _local((await sv.get(stored.id)).due_at) == moved
        fake.push_update(fake.text_update(MEMBER, "/themgiamsat", user_id=MEMBER))
        await fake.wait_for(lambda m: m.chat_id == MEMBER and "chỉ dành cho cán bộ" in m.text, timeout=5)
    finally:
        await app.stop()
    await asyncio.sleep(0)


def _iso(epoch: float) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(epoch, ZoneInfo("Asia/Ho_Chi_Minh")).isoformat(timespec="milliseconds")


def _local(epoch: float) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(epoch, ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%d/%m/%Y %H:%M")
