"""Supervision: fire times, reminders through the outbox, completion, extension, restarts,
catch-up, escalation, nudges, the table, bad input. A fake clock drives days in milliseconds."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app.wiring import Core
from bot.audiences.localities import load_localities
from bot.audiences.registration import GroupRecord, register_groups
from bot.channels.base import Inbound, Reply
from bot.kernel.messages import Messages
from bot.store.db import Database, open_database
from bot.supervision.model import SupervisionError, match_done
from bot.supervision.plans_io import build, parse_csv, parse_yaml
from bot.supervision.schedule import ScheduleError, SupervisionConfig, load_config, parse_offsets
from bot.supervision.service import Supervision
from tests.conftest import CONTENT, run_cli

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
GROUP = "-100777"
STAFF_CHAT = "-100999"
STAFF = "4242"


def at(text: str) -> float:
    """"2026-12-01 08:00" local → epoch."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp()


def local(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, TZ).strftime("%Y-%m-%d %H:%M")


class Clock:
    def __init__(self, start: str) -> None:
        self.now = at(start)

    def __call__(self) -> float:
        return self.now

    def set(self, text: str) -> None:
        self.now = at(text)

    async def sleep(self, delay: float) -> None:
        self.now += delay


TREE, _ = load_localities(CONTENT)
SAY = Messages(__import__("yaml").safe_load((CONTENT / "messages.yaml").read_text(encoding="utf-8")))


async def no_admins(inbound: Inbound) -> bool:
    return False


def service(db: Database, clock: Clock, config: SupervisionConfig | None = None) -> Supervision:
    from bot.audiences.chats import Staff

    config = config or SupervisionConfig(nudge_weeks_left=())  # nudges have their own test
    return Supervision(db, TREE, SAY, Staff(db, {"telegram": frozenset({STAFF})}), TZ, config,
                       staff_chat=("telegram", STAFF_CHAT), clock=clock, notify=lambda: None, is_admin=no_admins)


def plan(locality: str = "phan-rang", due: str = "2026-12-15 17:00", remind: str | None = None, **kw):
    raw = {"locality": locality, "title": kw.pop("title", "Giám sát BHYT hộ cận nghèo"), "due": due,
           "remind": remind, **kw}
    return build(raw, TREE, SupervisionConfig(), TZ, now=None)


async def sent_rows(db: Database, source_like: str = "sv:%") -> list[dict]:
    rows = await db.fetchall(
        "SELECT b.id, b.text, b.options, b.source, b.created_at, o.chat_id, o.status FROM broadcasts b"
        " JOIN outbox o ON o.broadcast = b.id WHERE b.source LIKE ? ORDER BY b.id, o.id", (source_like,))
    return [dict(r) for r in rows]


@pytest.fixture
def clock() -> Clock:
    return Clock("2026-11-27 10:00")


@pytest.fixture
async def sv(db: Database, clock: Clock) -> Supervision:
    await register_groups(db, [GroupRecord("telegram", GROUP, "phan-rang", "Tổ dân phố 3")])
    return service(db, clock)


async def run_at(sv: Supervision, clock: Clock, when: str) -> None:
    clock.set(when)
    sv.scheduler.next_housekeeping = 0.0
    await sv.tick()


# ---------------------------------------------------------------------- fire times


@pytest.mark.parametrize(("due", "offset", "expected"), [
    ("2026-12-15 17:00", "14d", "2026-12-01 08:00"),
    ("2026-12-15 17:00", "7d", "2026-12-08 08:00"),
    ("2026-12-15 17:00", "1d", "2026-12-14 08:00"),
    ("2026-12-15 17:00", "0d", "2026-12-15 08:00"),
    ("2026-12-15 17:00", "2h", "2026-12-15 15:00"),
    ("2026-12-15 17:00", "30m", "2026-12-15 16:30"),
    ("2027-01-01 10:00", "1d", "2026-12-31 08:00"),  # year boundary
    ("2027-01-03 10:00", "7d", "2026-12-27 08:00"),
    ("2026-03-01 09:00", "1d", "2026-02-28 08:00"),  # month boundary, not a leap year
    ("2028-03-01 09:00", "1d", "2028-02-29 08:00"),  # leap year
    ("2026-12-15 07:30", "0d", "2026-12-14 20:00"),  # due before the morning hour: the evening before
    ("2026-12-15 23:30", "2h", "2026-12-15 21:30"),  # hour offsets are exact, quiet hours or not
    ("2026-12-16 00:10", "30m", "2026-12-15 23:40"),
])
def test_fire_times_in_local_time(due: str, offset: str, expected: str):
    config = SupervisionConfig()
    assert local(config.fire_at(at(due), parse_offsets(offset)[0], TZ)) == expected


def test_day_reminders_never_fall_in_quiet_hours_whatever_the_settings():
    from datetime import time as dtime

    config = SupervisionConfig(morning=dtime(7, 30), quiet_start=dtime(22, 0), quiet_end=dtime(6, 0))
    for day in range(1, 29):
        for hour in (0, 5, 7, 12, 23):
            due = at(f"2027-02-{day:02d} {hour:02d}:15")
            for o in parse_offsets("14d,7d,1d,0d"):
                fire = config.fire_at(due, o, TZ)
                assert not config.quiet(datetime.fromtimestamp(fire, TZ)) and fire < due


def test_offsets_parse_and_refuse():
    assert [o.label for o in parse_offsets("0d, 14d,7d,1d")] == ["14d", "7d", "1d", "0d"]
    assert [o.label for o in parse_offsets("1h,0m,30m")] == ["1h", "30m", "0m"]
    for bad in ("", "7w", "d", "-1d", "400d"):
        with pytest.raises(ScheduleError):
            parse_offsets(bad)


