import csv
import io
import json
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app.wiring import Core, build_core
from bot.audiences.localities import load_localities
from bot.broadcasts.store import BroadcastError, Broadcasts, Target, parse_audience, parse_time, read_announcement
from bot.channels.base import Inbound
from bot.kernel.config import Settings
from bot.store.db import Database, open_database
from tests.conftest import CONTENT, run_cli

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


async def add_chat(db: Database, chat_id: str, kind: str, locality: str | None, *, consent: bool = True,
                   active: bool = True, channel: str = "telegram") -> int:
    return await db.write(
        "INSERT INTO chats (channel, chat_id, kind, locality, consent, active, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?, 0, 0)", (channel, chat_id, kind, locality, int(consent), int(active)),
    )


@pytest.fixture
def broadcasts(db: Database) -> Broadcasts:
    tree, _ = load_localities(CONTENT)
    return Broadcasts(db, tree)


async def population(db: Database) -> None:
    await add_chat(db, "-1", "group", "phan-rang")
    await add_chat(db, "-2", "group", "thuan-nam")
    await add_chat(db, "-3", "group", "phan-rang", active=False)  # bot was removed
    await add_chat(db, "-4", "group", None, consent=False)  # never registered
    await add_chat(db, "10", "private", "phan-rang")
    await add_chat(db, "11", "private", "phan-rang", consent=False)  # said no / /huy
    await add_chat(db, "12", "private", "khanh-hoa")
    await add_chat(db, "z1", "private", "phan-rang", channel="zalo")


async def recipients(db: Database, broadcast: int) -> set[str]:
    rows = await db.fetchall("SELECT chat_id FROM outbox WHERE broadcast = ?", (broadcast,))
    return {r["chat_id"] for r in rows}


async def test_targeting_respects_consent_activity_kind_subtree_and_channel(db, broadcasts):
    await population(db)
    cases = {
        Target("groups"): {"-1", "-2"},
        Target("residents"): {"10", "12", "z1"},
        Target("all"): {"-1", "-2", "10", "12", "z1"},
        Target("all", "phan-rang"): {"-1", "10", "z1"},
        Target("all", "khanh-hoa"): {"-1", "-2", "10", "12", "z1"},  # the whole subtree
        Target("residents", channel="zalo"): {"z1"},
    }
    for target, expected in cases.items():
        assert await broadcasts.count(target) == len(expected), target
        broadcast = await broadcasts.create("Thông báo họp", target)
        assert await recipients(db, broadcast) == expected, target
        report = await broadcasts.report(broadcast)
        assert report.total == report.pending == len(expected)


async def test_bad_targets_are_refused(broadcasts):
    with pytest.raises(BroadcastError):
        await broadcasts.count(Target("everyone"))
    with pytest.raises(BroadcastError):
        await broadcasts.count(Target("all", "khong-co"))
    with pytest.raises(BroadcastError):
        await broadcasts.create("   ", Target("all"))


async def test_confirm_is_idempotent_and_queues_in_one_go(db, broadcasts):
    await population(db)
    draft = await broadcasts.create("Nháp", Target("all"), confirm=False)
    assert await recipients(db, draft) == set()
    assert await broadcasts.confirm(draft) == 5
    assert await broadcasts.confirm(draft) == 0  # a second tap on "Gửi"
    assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE broadcast = ?", (draft,)) == 5
    assert await db.fetchval("SELECT total FROM broadcasts WHERE id = ?", (draft,)) == 5


async def test_queueing_rolls_back_whole(db, broadcasts, monkeypatch):
    await population(db)

    def broken(target):
        raise RuntimeError("boom")

    monkeypatch.setattr(broadcasts, "_where", broken)
    with pytest.raises(RuntimeError):
        await broadcasts.create("X", Target("all"))
    assert await db.fetchval("SELECT COUNT(*) FROM broadcasts") == 0


