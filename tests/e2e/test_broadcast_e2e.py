"""Broadcasts end to end: the real app (`bot.app.service.build_app`), real PTB over HTTP, the fake Bot API
server enforcing Telegram's limits (scaled) and injecting faults; the CLI as a real subprocess.

Checked against the fake's own record of what reached whom, never against the app's word alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app.service import App, build_app
from bot.audiences.registration import GroupRecord, register_groups
from bot.broadcasts.store import Target
from bot.kernel.config import Settings
from tests.conftest import CONTENT, run_cli
from tests.e2e.test_telegram_e2e import BOT, TOKEN, exchange
from tests.fakes.telegram import FakeTelegram, SentMessage
from tests.polling import until
from tests.unit.broadcasts.test_broadcasts import add_chat

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
STAFF = 900


@pytest.fixture
async def fake():
    async with FakeTelegram(token=TOKEN, username=BOT, limits=(300, 20, 1)) as fake:
        yield fake


@pytest.fixture
def settings_for(tmp_path: Path, fake: FakeTelegram) -> Callable[..., Settings]:
    def make(**changes) -> Settings:
        base = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT, telegram_bot_token=TOKEN,
                        telegram_api_url=fake.url,
                        telegram_chat_rate_per_second=50,  # per-chat pacing: test_replies_e2e.py
                        telegram_staff_ids=frozenset({str(STAFF)}),
                        telegram_rate_per_second=300)
        return dataclasses.replace(base, **changes)

    return make


@pytest.fixture
async def running(settings_for):
    apps: list[App] = []

    async def start(**changes) -> App:
        app = await build_app(settings_for(**changes))
        app.worker.backoff = (0.2, 0.4)
        app.core.progress.interval = 0.3
        await app.start()
        apps.append(app)
        return app

    yield start
    for app in apps:
        await app.stop()


def copies(fake: FakeTelegram, marker: str) -> Counter:
    return Counter(str(m.chat_id) for m in fake.sent if marker in m.text)


async def group_press(fake: FakeTelegram, chat_id: int, user_id: int, data: str) -> list[SentMessage]:
    shown = {m.message_id: m for m in fake.sent_to(chat_id)}
    message_id = max(i for i, m in shown.items() if data in m.callback_data)
    return await exchange(fake, fake.callback_update(chat_id, user_id, data, message_id))


async def one_reply(fake: FakeTelegram, chat_id: int, update: dict) -> list[SentMessage]:
    """Push `update` and wait for the bot's next message in `chat_id` (the compose flow takes every
    message as its next step, so the "thanks" marker of `exchange` cannot be used there)."""
    last = max((m.message_id for m in fake.sent_to(chat_id)), default=0)
    fake.push_update(update)
    return await fake.wait_for(lambda m: m.chat_id == chat_id and m.message_id > last, timeout=5)


async def staff_press(fake: FakeTelegram, chat_id: int, data: str) -> list[SentMessage]:
    shown = {m.message_id: m for m in fake.sent_to(chat_id)}
    message_id = max(i for i, m in shown.items() if data in m.callback_data)
    return await one_reply(fake, chat_id, fake.callback_update(chat_id, chat_id, data, message_id))


def button(message: SentMessage, label: str) -> str:
    return next(b["callback_data"] for row in message.buttons for b in row if b["text"].startswith(label))


# ---------------------------------------------------------------------- 300 recipients, every fault


async def test_300_recipients_with_429s_blocked_migrated_and_502s_each_get_exactly_one_copy(running, fake):
    app = await running()
    db = app.core.db
    groups = [str(-2000 - i) for i in range(60)]
    residents = [str(30_000 + i) for i in range(240)]
    await register_groups(db, [GroupRecord("telegram", g, "phan-rang", f"Tổ {g}") for g in groups])
    for r in residents:
        await add_chat(db, r, "private", "thuan-nam" if int(r) % 2 else "dong-hai")
    blocked = {"30003", "30050", "30100", "30150", "30200"}
    kicked = {"-2007", "-2033"}
    for chat in blocked:
        fake.fail_next(chat, "blocked")
    for chat in kicked:
        fake.fail_next(chat, "kicked")
    fake.fail_next(-2010, "migrated", migrate_to=-1002010)
    for chat in (30010, 30120, 30230):
        fake.fail_next(chat, "retry_after", retry_after=1)
    flaky = [30020 + 11 * i for i in range(12)] + [-2020, -2040]
    for i, chat in enumerate(flaky):
        fake.fail_next(chat, "bad_gateway", times=1 + i % 2)  # intermittent 502s, once or twice
    marker = "Họp khẩn các tổ dân phố lúc 19 giờ."
    started = time.monotonic()
    broadcast = await app.core.broadcasts.create(marker, Target("all"), title="Thông báo")
    app.worker.notify()

    async def finished() -> bool:
        return (await app.core.broadcasts.report(broadcast)).status == "done"

    await until(finished, timeout=30, what="the broadcast to finish")
    took = time.monotonic() - started
    report = await app.core.broadcasts.report(broadcast)
    got = copies(fake, marker)
    deliverable = (set(groups) | set(residents) | {"-1002010"}) - blocked - kicked - {"-2010"}
    assert {c: n for c, n in got.items() if n != 1} == {}, "a recipient got more than one copy"
    assert set(got) == deliverable, f"lost: {sorted(deliverable - set(got))[:10]}"
    # the report matches the fake's record, row by row
    rows = await app.core.broadcasts.recipients(broadcast)
    assert len(rows) == report.total == 300
    assert {r["chat_id"] for r in rows if r["status"] == "sent"} == set(got)
    assert Counter(r["reason"] for r in rows if r["status"] == "failed") == {
        "gone: Forbidden: bot was blocked by the user": 5, "gone: Forbidden: bot was kicked from the group chat": 2,
    }
    assert report.as_json() == {"id": broadcast, "total": 300, "sent": len(got), "pending": 0, "acknowledged": 0,
                                "failed": dict(Counter(r["reason"] for r in rows if r["status"] == "failed"))}
    assert report.by_locality["phan-rang"]["sent"] == 58  # 60 groups, 2 kicked; the migrated one counted
    flaky_rows = {r["chat_id"]: r for r in rows if r["chat_id"] in {str(c) for c in flaky}}
    assert all(r["status"] == "sent" for r in flaky_rows.values())
    tries = Counter(str(c.params.get("chat_id")) for c in fake.calls_to("sendMessage"))
    # each injected fault was met (a 429 of the fake's own limits may add a try, never a copy)
    assert all(tries[c] >= 2 for c in ("30010", "30120", "30230"))  # 429, then the one copy
    assert all(tries[str(c)] >= 2 + i % 2 for i, c in enumerate(flaky))  # 502s, then the copy
    # blocked and kicked chats are inactive now; the migrated group keeps its registration under the new id
    inactive = {r["chat_id"] for r in await db.fetchall("SELECT chat_id FROM chats WHERE active = 0")}
    assert inactive == blocked | kicked
    migrated = await app.core.chats.get("telegram", "-1002010")
    assert migrated is not None and migrated.locality == "phan-rang" and migrated.consent
    assert took < 15


# ---------------------------------------------------------------------- registration


async def test_group_registration_flow_wrong_code_suggestions_kicked_and_migrated(running, fake):
    fake.limits = None  # the quick back-and-forth of a test is faster than 1 message/s per chat
    app = await running()
    group, admin = -4242, 1001
    fake.set_admin(group, admin)
    fake.push_update(fake.my_chat_member_update(group, "member", by_user_id=admin))
    await fake.wait_for(lambda m: m.chat_id == group and "/dangky" in m.text, timeout=5)  # how to register
    chat = await app.core.chats.get("telegram", str(group))
    assert chat is not None and chat.locality is None  # recorded, not registered yet

    [wrong] = await exchange(fake, fake.text_update(group, "/dangky phan-ran", chat_type="group", user_id=admin))
    assert 'Không tìm thấy địa bàn "phan-ran"' in wrong.text and "phan-rang" in wrong.text
    assert "grp:s:phan-rang" in wrong.callback_data
    [refused] = await exchange(fake, fake.text_update(group, "/dangky phan-rang", chat_type="group", user_id=1002))
    assert "chỉ quản trị viên" in refused.text
    assert (await app.core.chats.get("telegram", str(group))).locality is None
    [done] = await group_press(fake, group, admin, "grp:s:phan-rang")
    assert "Đã đăng ký nhóm" in done.text and "Phan Rang" in done.text
    chat = await app.core.chats.get("telegram", str(group))
    assert (chat.locality, chat.consent, chat.active) == ("phan-rang", True, True)

    supergroup = -1004242
    fake.push_update(fake.migrate_update(group, supergroup))
    moved = await until(lambda: app.core.chats.get("telegram", str(supergroup)), what="the migration")
    assert (moved.locality, moved.consent, moved.active) == ("phan-rang", True, True)
    assert await app.core.chats.get("telegram", str(group)) is None
    marker = "Thông báo cho nhóm đã nâng cấp."
    await app.core.broadcasts.create(marker, Target("groups", "phan-rang"))
    app.worker.notify()
    await fake.wait_for(lambda m: marker in m.text, timeout=5)
    assert copies(fake, marker) == Counter({str(supergroup): 1})

    fake.push_update(fake.my_chat_member_update(supergroup, "kicked", chat_type="supergroup", by_user_id=admin))

    async def inactive() -> bool:
        return not (await app.core.chats.get("telegram", str(supergroup))).active

    await until(inactive, what="the kicked group to turn inactive")
    assert await app.core.broadcasts.count(Target("groups")) == 0


# ---------------------------------------------------------------------- staff authoring


async def test_staff_compose_preview_confirm_then_progress_line_and_summary(running, fake, caplog):
    fake.limits = None  # the quick back-and-forth of a test is faster than 1 message/s per chat
    app = await running(telegram_rate_per_second=6)  # 24 recipients: about 4 s, several progress lines
    db = app.core.db
    for i in range(4):
        await register_groups(db, [GroupRecord("telegram", str(-3000 - i), "phan-rang", f"Tổ {i}")])
    for i in range(20):
        await add_chat(db, str(40_000 + i), "private", "dong-hai")
    [refused] = await exchange(fake, fake.text_update(901, "/thongbao"))
    assert "chỉ dành cho cán bộ" in refused.text
    assert "staff command /thongbao refused" in caplog.text

    [prompt] = await one_reply(fake, STAFF, fake.text_update(STAFF, "/thongbao"))
    assert "nội dung thông báo" in prompt.text
    marker = "Mời bà con dự Ngày hội Đại đoàn kết lúc 7 giờ sáng Chủ nhật."
    [audience] = await one_reply(fake, STAFF, fake.text_update(STAFF, marker))
    [place] = await staff_press(fake, STAFF, button(audience, "Cả"))
    [preview] = await staff_press(fake, STAFF, button(place, "Toàn"))
    assert marker in preview.text and "24" in preview.text
    assert copies(fake, marker) == Counter({str(STAFF): 1})  # only the preview so far
    broadcast = int(button(preview, "Gửi ngay").rsplit(":", 1)[1])
    [queued] = await staff_press(fake, STAFF, button(preview, "Gửi ngay"))
    assert f"#{broadcast}" in queued.text and "24 người nhận" in queued.text
    [again] = await staff_press(fake, STAFF, button(preview, "Gửi ngay"))  # a second tap sends nothing more
    assert "không gửi thêm" in again.text

    summary = f"Thông báo #{broadcast} đã gửi xong: 24/24 người nhận, lỗi 0. Chi tiết: /baocao {broadcast}"
    await until(lambda: queued.text == summary, timeout=15, what="the summary edit")
    edits = [c.params for c in fake.calls_to("editMessageText")]
    assert edits and all(int(e["message_id"]) == queued.message_id for e in edits)
    lines = [e["text"] for e in edits if "còn khoảng" in e["text"]]
    assert lines and lines[0].startswith(f"Thông báo #{broadcast}: đã gửi ") and "/24, lỗi 0, còn khoảng" in lines[0]
    assert edits[-1]["text"] == summary
    got = copies(fake, marker)
    assert got.pop(str(STAFF)) == 1 and len(got) == 24 and set(got.values()) == {1}
    [report] = await one_reply(fake, STAFF, fake.text_update(STAFF, f"/baocao {broadcast}"))
    assert "Đã gửi: 24" in report.text


async def test_staff_make_a_series_in_the_chat_it_fires_to_the_groups_and_ends_at_huythongbao(settings_for, fake):
    """/thongbao → "Lặp lại định kỳ" → "Lịch khác" → a drill cron typed: the running service's
    APScheduler fires it to each group once a run, and `/huythongbao S1` stops it."""
    fake.limits = None
    app = await build_app(settings_for())
    app.core.schedules.sync_every = 0.5  # the table → jobs sync (15 s in service) picks the new series up
    await app.start()
    try:
        for i in range(3):
            await register_groups(app.core.db, [GroupRecord("telegram", str(-3100 - i), "phan-rang", f"Tổ {i}")])
        marker = "Nhắc họp định kỳ"
        await one_reply(fake, STAFF, fake.text_update(STAFF, "/thongbao"))
        [audience] = await one_reply(fake, STAFF, fake.text_update(STAFF, f"{marker} {{quy}}"))
        [place] = await staff_press(fake, STAFF, button(audience, "Các nhóm"))
        [preview] = await staff_press(fake, STAFF, button(place, "Toàn"))
        [menu] = await staff_press(fake, STAFF, button(preview, "Lặp lại định kỳ"))
        assert [b["text"] for row in menu.buttons for b in row][:2] == ["Gửi một lần", "Hằng tuần (thứ Hai, 08:00)"]
        [ask] = await staff_press(fake, STAFF, button(menu, "Lịch khác"))
        assert "cron" in ask.text
        [made] = await one_reply(fake, STAFF, fake.text_update(STAFF, "*/2 * * * * *"))
        assert made.text.startswith("Đã tạo lịch gửi S1 (*/2 * * * * *) cho 3 người nhận")
        groups = {str(-3100 - i) for i in range(3)}
        await until(lambda: all(n >= 2 for n in [copies(fake, marker)[g] for g in groups]), timeout=20,
                    what="two runs at every group")
        [ended] = await one_reply(fake, STAFF, fake.text_update(STAFF, "/huythongbao S1"))
        assert ended.text == "Đã kết thúc lịch S1: không gửi thêm lần nào."
        async def delivered() -> bool:
            return await app.core.db.fetchval("SELECT COUNT(*) FROM outbox WHERE status != 'sent'") == 0

        await until(delivered, what="the last run delivered")
        runs = await app.core.series.firing_count(1)
        at_end = copies(fake, marker)
        await asyncio.sleep(3)  # a run or more would have come by now
        assert copies(fake, marker) == at_end and await app.core.series.firing_count(1) == runs
        assert {g: at_end[g] for g in groups} == {g: runs for g in groups}  # each run reached each group once
    finally:
        await app.stop()


# ---------------------------------------------------------------------- scheduled


async def test_scheduled_in_local_time_arrives_after_its_time_and_reaches_later_subscribers(running, fake,
                                                                                            settings_for):
    fake.limits = None  # the quick back-and-forth of a test is faster than 1 message/s per chat
    settings = settings_for()
    app = await running()
    for i in range(3):
        await add_chat(app.core.db, str(50_000 + i), "private", "phan-rang")
    marker = "Lịch tiếp công dân tuần này."
    due = time.time() + 4
    due_mono = time.monotonic() + (due - time.time())
    local = datetime.fromtimestamp(due, TZ).replace(tzinfo=None).isoformat(timespec="microseconds")
    sent = run_cli("broadcast", "send", "--to", "residents", "--text", marker, "--at", local, "--yes", "--json",
                   env={"DATABASE_URL": f"sqlite:///{settings.database_path}"})
    assert sent.returncode == 0, sent.stderr
    broadcast = json.loads(sent.stdout)["id"]
    # a resident subscribes after the broadcast was queued, before it is due
    await exchange(fake, fake.text_update(50_100, "/diaban phan-rang"))
    [welcome] = await exchange(fake, fake.callback_update(50_100, 50_100, "sub:y:phan-rang"))
    assert "Cảm ơn bạn" in welcome.text
    assert time.monotonic() < due_mono, "the set-up took longer than the schedule allows"
    assert copies(fake, marker) == Counter()
    await fake.wait_for(lambda m: marker in m.text, timeout=10, count=4)
    calls = [c for c in fake.calls_to("sendMessage") if marker in str(c.params.get("text"))]
    assert min(c.time for c in calls) >= due_mono - 0.05  # not before its time…
    assert min(c.time for c in calls) <= due_mono + 2.0  # …and promptly after it
    assert copies(fake, marker) == Counter({"50000": 1, "50001": 1, "50002": 1, "50100": 1})
    report = await app.core.broadcasts.report(broadcast)
    assert report.resolved and report.total == 4