# ---------------------------------------------------------------------- reminders through the outbox


async def test_each_offset_goes_to_the_group_once_with_both_buttons(sv: Supervision, clock: Clock, db: Database):
    plan_id = await sv.add(plan())
    for when in ("2026-11-30 23:00", "2026-12-01 07:59"):
        await run_at(sv, clock, when)
    assert await sent_rows(db) == []
    await run_at(sv, clock, "2026-12-01 08:00")
    [row] = await sent_rows(db)
    assert row["chat_id"] == GROUP and row["status"] == "pending"
    assert "15/12/2026 17:00" in row["text"] and "Giám sát BHYT hộ cận nghèo" in row["text"]
    assert "còn 14 ngày" in row["text"]
    assert json.loads(row["options"]) == [["Đã hoàn thành", f"sv:done:{plan_id}"],
                                          ["Xin gia hạn", f"sv:ext:{plan_id}"]]
    await run_at(sv, clock, "2026-12-01 08:05")  # again: nothing more
    assert len(await sent_rows(db)) == 1
    for when in ("2026-12-08 08:00", "2026-12-14 08:00", "2026-12-15 08:00"):
        await run_at(sv, clock, when)
    texts = [r["text"] for r in await sent_rows(db)]
    assert len(texts) == 4 and "còn 1 ngày" in texts[2] and "còn khoảng 9 giờ" in texts[3]
    assert [r["state"] for r in await sv.reminders(plan_id)] == ["sent"] * 4


async def test_tick_says_how_long_to_sleep(sv: Supervision, clock: Clock):
    clock.set("2026-12-15 16:59:58")
    await sv.add(plan(remind="0m"))
    sv.scheduler.next_housekeeping = clock.now + 3600
    assert await sv.tick() == pytest.approx(1.0)  # max_sleep
    sv.scheduler.max_sleep = 60
    assert await sv.tick() == pytest.approx(2.0)  # until the reminder


async def test_delivery_worker_sends_reminders_with_the_buttons(sv: Supervision, clock: Clock, db: Database):
    from bot.delivery.pacing import Limits
    from bot.delivery.worker import DeliveryWorker
    from tests.unit.delivery.test_delivery import RecordingChannel

    channel = RecordingChannel(clock)
    worker = DeliveryWorker(db, {"telegram": channel}, {"telegram": Limits(1000, 1000, 1000)}, clock=clock,
                            sleep=clock.sleep)
    plan_id = await sv.add(plan())
    await run_at(sv, clock, "2026-12-01 08:00")
    await worker.run_until_idle()
    [(_, chat_id, reply)] = channel.delivered
    assert chat_id == GROUP and [o.data for o in reply.options] == [f"sv:done:{plan_id}", f"sv:ext:{plan_id}"]


async def test_a_plan_for_a_locality_without_groups_is_recorded_not_sent(sv: Supervision, clock: Clock,
                                                                          db: Database):
    plan_id = await sv.add(plan(locality="ca-na"))
    await run_at(sv, clock, "2026-12-01 08:00")
    assert await sent_rows(db) == [] and (await sv.reminders(plan_id))[0]["state"] == "sent"


# ---------------------------------------------------------------------- completion, extension


async def test_completion_stops_the_rest_even_a_queued_one(sv: Supervision, clock: Clock, db: Database):
    plan_id = await sv.add(plan())
    await run_at(sv, clock, "2026-12-01 08:00")
    assert await sv.complete(plan_id, "Đã giám sát 12 hộ,   kiến nghị 2 nội dung", "telegram:11") == "done"
    [queued] = await sent_rows(db, f"sv:{plan_id}:14d")
    assert queued["status"] == "failed"  # the worker will not send it any more
    for when in ("2026-12-08 08:00", "2026-12-14 08:00", "2026-12-15 08:00", "2026-12-20 08:00"):
        await run_at(sv, clock, when)
    assert [r["source"] for r in await sent_rows(db)] == [f"sv:{plan_id}:14d", f"sv:{plan_id}:done"]
    staff = (await sent_rows(db, f"sv:{plan_id}:done"))[0]
    assert staff["chat_id"] == STAFF_CHAT and "Đã giám sát 12 hộ, kiến nghị 2 nội dung" in staff["text"]
    assert [r["state"] for r in await sv.reminders(plan_id)] == ["sent", "skipped", "skipped", "skipped"]
    assert await sv.complete(plan_id, "again", "x") == "already"


async def test_extension_approved_moves_the_reminders(sv: Supervision, clock: Clock, db: Database):
    plan_id = await sv.add(plan())
    for when in ("2026-12-01 08:00", "2026-12-08 08:00"):
        await run_at(sv, clock, when)
    clock.set("2026-12-09 10:00")
    asker = Inbound("telegram", GROUP, "11", chat_kind="group", display_name="Chị Lan", chat_title="Tổ 3")
    ext = await sv.request_extension(plan_id, asker, "chờ số liệu", at("2027-01-20 17:00"))
    [request] = await sent_rows(db, f"sv:{plan_id}:ext:%")
    assert request["chat_id"] == STAFF_CHAT and "20/01/2027 17:00" in request["text"]
    assert json.loads(request["options"]) == [["Đồng ý gia hạn", f"sv:ok:{ext}"], ["Không đồng ý", f"sv:no:{ext}"]]
    status, moved = await sv.decide_extension(ext, True, "telegram:4242")
    assert status == "approved" and moved.due_at == at("2027-01-20 17:00")
    assert (await sv.decide_extension(ext, False, "x"))[0] == "already"
    fire = {r["offset_label"]: (local(r["fire_at"]), r["state"]) for r in await sv.reminders(plan_id)}
    assert fire == {"14d": ("2027-01-06 08:00", "pending"), "7d": ("2027-01-13 08:00", "pending"),
                    "1d": ("2027-01-19 08:00", "pending"), "0d": ("2027-01-20 08:00", "pending")}
    told = await sent_rows(db, f"sv:{plan_id}:ext:{ext}:approved")
    assert told[0]["chat_id"] == GROUP and "20/01/2027 17:00" in told[0]["text"]
    for when in ("2026-12-14 08:00", "2026-12-15 08:00", "2026-12-15 18:00"):  # the old dates: nothing
        await run_at(sv, clock, when)
    before = len(await sent_rows(db, f"sv:{plan_id}:%d"))
    await run_at(sv, clock, "2027-01-06 08:00")
    assert len(await sent_rows(db, f"sv:{plan_id}:%d")) == before + 1
    assert not await sent_rows(db, "sv:escalation:%")  # the old deadline passed, but it moved


