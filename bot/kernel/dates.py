"""The one parser for the local date and time staff type: `dd/mm/yyyy [HH:MM]` (also `HHhMM`).

Supervision (`/themgiamsat`, `/doihan`, an extension request, `supervision add --due`) and
broadcast authoring (`/thongbao`'s send time) all read dates through here. Times are local to
the given zone; a date without a time means `default_hour` (17:00, the end of the working day).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

DEFAULT_HOUR = 17
_PATTERN = r"(\d{1,2})/(\d{1,2})/(\d{4})(?:\s+(?:lúc\s+)?(\d{1,2})[:hH](\d{2}))?"
_FULL = re.compile(rf"^\s*{_PATTERN}\s*$")
_SEARCH = re.compile(_PATTERN)


@dataclass(frozen=True)
class DateMatch:
    """Where a date was found in a text, and the epoch seconds it means (None: no such day or time)."""

    when: float | None
    start: int
    end: int
    has_time: bool


def _epoch(groups: tuple[str | None, ...], tz: ZoneInfo, default_hour: int) -> float | None:
    d, m, y, hh, mm = groups
    try:
        return datetime(int(y or 0), int(m or 0), int(d or 0), int(hh) if hh else default_hour,
                        int(mm) if mm else 0, tzinfo=tz).timestamp()
    except ValueError:
        return None


def find_local_date(text: str, tz: ZoneInfo, *, default_hour: int = DEFAULT_HOUR) -> DateMatch | None:
    """The first `dd/mm/yyyy [HH:MM]` anywhere in `text` (the rest may be a reason); None: none there."""
    match = _SEARCH.search(text or "")
    if match is None:
        return None
    return DateMatch(_epoch(match.groups(), tz, default_hour), match.start(), match.end(), match.group(4) is not None)


def parse_local_date(text: str, tz: ZoneInfo, *, default_hour: int = DEFAULT_HOUR,
                     time_required: bool = False, allow_word: bool = True) -> float | None:
    """The whole of `text` as `dd/mm/yyyy [HH:MM]` in local time, as epoch seconds; None if it is
    not that form or not a real time. `time_required`: a bare date is refused; `allow_word`: "lúc"
    may stand between the date and the time."""
    match = _FULL.match(text or "")
    if match is None or (time_required and match.group(4) is None):
        return None
    if not allow_word and "lúc" in match.group(0):
        return None
    return _epoch(match.groups(), tz, default_hour)


def is_local_date(text: str, *, allow_word: bool = True) -> bool:
    """`text` has the form (whether or not the day exists)."""
    match = _FULL.match(text or "")
    return match is not None and (allow_word or "lúc" not in match.group(0))
