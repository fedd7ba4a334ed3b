"""What a SIGKILL mid-broadcast left behind, read from the fake platform and the database file:
shared by tests/e2e/test_crash.py and bench/broadcast.py (section 5)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path

from tests.fakes.telegram import FakeTelegram

MARKER = "Thông báo thử khởi động lại."


def copies(fake: FakeTelegram, marker: str = MARKER) -> Counter:
    """How many copies of the broadcast each chat received."""
    return Counter(str(m.chat_id) for m in fake.sent if marker in m.text)


def outbox_states(path: Path) -> dict[str, str]:
    """Each recipient's outbox status, as the database file holds it now."""
    with sqlite3.connect(path) as con:
        return dict(con.execute("SELECT chat_id, status FROM outbox").fetchall())


def all_sent(path: Path):
    """An awaitable: whether every outbox row is sent (read off the event loop)."""
    return asyncio.to_thread(lambda: set(outbox_states(path).values()) == {"sent"})
