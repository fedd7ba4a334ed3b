"""End to end, conversations across a restart (issue 11 point 3): the real app and real PTB over HTTP
against the fake Bot API server, on one SQLite file. Each flow family is started, the service is
stopped and built again on the same file, and the rest of the flow is sent: the person continues
where they were. An expired step says so in one sentence and offers to start again; the rate-limit
window survives a restart; and a real `python -m bot run` killed with SIGKILL mid-/gopy continues.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sqlite3
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app.service import App, build_app
from bot.audiences.registration import GroupRecord, register_groups
from bot.kernel.config import Settings
from bot.supervision.plans_io import build
from tests.conftest import CONTENT, ROOT
from tests.e2e.test_handoff_e2e import STAFF_CHAT, fake, step
from tests.e2e.test_supervision_e2e import _iso, _local
from tests.e2e.test_telegram_e2e import TOKEN, ask
from tests.fakes.telegram import FakeTelegram, SentMessage
from tests.polling import until

__all__ = ["fake"]  # the fixture: a fake Bot API with the staff chat

STAFF = 9001
RESIDENT = 6301
GROUP = -1001234577
ADMIN = 1001


@pytest.fixture
def settings(tmp_path: Path, fake: FakeTelegram, calendar_quiet_content: Path) -> Settings:
    return Settings(database_path=tmp_path / "data" / "bot.sqlite3", content_dir=calendar_quiet_content,
                    telegram_bot_token=TOKEN, telegram_api_url=fake.url,
                    telegram_staff_ids=frozenset({str(STAFF)}), telegram_staff_chat_id=str(STAFF_CHAT))


class Service:
    """The app, restartable on the same file: `restart()` stops it (as SIGTERM does) and builds it anew."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: App | None = None
        self.restarts = 0

    async def start(self) -> App:
        self.app = await build_app(self.settings)
        await self.app.start()
        return self.app

    async def stop(self) -> None:
        if self.app is not None:
            app, self.app = self.app, None
            await app.stop()

    async def restart(self) -> App:
        await self.stop()
        self.restarts += 1
        return await self.start()


