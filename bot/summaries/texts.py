"""A quarter's summary in words: each locality's short text for its own groups, the staff chat's
table, and the messages `summary quarter --send` (or a 'summary' series) queues.

Texts use the project's markup (`**bold**`, "- " items); each channel renders it its own way (HTML on
Telegram, plain on Zalo). Figures are written as Vietnamese write them (1.234; 62,5%), dates dd/mm/yyyy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.broadcasts.outbox import Queued, Recipient
from bot.kernel.messages import Messages
from bot.kernel.vietnamese import number, percent
from bot.summaries.quarter import Quarter

STAFF_ROWS = 60  # lines of the staff chat's table; the CLI shows every locality


def locality_text(item: dict[str, Any], quarter: Quarter, say: Messages) -> str:
    """The short summary a locality's groups receive; a kind sentence when it has nothing to report."""
    head = say("sm_head", quarter=quarter.name, place=item["name"])
    if not item["has_activity"]:
        return "\n".join((head, say("sm_empty")))
    s, b, q, t, a = (item[k] for k in ("supervision", "broadcasts", "questions", "tickets", "audience"))
    lines = [head, say("sm_supervision", done=number(s["done"]), required=number(s["required"]),
                       giam_sat=number(s["giam_sat"]), phan_bien=number(s["phan_bien"]),
                       verdict=say("sm_met") if s["met"] else say("sm_owed", n=number(s["required"] - s["done"])))]
    if s["next_deadlines"]:
        lines.append(say("sm_next", items="; ".join(f"{d['title']} ({d['due']})" for d in s["next_deadlines"])))
    if b["sent"]:
        lines.append(say("sm_broadcasts", received=number(b["received"]), share=percent(b["ack_share"] or 0)))
    asked = q["answered"] + q["choices"] + q["declined"]
    if asked:
        lines.append(say("sm_questions", asked=number(asked), answered=number(q["answered"]),
                         choices=number(q["choices"]), declined=number(q["declined"])))
        if q["top_topics"]:
            lines.append(say("sm_topics", topics=", ".join(x["title"] for x in q["top_topics"])))
    if t["received"]:
        median = say("sm_median", hours=number(t["median_answer_hours"], 1).removesuffix(",0")) \
            if t["median_answer_hours"] is not None else ""
        lines.append(say("sm_tickets", received=number(t["received"]), petitions=number(t["petitions"]),
                         answered=number(t["answered"]), median=median))
    lines.append(say("sm_audience", subscribers=number(a["subscribers"]), groups=number(a["groups"])))
    return "\n".join(lines)


def staff_text(items: Sequence[dict[str, Any]], quarter: Quarter, say: Messages, limit: int = STAFF_ROWS) -> str:
    """The whole table for the staff chat: the localities with activity (those behind first), then
    how many had none."""
    met = sum(1 for i in items if i["supervision"]["met"])
    lines = [say("sm_staff_head", quarter=quarter.name, count=number(len(items)), met=number(met))]
    active = sorted((i for i in items if i["has_activity"]), key=lambda i: (i["supervision"]["met"], i["name"]))
    for item in active[:limit]:
        s, b, q, t = (item[k] for k in ("supervision", "broadcasts", "questions", "tickets"))
        lines.append(say("sm_staff_row", place=item["name"], done=number(s["done"]), required=number(s["required"]),
                         received=number(b["received"]),
                         share=percent(b["ack_share"]) if b["ack_share"] is not None else "–",
                         questions=number(q["answered"] + q["choices"] + q["declined"]),
                         tickets=number(t["received"])))
    if len(active) > limit:
        lines.append(say("sm_staff_more", n=number(len(active) - limit)))
    quiet = len(items) - len(active)
    if quiet:
        lines.append(say("sm_staff_quiet", n=number(quiet)))
    return "\n".join(lines)


def messages(items: Sequence[dict[str, Any]], quarter: Quarter, say: Messages, groups: Sequence[Recipient],
             owner_of: Any, staff: Recipient | None) -> list[Queued]:
    """Each locality's summary to the groups registered in it (or below it), and the table to the
    staff chat (when there is one)."""
    by_owner: dict[str, list[Recipient]] = {}
    for chat in groups:
        code = owner_of(chat[4]) if chat[4] else None
        if code is not None:
            by_owner.setdefault(code, []).append(chat)
    source = f"summary:{quarter.label}"
    queued = [Queued(locality_text(item, quarter, say), by_owner[item["locality"]], source, item["locality"],
                     ack=True) for item in items if by_owner.get(item["locality"])]
    if staff is not None:
        queued.append(Queued(staff_text(items, quarter, say), [staff], source))
    return queued
