"""What opening the database costs now that `open_database` checks the file (issue 11 point 8):
`PRAGMA quick_check(1)` and a write probe on every open, printed as a ratio against the same open
without them, for an empty database and for one of --rows question_log rows (≈125 MB at 600,000).

Limit: the checks add at most 0.5 s to an open of the large file (the CLI opens once per command).

Run: python bench/storage.py [--rows 600000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosqlite

from bot.store.db import open_database

LIMIT = 0.5


async def bare_open(path: Path) -> None:
    """The open as it was: connect and set the pragmas, no check."""
    conn = await aiosqlite.connect(path, isolation_level=None)
    for pragma in ("busy_timeout = 10000", "journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"):
        await conn.execute(f"PRAGMA {pragma}")
    await conn.execute("SELECT version FROM schema_version")
    await conn.close()


async def checked_open(path: Path) -> None:
    db = await open_database(path)
    await db.close()


async def timed(opener, path: Path, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        await opener(path)
        best = min(best, time.perf_counter() - started)
    return best


def fill(path: Path, rows: int) -> None:
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO question_log (channel, text, folded, outcome, asked_at) VALUES"
                         " ('telegram', ?, ?, 'answered', ?)",
                         ((f"câu hỏi số {i} về quỹ vì người nghèo " * 3, f"cau hoi {i}", float(i))
                          for i in range(rows)))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=600_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for label, rows in (("empty", 0), ("large", args.rows)):
            path = Path(folder) / f"{label}.sqlite3"
            await checked_open(path)  # create and migrate
            if rows:
                fill(path, rows)
            bare, checked = await timed(bare_open, path, args.rounds), await timed(checked_open, path, args.rounds)
            extra = checked - bare
            worst = max(worst, extra)
            print(f"{label:5} ({path.stat().st_size / 1e6:6.1f} MB): open {bare * 1000:7.1f} ms, checked "
                  f"{checked * 1000:7.1f} ms, ratio {checked / bare:5.2f}, extra {extra * 1000:6.1f} ms")
    print(f"worst extra {worst:.3f} s against a limit of {LIMIT} s: {'ok' if worst <= LIMIT else 'OVER'}")
    return 0 if worst <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