async def test_extension_refused_keeps_the_date(sv: Supervision, clock: Clock, db: Database):
    plan_id = await sv.add(plan())
    asker = Inbound("telegram", GROUP, "11", chat_kind="group")
    ext = await sv.request_extension(plan_id, asker, "—", at("2027-01-20 17:00"))
    status, same = await sv.decide_extension(ext, False, "telegram:4242")
    assert status == "refused" and same.due_at == at("2026-12-15 17:00")
    assert "15/12/2026 17:00" in (await sent_rows(db, f"sv:{plan_id}:ext:{ext}:refused"))[0]["text"]


# ---------------------------------------------------------------------- staff edit (CLI `edit`, /doihan)


async def deliver(db: Database) -> None:
    """What the delivery worker does to queued rows, without the network."""
    await db.write("UPDATE outbox SET status = 'sent' WHERE status = 'pending'")


def schedule(reminders: list[dict]) -> dict[str, tuple[str, str]]:
    return {r["offset_label"]: (local(r["fire_at"]), r["state"]) for r in reminders}


async def test_edit_later_recomputes_and_repeats_only_offsets_still_ahead(sv: Supervision, clock: Clock,
                                                                          db: Database):
    plan_id = await sv.add(plan())
    for when in ("2026-12-01 08:00", "2026-12-08 08:00"):
        await run_at(sv, clock, when)
        await deliver(db)
    clock.set("2026-12-09 10:00")
    status, moved = await sv.edit(plan_id, due=at("2026-12-22 17:00"), by="telegram:4242")
    assert status == "edited" and moved.due_at == at("2026-12-22 17:00") and moved.period == "2026-Q4"
    # 14d's new time (08/12) has passed: sent once for the old date, not again; 7d's (15/12) is ahead: again
    assert schedule(await sv.reminders(plan_id)) == {
        "14d": ("2026-12-08 08:00", "sent"), "7d": ("2026-12-15 08:00", "pending"),
        "1d": ("2026-12-21 08:00", "pending"), "0d": ("2026-12-22 08:00", "pending")}
    for when in ("2026-12-09 10:00:30", "2026-12-14 08:00"):  # the old 1d: nothing
        await run_at(sv, clock, when)
    assert len(await sent_rows(db)) == 2
    for when in ("2026-12-15 08:00", "2026-12-15 18:00", "2026-12-21 08:00", "2026-12-22 08:00"):
        await run_at(sv, clock, when)
    rows = await sent_rows(db)
    assert [r["source"] for r in rows] == [f"sv:{plan_id}:{o}" for o in ("14d", "7d", "7d", "1d", "0d")]
    assert "22/12/2026 17:00" in rows[2]["text"] and "còn 7 ngày" in rows[2]["text"]
    assert not await sent_rows(db, "sv:escalation:%")  # the old deadline passed on 15/12, but it had moved


async def test_edit_earlier_sends_no_catch_up_for_offsets_already_past(sv: Supervision, clock: Clock, db: Database):
    plan_id = await sv.add(plan())
    await run_at(sv, clock, "2026-12-01 08:00")
    await deliver(db)
    clock.set("2026-12-03 10:00")
    assert (await sv.edit(plan_id, due=at("2026-12-09 17:00")))[0] == "edited"
    assert schedule(await sv.reminders(plan_id)) == {
        "14d": ("2026-11-25 08:00", "sent"), "7d": ("2026-12-02 08:00", "skipped"),
        "1d": ("2026-12-08 08:00", "pending"), "0d": ("2026-12-09 08:00", "pending")}
    await run_at(sv, clock, "2026-12-03 10:01")
    assert len(await sent_rows(db)) == 1
    await run_at(sv, clock, "2026-12-08 08:00")
    assert [r["source"] for r in await sent_rows(db)] == [f"sv:{plan_id}:14d", f"sv:{plan_id}:1d"]


async def test_edit_withdraws_a_queued_reminder_naming_the_old_date(sv: Supervision, clock: Clock, db: Database):
    plan_id = await sv.add(plan())
    await run_at(sv, clock, "2026-12-01 08:00")  # queued, not yet delivered (the group is rate-limited, say)
    clock.set("2026-12-01 08:00:05")
    await sv.edit(plan_id, due=at("2026-12-15 18:00"))
    [old] = await sent_rows(db)
    assert old["status"] == "failed" and "15/12/2026 17:00" in old["text"]
    assert schedule(await sv.reminders(plan_id))["14d"] == ("2026-12-01 08:00:05"[:16], "pending")
    await run_at(sv, clock, "2026-12-01 08:00:06")  # replaced at once, with the new date
    new = (await sent_rows(db))[-1]
    assert new["status"] == "pending" and "15/12/2026 18:00" in new["text"]
    assert [r["state"] for r in await sv.reminders(plan_id)] == ["sent", "pending", "pending", "pending"]


