"""A task cancelled inside `Database.transaction` (a request whose client went away, a service
stopping) leaves no transaction open: otherwise every later one-statement write would silently
join it and never be committed, and the next transaction would fail to begin."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from bot.store.db import open_database


async def test_cancelled_while_beginning_or_inside_leaves_nothing_open_and_later_writes_commit(tmp_path: Path):
    path = tmp_path / "bot.sqlite3"
    db = await open_database(path)
    try:
        await db.write("CREATE TABLE t (x INTEGER)")
        inside = asyncio.Event()

        async def writer(value: int) -> None:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t VALUES (?)", (value,))
                inside.set()
                await asyncio.sleep(30)

        beginning = asyncio.create_task(writer(1))
        await asyncio.sleep(0)  # it holds the lock and waits for BEGIN from the database thread
        beginning.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beginning
        working = asyncio.create_task(writer(2))
        await inside.wait()
        working.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await working
        await db.write("INSERT INTO t VALUES (3)")
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (4)")
        with sqlite3.connect(path) as other:  # what is committed, as any other process sees it
            assert other.execute("SELECT x FROM t ORDER BY x").fetchall() == [(3,), (4,)]
    finally:
        await db.close()