async def test_cancel_fails_pending_rows_as_cancelled(db, broadcasts):
    await population(db)
    broadcast = await broadcasts.create("Ngay", Target("all"))
    assert await broadcasts.cancel(broadcast) == 5
    assert await broadcasts.cancel(broadcast) is None
    report = await broadcasts.report(broadcast)
    assert report.status == "cancelled" and report.failed == {"cancelled": 5} and report.pending == 0
    # scheduled: no recipient chosen yet; the answer says how many would have got it
    later = await broadcasts.create("Hẹn giờ", Target("all"), send_at=time.time() + 3600)
    assert await broadcasts.cancel(later) == 5
    assert await broadcasts.resolve_due(time.time() + 7200) is None  # a cancelled one is never resolved
    report = await broadcasts.report(later)
    assert (report.status, report.total, report.pending, report.failed) == ("cancelled", 0, 0, {})


async def test_scheduled_audience_is_resolved_when_due_once(db, broadcasts):
    await population(db)
    due = time.time() + 3600
    broadcast = await broadcasts.create("Hẹn giờ", Target("all"), send_at=due)
    assert await recipients(db, broadcast) == set()
    assert (await broadcasts.report(broadcast)).as_json()["pending"] == 5  # today's count, as an estimate
    await add_chat(db, "13", "private", "thuan-nam")  # subscribes after the broadcast was confirmed
    await db.write("UPDATE chats SET consent = 0 WHERE chat_id = '10'")  # and one says /huy meanwhile
    assert await broadcasts.resolve_due(due - 1) == due
    assert await recipients(db, broadcast) == set()
    assert await broadcasts.resolve_due(due) is None
    assert await recipients(db, broadcast) == {"-1", "-2", "12", "z1", "13"}
    assert await db.fetchval("SELECT MIN(next_attempt_at) FROM outbox WHERE broadcast = ?", (broadcast,)) == due
    await add_chat(db, "14", "private", "thuan-nam")
    assert await broadcasts.resolve_due(due + 10) is None  # resolving again writes nothing more
    assert await broadcasts.confirm(broadcast) == 0
    assert await recipients(db, broadcast) == {"-1", "-2", "12", "z1", "13"}
    report = await broadcasts.report(broadcast)
    assert report.resolved and report.total == 5


async def test_report_counts_and_breakdown(db, broadcasts):
    await population(db)
    broadcast = await broadcasts.create("Tin", Target("all", "khanh-hoa"))
    await db.write("UPDATE outbox SET status = 'sent' WHERE chat_id IN ('-1', '10')")
    await db.write("UPDATE outbox SET status = 'failed', reason = 'gone: blocked' WHERE chat_id = '12'")
    group = await db.fetchval("SELECT id FROM chats WHERE chat_id = '-1'")
    assert await broadcasts.acknowledge(broadcast, group, "7", "Lan") == "recorded"
    assert await broadcasts.acknowledge(broadcast, group, "8", "Hùng") == "already"  # once per group
    assert await broadcasts.acknowledge(999, group, "7", "Lan") == "missing"
    pending = await db.fetchval("SELECT id FROM chats WHERE chat_id = '-2'")  # its copy is not sent yet
    stranger = await db.fetchval("SELECT id FROM chats WHERE chat_id = '-4'")  # never registered
    assert await broadcasts.acknowledge(broadcast, pending, "9", "Hoa") == "not_recipient"
    assert await broadcasts.acknowledge(broadcast, stranger, "9", "Hoa") == "not_recipient"
    report = await broadcasts.report(broadcast)
    assert report.as_json() == {"id": broadcast, "total": 5, "sent": 2, "pending": 2,
                                "failed": {"gone: blocked": 1}, "acknowledged": 1}
    assert report.by_locality["phan-rang"] == {"total": 3, "sent": 2, "pending": 1, "failed": 0, "acknowledged": 1}
    assert await broadcasts.report(12345) is None


async def test_ack_button_through_the_dialogue(settings: Settings):
    core: Core = await build_core(settings)
    try:
        group = await add_chat(core.db, "-50", "group", "phan-rang")
        broadcast = await core.broadcasts.create("Họp tổ", Target("groups"))
        await core.db.write("UPDATE outbox SET status = 'sent' WHERE broadcast = ?", (broadcast,))

        def tap(user: str) -> Inbound:
            return Inbound("telegram", "-50", user, kind="option", chat_kind="group", option=f"ack:{broadcast}",
                           display_name=f"Người {user}")

        [first] = await core.dialogue.handle(tap("1"))
        assert "Người 1" in first.text
        [second] = await core.dialogue.handle(tap("2"))
        assert second.text == core.dialogue.say("ack_already")
        rows = await core.db.fetchall("SELECT chat, user_id FROM acknowledgements")
        assert [(r["chat"], r["user_id"]) for r in rows] == [(group, "1")]
        [stale] = await core.dialogue.handle(
            Inbound("telegram", "-50", "1", kind="option", chat_kind="group", option="ack:999"))
        assert stale.text == core.dialogue.say("stale_option")
    finally:
        await core.close()