async def test_edit_restarts_the_escalation_count(sv: Supervision, clock: Clock, db: Database):
    plan_id = await sv.add(plan(remind="1d"))
    for when in ("2026-12-15 17:01", "2026-12-18 08:00"):
        await run_at(sv, clock, when)
    assert len(await sent_rows(db, "sv:escalation:%")) == 2  # round 0 and round 1 of the old date
    clock.set("2026-12-18 09:00")
    assert (await sv.edit(plan_id, due=at("2026-12-22 17:00")))[0] == "edited"
    for when in ("2026-12-18 09:01", "2026-12-21 08:00", "2026-12-22 16:59"):
        await run_at(sv, clock, when)
    assert len(await sent_rows(db, "sv:escalation:%")) == 2
    assert len(await sent_rows(db, f"sv:{plan_id}:1d")) == 1  # the new 1d (21/12; the old one was folded)
    await run_at(sv, clock, "2026-12-22 17:01")
    third = (await sent_rows(db, "sv:escalation:%"))[-1]
    assert f"#{plan_id}" in third["text"] and "22/12/2026 17:00" in third["text"] and "quá 0 ngày" in third["text"]
    for when in ("2026-12-23 08:00", "2026-12-24 08:00"):
        await run_at(sv, clock, when)
    assert len(await sent_rows(db, "sv:escalation:%")) == 3
    await run_at(sv, clock, "2026-12-25 08:00")  # N = 3 days after the new date
    assert len(await sent_rows(db, "sv:escalation:%")) == 4


async def test_edit_title_or_offsets_and_what_it_refuses(sv: Supervision, clock: Clock, db: Database):
    plan_id = await sv.add(plan())
    status, renamed = await sv.edit(plan_id, title="  Giám sát   BHYT  ")
    assert status == "edited" and renamed.title == "Giám sát BHYT" and renamed.due_at == at("2026-12-15 17:00")
    assert [r["state"] for r in await sv.reminders(plan_id)] == ["pending"] * 4
    status, _ = await sv.edit(plan_id, remind="2d, 2h")
    assert schedule(await sv.reminders(plan_id)) == {"2d": ("2026-12-13 08:00", "pending"),
                                                     "2h": ("2026-12-15 15:00", "pending")}
    assert (await sv.edit(plan_id, period="2027-q1"))[1].period == "2027-Q1"
    for bad in ({"remind": "3w"}, {"title": " "}, {"period": "Q4"}):
        with pytest.raises(ScheduleError):
            await sv.edit(plan_id, **bad)
    assert (await sv.edit(plan_id, due=at("2026-11-27 09:00")))[0] == "past"
    assert (await sv.edit(9999, due=at("2027-01-01 09:00"))) == ("missing", None)
    await sv.complete(plan_id, "xong", "cli")
    assert (await sv.edit(plan_id, due=at("2027-01-01 09:00")))[0] == "done"
    other = await sv.add(plan(title="Khác"))
    await sv.cancel(other)
    assert (await sv.edit(other, title="X"))[0] == "cancelled"


# ---------------------------------------------------------------------- restarts, catch-up


async def test_restart_between_reminders_neither_loses_nor_repeats(db: Database, tmp_path: Path, clock: Clock):
    await register_groups(db, [GroupRecord("telegram", GROUP, "phan-rang", "Tổ dân phố 3")])
    first = service(db, clock)
    plan_id = await first.add(plan(remind="7d,1d"))
    await run_at(first, clock, "2026-12-08 08:00")
    await db.close()
    reopened = await open_database(tmp_path / "bot.sqlite3")  # the same file, a new process
    try:
        second = service(reopened, clock)
        clock.set("2026-12-08 08:00:30")
        await second.rebuild()
        await second.tick()
        assert len(await sent_rows(reopened)) == 1
        await run_at(second, clock, "2026-12-14 08:00")
        assert [r["source"] for r in await sent_rows(reopened)] == [f"sv:{plan_id}:7d", f"sv:{plan_id}:1d"]
    finally:
        await reopened.close()


async def test_missed_while_down_is_sent_once_if_the_deadline_is_ahead(sv: Supervision, clock: Clock,
                                                                        db: Database):
    plan_id = await sv.add(plan())
    await run_at(sv, clock, "2026-12-14 10:30")  # down from before 1/12 until now: 14d, 7d and 1d missed
    [row] = await sent_rows(db)
    assert row["source"] == f"sv:{plan_id}:1d" and "còn 1 ngày" in row["text"]
    states = {r["offset_label"]: r["state"] for r in await sv.reminders(plan_id)}
    assert states == {"14d": "skipped", "7d": "skipped", "1d": "sent", "0d": "pending"}
    await run_at(sv, clock, "2026-12-15 08:00")
    assert len(await sent_rows(db)) == 2


async def test_missed_day_reminder_waits_for_the_end_of_quiet_hours(sv: Supervision, clock: Clock, db: Database):
    plan_id = await sv.add(plan())
    await run_at(sv, clock, "2026-12-08 23:10")  # back at night: 7d was missed
    assert await sent_rows(db) == []
    await run_at(sv, clock, "2026-12-09 06:59")
    assert await sent_rows(db) == []
    await run_at(sv, clock, "2026-12-09 07:00")
    assert [r["source"] for r in await sent_rows(db)] == [f"sv:{plan_id}:7d"]


