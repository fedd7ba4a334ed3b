"""One quarter of each locality, gathered through the owner modules' read functions.

The localities are supervision's tracked ones (the level that owes ≥ 2 activities a period); what
happened in a village or residential group below one counts for it. Nothing here writes, and no SQL
here: each figure comes from the module that owns its table.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.audiences.chats import audience_by_locality
from bot.audiences.localities import Localities
from bot.broadcasts.store import received_by_locality
from bot.handoff.tickets import by_locality as tickets_by_locality
from bot.knowledge.question_log import outcomes_by_locality
from bot.store.db import Database
from bot.supervision.service import Supervision

ROMAN = ("I", "II", "III", "IV")
_QUARTER = re.compile(r"^\s*(\d{4})-?Q([1-4])\s*$", re.I)


class SummaryError(ValueError):
    """A summary cannot be made as asked; the message says why, in Vietnamese."""


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int

    @property
    def label(self) -> str:
        return f"{self.year}-Q{self.number}"

    @property
    def name(self) -> str:
        """As people write it: "quý IV-2026"."""
        return f"quý {ROMAN[self.number - 1]}-{self.year}"

    def bounds(self, tz: ZoneInfo) -> tuple[float, float]:
        start = datetime(self.year, 3 * self.number - 2, 1, tzinfo=tz)
        end = datetime(self.year + 1, 1, 1, tzinfo=tz) if self.number == 4 else \
            datetime(self.year, 3 * self.number + 1, 1, tzinfo=tz)
        return start.timestamp(), end.timestamp()

    @classmethod
    def of(cls, when: float, tz: ZoneInfo) -> Quarter:
        local = datetime.fromtimestamp(when, tz)
        return cls(local.year, (local.month - 1) // 3 + 1)

    @classmethod
    def parse(cls, value: str) -> Quarter:
        match = _QUARTER.match(value or "")
        if match is None:
            raise SummaryError(f"quý '{value}' không hợp lệ: ghi dạng 2026-Q4")
        return cls(int(match.group(1)), int(match.group(2)))

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)


def _blank(code: str, name: str, quarter: Quarter) -> dict[str, Any]:
    return {"locality": code, "name": name, "quarter": quarter.label,
            "supervision": {"done": 0, "giam_sat": 0, "phan_bien": 0, "planned": 0, "required": 0, "met": False,
                            "next_deadlines": []},
            "broadcasts": {"received": 0, "sent": 0, "acknowledged": 0, "ack_share": None},
            "questions": {"answered": 0, "choices": 0, "declined": 0, "top_topics": []},
            "tickets": {"received": 0, "questions": 0, "petitions": 0, "answered": 0, "median_answer_hours": None},
            "audience": {"subscribers": 0, "groups": 0},
            "has_activity": False}


class Summaries:
    def __init__(self, db: Database, tree: Localities, supervision: Supervision, tz: ZoneInfo,
                 titles: Mapping[str, str] | None = None) -> None:
        self.db, self.tree, self.supervision, self.tz = db, tree, supervision, tz
        self.titles = dict(titles or {})  # knowledge entry id -> its title, for the top topics

    async def quarter(self, quarter: Quarter, now: float, locality: str | None = None) -> list[dict[str, Any]]:
        """One object a tracked locality (only `locality`'s when given), in the tree's order."""
        start, end = quarter.bounds(self.tz)
        codes = list(self.supervision.tracked)
        if locality is not None:
            owner = self.supervision.owner_of(locality)
            if owner is None:
                raise SummaryError(f"địa bàn '{locality}' không thuộc cấp được tổng kết (cấp xã, phường)")
            codes = [owner]
        found = {code: _blank(code, self._name(code), quarter) for code in codes}
        period = self.supervision.config.period_of(start, self.tz)
        for code, s in (await self.supervision.period_summary(period, max(now, start))).items():
            if code in found:
                done = s["giam_sat"] + s["phan_bien"]
                found[code]["supervision"].update(
                    done=done, giam_sat=s["giam_sat"], phan_bien=s["phan_bien"], planned=s["planned"],
                    required=s["required"], met=done >= s["required"],
                    next_deadlines=[{"title": title, "due": datetime.fromtimestamp(due, self.tz).strftime("%d/%m/%Y")}
                                    for due, title in s["next"]])
        seconds: dict[str, list[float]] = {}
        topics: dict[str, dict[str, int]] = {}
        for raw, counts in (await received_by_locality(self.db, start, end)).items():
            if (mine := self._of(found, raw)) is not None:
                for key in ("sent", "acknowledged"):
                    mine["broadcasts"][key] += counts[key]
                mine["broadcasts"]["received"] += counts["broadcasts"]  # a broadcast to two villages counts twice
        for raw, counts in (await outcomes_by_locality(self.db, start, end, top=10)).items():
            if (mine := self._of(found, raw)) is not None:
                for key in ("answered", "choices", "declined"):
                    mine["questions"][key] += counts[key]
                mine_topics = topics.setdefault(mine["locality"], {})
                for entry, n in counts["topics"]:
                    mine_topics[entry] = mine_topics.get(entry, 0) + n
        for raw, counts in (await tickets_by_locality(self.db, start, end)).items():
            if (mine := self._of(found, raw)) is not None:
                t = mine["tickets"]
                t["questions"] += counts["questions"]
                t["petitions"] += counts["petitions"]
                t["answered"] += counts["answered"]
                seconds.setdefault(mine["locality"], []).extend(counts["answer_seconds"])
        for raw, counts in (await audience_by_locality(self.db)).items():
            if (mine := self._of(found, raw)) is not None:
                mine["audience"]["subscribers"] += counts["subscribers"]
                mine["audience"]["groups"] += counts["groups"]
        for code, mine in found.items():
            b, q, t = mine["broadcasts"], mine["questions"], mine["tickets"]
            b["ack_share"] = round(b["acknowledged"] / b["sent"], 4) if b["sent"] else None
            q["top_topics"] = [{"id": e, "title": self.titles.get(e, e), "count": n}
                               for e, n in sorted(topics.get(code, {}).items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
            t["received"] = t["questions"] + t["petitions"]
            if seconds.get(code):
                t["median_answer_hours"] = round(statistics.median(seconds[code]) / 3600, 1)
            mine["has_activity"] = bool(mine["supervision"]["done"] or mine["supervision"]["planned"] or b["sent"]
                                        or q["answered"] + q["choices"] + q["declined"] or t["received"])
        return list(found.values())

    def _of(self, found: dict[str, dict[str, Any]], raw: str) -> dict[str, Any] | None:
        owner = self.supervision.owner_of(raw)
        return found.get(owner) if owner is not None else None

    def _name(self, code: str) -> str:
        item = self.tree.get(code)
        return item.name if item else code
