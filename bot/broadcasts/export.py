"""A broadcast's per-recipient report as CSV (`broadcast show ID --csv`, the dashboard's download) and
as XLSX (the dashboard's other download): the same columns and values."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

CSV_COLUMNS = ("channel", "chat_id", "kind", "locality", "status", "reason", "sent_at", "acknowledged")


def _lines(rows: list[dict[str, Any]], tz: ZoneInfo) -> Iterator[list[str | int]]:
    """One line per recipient (rows from `Broadcasts.recipients`); sent_at in local time
    (dd/mm/yyyy HH:MM:SS), acknowledged 1/0."""
    for r in rows:
        sent_at = datetime.fromtimestamp(r["sent_at"], tz).strftime("%d/%m/%Y %H:%M:%S") if r["sent_at"] else ""
        yield [r["channel"], r["chat_id"], r["kind"], r["locality"] or "", r["status"], r["reason"] or "",
               sent_at, int(r["acknowledged"])]


def recipients_csv(rows: list[dict[str, Any]], tz: ZoneInfo) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_lines(rows, tz))
    return out.getvalue()


def recipients_xlsx(rows: list[dict[str, Any]], tz: ZoneInfo, title: str = "nguoi-nhan") -> bytes:
    """The CSV's table as one worksheet (a write-only workbook: memory stays flat on 100,000 rows).
    chat_id stays text, as in the CSV (a spreadsheet would round a long id as a number)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.append(list(CSV_COLUMNS))
    for line in _lines(rows, tz):
        line[1] = str(line[1])
        sheet.append(line)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