async def test_missed_and_deadline_passed_is_folded_into_the_escalation(sv: Supervision, clock: Clock,
                                                                         db: Database):
    plan_id = await sv.add(plan())
    await run_at(sv, clock, "2026-12-16 09:00")
    assert [r["state"] for r in await sv.reminders(plan_id)] == ["skipped", "skipped", "skipped", "folded"]
    [escalation] = await sent_rows(db)
    assert escalation["chat_id"] == STAFF_CHAT and f"#{plan_id}" in escalation["text"]
    assert "quá 1 ngày" in escalation["text"]


async def test_exact_offsets_are_not_late_at_their_own_time(sv: Supervision, clock: Clock, db: Database):
    clock.set("2026-12-15 16:00")
    plan_id = await sv.add(plan(remind="30m,0m"))
    await run_at(sv, clock, "2026-12-15 16:30:00.4")
    await run_at(sv, clock, "2026-12-15 17:00:00.6")
    assert [r["source"] for r in await sent_rows(db, f"sv:{plan_id}:%m")] == [f"sv:{plan_id}:30m",
                                                                               f"sv:{plan_id}:0m"]
    assert "đã đến hạn" in (await sent_rows(db, f"sv:{plan_id}:0m"))[0]["text"]


# ---------------------------------------------------------------------- escalation


async def test_escalation_same_day_then_every_n_days_and_never_twice(db: Database, clock: Clock, tmp_path: Path):
    await register_groups(db, [GroupRecord("telegram", GROUP, "phan-rang", "Tổ dân phố 3")])
    sv = service(db, clock)
    plan_id = await sv.add(plan(remind="1d"))
    other = await sv.add(plan(locality="dong-hai", due="2026-12-15 22:30", remind="1d", title="Phản biện"))
    await run_at(sv, clock, "2026-12-15 16:59")
    assert await sent_rows(db, "sv:escalation:%") == []
    await run_at(sv, clock, "2026-12-15 17:00:10")
    [first] = await sent_rows(db, "sv:escalation:%")
    assert f"#{plan_id}" in first["text"] and f"#{other}" not in first["text"]
    await run_at(sv, clock, "2026-12-15 22:45")  # due in quiet hours: reported in the morning
    await run_at(sv, clock, "2026-12-16 06:59")
    assert len(await sent_rows(db, "sv:escalation:%")) == 1
    await run_at(sv, clock, "2026-12-16 07:00")
    second = (await sent_rows(db, "sv:escalation:%"))[-1]
    assert f"#{other}" in second["text"] and f"#{plan_id}" not in second["text"]
    for when in ("2026-12-16 12:00", "2026-12-17 08:00", "2026-12-18 07:59"):
        await run_at(sv, clock, when)
    assert len(await sent_rows(db, "sv:escalation:%")) == 2
    await run_at(sv, clock, "2026-12-18 08:00")  # 3 days on, both again in one message
    third = (await sent_rows(db, "sv:escalation:%"))[-1]
    assert f"#{plan_id}" in third["text"] and f"#{other}" in third["text"]
    await db.close()
    db2 = await open_database(tmp_path / "bot.sqlite3")
    try:
        again = service(db2, clock)
        await run_at(again, clock, "2026-12-18 09:00")  # a restart the same day repeats nothing
        assert len(await sent_rows(db2, "sv:escalation:%")) == 3
        await again.complete(plan_id, "xong", "cli")
        await run_at(again, clock, "2026-12-21 08:00")
        last = (await sent_rows(db2, "sv:escalation:%"))[-1]
        assert f"#{other}" in last["text"] and f"#{plan_id}" not in last["text"]
    finally:
        await db2.close()


# ---------------------------------------------------------------------- the table and nudges


async def test_table_per_locality_this_period(db: Database, clock: Clock):
    config = SupervisionConfig(localities={"dong-hai": 3}, nudge_weeks_left=())
    sv = service(db, clock, config)
    a = await sv.add(plan(due="2026-12-10 17:00"))
    await sv.add(plan(due="2026-12-20 17:00", title="Hai"))
    await sv.add(plan(locality="dong-hai", due="2026-12-05 17:00"))
    c = await sv.add(plan(locality="dong-hai", due="2026-12-06 17:00", title="Ba"))
    d = await sv.add(plan(locality="dong-hai", due="2026-12-07 17:00", title="Bốn"))
    await sv.add(plan(locality="dong-hai", due="2027-01-04 17:00", title="Kỳ sau"))
    await sv.complete(a, "ok", "cli")
    await sv.complete(c, "ok", "cli")
    await sv.cancel(d)
    clock.set("2026-12-06 18:00")
    table = await sv.table()
    rows = {r["code"]: r for r in table["localities"]}
    assert table["period"] == "2026-Q4" and len(rows) == len(list(TREE)) - 1  # the xã/phường level
    assert (rows["phan-rang"]["done"], rows["phan-rang"]["planned"], rows["phan-rang"]["required"]) == (1, 1, 2)
    assert (rows["dong-hai"]["done"], rows["dong-hai"]["planned"], rows["dong-hai"]["required"]) == (1, 1, 3)
    assert [i["title"] for i in table["overdue"]] == ["Giám sát BHYT hộ cận nghèo"]
    assert [i["title"] for i in table["upcoming"]] == ["Hai", "Kỳ sau"]
    text = sv.table_text(table)
    assert "quý IV/2026" in text and "- Phường Phan Rang: 1/2" in text and "Phường Đông Hải: 1/3" in text
    assert {r["code"]: r for r in (await sv.table("2027-Q1"))["localities"]}["dong-hai"]["planned"] == 1


