"""Supervision time arithmetic and settings: offsets, fire times, quiet hours, periods.

Pure functions of (epoch seconds, settings, time zone), so they are tested without a clock.

Fire time of a reminder with offset `n` before the due time `due`:
- `Nd` (day level): the morning hour (default 08:00 local) of the local day of `due − N days`.
  When that is not before `due` (a `0d` reminder of a deadline before 08:00), it goes out the
  evening before, one hour before quiet hours start (20:00 with the default 21:00–07:00).
- `Nh`, `Nm` (and `Ns`, for drills and tests): exactly `due − n`, quiet hours or not.
Day-level reminders, escalations and nudges never go out in quiet hours: one whose time comes
(or is caught up) in quiet hours waits for the end of them.

Settings live in `content/supervision/requirements.yaml` (see the file shipped there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot.kernel.content import Problem
from bot.kernel.dates import is_local_date, parse_local_date

REQUIREMENTS_FILE = "requirements.yaml"
DEFAULT_REMIND = "14d,7d,1d,0d"
_OFFSET = re.compile(r"^(\d{1,4})([dhms])$")
_PERIOD = re.compile(r"^(\d{4})(?:-Q([1-4]))?$")
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class ScheduleError(ValueError):
    """A wrong offset list, period or setting; the message says why, in Vietnamese."""


@dataclass(frozen=True)
class Offset:
    label: str  # "7d"
    amount: int
    unit: str  # d h m s

    @property
    def seconds(self) -> int:
        return self.amount * UNIT_SECONDS[self.unit]

    @property
    def day_level(self) -> bool:
        return self.unit == "d"


def parse_offsets(text: str) -> list[Offset]:
    """"14d,7d,1d,0d" → offsets, largest first; units d (days), h (hours), m (minutes), s (seconds)."""
    found: dict[str, Offset] = {}
    for part in (text or "").replace(" ", "").split(","):
        if not part:
            continue
        match = _OFFSET.match(part.lower())
        if match is None:
            raise ScheduleError(f"mốc nhắc '{part}' không hợp lệ: dùng số kèm đơn vị d (ngày), h (giờ), m (phút),"
                                " ví dụ 14d,7d,1d,0d")
        amount, unit = int(match.group(1)), match.group(2)
        if amount * UNIT_SECONDS[unit] > 366 * 86400:
            raise ScheduleError(f"mốc nhắc '{part}' quá xa (tối đa 366 ngày)")
        label = f"{amount}{unit}"
        found[label] = Offset(label, amount, unit)
    if not found:
        raise ScheduleError("cần ít nhất một mốc nhắc, ví dụ 14d,7d,1d,0d")
    if len(found) > 12:
        raise ScheduleError("tối đa 12 mốc nhắc cho một kế hoạch")
    return sorted(found.values(), key=lambda o: (-o.seconds, o.unit != "d"))


def offsets_text(offsets: list[Offset]) -> str:
    return ",".join(o.label for o in offsets)


def _hhmm(value: Any, name: str) -> dtime:
    match = _HHMM.match(str(value).strip())
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ScheduleError(f"{name}: '{value}' phải có dạng giờ:phút, ví dụ 08:00")
    return dtime(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class SupervisionConfig:
    """What `content/supervision/requirements.yaml` sets; the defaults are the brief's."""

    required: int = 2  # activities per locality per period
    period: str = "quarter"  # quarter | year: the period of "this period" and of plans without one
    level: int | None = None  # depth of the tracked localities (0: roots); None: 1 when there is such a level
    periods: dict[str, int] = field(default_factory=dict)  # required per period label
    localities: dict[str, int] = field(default_factory=dict)  # required per locality code
    remind: str = DEFAULT_REMIND
    morning: dtime = dtime(8, 0)
    quiet_start: dtime = dtime(21, 0)
    quiet_end: dtime = dtime(7, 0)
    escalate_every_days: int = 3
    nudge_weeks_left: tuple[int, ...] = (6, 2)
    upcoming_days: int = 30  # the table's "upcoming" window

    def required_for(self, locality: str, period: str) -> int:
        if locality in self.localities:
            return self.localities[locality]
        return self.periods.get(period, self.required)

    # ------------------------------------------------------------------ quiet hours

    def quiet(self, moment: datetime) -> bool:
        t = moment.timetz().replace(tzinfo=None)
        start, end = self.quiet_start, self.quiet_end
        if start == end:
            return False
        if start < end:
            return start <= t < end
        return t >= start or t < end

    def after_quiet(self, when: float, tz: ZoneInfo) -> float:
        """`when`, or the end of the quiet hours it falls in."""
        local = datetime.fromtimestamp(when, tz)
        if not self.quiet(local):
            return when
        end = datetime.combine(local.date(), self.quiet_end, tz)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.quiet_end, tz)
        return end.timestamp()

    def morning_of(self, day: date, tz: ZoneInfo) -> float:
        return datetime.combine(day, self.morning, tz).timestamp()

    # ------------------------------------------------------------------ reminders

    def fire_at(self, due: float, offset: Offset, tz: ZoneInfo) -> float:
        """When the reminder `offset` before `due` goes out (see the module notes)."""
        if not offset.day_level:
            return due - offset.seconds
        day = (datetime.fromtimestamp(due, tz) - timedelta(days=offset.amount)).date()
        fire = self.morning_of(day, tz)
        if fire < due:
            return fire
        # 0d of a deadline before the morning hour: the last allowed hour of the evening before
        evening = datetime.combine(day - timedelta(days=1), self.quiet_start, tz) - timedelta(hours=1)
        return min(evening.timestamp(), due - 3600)

    def escalation_at(self, due: float, round_: int, tz: ZoneInfo) -> float:
        """Round 0: at the deadline (after quiet hours); round k: the morning k × N days after its day."""
        if round_ == 0:
            return self.after_quiet(due, tz)
        day = datetime.fromtimestamp(due, tz).date() + timedelta(days=round_ * self.escalate_every_days)
        return self.morning_of(day, tz)

    def escalation_round(self, due: float, now: float, tz: ZoneInfo) -> int | None:
        """The latest escalation round whose time has come (None: not yet)."""
        if now < self.escalation_at(due, 0, tz):
            return None
        days = (datetime.fromtimestamp(now, tz).date() - datetime.fromtimestamp(due, tz).date()).days
        k = max(0, days // self.escalate_every_days)
        while k > 0 and self.escalation_at(due, k, tz) > now:
            k -= 1
        return k

    # ------------------------------------------------------------------ periods

    def period_of(self, when: float, tz: ZoneInfo) -> str:
        local = datetime.fromtimestamp(when, tz)
        return str(local.year) if self.period == "year" else f"{local.year}-Q{(local.month - 1) // 3 + 1}"


def check_period(label: str) -> str:
    label = str(label).strip().upper()
    if _PERIOD.match(label) is None:
        raise ScheduleError(f"kỳ '{label}' không hợp lệ: dùng quý (2026-Q4) hoặc năm (2026)")
    return label


def period_bounds(label: str, tz: ZoneInfo) -> tuple[float, float]:
    """[start, end) of a period, epoch seconds, local midnight to local midnight."""
    match = _PERIOD.match(label)
    if match is None:
        raise ScheduleError(f"kỳ '{label}' không hợp lệ")
    year = int(match.group(1))
    if match.group(2):
        q = int(match.group(2))
        start, end = date(year, 3 * q - 2, 1), (date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1))
    else:
        start, end = date(year, 1, 1), date(year + 1, 1, 1)
    return (datetime.combine(start, dtime(0), tz).timestamp(), datetime.combine(end, dtime(0), tz).timestamp())


