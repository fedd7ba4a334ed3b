"""Recurring series on a real SQLite file, with an injected clock: firing, coalescing, never twice,
cancel, placeholders per locality, standing series from content."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.audiences.localities import load_localities
from bot.broadcasts.series import SeriesStore, Standing, parse_name
from bot.broadcasts.store import BroadcastError, Broadcasts, Target
from bot.broadcasts.templates import LocalityFacts
from bot.store.db import Database
from tests.conftest import CONTENT
from tests.unit.broadcasts.test_broadcasts import add_chat

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=TZ).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(at(2026, 12, 2, 9, 0, 10))


@pytest.fixture
def store(db: Database, clock: Clock) -> SeriesStore:
    tree, _ = load_localities(CONTENT)

    async def facts(codes, now):
        return {code: LocalityFacts(at(2026, 12, 20, 17), 2 if code == "phan-rang" else 0) for code in codes}

    return SeriesStore(db, Broadcasts(db, tree, clock), tree, TZ, clock=clock, facts=facts, none_due="chưa có hạn")


async def groups(db: Database) -> None:
    await add_chat(db, "-1", "group", "phan-rang")
    await add_chat(db, "-2", "group", "thuan-nam")
    await add_chat(db, "-3", "group", "phan-rang")
    await add_chat(db, "7", "private", "phan-rang")  # a resident: not in a groups series


async def test_a_series_fires_each_run_once_and_coalesces_missed_runs(db: Database, store: SeriesStore, clock: Clock):
    await groups(db)
    series = await store.create("Nhắc họp {quy}", Target("groups"), "* * * * *")
    row = await store.get(series)
    assert row is not None and row.next_run_at == at(2026, 12, 2, 9, 1)
    assert await store.fire(series) is None  # nothing due yet
    clock.now = at(2026, 12, 2, 9, 1, 2)
    firing = await store.fire(series)
    assert firing is not None and firing.run_at == at(2026, 12, 2, 9, 1) and firing.recipients == 3
    assert firing.missed == 0 and len(firing.broadcasts) == 1
    assert await store.fire(series) is None  # the same run: never twice
    text = await db.fetchval("SELECT text FROM broadcasts WHERE id = ?", (firing.broadcasts[0],))
    assert text == "Nhắc họp quý IV-2026"
    # the service was down 09:01 → 09:10:30: one make-up run for 09:10, standing for the nine it missed
    clock.now = at(2026, 12, 2, 9, 10, 30)
    assert await store.overdue(clock.now) == [series]
    firing = await store.fire(series)
    assert firing is not None and firing.run_at == at(2026, 12, 2, 9, 10) and firing.missed == 8
    assert await store.fire(series) is None
    assert [f["run_at"] for f in await store.firings(series)] == [at(2026, 12, 2, 9, 10), at(2026, 12, 2, 9, 1)]
    assert await db.fetchval("SELECT COUNT(*) FROM outbox") == 6
    row = await store.get(series)
    assert row is not None and row.next_run_at == at(2026, 12, 2, 9, 11)


async def test_no_firing_after_cancel(db: Database, store: SeriesStore, clock: Clock):
    await groups(db)
    series = await store.create("Tin tuần", Target("groups"), "@weekly")
    assert await store.cancel(series) and not await store.cancel(series)
    clock.now = at(2026, 12, 7, 8, 0, 5)
    assert await store.fire(series) is None and await store.overdue(clock.now) == []
    assert await db.fetchval("SELECT COUNT(*) FROM broadcasts") == 0
    row = await store.get(series)
    assert row is not None and row.as_json(TZ)["status"] == "cancelled" and row.next_run_at is None


async def test_a_crash_inside_the_firing_leaves_the_run_due(db: Database, store: SeriesStore, clock: Clock,
                                                           monkeypatch):
    from bot.broadcasts import outbox

    await groups(db)
    series = await store.create("Tin", Target("groups"), "*/5 * * * *")
    clock.now = at(2026, 12, 2, 9, 5, 1)

    async def broken(*args, **kwargs):
        raise RuntimeError("killed in the middle")

    monkeypatch.setattr(outbox, "queue", broken)
    with pytest.raises(RuntimeError):
        await store.fire(series)
    assert await db.fetchval("SELECT COUNT(*) FROM series_firings") == 0  # rolled back with the broadcasts
    monkeypatch.undo()
    firing = await store.fire(series)
    assert firing is not None and firing.run_at == at(2026, 12, 2, 9, 5)


async def test_placeholders_are_filled_per_locality(db: Database, store: SeriesStore, clock: Clock):
    await groups(db)
    text = "{dia_ban}: {quy}, năm {nam}; hạn giám sát {han_giam_sat}, còn thiếu {con_thieu} hoạt động."
    series = await store.create(text, Target("groups"), "@monthly")
    clock.now = at(2027, 1, 1, 8, 0, 3)
    firing = await store.fire(series)
    assert firing is not None and len(firing.broadcasts) == 2 and firing.recipients == 3
    rows = await db.fetchall("SELECT locality, text, total, options FROM broadcasts ORDER BY locality")
    assert [(r["locality"], r["total"]) for r in rows] == [("phan-rang", 2), ("thuan-nam", 1)]
    assert rows[0]["text"] == ("Phường Phan Rang: quý I-2027, năm 2027; hạn giám sát 20/12/2026,"
                               " còn thiếu 2 hoạt động.")
    assert rows[0]["options"] is None  # the "Đã nhận" button, like any staff broadcast to groups


async def test_bad_series_are_refused_in_vietnamese(store: SeriesStore):
    with pytest.raises(BroadcastError, match=r"dòng 2: chỗ điền \{quý_này\} không có"):
        await store.create("Kính gửi {quý}\n{quý_này}", Target("groups"), "@weekly")
    with pytest.raises(BroadcastError, match="lịch lặp"):
        await store.create("Tin", Target("groups"), "mỗi tuần")
    with pytest.raises(BroadcastError, match="không có địa bàn"):
        await store.create("Tin", Target("groups", "khong-co"), "@weekly")
    assert parse_name("S12") == 12 and parse_name("12") is None


async def test_standing_series_follow_the_file_and_keep_their_history(db: Database, store: SeriesStore, clock: Clock):
    await groups(db)
    standing = [Standing("nhiem-vu-quy", "broadcast", "@first-workday-quarter", "Nhiệm vụ {quy}")]
    assert await store.sync_standing(standing) == (1, 0, 0)
    assert await store.sync_standing(standing) == (0, 0, 0)
    [row] = await store.active()
    clock.now = at(2027, 1, 4, 8, 0, 1)
    assert await store.fire(row.id) is not None
    changed = [Standing("nhiem-vu-quy", "broadcast", "@first-workday-quarter", "Nhiệm vụ trọng tâm {quy}")]
    assert await store.sync_standing(changed) == (0, 1, 0)
    [again] = await store.active()
    assert again.id == row.id and again.text == "Nhiệm vụ trọng tâm {quy}" and await store.firing_count(row.id) == 1
    assert await store.fire(row.id) is None  # a new text is not a new run
    assert await store.sync_standing([]) == (0, 0, 1)
    assert await store.active() == [] and await store.firing_count(row.id) == 1
    broadcasts = json.loads((await db.fetchone("SELECT broadcasts FROM series_firings"))["broadcasts"])
    assert len(broadcasts) == 1


def test_cli_series_send_show_list_cancel(tmp_path):
    from tests.conftest import run_cli

    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}", "CONTENT_DIR": str(CONTENT)}
    made = run_cli("broadcast", "send", "--to", "groups", "--text", "Họp {quy}", "--repeat", "0 8 * * 1", "--yes",
                   "--json", env=env)
    assert made.returncode == 0, made.stderr
    got = json.loads(made.stdout)
    assert got["id"] == "S1" and datetime.fromisoformat(got["next_run"]).weekday() == 0
    shown = run_cli("broadcast", "show", "S1", "--json", env=env)
    assert json.loads(shown.stdout)["firings"] == [] and json.loads(shown.stdout)["status"] == "active"
    assert "S1" in run_cli("broadcast", "list", env=env).stdout
    bad = run_cli("broadcast", "send", "--to", "groups", "--text", "x {khong_co}", "--repeat", "@weekly", "--yes",
                  env=env)
    assert bad.returncode == 2 and "{khong_co}" in bad.stderr
    both = run_cli("broadcast", "send", "--to", "groups", "--text", "x", "--repeat", "@weekly", "--at",
                   "2030-01-01T08:00", "--yes", env=env)
    assert both.returncode == 2 and "--repeat" in both.stderr
    assert run_cli("broadcast", "cancel", "S1", env=env).returncode == 0
    assert run_cli("broadcast", "cancel", "S1", env=env).returncode == 1
    assert json.loads(run_cli("broadcast", "show", "S1", "--json", env=env).stdout)["status"] == "cancelled"
