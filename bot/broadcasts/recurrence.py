"""When a recurring series fires: the `--repeat` forms as APScheduler 3 triggers, and the arithmetic
of missed runs. Pure: every function takes the time it is asked about (tests inject the clock).

Forms, all in the service's TIMEZONE (Asia/Ho_Chi_Minh has no daylight saving time):
- five-field cron, `"0 8 * * 1"` (minute hour day month weekday; weekday 0 or 7 is Sunday);
- `@daily`, `@weekly` (Monday), `@monthly` (the 1st), `@quarterly` (1 Jan/Apr/Jul/Oct), each at 08:00
  unless a time follows (`@weekly 07:30`): a committee's messages do not go out at midnight;
- `@first-workday-quarter [HH:MM]`: the first working day of each quarter (Monday to Friday and not
  a fixed public holiday at a quarter's start: 1 January), at 08:00 unless a time follows;
- six fields, seconds first (`"*/5 * * * * *"`), for drills and tests (as supervision's `Ns` offsets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

DEFAULT_TIME = (8, 0)
HOLIDAYS = ((1, 1),)  # (day, month) fixed public holidays that can fall on a quarter's first day
MAX_WALK = 200_000  # runs walked when coalescing a long outage of a very frequent series
_TIME = re.compile(r"^([01]?\d|2[0-3])[:hH]([0-5]\d)$")
_ALIASES = {"@daily": "{m} {h} * * *", "@weekly": "{m} {h} * * mon", "@monthly": "{m} {h} 1 * *",
            "@quarterly": "{m} {h} 1 1,4,7,10 *"}
FIRST_WORKDAY = ("@first-workday-quarter", "@ngay-lam-viec-dau-quy")


class RepeatError(ValueError):
    """A `--repeat` that cannot be read; the message says why, in Vietnamese."""


class FirstWorkdayOfQuarter(BaseTrigger):
    """Fires at `hour:minute` on the first working day of January, April, July and October."""

    def __init__(self, hour: int, minute: int, tz: ZoneInfo) -> None:
        self.hour, self.minute, self.tz = hour, minute, tz

    def day_of(self, year: int, quarter: int) -> datetime:
        day = date(year, 3 * quarter - 2, 1)
        while day.weekday() >= 5 or (day.day, day.month) in HOLIDAYS:
            day += timedelta(days=1)
        return datetime(day.year, day.month, day.day, self.hour, self.minute, tzinfo=self.tz)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        start = now if previous_fire_time is None else max(now, previous_fire_time + timedelta(microseconds=1))
        local = start.astimezone(self.tz)
        year, quarter = local.year, (local.month - 1) // 3 + 1
        while True:
            candidate = self.day_of(year, quarter)
            if candidate >= start:
                return candidate
            year, quarter = (year + 1, 1) if quarter == 4 else (year, quarter + 1)

    def __str__(self) -> str:
        return f"first working day of the quarter at {self.hour:02d}:{self.minute:02d}"


def parse_repeat(spec: str, tz: ZoneInfo) -> BaseTrigger:
    """The trigger of a `--repeat` value; RepeatError (in Vietnamese) when it is none of the forms."""
    words = (spec or "").strip().split()
    if not words:
        raise RepeatError("lịch lặp đang trống")
    head = words[0].lower()
    if head.startswith("@"):
        if len(words) > 2:
            raise RepeatError(f"lịch lặp '{spec}': sau {head} chỉ ghi được một giờ HH:MM")
        hour, minute = DEFAULT_TIME
        if len(words) == 2:
            match = _TIME.match(words[1])
            if match is None:
                raise RepeatError(f"lịch lặp '{spec}': giờ '{words[1]}' phải có dạng HH:MM, ví dụ 08:00")
            hour, minute = int(match.group(1)), int(match.group(2))
        if head in FIRST_WORKDAY:
            return FirstWorkdayOfQuarter(hour, minute, tz)
        if head not in _ALIASES:
            raise RepeatError(f"lịch lặp '{head}' không có (chọn: {', '.join((*_ALIASES, FIRST_WORKDAY[0]))},"
                              " hoặc cron 5 trường như '0 8 * * 1')")
        return CronTrigger.from_crontab(_ALIASES[head].format(m=minute, h=hour), timezone=tz)
    if len(words) not in (5, 6):
        raise RepeatError(f"lịch lặp '{spec}' phải là cron 5 trường (phút giờ ngày tháng thứ), ví dụ '0 8 * * 1'")
    try:
        second = words.pop(0) if len(words) == 6 else "0"
        minute, hour, day, month, weekday = words
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                           day_of_week=cron_weekdays(weekday), timezone=tz)
    except ValueError as exc:
        raise RepeatError(f"lịch lặp '{spec}' không hợp lệ: {exc}") from None


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_weekdays(field: str) -> str:
    """A cron weekday field (0 or 7 Sunday, 1 Monday… ranges, lists, steps, names) in APScheduler 3's
    words: its numbers start at Monday, so "1" would silently mean Tuesday there."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step = part.partition("/")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            a, b = span.split("-", 1)
            low, high = _day_number(a), _day_number(b)
        else:
            low = high = _day_number(span)
        if high < low and high == 0:  # "5-0", "fri-sun"
            high = 7
        if high < low or (step and not step.isdigit()) or step == "0":
            raise ValueError(f"thứ '{part}' không hợp lệ")
        days |= {d % 7 for d in range(low, high + 1, int(step or 1))}
    return ",".join(_DAYS[d] for d in sorted(days))


def _day_number(word: str) -> int:
    if word in _DAYS:
        return _DAYS.index(word)
    if word.isdigit() and int(word) <= 7:
        return int(word)
    raise ValueError(f"thứ '{word}' không hợp lệ (0–7 hoặc mon…sun)")


def _at(epoch: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(epoch, tz)


def next_run(trigger: BaseTrigger, after: float, tz: ZoneInfo) -> float | None:
    """The first run strictly after `after` (epoch seconds); None when the trigger has no more."""
    found = trigger.get_next_fire_time(None, _at(after, tz) + timedelta(microseconds=1))
    return found.timestamp() if found is not None else None


def upcoming(trigger: BaseTrigger, after: float, tz: ZoneInfo, count: int = 3) -> list[float]:
    """The next `count` runs after `after` (fewer when the trigger ends)."""
    found: list[float] = []
    while len(found) < count:
        nxt = next_run(trigger, found[-1] if found else after, tz)
        if nxt is None:
            break
        found.append(nxt)
    return found


@dataclass(frozen=True)
class Due:
    """The run to fire now: the latest one not after `now`, and how many earlier ones it stands for."""

    run_at: float
    missed: int


def due_run(trigger: BaseTrigger, after: float, now: float, tz: ZoneInfo) -> Due | None:
    """The latest run in (after, now], coalescing every earlier one in that span into it (a service
    that was down makes up once); None when no run fell in the span."""
    latest, count = None, 0
    current = next_run(trigger, after, tz)
    while current is not None and current <= now:
        latest, count = current, count + 1
        if count >= MAX_WALK:  # a very long outage: jump to the last minute before now
            current = next_run(trigger, max(current, now - 86400), tz)
            while current is not None and current <= now:
                latest, count = current, count + 1
                current = next_run(trigger, current, tz)
            break
        current = next_run(trigger, current, tz)
    return None if latest is None else Due(latest, count - 1)