async def test_localities_behind_get_a_nudge_once(db: Database, clock: Clock):
    await register_groups(db, [GroupRecord("telegram", GROUP, "phan-rang", "Tổ dân phố 3"),
                               GroupRecord("telegram", "-100778", "dong-hai", "Tổ 5")])
    sv = service(db, clock, SupervisionConfig())
    for title in ("Một", "Hai"):
        done = await sv.add(plan(locality="dong-hai", due="2026-12-20 17:00", title=title))
        await sv.complete(done, "ok", "cli")
    await run_at(sv, clock, "2026-11-19 07:59")  # six weeks before 1/1/2027 is 20/11
    assert await sent_rows(db, "sv:nudge:%") == []
    await run_at(sv, clock, "2026-11-20 08:00")
    [nudge] = await sent_rows(db, "sv:nudge:%")
    assert nudge["chat_id"] == GROUP and "0/2" in nudge["text"] and "6 tuần" in nudge["text"]
    assert "31/12/2026" in nudge["text"]
    await run_at(sv, clock, "2026-11-21 08:00")
    assert len(await sent_rows(db, "sv:nudge:%")) == 1
    await run_at(sv, clock, "2026-12-18 08:00")
    assert len(await sent_rows(db, "sv:nudge:%")) == 2


# ---------------------------------------------------------------------- bad input


async def test_unknown_locality_and_past_due_are_refused(sv: Supervision, clock: Clock):
    with pytest.raises(ScheduleError, match="không có địa bàn 'xa-khong-co'"):
        build({"locality": "xa-khong-co", "title": "T", "due": "2026-12-15T17:00"}, TREE, SupervisionConfig(), TZ,
              now=clock.now)
    with pytest.raises(ScheduleError, match="đã qua"):
        build({"locality": "phan-rang", "title": "T", "due": "2026-11-01T17:00"}, TREE, SupervisionConfig(), TZ,
              now=clock.now)
    with pytest.raises(SupervisionError, match="đã qua"):
        await sv.add(plan(due="2026-11-01 17:00"))


def test_import_rows_are_named_by_line_and_good_rows_kept():
    text = (
        "locality,title,due,remind,kind\n"
        "phan-rang,Giám sát BHYT,2026-12-15T17:00,,\n"
        "khong-co,Sai địa bàn,2026-12-15T17:00,,\n"
        "\n"
        "dong-hai,Sai ngày,15-12-2026,,\n"
        "dong-hai,Quá hạn,2026-01-01T17:00,,\n"
        "dong-hai,Sai mốc,2026-12-15T17:00,3w,\n"
        "dong-hai,Sai loại,2026-12-15T17:00,,kiem_tra\n"
        ",Thiếu địa bàn,2026-12-15T17:00,,\n"
        "phan-rang,Giám sát BHYT,2026-12-15T17:00,,\n"
        "ninh-chu,Phản biện dự thảo,16/12/2026 09:00,7d,phan_bien\n"
    )
    good, bad = parse_csv(text, TREE, SupervisionConfig(), TZ, now=at("2026-11-27 10:00"))
    assert [(g.locality, g.title, g.kind) for g in good] == [("phan-rang", "Giám sát BHYT", "giam_sat"),
                                                             ("ninh-chu", "Phản biện dự thảo", "phan_bien")]
    assert [line for line, _ in bad] == [3, 5, 6, 7, 8, 9, 10]
    assert "khong-co" in dict(bad)[3] and "đã qua" in dict(bad)[6] and "dòng 2" in dict(bad)[10]


def test_yaml_import_names_lines_too():
    text = ("plans:\n"
            "  - locality: phan-rang\n"
            "    title: Một\n"
            "    due: 2026-12-15T17:00\n"
            "    remind: [7d, 1d]\n"
            "  - locality: phan-rang\n"
            "    due: 2026-12-15T17:00\n"
            "  - just a string\n")
    good, bad = parse_yaml(text, TREE, SupervisionConfig(), TZ, now=at("2026-11-27 10:00"))
    assert [g.remind for g in good] == ["7d,1d"]
    assert [line for line, _ in bad] == [6, 8] and "title" in dict(bad)[6]


def test_content_check_names_file_and_line(tmp_path: Path):
    import shutil

    from bot.supervision.plans_io import check

    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    (root / "supervision" / "requirements.yaml").write_text(
        "required: 2\nschedule:\n  morning: '23:00'\n  quiet: 21-7\n", encoding="utf-8")
    (root / "supervision" / "q4.yaml").write_text(
        "- id: a\n  locality: phan-rang\n  title: A\n  due: 2026-12-15T17:00\n"
        "- locality: phan-rang\n  title: B\n  due: 2026-12-15T17:00\n"
        "- id: a\n  locality: nowhere\n  title: C\n  due: 2026-12-15T17:00\n", encoding="utf-8")
    problems = [(p.path.name, p.line, p.message) for p in check(root)]
    assert any(name == "requirements.yaml" and line == 4 and msg.startswith("quiet:") for name, line, msg in problems)
    assert any(name == "requirements.yaml" and line == 3 and "yên lặng" in msg for name, line, msg in problems)
    assert ("q4.yaml", 5, "kế hoạch trong content/ cần có id (mã cố định)") in problems
    assert any(name == "q4.yaml" and line == 8 and "nowhere" in msg for name, line, msg in problems)
    result = run_cli("content", "check", env={"CONTENT_DIR": str(root)})
    assert result.returncode == 1 and "q4.yaml:8" in result.stdout


def test_shipped_settings_load_clean():
    config, problems = load_config(CONTENT)
    assert problems == [] and config.required == 2 and config.remind == "14d,7d,1d,0d"