@pytest.fixture
async def service(settings: Settings, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="bot")
    running = Service(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def say(fake: FakeTelegram, chat_id: int, text: str, user_id: int | None = None, **kw) -> SentMessage:
    [reply] = await step(fake, fake.text_update(chat_id, text, user_id=user_id, **kw))
    return reply


async def tap(fake: FakeTelegram, chat_id: int, data: str, user_id: int | None = None) -> SentMessage:
    [reply] = await step(fake, fake.callback_update(chat_id, user_id or chat_id, data))
    return reply


def rows(settings: Settings, sql: str) -> list[tuple]:
    with sqlite3.connect(settings.database_path) as db:
        return db.execute(sql).fetchall()


def gaps(settings: Settings) -> int:
    return rows(settings, "SELECT count(*) FROM question_log")[0][0]


# ---------------------------------------------------------------------- one test per flow family


async def test_gopy_continues_after_each_restart(service: Service, fake: FakeTelegram, settings: Settings):
    assert "việc gì" in (await say(fake, RESIDENT, "/gopy")).text
    assert "xã, phường nào" in (await tap(fake, RESIDENT, "pet:t:moi-truong")).text
    await service.restart()  # topic chosen: the locality step waits
    assert "Phường Phan Rang" in (await say(fake, RESIDENT, "phuong phan rang")).text
    await service.restart()  # locality typed: the content step waits, the draft holds both
    consent = await say(fake, RESIDENT, "Cống thoát nước đầu hẻm 7 bị tắc, mưa là ngập.")
    assert "Đồng ý gửi" in [b["text"] for row in consent.buttons for b in row]
    await service.restart()  # the text waits for consent
    received = await tap(fake, RESIDENT, "pet:ok:")
    assert "#1" in received.text
    assert rows(settings, "SELECT topic, locality, text FROM tickets") == [
        ("moi-truong", "phan-rang", "Cống thoát nước đầu hẻm 7 bị tắc, mưa là ngập.")]
    assert gaps(settings) == 0  # nothing of it was taken for a question
    assert rows(settings, "SELECT count(*) FROM flows") == [(0,)]  # finished: nothing left behind


async def test_thongbao_continues_with_its_draft_and_the_time_step(service: Service, fake: FakeTelegram,
                                                                   settings: Settings):
    assert (await say(fake, STAFF, "/thongbao")).text
    await service.restart()
    audience = await say(fake, STAFF, "Họp tổ dân phố lúc 19:00 thứ Bảy tại nhà văn hóa.")
    assert "ath:a:residents" in audience.callback_data
    assert "ath:l:*" in (await tap(fake, STAFF, "ath:a:residents")).callback_data
    await service.restart()  # text and audience are in the draft
    preview = await tap(fake, STAFF, "ath:l:*")
    assert "Họp tổ dân phố lúc 19:00" in preview.text
    later = next(d for d in preview.callback_data if d.startswith("ath:at:"))
    broadcast = int(later.rsplit(":", 1)[1])
    assert (await tap(fake, STAFF, later)).text
    await service.restart()  # "Hẹn giờ" pressed: the time step waits, with the broadcast's id
    when = _local(time.time() + 2 * 86400)[:10] + " 08:00"
    scheduled = await say(fake, STAFF, when)
    assert f"#{broadcast}" in scheduled.text and when in scheduled.text
    [(status, text)] = rows(settings, f"SELECT status, text FROM broadcasts WHERE id = {broadcast}")
    assert status != "draft" and text.startswith("Họp tổ dân phố")
    assert gaps(settings) == 0


async def test_canbo_question_step_continues(service: Service, fake: FakeTelegram, settings: Settings):
    assert (await say(fake, RESIDENT, "/canbo")).text
    await service.restart()
    forwarded = await say(fake, RESIDENT, "Hồ sơ cấp thẻ BHYT cho mẹ tôi nộp ở đâu?")
    assert "Đã chuyển câu hỏi" in forwarded.text and "#1" in forwarded.text
    [ticket] = rows(settings, "SELECT kind, text FROM tickets")
    assert ticket == ("question", "Hồ sơ cấp thẻ BHYT cho mẹ tôi nộp ở đâu?")
    assert gaps(settings) == 0


async def test_themgiamsat_continues_step_by_step(service: Service, fake: FakeTelegram, settings: Settings):
    due = _local(time.time() + 30 * 86400)[:10] + " 09:30"
    assert "Thêm kế hoạch giám sát" in (await say(fake, STAFF, "/themgiamsat")).text
    await service.restart()
    assert "Phường Phan Rang" in (await say(fake, STAFF, "phan rang")).text
    await service.restart()
    assert "Bước 3/5" in (await tap(fake, STAFF, "sva:k:giam_sat")).text
    await service.restart()
    assert "Bước 4/5" in (await say(fake, STAFF, "Giám sát chi trả trợ cấp người cao tuổi")).text
    assert "Bước 5/5" in (await say(fake, STAFF, due)).text
    await service.restart()
    summary = await tap(fake, STAFF, "sva:r")
    assert f"Hạn: {due}" in summary.text and summary.callback_data == ["sva:s", "sva:x"]
    await service.restart()
    assert "Đã lưu kế hoạch #" in (await tap(fake, STAFF, "sva:s")).text
    assert rows(settings, "SELECT locality, kind, title FROM supervision_plans") == [
        ("phan-rang", "giam_sat", "Giám sát chi trả trợ cấp người cao tuổi")]


async def test_group_report_step_continues(service: Service, fake: FakeTelegram, settings: Settings):
    fake.chat(GROUP, "supergroup", title="Tổ dân phố 9")
    fake.set_admin(GROUP, ADMIN)
    core = service.app.core  # type: ignore[union-attr]
    await register_groups(core.db, [GroupRecord("telegram", str(GROUP), "phan-rang", "Tổ dân phố 9")])
    now = time.time()
    plan = build({"locality": "phan-rang", "title": "Giám sát BHYT hộ cận nghèo", "remind": "1d",
                  "due": _iso(now + 20 * 86400)}, core.localities, core.supervision.config, settings.tz, now=now)
    plan_id = await core.supervision.add(plan)
    prompt = await say(fake, GROUP, f"/baocao_gs {plan_id}", user_id=ADMIN, chat_type="supergroup")
    assert prompt.text.startswith("Xin trả lời tin nhắn")
    await service.restart()
    done = await say(fake, GROUP, "Đã giám sát 12 hộ, kiến nghị 2 nội dung", user_id=ADMIN, chat_type="supergroup",
                     reply_to_bot=True)
    assert done.text.startswith("Đã ghi nhận")
    stored = await service.app.core.supervision.get(plan_id)  # type: ignore[union-attr]
    assert stored is not None and stored.status == "done" and stored.result == "Đã giám sát 12 hộ, kiến nghị 2 nội dung"


# ---------------------------------------------------------------------- expiry and the rate limit


async def test_an_expired_step_says_so_and_offers_to_start_again(service: Service, fake: FakeTelegram,
                                                                 settings: Settings):
    await say(fake, RESIDENT, "/gopy")
    await tap(fake, RESIDENT, "pet:t:moi-truong")
    await service.stop()
    day = 25 * 3600  # the service comes back a day later: the step has expired
    with sqlite3.connect(settings.database_path) as db:
        [(state,)] = db.execute("SELECT state FROM flows").fetchall()
        old = json.loads(state)
        old["touched"] -= day
        db.execute("UPDATE flows SET state = ?, updated_at = updated_at - ?, expires_at = expires_at - ?",
                   (json.dumps(old), day, day))
    await service.start()
    expired = await say(fake, RESIDENT, "phuong phan rang")
    assert "hết hạn" in expired.text and "/gopy" in expired.text and expired.callback_data == ["flow:gopy"]
    assert gaps(settings) == 0  # not answered as a question, not in `kb gaps`
    again = await tap(fake, RESIDENT, "flow:gopy")
    assert "việc gì" in again.text and "pet:t:moi-truong" in again.callback_data


async def test_the_rate_limit_window_survives_a_restart(fake: FakeTelegram, settings: Settings):
    flooder = 6399
    service = Service(replace(settings, rate_limit_messages=3))
    await service.start()
    try:
        for _ in range(5):
            fake.push_update(fake.text_update(flooder, "cảm ơn"))
        await fake.wait_for(lambda m: m.chat_id == flooder and "nhiều tin quá nhanh" in m.text, timeout=5)
        app = await service.restart()
        before = len(fake.sent_to(flooder))
        fake.push_update(fake.text_update(flooder, "cảm ơn"))
        await until(lambda: app.core.handoff.limiter.dropped >= 1, 5, "the message to be dropped")
        assert app.core.handoff.limiter.dropped == 1  # still over the limit after the restart
        assert len(fake.sent_to(flooder)) == before  # and no second notice
        assert await ask(fake, 6398, "xin chào")  # someone else is answered
    finally:
        await service.stop()


# ---------------------------------------------------------------------- a real SIGKILL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def spawn(tmp_path: Path, fake: FakeTelegram, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_", "DATABASE_URL",
                                                                     "CONTENT_DIR", "WEBHOOK_", "HTTP_", "FLOW_"))}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{tmp_path / 'bot.sqlite3'}", CONTENT_DIR=str(CONTENT),
               TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=fake.url, LOG_LEVEL="INFO", HTTP_PORT=str(free_port()))
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
                                                    stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out)


