"""Privacy below the channels: /dulieu and /xoadulieu in groups, erasing a person who never got a
broadcast (the chats row goes entirely), and the retention purge of closed tickets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.app.wiring import build_core
from bot.channels.base import Inbound
from bot.kernel.config import Settings
from tests.conftest import CONTENT

DAY = 86_400.0


def said(replies) -> str:
    return "\n".join(r.text for r in replies)


async def test_erasure_and_retention(tmp_path: Path):
    settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT, ticket_retention_days=30)
    core = await build_core(settings)
    db, handoff = core.db, core.handoff
    assert handoff is not None and handoff.privacy is not None
    try:
        group = Inbound("telegram", "-100", "5", chat_kind="group", text="/dulieu")
        assert "nhắn riêng" in said(await core.dialogue.handle(group))
        me = Inbound("telegram", "42", "42", text="/canbo Hỏi về quỹ", display_name="Bà Sáu")
        await core.dialogue.handle(me)
        other = Inbound("telegram", "43", "43", text="/canbo Hỏi việc khác", display_name="Ông Bảy")
        await core.dialogue.handle(other)
        report = said(await core.dialogue.handle(Inbound("telegram", "42", "42", text="/dulieu")))
        assert "Bà Sáu" in report and "#1" in report and "42" in report

        chat = await db.fetchval("SELECT id FROM chats WHERE chat_id = '42'")
        counts = await handoff.privacy.erase(chat, "telegram", "42")
        assert counts["chat_deleted"] == 1 and counts["tickets"] == 1
        assert await db.fetchval("SELECT COUNT(*) FROM chats WHERE id = ?", (chat,)) == 0
        row = await db.fetchone("SELECT chat, user_id, display_name, status FROM tickets WHERE id = 1")
        assert tuple(row) == (None, None, None, "closed")

        # retention: ticket 2 (someone else's) is answered; 31 days later its personal fields go
        await handoff.tickets.answer(2, "Đã trả lời", "telegram:77")
        now = handoff.clock()
        assert await handoff.privacy.purge(now + 29 * DAY) == 0
        assert await handoff.privacy.purge(now + 31 * DAY) == 1
        row = await db.fetchone("SELECT chat, user_id, display_name, text, answer FROM tickets WHERE id = 2")
        assert tuple(row) == (None, None, None, "Hỏi việc khác", "Đã trả lời")
        assert await handoff.privacy.purge(now + 40 * DAY) == 0  # once
        # the purge is a job of the service's scheduler: daily, the first time as it starts
        from datetime import timedelta

        job = core.jobs.job("retention-purge")
        assert job is not None and job.trigger.interval == timedelta(days=1) and job.next_run_time is not None
        await core.dialogue.handle(Inbound("telegram", "44", "44", text="/canbo Hỏi lần nữa", display_name="Cô Chín"))
        third = await db.fetchval("SELECT MAX(id) FROM tickets")
        await handoff.tickets.answer(third, "Đã trả lời", "telegram:77")
        handoff.privacy.clock = lambda: now + 31 * DAY
        assert await core.jobs.run("retention-purge")
        assert await db.fetchval("SELECT display_name FROM tickets WHERE id = ?", (third,)) is None
        assert third == 3
        assert "Ông Bảy" in said(await core.dialogue.handle(Inbound("telegram", "43", "43", text="/dulieu",
                                                                    display_name="Ông Bảy")))
    finally:
        await core.close()


async def test_erasure_reaches_supervision_requests_reports_and_the_staff_post_naming_them(tmp_path: Path):
    """A group admin who asked to extend a plan and reported another one done, then erases their data:
    their id and name leave supervision_extensions, supervision_plans.done_by and the staff post."""
    from bot.audiences.registration import GroupRecord, register_groups
    from bot.supervision.model import who
    from bot.supervision.plans_io import build
    from bot.supervision.schedule import SupervisionConfig

    settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT, telegram_staff_chat_id="-100999")
    core = await build_core(settings)
    db, sv = core.db, core.supervision
    try:
        await register_groups(db, [GroupRecord("telegram", "-100777", "phan-rang", "Tổ dân phố 3")])
        first, second = [await sv.add(build({"locality": "phan-rang", "title": t, "due": "2030-12-15 17:00"},
                                            core.localities, SupervisionConfig(), settings.tz, now=None))
                         for t in ("Một", "Hai")]
        admin = Inbound("telegram", "-100777", "5150", chat_kind="group", display_name="Chị Tư Hoà",
                        chat_title="Tổ dân phố 3")
        assert await sv.request_extension(first, admin, "mưa bão", sv.now() + 400 * DAY)
        assert await sv.complete(second, "xong", who(admin)) == "done"
        await core.dialogue.handle(Inbound("telegram", "5150", "5150", text="/dulieu", display_name="Chị Tư Hoà"))
        chat = await db.fetchval("SELECT id FROM chats WHERE chat_id = '5150'")

        def holding() -> list[str]:
            with sqlite3.connect(settings.database_path) as raw:
                return [f"{table}.{column}" for table, column in (
                    ("supervision_extensions", "user_id"), ("supervision_extensions", "display_name"),
                    ("supervision_plans", "done_by"), ("broadcasts", "text"))
                    if raw.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} LIKE '%Tư Hoà%'"
                                   f" OR {column} LIKE '%5150%'").fetchone()[0]]

        assert holding() == ["supervision_extensions.user_id", "supervision_extensions.display_name",
                             "supervision_plans.done_by", "broadcasts.text"]
        counts = await core.handoff.privacy.erase(chat, "telegram", "5150")
        assert counts["supervision"] == 2 and holding() == []
        row = await db.fetchone("SELECT reason, status FROM supervision_extensions")
        assert tuple(row) == ("mưa bão", "pending")  # the request itself stays, anonymous
        assert (await sv.get(second)).status == "done"
    finally:
        await core.close()
