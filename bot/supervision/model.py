"""What a supervision plan is, the error for one that cannot be stored, and the small pure helpers
(who did it, a period's name, a "đã hoàn thành" report) the store, the timer and the chats share."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite

from bot.channels.base import Inbound
from bot.kernel.vietnamese import fold

PREFIX = "sv"  # callback data of the group and staff buttons: sv:done:<id>, sv:ext:<id>, sv:ok:<ext>, sv:no:<ext>
LATE_GRACE = 120.0  # a reminder more than this behind its time was missed (the service was down)
MAX_RESULT = 500
MAX_LIST = 30
AdminCheck = Callable[[Inbound], Awaitable[bool]]
_DONE = re.compile(r"^\W*(?:#(\d+)\s*)?(?:da\s*)?hoan\s*thanh\b(?:[\s:,.;\-–—]*#(\d+))?[\s:,.;\-–—]*", re.S)


class SupervisionError(Exception):
    """A plan cannot be stored as asked; the message says why, in Vietnamese."""


@dataclass(frozen=True)
class Plan:
    id: int
    locality: str
    title: str
    subject: str | None
    kind: str
    period: str
    due_at: float
    remind: str
    chats: list[str] | None
    status: str
    done_at: float | None
    result: str | None
    key: str | None

    def as_json(self, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "id": self.id, "key": self.key, "locality": self.locality, "title": self.title,
            "subject": self.subject, "kind": self.kind, "period": self.period,
            "due": datetime.fromtimestamp(self.due_at, tz).isoformat(timespec="seconds"),
            "remind": self.remind, "chats": self.chats, "status": self.status,
            "done_at": datetime.fromtimestamp(self.done_at, tz).isoformat(timespec="seconds") if self.done_at else None,
            "result": self.result,
        }


def plan_from_row(row: aiosqlite.Row) -> Plan:
    return Plan(row["id"], row["locality"], row["title"], row["subject"], row["kind"], row["period"],
                row["due_at"], row["remind"], json.loads(row["chats"]) if row["chats"] else None, row["status"],
                row["done_at"], row["result"], row["key"])


async def no_group_admins(inbound: Inbound) -> bool:
    """The admin check where no channel runs (the CLI): nobody is a group admin."""
    return False


def who(inbound: Inbound) -> str:
    """How a person is recorded as having done something: "channel:user (name)"."""
    name = f" ({inbound.display_name})" if inbound.display_name else ""
    return f"{inbound.channel}:{inbound.user_id}{name}"


def period_label(period: str) -> str:
    """"2026-Q4" → "quý IV/2026"; "2026" → "năm 2026"."""
    if "-Q" in period:
        year, q = period.split("-Q")
        return f"quý {('I', 'II', 'III', 'IV')[int(q) - 1]}/{year}"
    return f"năm {period}"


def _fold_chars(text: str) -> str:
    """Lower-case, marks removed, one character for one: positions stay those of `text`."""
    return "".join((fold(ch) or ch)[:1] if ch.strip() else " " for ch in text.lower())


def match_done(text: str) -> tuple[str | None, str] | None:
    """("id" or None, the result text) for "đã hoàn thành [#id] <kết quả>"; None otherwise."""
    folded = _fold_chars(text)
    match = _DONE.match(folded)
    if match is None:
        return None
    return match.group(1) or match.group(2), " ".join(text[match.end():].split())