def test_parsing_helpers(tmp_path: Path):
    assert parse_audience("groups,residents") == "all"
    assert parse_audience("residents") == "residents"
    with pytest.raises(BroadcastError):
        parse_audience("friends")
    local = parse_time("2030-07-01T08:00", TZ)
    assert datetime.fromtimestamp(local, TZ).hour == 8
    assert parse_time("2030-07-01T01:00+00:00", TZ) == local
    with pytest.raises(BroadcastError):
        parse_time("mai 8 giờ", TZ)
    piece = tmp_path / "a.md"
    piece.write_text("---\nid: quy-3\ntitle: Nhiệm vụ quý III\naudience: groups\n---\nNội dung.\n", encoding="utf-8")
    assert read_announcement(piece).title == "Nhiệm vụ quý III"
    assert read_announcement(piece).text == "Nội dung."


# ---------------------------------------------------------------------- CLI


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}"}


async def seeded(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "bot.sqlite3")
    try:
        await population(db)
    finally:
        await db.close()


async def test_cli_send_show_list(tmp_path: Path):
    await seeded(tmp_path)
    env = env_for(tmp_path)
    sent = run_cli("broadcast", "send", "--to", "groups,residents", "--locality", "phan rang",
                   "--text", "Mời bà con dự họp tổ dân phố.", "--yes", "--json", env=env)
    assert sent.returncode == 0, sent.stderr
    out = json.loads(sent.stdout)
    assert set(out) == {"id"}
    shown = run_cli("broadcast", "show", str(out["id"]), "--json", env=env)
    assert json.loads(shown.stdout) == {"id": out["id"], "total": 3, "sent": 0, "pending": 3, "failed": {},
                                        "acknowledged": 0, "by_locality": {"phan-rang": {
                                            "total": 3, "sent": 0, "pending": 3, "failed": 0, "acknowledged": 0}}}
    human = run_cli("broadcast", "show", str(out["id"]), env=env)
    assert human.returncode == 0 and "Phường Phan Rang" in human.stdout
    listed = run_cli("broadcast", "list", env=env)
    assert listed.returncode == 0 and f"#{out['id']}" in listed.stdout
    missing = run_cli("broadcast", "show", "999", env=env)
    assert missing.returncode == 1


async def test_cli_send_from_file_scheduled_in_local_time(tmp_path: Path):
    await seeded(tmp_path)
    env = env_for(tmp_path)
    piece = tmp_path / "quy-3.md"
    piece.write_text("---\nid: nhiem-vu-quy-3\ntitle: Nhiệm vụ trọng tâm quý III\naudience: groups\n---\n"
                     "Mỗi địa phương tổ chức ít nhất 2 hoạt động giám sát, phản biện.\n", encoding="utf-8")
    sent = run_cli("broadcast", "send", "--file", str(piece), "--at", "2099-07-01T08:00", "--yes", "--json",
                   env=env)
    assert sent.returncode == 0, sent.stderr
    broadcast = json.loads(sent.stdout)["id"]
    db = await open_database(tmp_path / "bot.sqlite3")
    try:
        row = await db.fetchone("SELECT * FROM broadcasts WHERE id = ?", (broadcast,))
        rows = await db.fetchval("SELECT COUNT(*) FROM outbox WHERE broadcast = ?", (broadcast,))
    finally:
        await db.close()
    assert row["title"] == "Nhiệm vụ trọng tâm quý III" and row["audience"] == "groups"
    assert row["source"] == "nhiem-vu-quy-3" and row["total"] == 2
    assert datetime.fromtimestamp(row["send_at"], TZ).strftime("%d/%m/%Y %H:%M") == "01/07/2099 08:00"
    assert rows == 0 and row["resolved_at"] is None  # recipients are chosen when it falls due


