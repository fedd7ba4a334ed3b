"""Supervision's messages rendered from content/messages.yaml: a reminder, the per-locality table."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.audiences.localities import Localities
from bot.kernel.messages import Messages
from bot.supervision.model import MAX_LIST, Plan, period_label
from bot.supervision.schedule import local_text


class Texts:
    def __init__(self, say: Messages, tree: Localities, tz: ZoneInfo) -> None:
        self.say = say
        self.tree = tree
        self.tz = tz

    def place(self, code: str) -> str:
        item = self.tree.get(code)
        return item.name if item else code

    def reminder_text(self, plan: Plan, now: float) -> str:
        left = plan.due_at - now
        due_day = datetime.fromtimestamp(plan.due_at, self.tz).date()
        days = (due_day - datetime.fromtimestamp(now, self.tz).date()).days
        if left <= 60:
            remaining = self.say("sv_left_now")
        elif days >= 1:
            remaining = self.say("sv_left_days", n=days)
        elif left >= 3600:
            remaining = self.say("sv_left_hours", n=int(left // 3600))
        else:
            remaining = self.say("sv_left_minutes", n=max(1, int(left // 60)))
        return self.say("sv_reminder", id=plan.id, title=plan.title, kind=self.say(f"sv_kind_{plan.kind}"),
                        subject=plan.subject or plan.title, place=self.tree.full_name(plan.locality),
                        due=local_text(plan.due_at, self.tz), left=remaining)

    def table_text(self, table: dict[str, Any], limit: int = MAX_LIST) -> str:
        rows = table["localities"]
        met = sum(1 for r in rows if r["met"])
        lines = [self.say("sv_table_head", period=period_label(table["period"]), met=met, total=len(rows))]
        behind = [r for r in rows if not r["met"]]
        for r in behind[:limit * 2]:
            lines.append(self.say("sv_table_place", place=r["name"], done=r["done"], required=r["required"],
                                  planned=r["planned"]))
        if len(behind) > limit * 2:
            lines.append(self.say("sv_more", n=len(behind) - limit * 2))
        for key, items in (("sv_table_overdue", table["overdue"]), ("sv_table_upcoming", table["upcoming"])):
            lines += ["", self.say(key, count=len(items))]
            for it in items[:limit]:
                due = datetime.fromisoformat(it["due"]).strftime("%d/%m/%Y %H:%M")
                lines.append(self.say("sv_table_item", id=it["id"], title=it["title"],
                                      place=self.place(it["locality"]), due=due))
            if len(items) > limit:
                lines.append(self.say("sv_more", n=len(items) - limit))
        return "\n".join(lines)