def owed(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "bot.sqlite3") as db:
        return db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]


async def test_sigkill_mid_gopy_then_restart_continues(tmp_path: Path, fake: FakeTelegram):
    log = tmp_path / "service.log"

    async def send(update: dict, expect: str) -> SentMessage:
        last = max((m.message_id for m in fake.sent_to(RESIDENT)), default=0)
        update_id = fake.push_update(update)
        [reply] = await fake.wait_for(lambda m: m.chat_id == RESIDENT and m.message_id > last, timeout=30)
        assert expect in reply.text, reply.text
        # PTB confirms an update with its next getUpdates: wait for that, so that the kill does not
        # make the fake hand the same update out again (that would be another issue's test)
        await until(lambda: any(int(c.params.get("offset") or 0) > update_id for c in fake.calls_to("getUpdates")),
                   10, "the update to be confirmed")
        # and for a reply that waited its turn (1 a second a chat) to be marked sent: a kill before
        # that is a send in flight, which the restart repeats (at least once, never lost)
        await until(lambda: owed(tmp_path) == 0, 10, "owed replies to be marked sent")
        return reply

    first = await spawn(tmp_path, fake, log)
    try:
        await send(fake.text_update(RESIDENT, "/gopy"), "việc gì")
        await send(fake.callback_update(RESIDENT, RESIDENT, "pet:t:ha-tang"), "xã, phường nào")
        await send(fake.text_update(RESIDENT, "phuong phan rang"), "Phường Phan Rang")
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert first.returncode == -signal.SIGKILL

    second = await spawn(tmp_path, fake, log)
    try:
        consent = await send(fake.text_update(RESIDENT, "Đèn đường hẻm 5 hỏng đã một tháng."), "Đèn đường hẻm 5")
        assert "pet:ok:" in consent.callback_data
        await send(fake.callback_update(RESIDENT, RESIDENT, "pet:ok:"), "#1")
    finally:
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 15)
    assert second.returncode == 0
    with sqlite3.connect(tmp_path / "bot.sqlite3") as db:
        assert db.execute("SELECT topic, locality, text FROM tickets").fetchall() == [
            ("ha-tang", "phan-rang", "Đèn đường hẻm 5 hỏng đã một tháng.")]
        assert db.execute("SELECT count(*) FROM question_log").fetchone() == (0,)
    assert "restored" in log.read_text(encoding="utf-8", errors="replace")
