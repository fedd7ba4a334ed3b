"""Placeholders in a recurring text, filled at each firing and for each recipient's locality.

`{quy}` the quarter of the firing ("quý IV-2026"), `{nam}` its year, `{dia_ban}` the recipient's
locality name, `{han_giam_sat}` its next supervision deadline (dd/mm/yyyy), `{con_thieu}` the number
of supervision activities it still owes this period. Names may carry their marks (`{quý}`, `{địa_bàn}`).
Anything else in braces made of letters, digits and `_` is an unknown placeholder: `content check`
and `broadcast send --repeat` refuse it with its line.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.kernel.vietnamese import fold

PLACEHOLDERS = {
    "quy": "quý của lần gửi, ví dụ quý IV-2026",
    "nam": "năm của lần gửi",
    "dia_ban": "tên địa bàn của nhóm nhận",
    "han_giam_sat": "hạn giám sát sắp tới của địa bàn (dd/mm/yyyy)",
    "con_thieu": "số hoạt động giám sát, phản biện địa bàn còn phải làm trong kỳ",
}
PER_LOCALITY = frozenset({"dia_ban", "han_giam_sat", "con_thieu"})
_FIELD = re.compile(r"\{(\w+)\}")
ROMAN = ("I", "II", "III", "IV")


@dataclass(frozen=True)
class LocalityFacts:
    """What a locality's placeholders show: its next deadline (epoch or None) and activities owed."""

    next_due: float | None = None
    owed: int = 0


# codes -> their facts at `now` (supervision's plans answer it; wired in bot/app/wiring.py)
FactsSource = Callable[[Sequence[str], float], Awaitable[dict[str, LocalityFacts]]]


def unknown(text: str) -> list[tuple[int, str]]:
    """(line number in `text`, name) of every placeholder that is not one of PLACEHOLDERS."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        found += [(number, m.group(1)) for m in _FIELD.finditer(line) if _name(m.group(1)) not in PLACEHOLDERS]
    return found


def used(text: str) -> set[str]:
    return {_name(m.group(1)) for m in _FIELD.finditer(text)} & PLACEHOLDERS.keys()


def _name(word: str) -> str:
    return fold(word).lower()


def per_locality(text: str) -> bool:
    """True when the text differs from one locality to another (one broadcast per locality then)."""
    return bool(used(text) & PER_LOCALITY)


def quarter_label(when: float, tz: ZoneInfo) -> str:
    local = datetime.fromtimestamp(when, tz)
    return f"quý {ROMAN[(local.month - 1) // 3]}-{local.year}"


def render(text: str, when: float, tz: ZoneInfo, *, place: str = "", facts: LocalityFacts | None = None,
           none_due: str = "") -> str:
    """`text` with its placeholders filled for a firing at `when` and one locality."""
    facts = facts or LocalityFacts()
    values = {
        "quy": quarter_label(when, tz),
        "nam": str(datetime.fromtimestamp(when, tz).year),
        "dia_ban": place,
        "han_giam_sat": datetime.fromtimestamp(facts.next_due, tz).strftime("%d/%m/%Y")
        if facts.next_due else none_due,
        "con_thieu": str(facts.owed),
    }
    return _FIELD.sub(lambda m: values.get(_name(m.group(1)), m.group(0)), text)