def test_done_phrases():
    assert match_done("Đã hoàn thành: giám sát 12 hộ") == (None, "giám sát 12 hộ")
    assert match_done("da hoan thanh #12 kiến nghị 2 nội dung") == ("12", "kiến nghị 2 nội dung")
    assert match_done("#7 đã hoàn thành") == ("7", "")
    assert match_done("ĐÃ HOÀN THÀNH") == (None, "")
    assert match_done("chưa hoàn thành") is None and match_done("quỹ vì người nghèo") is None


# ---------------------------------------------------------------------- the dialogue


def in_group(text: str = "", *, admin: bool = True, user: str = "11", option: str | None = None,
             chat_id: str = GROUP) -> Inbound:
    return Inbound("telegram", chat_id, user, kind="option" if option else "text", chat_kind="group", text=text,
                   option=option, chat_title="Tổ dân phố 3", display_name="Chị Lan", is_group_admin=admin)


async def test_admin_button_then_one_line_marks_done(core: Core, clock: Clock):
    sv = core.supervision
    plan_id = await sv.add(plan())
    [ask] = await core.dialogue.handle(in_group(option=f"sv:done:{plan_id}"))
    assert "một dòng kết quả" in ask.text
    [done] = await core.dialogue.handle(in_group("Đã giám sát 12 hộ, kiến nghị 2 nội dung\nthừa"))
    assert "hoàn thành" in done.text and (await sv.get(plan_id)).result == "Đã giám sát 12 hộ, kiến nghị 2 nội dung"
    [again] = await core.dialogue.handle(in_group(option=f"sv:done:{plan_id}"))
    assert again.text == core.dialogue.say("sv_already_done", id=plan_id, title=(await sv.get(plan_id)).title)


async def test_non_admin_pressing_the_group_button_is_refused(core: Core):
    plan_id = await core.supervision.add(plan())
    for option in (f"sv:done:{plan_id}", f"sv:ext:{plan_id}"):
        [reply] = await core.dialogue.handle(in_group(option=option, admin=False, user="12"))
        assert reply.text == core.dialogue.say("sv_not_admin")
    [reply] = await core.dialogue.handle(in_group(f"/baocao_gs {plan_id} xong", admin=False, user="12"))
    assert reply.text == core.dialogue.say("sv_not_admin")
    assert (await core.supervision.get(plan_id)).status == "planned"


async def test_only_the_plans_own_groups_or_staff_may_report_or_extend(core: Core, caplog: pytest.LogCaptureFixture):
    sv = core.supervision
    other = await sv.add(plan(locality="thuan-nam"))  # another locality's plan
    province = await sv.add(plan(locality="khanh-hoa", title="Cấp tỉnh"))  # phan-rang is in its subtree
    say = core.dialogue.say
    refusals = [
        in_group(option=f"sv:done:{other}"), in_group(option=f"sv:ext:{other}"), in_group(f"/baocao_gs {other} xong"),
        in_group(f"đã hoàn thành #{other} xong"),
        in_group(option=f"sv:done:{province}", chat_id="-100555"),  # the admin of a group registered nowhere
        in_group(option="sv:done:4242"),  # no such plan: the same sentence, nothing learnt from guessing
    ]
    for inbound in refusals:
        [reply] = await core.dialogue.handle(inbound)
        wanted = inbound.option.rsplit(":", 1)[1] if inbound.option else str(other)
        assert reply.text == say("sv_not_yours", id=wanted), inbound
    assert await sv.complete_from_reply("telegram", "-100555", f"đã hoàn thành #{province} xong") == [
        Reply(say("sv_not_yours", id=province))]
    assert (await sv.get(other)).status == "planned" and (await sv.get(province)).status == "planned"
    assert sum("not one of the plan's groups" in r.getMessage() for r in caplog.records) == len(refusals) + 1
    [ask] = await core.dialogue.handle(in_group(option=f"sv:done:{province}"))  # its own group
    assert "một dòng kết quả" in ask.text
    staff = Inbound("telegram", STAFF, STAFF, kind="text", text=f"/baocao_gs {other} Cán bộ báo cáo")
    [done] = await core.dialogue.handle(staff)
    assert (await sv.get(other)).status == "done" and "Cán bộ báo cáo" in done.text


async def test_report_command_and_reply_phrase(core: Core):
    sv = core.supervision
    first = await sv.add(plan())
    second = await sv.add(plan(title="Thứ hai", due="2026-12-20 17:00"))
    [usage] = await core.dialogue.handle(in_group("/baocao_gs"))
    assert usage.text == core.dialogue.say("sv_usage")
    [done] = await core.dialogue.handle(in_group(f"/baocao_gs {first} Đã giám sát 12 hộ"))
    assert (await sv.get(first)).status == "done" and "12 hộ" in done.text
    [reply] = await core.dialogue.handle(in_group(f"đã hoàn thành #{second} đã họp góp ý"))
    assert (await sv.get(second)).result == "đã họp góp ý" and f"#{second}" in reply.text


async def test_complete_from_reply_picks_the_plan_reminded_in_that_chat(core: Core, clock: Clock):
    sv = core.supervision
    await sv.add(plan(title="Khác", due="2026-12-20 17:00"))
    reminded = await sv.add(plan(title="Được nhắc"))
    await run_at(sv, clock, "2026-12-01 08:00")  # only "Được nhắc" has a 14d reminder due now
    assert await sv.complete_from_reply("telegram", GROUP, "cảm ơn") is None
    [reply] = await sv.complete_from_reply("telegram", GROUP, "Đã hoàn thành, kiến nghị 3 nội dung", user_id="9")
    assert (await sv.get(reminded)).status == "done" and f"#{reminded}" in reply.text


