"""Recurrence arithmetic: cron, aliases, quarters, first working day, month ends, coalescing."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.broadcasts.recurrence import RepeatError, due_run, next_run, parse_repeat

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=TZ).timestamp()


def local(epoch: float | None) -> datetime:
    assert epoch is not None
    return datetime.fromtimestamp(epoch, TZ)


def runs(spec: str, start: float, n: int) -> list[str]:
    trigger, found, when = parse_repeat(spec, TZ), [], start
    for _ in range(n):
        when = next_run(trigger, when, TZ)
        found.append(local(when).strftime("%Y-%m-%d %H:%M %a"))
    return found


def test_five_field_cron_runs_in_local_time_without_dst():
    # Monday 08:00 local is 01:00 UTC all year: Asia/Ho_Chi_Minh has no daylight saving time
    found = runs("0 8 * * 1", at(2026, 3, 1), 40)
    assert found[:2] == ["2026-03-02 08:00 Mon", "2026-03-09 08:00 Mon"]
    trigger = parse_repeat("0 8 * * 1", TZ)
    when = at(2026, 1, 1)
    for _ in range(60):
        when = next_run(trigger, when, TZ)
        assert datetime.utcfromtimestamp(when).hour == 1


def test_aliases_default_to_eight_in_the_morning_and_take_a_time():
    assert runs("@weekly", at(2026, 12, 2, 9), 2) == ["2026-12-07 08:00 Mon", "2026-12-14 08:00 Mon"]
    assert runs("@monthly 07:30", at(2026, 12, 2), 2) == ["2027-01-01 07:30 Fri", "2027-02-01 07:30 Mon"]
    assert runs("@quarterly", at(2026, 12, 2), 3) == ["2027-01-01 08:00 Fri", "2027-04-01 08:00 Thu",
                                                      "2027-07-01 08:00 Thu"]
    assert runs("@daily", at(2026, 12, 2, 8), 1) == ["2026-12-03 08:00 Thu"]  # strictly after


def test_first_working_day_of_the_quarter_skips_weekends_and_new_year():
    found = runs("@first-workday-quarter", at(2026, 12, 15), 9)
    assert found == ["2027-01-04 08:00 Mon",  # 1/1 is a holiday (Friday), then the weekend
                     "2027-04-01 08:00 Thu", "2027-07-01 08:00 Thu", "2027-10-01 08:00 Fri",
                     "2028-01-03 08:00 Mon", "2028-04-03 08:00 Mon",  # 1/4/2028 is a Saturday
                     "2028-07-03 08:00 Mon", "2028-10-02 08:00 Mon", "2029-01-02 08:00 Tue"]
    assert runs("@ngay-lam-viec-dau-quy 14:00", at(2027, 1, 4, 15), 1) == ["2027-04-01 14:00 Thu"]
    assert runs("@first-workday-quarter", at(2027, 1, 4, 7, 59), 1) == ["2027-01-04 08:00 Mon"]


def test_end_of_month_fires_only_in_months_that_have_the_day():
    assert [r[:10] for r in runs("0 8 31 * *", at(2026, 1, 1), 4)] == ["2026-01-31", "2026-03-31", "2026-05-31",
                                                                       "2026-07-31"]
    assert [r[:10] for r in runs("0 8 29 2 *", at(2026, 1, 1), 2)] == ["2028-02-29", "2032-02-29"]
    assert [r[:10] for r in runs("0 8 28-31 * *", at(2026, 2, 27), 2)] == ["2026-02-28", "2026-03-28"]


@pytest.mark.parametrize("spec", ["", "0 8 * *", "61 * * * *", "@hourly", "@weekly 25:00", "@weekly 8h 9"])
def test_bad_repeat_gets_a_vietnamese_sentence(spec: str):
    with pytest.raises(RepeatError, match="lịch lặp"):
        parse_repeat(spec, TZ)


def test_missed_runs_coalesce_into_the_latest_one():
    trigger = parse_repeat("* * * * *", TZ)
    due = due_run(trigger, at(2026, 5, 1, 10, 0), at(2026, 5, 1, 10, 7, 30), TZ)
    assert due is not None and local(due.run_at) == datetime(2026, 5, 1, 10, 7, tzinfo=TZ) and due.missed == 6
    assert due_run(trigger, at(2026, 5, 1, 10, 7), at(2026, 5, 1, 10, 7, 59), TZ) is None
    quarterly = parse_repeat("@first-workday-quarter", TZ)
    due = due_run(quarterly, at(2026, 1, 1), at(2027, 1, 5), TZ)  # down for a year: one make-up run
    assert due is not None and local(due.run_at).date().isoformat() == "2027-01-04" and due.missed == 4


@pytest.mark.parametrize(("field", "days"), [("1", ["Mon"]), ("0", ["Sun"]), ("7", ["Sun"]), ("1-5", ["Mon", "Fri"]),
                                             ("*/2", ["Sun", "Tue"]), ("sat,sun", ["Sat", "Sun"]),
                                             ("5-0", ["Fri", "Sat"])])
def test_cron_weekdays_count_from_sunday_as_cron_does(field: str, days: list[str]):
    found = {r[-3:] for r in runs(f"0 8 * * {field}", at(2026, 3, 1), 14)}
    assert set(days) <= found
    every = {"1": 1, "0": 1, "7": 1, "1-5": 5, "*/2": 4, "sat,sun": 2, "5-0": 3}[field]
    assert len(found) == every


def test_six_fields_put_seconds_first_for_drills():
    found = runs("*/20 * * * * *", at(2026, 5, 1, 10, 0, 0), 3)
    assert found == ["2026-05-01 10:00 Fri"] * 2 + ["2026-05-01 10:01 Fri"]
    trigger = parse_repeat("*/20 * * * * *", TZ)
    assert next_run(trigger, at(2026, 5, 1, 10, 0, 0), TZ) == at(2026, 5, 1, 10, 0, 20)
