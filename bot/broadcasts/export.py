"""A broadcast's per-recipient report as CSV (`broadcast show ID --csv`, the dashboard's download)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

CSV_COLUMNS = ("channel", "chat_id", "kind", "locality", "status", "reason", "sent_at", "acknowledged")


def recipients_csv(rows: list[dict[str, Any]], tz: ZoneInfo) -> str:
    """One line per recipient (rows from `Broadcasts.recipients`); sent_at in local time
    (dd/mm/yyyy HH:MM:SS), acknowledged 1/0."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        sent_at = datetime.fromtimestamp(r["sent_at"], tz).strftime("%d/%m/%Y %H:%M:%S") if r["sent_at"] else ""
        writer.writerow([r["channel"], r["chat_id"], r["kind"], r["locality"] or "", r["status"], r["reason"] or "",
                         sent_at, int(r["acknowledged"])])
    return out.getvalue()