async def test_cli_send_refuses_mistakes_and_asks_before_sending(tmp_path: Path):
    await seeded(tmp_path)
    env = env_for(tmp_path)
    past = run_cli("broadcast", "send", "--to", "all", "--text", "x", "--at", "2020-01-01T08:00", "--yes", env=env)
    assert past.returncode == 2 and "đã qua" in past.stderr
    wrong = run_cli("broadcast", "send", "--to", "all", "--locality", "phan-ran", "--text", "x", "--yes", env=env)
    assert wrong.returncode == 2 and "phan-rang" in wrong.stderr
    declined = run_cli("broadcast", "send", "--to", "all", "--text", "Tin thử", env=env, stdin="k\n")
    assert declined.returncode == 1 and "Số người nhận: 5" in declined.stderr
    accepted = run_cli("broadcast", "send", "--to", "all", "--text", "Tin thử", env=env, stdin="c\n")
    assert accepted.returncode == 0
    listed = json.loads(run_cli("broadcast", "list", "--json", env=env).stdout)
    assert len(listed) == 1 and listed[0]["total"] == 5


async def test_cli_cancel(tmp_path: Path):
    await seeded(tmp_path)
    env = env_for(tmp_path)
    sent = run_cli("broadcast", "send", "--to", "all", "--text", "x", "--at", "2099-01-01T08:00", "--yes", "--json",
                   env=env)
    broadcast = json.loads(sent.stdout)["id"]
    assert run_cli("broadcast", "cancel", str(broadcast), env=env).returncode == 0
    report = json.loads(run_cli("broadcast", "show", str(broadcast), "--json", env=env).stdout)
    assert report["failed"] == {} and report["pending"] == 0 and report["total"] == 0


async def test_cli_show_csv_one_row_per_recipient_to_stdout_or_file(tmp_path: Path):
    await seeded(tmp_path)
    env = env_for(tmp_path)
    broadcast = json.loads(run_cli("broadcast", "send", "--to", "all", "--text", "Tin", "--yes", "--json",
                                   env=env).stdout)["id"]
    db = await open_database(tmp_path / "bot.sqlite3")
    try:
        sent_at = datetime(2030, 7, 1, 8, 5, 9, tzinfo=TZ).timestamp()
        await db.write("UPDATE outbox SET status = 'sent', sent_at = ? WHERE chat_id IN ('-1', '10')", (sent_at,))
        await db.write("UPDATE outbox SET status = 'failed', reason = 'gone: blocked' WHERE chat_id = '12'")
        group = await db.fetchval("SELECT id FROM chats WHERE chat_id = '-1'")
        tree, _ = load_localities(CONTENT)
        await Broadcasts(db, tree).acknowledge(broadcast, group, "7", "Lan")
    finally:
        await db.close()
    shown = run_cli("broadcast", "show", str(broadcast), "--csv", env=env)
    assert shown.returncode == 0, shown.stderr
    rows = list(csv.DictReader(io.StringIO(shown.stdout)))
    assert list(rows[0]) == ["channel", "chat_id", "kind", "locality", "status", "reason", "sent_at", "acknowledged"]
    by_chat = {r["chat_id"]: r for r in rows}
    assert set(by_chat) == {"-1", "-2", "10", "12", "z1"}
    assert by_chat["-1"] == {"channel": "telegram", "chat_id": "-1", "kind": "group", "locality": "phan-rang",
                             "status": "sent", "reason": "", "sent_at": "01/07/2030 08:05:09", "acknowledged": "1"}
    failed = by_chat["12"]
    assert (failed["status"], failed["reason"], failed["sent_at"]) == ("failed", "gone: blocked", "")
    assert by_chat["z1"]["channel"] == "zalo" and by_chat["-2"]["acknowledged"] == "0"
    out = tmp_path / "bao-cao.csv"
    written = run_cli("broadcast", "show", str(broadcast), "--csv", str(out), env=env)
    assert written.returncode == 0 and written.stdout == ""
    assert list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig")))) == rows
    report = json.loads(run_cli("broadcast", "show", str(broadcast), "--json", env=env).stdout)
    assert report["by_locality"]["phan-rang"] == {"total": 3, "sent": 2, "pending": 1, "failed": 0,
                                                  "acknowledged": 1}
    assert sum(c["total"] for c in report["by_locality"].values()) == report["total"] == 5