def parse_due(value: str, tz: ZoneInfo) -> float:
    """ISO 8601 with an offset, or local time in `tz`; a bare date means 17:00 that day."""
    text = str(value).strip()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        if not is_local_date(text, allow_word=False):
            raise ScheduleError(f"thời hạn '{text}' không hợp lệ: dùng dạng 2026-12-15T17:00 (giờ Việt Nam),"
                                " kèm múi giờ (2026-12-15T17:00+07:00) hoặc 15/12/2026 17:00") from None
        local = parse_local_date(text, tz, allow_word=False)
        if local is None:
            raise ScheduleError(f"ngày '{text}' không có thật") from None
        return local
    else:
        if len(text) == 10:  # 2026-12-15
            when = when.replace(hour=17)
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.timestamp()


def local_text(when: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(when, tz).strftime("%d/%m/%Y %H:%M")


# ---------------------------------------------------------------------- the settings file


def load_config(root: Path) -> tuple[SupervisionConfig, list[Problem]]:
    """`root/supervision/requirements.yaml` (optional: defaults without it), with its problems."""
    path = root / "supervision" / REQUIREMENTS_FILE
    if not path.is_file():
        return SupervisionConfig(), []
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        return SupervisionConfig(), [Problem(path, (mark.line + 1) if mark else 1, f"YAML không hợp lệ: {exc}")]
    if data is None:
        return SupervisionConfig(), []
    if not isinstance(data, dict) or node is None:
        return SupervisionConfig(), [Problem(path, 1, "cần các cặp khóa: giá trị (required, period, schedule…)")]
    lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value} if isinstance(node, yaml.MappingNode) else {}
    sched_node = next((v for k, v in node.value if k.value == "schedule"), None) if lines else None
    sched_lines = ({str(k.value): k.start_mark.line + 1 for k, _ in sched_node.value}
                   if isinstance(sched_node, yaml.MappingNode) else {})
    problems: list[Problem] = []
    values: dict[str, Any] = {}

    def bad(key: str, message: str, where: dict[str, int] = lines) -> None:
        problems.append(Problem(path, where.get(key, 1), message))

    known = {"required", "period", "level", "periods", "localities", "schedule"}
    for key in data:
        if key not in known:
            bad(str(key), f"khóa '{key}' không được hỗ trợ ({', '.join(sorted(known))})")
    if "required" in data:
        if isinstance(data["required"], int) and 0 <= data["required"] <= 100:
            values["required"] = data["required"]
        else:
            bad("required", "required phải là số nguyên từ 0 đến 100")
    if "period" in data:
        if data["period"] in ("quarter", "year"):
            values["period"] = data["period"]
        else:
            bad("period", "period phải là quarter (quý) hoặc year (năm)")
    if data.get("level") is not None:
        if isinstance(data["level"], int) and data["level"] >= 0:
            values["level"] = data["level"]
        else:
            bad("level", "level phải là số nguyên ≥ 0 (0: cấp tỉnh, 1: xã/phường)")
    for key in ("periods", "localities"):
        table = data.get(key) or {}
        if not isinstance(table, dict) or not all(isinstance(v, int) and v >= 0 for v in table.values()):
            bad(key, f"{key} phải là các cặp mã: số lượng yêu cầu")
            continue
        if key == "periods":
            try:
                values[key] = {check_period(k): v for k, v in table.items()}
            except ScheduleError as exc:
                bad(key, str(exc))
        else:
            values[key] = {str(k): v for k, v in table.items()}
    schedule = data.get("schedule") or {}
    if not isinstance(schedule, dict):
        bad("schedule", "schedule phải là các cặp khóa: giá trị")
        schedule = {}
    sched_known = {"remind", "morning", "quiet", "escalate_every_days", "nudge_weeks_left", "upcoming_days"}
    for key in schedule:
        if key not in sched_known:
            bad(str(key), f"khóa '{key}' không được hỗ trợ trong schedule ({', '.join(sorted(sched_known))})",
                sched_lines)
    try:
        if "remind" in schedule:
            values["remind"] = offsets_text(parse_offsets(str(schedule["remind"])))
    except ScheduleError as exc:
        bad("remind", str(exc), sched_lines)
    try:
        if "morning" in schedule:
            values["morning"] = _hhmm(schedule["morning"], "morning")
    except ScheduleError as exc:
        bad("morning", str(exc), sched_lines)
    if "quiet" in schedule:
        parts = str(schedule["quiet"]).replace(" ", "").split("-")
        try:
            if len(parts) != 2:
                raise ScheduleError(f"quiet: '{schedule['quiet']}' phải có dạng 21:00-07:00")
            values["quiet_start"], values["quiet_end"] = _hhmm(parts[0], "quiet"), _hhmm(parts[1], "quiet")
        except ScheduleError as exc:
            bad("quiet", str(exc), sched_lines)
    for key in ("escalate_every_days", "upcoming_days"):
        if key in schedule:
            if isinstance(schedule[key], int) and 1 <= schedule[key] <= 365:
                values[key] = schedule[key]
            else:
                bad(key, f"{key} phải là số ngày từ 1 đến 365", sched_lines)
    if "nudge_weeks_left" in schedule:
        weeks = schedule["nudge_weeks_left"]
        weeks = [weeks] if isinstance(weeks, int) else weeks
        if isinstance(weeks, list) and all(isinstance(w, int) and 1 <= w <= 52 for w in weeks):
            values["nudge_weeks_left"] = tuple(sorted(set(weeks), reverse=True))
        else:
            bad("nudge_weeks_left", "nudge_weeks_left phải là danh sách số tuần, ví dụ [6, 2]", sched_lines)
    config = SupervisionConfig(**values)
    if config.quiet(datetime.combine(date(2000, 1, 3), config.morning)):
        bad("morning", "giờ nhắc buổi sáng (morning) đang nằm trong giờ yên lặng (quiet)", sched_lines)
    return config, problems
