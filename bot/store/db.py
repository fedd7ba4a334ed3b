"""One SQLite file through aiosqlite: WAL, foreign keys, numbered migrations at open.

The service holds one connection. Writes go through `write()`/`transaction()`, which share one
lock, so two coroutines never interleave statements inside a transaction. The CLI opens its own
connection to the same file; WAL and a busy timeout let both work at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class Database:
    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self.conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self.conn.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction; return lastrowid.

        The connection is in autocommit mode, so one statement is its own transaction: no
        BEGIN/COMMIT round trips to the database thread (each costs a turn of the busy event
        loop while holding the write lock; bench/webhook.py measured the difference).
        """
        async with self._lock:
            cursor = await self.conn.execute(sql, params)
            return cursor.lastrowid or 0

    async def write_returning(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        """One write statement with a RETURNING clause, in its own transaction; its first row."""
        async with self._lock:
            async with self.conn.execute(sql, params) as cursor:
                return await cursor.fetchone()

    async def write_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error), serialised with every other write."""
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            else:
                await self.conn.execute("COMMIT")

    async def close(self) -> None:
        await self.conn.close()


async def open_database(path: Path) -> Database:
    """Open (creating the folder and file if needed), configure, and migrate to the newest schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA busy_timeout = 10000")
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute("PRAGMA foreign_keys = ON")
    db = Database(conn, path)
    await migrate(db)
    return db


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every shipped migration, in order."""
    folder = resources.files("bot.store") / "migrations"
    found = []
    for item in folder.iterdir():
        match = _MIGRATION_NAME.match(item.name)
        if match:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {[n for _, n, _ in found]}")
    return found


async def migrate(db: Database, available: list[tuple[int, str, str]] | None = None) -> int:
    """Apply every shipped migration not yet recorded (by number, so one that lands after a
    higher-numbered one, from work done in parallel, is still applied); return the newest."""
    await db.conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
    )
    applied = {row[0] for row in await db.fetchall("SELECT version FROM schema_version")}
    for version, name, sql in available if available is not None else migrations():
        if version in applied:
            continue
        async with db.transaction() as tx:
            # executescript would COMMIT our transaction; run statement by statement instead.
            for statement in _statements(sql):
                await tx.execute(statement)
            await tx.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", (version, name))
        log.info("database migrated: applied %s", name)
        applied.add(version)
    return max(applied, default=0)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (complete_statement copes with `;` in strings/triggers)."""
    import sqlite3

    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise RuntimeError(f"incomplete SQL statement in migration: {buffer[:80]!r}")
    return statements