async def test_extension_from_the_group_to_the_staff_chat_and_back(core: Core, clock: Clock):
    sv = core.supervision
    plan_id = await sv.add(plan())
    [ask] = await core.dialogue.handle(in_group(option=f"sv:ext:{plan_id}"))
    assert "15/12/2026 17:00" in ask.text
    [bad] = await core.dialogue.handle(in_group("sau Tết"))
    assert bad.text.startswith("Trợ lý chưa đọc được ngày mới")
    [past] = await core.dialogue.handle(in_group("01/12/2026 - sớm hơn"))
    assert past.text.startswith("Ngày đề nghị phải sau")
    [sent] = await core.dialogue.handle(in_group("20/01/2027 - chờ số liệu của xã"))
    assert "20/01/2027 17:00" in sent.text
    [request] = await sent_rows(core.db, f"sv:{plan_id}:ext:%")
    assert request["chat_id"] == STAFF_CHAT and "Lý do: chờ số liệu của xã" in request["text"]
    ext = json.loads(request["options"])[0][1].split(":")[2]
    staff_press = Inbound("telegram", STAFF_CHAT, STAFF, kind="option", chat_kind="group", option=f"sv:ok:{ext}",
                          display_name="Cán bộ A")
    stranger = dataclasses.replace(staff_press, user_id="5")
    [no] = await core.dialogue.handle(stranger)
    assert no.text == core.dialogue.say("staff_only")
    [yes] = await core.dialogue.handle(staff_press)
    assert "đã đồng ý" in yes.text and "20/01/2027 17:00" in yes.text
    assert (await sv.get(plan_id)).due_at == at("2027-01-20 17:00")


async def test_giamsat_is_for_staff(core: Core):
    await core.supervision.add(plan())
    [refused] = await core.dialogue.handle(Inbound("telegram", "501", "501", text="/giamsat"))
    assert refused.text == core.dialogue.say("staff_only")
    [table] = await core.dialogue.handle(Inbound("telegram", STAFF, STAFF, text="/giamsat"))
    assert "Phường Phan Rang: 0/2" in table.text and "Sắp đến hạn (1)" in table.text


# ---------------------------------------------------------------------- CLI


def test_cli_add_list_import_table(tmp_path: Path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}"}
    added = run_cli("supervision", "add", "--locality", "phan-rang", "--title", "Giám sát BHYT", "--due",
                    "2030-12-15T17:00+07:00", "--remind", "7d,2h", "--json", env=env)
    assert added.returncode == 0, added.stderr
    plan_id = json.loads(added.stdout)["id"]
    unknown = run_cli("supervision", "add", "--locality", "khong-co", "--title", "T", "--due", "2030-12-15T17:00",
                      env=env)
    assert unknown.returncode == 2 and "không có địa bàn 'khong-co'" in unknown.stderr
    past = run_cli("supervision", "add", "--locality", "phan-rang", "--title", "T", "--due", "2020-01-01T17:00",
                   env=env)
    assert past.returncode == 2 and "đã qua" in past.stderr
    csv_file = tmp_path / "plans.csv"
    csv_file.write_text("locality,title,due\ndong-hai,Phản biện,2030-11-01T09:00\nnowhere,X,2030-11-01T09:00\n",
                        encoding="utf-8")
    imported = run_cli("supervision", "import", str(csv_file), env=env)
    assert imported.returncode == 1 and f"{csv_file}:3:" in imported.stderr and "1 kế hoạch mới" in imported.stdout
    listed = json.loads(run_cli("supervision", "list", "--json", env=env).stdout)
    assert [(p["id"], p["locality"], p["remind"]) for p in listed] == [(plan_id + 1, "dong-hai", "14d,7d,1d,0d"),
                                                                       (plan_id, "phan-rang", "7d,2h")]
    assert listed[1]["due"] == "2030-12-15T17:00:00+07:00"
    table = json.loads(run_cli("supervision", "table", "--period", "2030-Q4", "--json", env=env).stdout)
    rows = {r["code"]: r for r in table["localities"]}
    assert rows["phan-rang"]["planned"] == 1 and rows["phan-rang"]["required"] == 2
    edited = run_cli("supervision", "edit", str(plan_id), "--due", "20/12/2030 09:30", "--title", "Giám sát BHYT 2",
                     "--json", env=env)
    assert edited.returncode == 0, edited.stderr
    out = json.loads(edited.stdout)
    assert out["due"] == "2030-12-20T09:30:00+07:00" and out["title"] == "Giám sát BHYT 2"
    assert [(r["offset"], r["at"], r["state"]) for r in out["reminders"]] == [
        ("7d", "2030-12-13T08:00:00+07:00", "pending"), ("2h", "2030-12-20T07:30:00+07:00", "pending")]
    text = run_cli("supervision", "edit", str(plan_id), "--remind", "1d", env=env)
    assert text.returncode == 0 and "Lịch nhắc: 1d → 19/12/2030 08:00" in text.stdout
    for args, code, said in ((["--due", "2020-01-01T17:00"], 2, "đã qua"), (["--remind", "3w"], 2, "3w"),
                             ([], 2, "--due"), (["--due", "2031-01-01", "--x"], 2, "")):
        result = run_cli("supervision", "edit", str(plan_id), *args, env=env)
        assert result.returncode == code and said in result.stderr, result.stderr
    missing = run_cli("supervision", "edit", "9999", "--title", "X", env=env)
    assert missing.returncode == 1 and "Không có kế hoạch #9999" in missing.stderr
    done = run_cli("supervision", "done", str(plan_id), "--result", "Xong", env=env)
    assert done.returncode == 0
    table = json.loads(run_cli("supervision", "table", "--period", "2030-Q4", "--json", env=env).stdout)
    assert {r["code"]: r for r in table["localities"]}["phan-rang"]["done"] == 1
