"""The overview's figures (the Overview page and `GET /api/v1/stats`), read through the owners."""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.dashboard.service import Dashboard

DAYS = 30  # questions per day: this many days back


def quarter_start(now: float, tz) -> tuple[float, str]:
    local = datetime.fromtimestamp(now, tz)
    quarter = (local.month - 1) // 3
    start = datetime(local.year, quarter * 3 + 1, 1, tzinfo=tz)
    return start.timestamp(), f"{local.year}-Q{quarter + 1}"


async def overview(dash: Dashboard, now: float) -> dict[str, Any]:
    tz = dash.settings.tz
    since, quarter = quarter_start(now, tz)
    tree = dash.localities
    places = await dash.broadcasts.by_locality_since(since)
    localities = sorted(({"code": code, "name": tree.full_name(code) if code in tree else (code or "(chưa rõ)"), **c,
                          "delivered_pct": round(100 * c["sent"] / c["total"]) if c["total"] else 0,
                          "ack_pct": round(100 * c["acknowledged"] / c["sent"]) if c["sent"] else 0}
                         for code, c in places.items()), key=lambda p: -p["total"])
    offset = datetime.fromtimestamp(now, tz).utcoffset()
    utc_offset = offset.total_seconds() if offset else 0.0
    today = int((now + utc_offset) // 86400)
    per_day = await dash.questions.per_day((today - DAYS + 1) * 86400 - utc_offset, utc_offset)
    days = []
    for day in range(today - DAYS + 1, today + 1):
        counts = per_day.get(day, {"answered": 0, "choices": 0, "declined": 0})
        label = datetime.fromtimestamp(day * 86400, tz).strftime("%d/%m")
        days.append({"day": label, **counts, "total": sum(counts.values())})
    counts = await dash.handoff.tickets.counts()
    waits = await dash.handoff.tickets.first_responses(since)
    pending = await dash.broadcasts.pending_by_channel()
    failures = await dash.broadcasts.last_failures()
    channels = []
    for name, channel in dash.channels.items():
        paused = dash.paused_until(name)
        reason, at = failures.get(name, ("", None))
        channels.append({"name": name, "running": channel.running, "pending": pending.get(name, 0),
                         "paused_until": paused if paused > now else None, "last_error": reason, "last_error_at": at})
    supervision = await dash.supervision.store.table(now=now)
    return {
        "quarter": quarter,
        "broadcasts": {"count": await dash.broadcasts.count_since(since), "by_locality": localities},
        "questions": {"days": days, "total": sum(d["total"] for d in days)},
        "tickets": {"open": counts.get("open", 0), "answered": counts.get("answered", 0),
                    "closed": counts.get("closed", 0),
                    "median_first_response_minutes": round(statistics.median(waits) / 60) if waits else None},
        "supervision": supervision,
        "outbox": {"pending": sum(pending.values()), "by_channel": pending},
        "channels": channels,
    }
