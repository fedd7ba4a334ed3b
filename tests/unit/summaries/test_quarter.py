"""Quarterly summaries over a real SQLite file: the figures per locality, Vietnamese formatting,
the kind sentence for a quiet locality, and each group receiving its own locality's summary."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.audiences.chats import Chats, Staff
from bot.audiences.localities import load_localities
from bot.broadcasts.store import Broadcasts
from bot.kernel.config import Settings
from bot.kernel.content import load_content
from bot.kernel.messages import Messages
from bot.kernel.vietnamese import number, percent
from bot.store.db import Database
from bot.summaries import texts
from bot.summaries.build import build_series
from bot.summaries.quarter import Quarter, SummaryError
from bot.summaries.send import quarter_for_run
from bot.supervision.model import no_group_admins
from bot.supervision.schedule import load_config
from bot.supervision.service import Supervision
from tests.conftest import CONTENT, run_cli
from tests.unit.broadcasts.test_broadcasts import add_chat

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
Q4 = Quarter(2026, 4)


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=TZ).timestamp()


async def plan(db: Database, locality: str, kind: str, status: str, due: float, period: str = "2026-Q4") -> None:
    await db.write("INSERT INTO supervision_plans (locality, title, kind, period, due_at, remind, status, done_at,"
                   " created_at, updated_at) VALUES (?, ?, ?, ?, ?, '7d', ?, ?, 0, 0)",
                   (locality, f"{kind} {due:.0f}", kind, period, due, status, due if status == "done" else None))


async def activity(db: Database) -> dict[str, int]:
    g1 = await add_chat(db, "-1", "group", "phan-rang")
    g2 = await add_chat(db, "-2", "group", "phan-rang")
    g3 = await add_chat(db, "-3", "group", "thuan-nam")
    resident = await add_chat(db, "11", "private", "phan-rang")
    await plan(db, "phan-rang", "giam_sat", "done", at(2026, 10, 20))
    await plan(db, "phan-rang", "phan_bien", "done", at(2026, 11, 20))
    await plan(db, "phan-rang", "giam_sat", "planned", at(2026, 12, 20, 17))
    await plan(db, "phan-rang", "giam_sat", "done", at(2026, 5, 1), period="2026-Q2")  # another quarter
    inside, before = at(2026, 11, 2, 9), at(2026, 9, 30, 9)
    for sent_at, acked in ((inside, True), (inside, False), (before, True)):
        broadcast = await db.write("INSERT INTO broadcasts (text, audience, send_at, status, created_by, created_at)"
                                   " VALUES ('x', 'groups', ?, 'done', 'cli', ?)", (sent_at, sent_at))
        for chat in (g1, g2) if sent_at == inside else (g1,):
            await db.write("INSERT INTO outbox (broadcast, chat, channel, chat_id, kind, locality, next_attempt_at,"
                           " status, sent_at) VALUES (?, ?, 'telegram', ?, 'group', 'phan-rang', 0, 'sent', ?)",
                           (broadcast, chat, str(-chat), sent_at))
        if acked:
            await db.write("INSERT INTO acknowledgements (broadcast, chat, user_id, at) VALUES (?, ?, 'u', ?)",
                           (broadcast, g1, sent_at))
    for entry, outcome in (("quy-vi-nguoi-ngheo", "answered"), ("quy-vi-nguoi-ngheo", "answered"),
                           ("bhyt-ho-can-ngheo", "answered"), (None, "declined"), (None, "choices")):
        await db.write("INSERT INTO question_log (chat, channel, text, folded, entry_id, outcome, asked_at)"
                       " VALUES (?, 'telegram', 'q', 'q', ?, ?, ?)", (resident, entry, outcome, inside))
    for hours, kind in ((2, "petition"), (4, "question"), (None, "question")):
        await db.write("INSERT INTO tickets (kind, chat, channel, text, status, answered_at, created_at, updated_at)"
                       " VALUES (?, ?, 'telegram', 't', ?, ?, ?, ?)",
                       (kind, resident, "answered" if hours else "open", inside + hours * 3600 if hours else None,
                        inside, inside))
    return {"g1": g1, "g2": g2, "g3": g3}


@pytest.fixture
async def sending(db: Database, settings: Settings):
    tree, _ = load_localities(CONTENT)
    content = load_content(CONTENT, strict=False)
    config, _ = load_config(CONTENT)
    say = Messages(content.messages)
    supervision = Supervision(db, tree, say, Staff(db, {}), TZ, config, notify=lambda: None,
                              is_admin=no_group_admins)
    staffed = Settings(database_path=settings.database_path, content_dir=CONTENT, telegram_staff_chat_id="-999")
    _, sending = build_series(staffed, db, tree, supervision, Broadcasts(db, tree), Chats(db), say, content.entries)
    return sending


async def test_each_locality_gets_its_quarter_in_figures(db: Database, sending):
    await activity(db)
    items = await sending.summaries.quarter(Q4, at(2026, 12, 2))
    assert len(items) == len(sending.summaries.supervision.tracked)
    by = {i["locality"]: i for i in items}
    pr = by["phan-rang"]
    assert pr["supervision"] == {"done": 2, "giam_sat": 1, "phan_bien": 1, "planned": 1, "required": 2, "met": True,
                                 "next_deadlines": [{"title": pr["supervision"]["next_deadlines"][0]["title"],
                                                     "due": "20/12/2026"}]}
    assert pr["broadcasts"] == {"received": 2, "sent": 4, "acknowledged": 1, "ack_share": 0.25}
    assert pr["questions"]["answered"] == 3 and pr["questions"]["declined"] == 1 and pr["questions"]["choices"] == 1
    assert [t["id"] for t in pr["questions"]["top_topics"]] == ["quy-vi-nguoi-ngheo", "bhyt-ho-can-ngheo"]
    assert pr["questions"]["top_topics"][0]["count"] == 2
    assert pr["tickets"] == {"received": 3, "questions": 2, "petitions": 1, "answered": 2, "median_answer_hours": 3.0}
    assert pr["audience"] == {"subscribers": 1, "groups": 2}
    assert by["thuan-nam"]["has_activity"] is False and by["thuan-nam"]["audience"]["groups"] == 1
    [one] = await sending.summaries.quarter(Q4, at(2026, 12, 2), "phan-rang")
    assert one == pr
    with pytest.raises(SummaryError):
        await sending.summaries.quarter(Q4, at(2026, 12, 2), "khanh-hoa")  # the province owes nothing itself


async def test_texts_are_vietnamese_and_a_quiet_locality_gets_a_kind_sentence(db: Database, sending):
    await activity(db)
    items = {i["locality"]: i for i in await sending.summaries.quarter(Q4, at(2026, 12, 2))}
    say = sending.say
    text = texts.locality_text(items["phan-rang"], Q4, say)
    assert "quý IV-2026" in text and "2/2" in text and "25%" in text and "20/12/2026" in text
    assert "(trung vị) 3 giờ" in text
    quiet = texts.locality_text(items["thuan-nam"], Q4, say)
    assert "Cảm ơn" in quiet and "0/" not in quiet
    assert number(1234567) == "1.234.567" and number(1234.56, 1) == "1.234,6" and number(0.04, 1) == "0,0"
    assert percent(0.625) == "62,5%" and percent(0.5) == "50%"


async def test_send_gives_each_group_its_own_locality_and_the_staff_the_table(db: Database, sending):
    chats = await activity(db)
    messages = await sending.summary_messages(Q4, at(2026, 12, 2))
    ids = await sending.queue(messages, at(2027, 1, 4, 8), created_by="series:1")
    rows = await db.fetchall("SELECT o.chat, b.text, b.options FROM outbox o JOIN broadcasts b ON b.id = o.broadcast"
                             " WHERE b.id IN (SELECT value FROM json_each(?)) ORDER BY o.chat", (json.dumps(ids),))
    got = {r["chat"]: r["text"] for r in rows}
    assert "Phường Phan Rang" in got[chats["g1"]] and got[chats["g1"]] == got[chats["g2"]]
    assert "Xã Thuận Nam" in got[chats["g3"]] and "Phan Rang" not in got[chats["g3"]]
    staff = [text for chat, text in got.items() if chat not in chats.values()]
    assert len(staff) == 1 and "Tổng kết quý IV-2026" in staff[0] and "Phường Phan Rang" in staff[0]


def test_quarters():
    assert Quarter.parse("2026-Q4") == Q4 and Quarter.parse("2026q1") == Quarter(2026, 1)
    with pytest.raises(SummaryError, match="2026-Q4"):
        Quarter.parse("2026-Q5")
    start, end = Q4.bounds(TZ)
    assert (start, end) == (at(2026, 10, 1), at(2027, 1, 1))
    assert Q4.name == "quý IV-2026" and Quarter(2027, 1).previous() == Q4
    assert quarter_for_run(at(2027, 1, 4, 8), TZ) == Q4  # the first working day's summary: the quarter just ended
    assert quarter_for_run(at(2026, 12, 25, 8), TZ) == Q4


def test_cli_summary_quarter_json_and_bad_input(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}", "CONTENT_DIR": str(CONTENT)}
    result = run_cli("summary", "quarter", "--quarter", "2026-Q4", "--json", env=env)
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert items and all(i["quarter"] == "2026-Q4" and i["locality"] for i in items)
    one = run_cli("summary", "quarter", "--locality", "phan-rang", env=env)
    assert one.returncode == 0 and "Phường Phan Rang" in one.stdout and "Cảm ơn" in one.stdout
    bad = run_cli("summary", "quarter", "--quarter", "2026-Q9", env=env)
    assert bad.returncode == 2 and "2026-Q4" in bad.stderr and "Traceback" not in bad.stderr
    province = run_cli("summary", "quarter", "--locality", "khanh-hoa", "--json", env=env)
    assert province.returncode == 2 and "Traceback" not in province.stderr
