"""One SQLite file through aiosqlite: WAL, foreign keys, numbered migrations at open.

The service holds one connection. Writes go through `write()`/`transaction()`, which share one
lock, so two coroutines never interleave statements inside a transaction. The CLI opens its own
connection to the same file; WAL and a busy timeout let both work at once, provided no statement
is left open: a cursor not run to its end keeps its read snapshot after COMMIT, and the next write
on the connection then fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT, which the
busy timeout cannot wait out) as soon as another process has committed. So every read closes its
cursor, and `transaction()` closes the cursors made inside it before COMMIT or ROLLBACK.

A file that cannot be used (not a database, corrupt, read-only, in a folder where the -wal file
cannot be made) raises `StorageError` at open, with one sentence naming the file and the cause;
the connection's thread is stopped first, so the process can exit. Deleted rows are overwritten
(`secure_delete`), and `checkpoint()` empties the -wal file, so an erasure leaves no copy.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

# what an operator should do, by SQLite's error name (sqlite3.Error.sqlite_errorname)
_CAUSES = {
    "SQLITE_NOTADB": "tệp không phải cơ sở dữ liệu SQLite (hỏng hoặc nhầm tệp); khôi phục từ bản sao lưu bằng"
                     " `python -m bot restore FILE`",
    "SQLITE_CORRUPT": "tệp bị hỏng; khôi phục từ bản sao lưu bằng `python -m bot restore FILE`",
    "SQLITE_READONLY": "không ghi được vào tệp (chỉ đọc): cấp quyền ghi cho tệp và thư mục chứa nó",
    "SQLITE_CANTOPEN": "không mở được tệp, hoặc không tạo được tệp -wal/-shm bên cạnh: kiểm tra quyền ghi của"
                       " thư mục",
    "SQLITE_FULL": "ổ đĩa đã đầy",
    "SQLITE_IOERR": "lỗi đọc/ghi đĩa",
    "SQLITE_PERM": "không có quyền truy cập tệp",
    "SQLITE_BUSY": "tệp đang bị một tiến trình khác khóa quá lâu",
}


class StorageError(Exception):
    """The database file cannot be used; str() is one Vietnamese sentence naming the file and the cause."""

    def __init__(self, path: Path, cause: str) -> None:
        super().__init__(f"Không dùng được cơ sở dữ liệu {path}: {cause}.")
        self.path = path
        self.cause = cause


def describe(path: Path, exc: BaseException) -> StorageError:
    """`exc` (a sqlite3 or OS error met on `path`) as the one sentence an operator reads."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        base = next((v for k, v in _CAUSES.items() if name == k or name.startswith(k + "_")), None)
        return StorageError(path, f"{base} ({exc})" if base else str(exc))
    if isinstance(exc, OSError):
        return StorageError(path, f"không mở hoặc tạo được {exc.filename or path} ({exc.strerror or exc}): kiểm tra"
                                  " quyền ghi của tệp và thư mục chứa nó")
    return StorageError(path, str(exc))


class _Tracked:
    """The connection inside `transaction()`: like it, but remembers each cursor so that none is left
    open (holding an old read snapshot) when the transaction ends."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._cursors: list[aiosqlite.Cursor] = []

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        cursor = await self._conn.execute(sql, params)
        self._cursors.append(cursor)
        return cursor

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> aiosqlite.Cursor:
        cursor = await self._conn.executemany(sql, rows)
        self._cursors.append(cursor)
        return cursor

    async def close_cursors(self) -> None:
        cursors, self._cursors = self._cursors, []
        for cursor in cursors:
            await cursor.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class Database:
    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        # One-statement writes waiting for the database thread, run together in its next trip
        # (see `_write_once`), and the task that takes them there.
        self._queued: list[tuple[str, Sequence[Any], asyncio.Future[tuple[list[aiosqlite.Row], int]]]] = []
        self._taking: asyncio.Task[None] | None = None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        return (await self._once(sql, params))[0]

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        rows = (await self._once(sql, params))[0]
        return rows[0] if rows else None

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction; return lastrowid.

        The connection is in autocommit mode, so one statement is its own transaction: no
        BEGIN/COMMIT round trips to the database thread (each costs a turn of the busy event
        loop while holding the write lock; bench/webhook.py measured the difference).
        """
        return (await self._write_once(sql, params))[1]

    async def write_returning(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        """One write statement with a RETURNING clause, in its own transaction; its first row."""
        rows = (await self._write_once(sql, params))[0]
        return rows[0] if rows else None

    async def _once(self, sql: str, params: Sequence[Any]) -> tuple[list[aiosqlite.Row], int]:
        """Run one statement to its end and close its cursor in ONE trip to the database thread
        (aiosqlite's execute, fetch and close are a trip each, and each trip wakes the event loop:
        three a statement were most of the service's CPU per message). (rows, lastrowid)."""
        conn = self.conn

        def run() -> tuple[list[aiosqlite.Row], int]:
            cursor = conn._conn.execute(sql, params)
            try:
                return cursor.fetchall(), cursor.lastrowid or 0
            finally:
                cursor.close()

        # aiosqlite has no public "run this in the connection's thread"; `_execute` is what its own
        # execute_fetchall uses (aiosqlite 0.20-0.22, pinned in pyproject.toml).
        return await conn._execute(run)

    async def _write_once(self, sql: str, params: Sequence[Any]) -> tuple[list[aiosqlite.Row], int]:
        """One write statement, its own transaction as before, but sharing its trip to the database
        thread with every other one asked for meanwhile (group commit): under load a hundred
        messages' writes (`chats.touch`, the question log…) cost one trip, not a hundred; alone, a
        write still goes at once. Statements run in the order asked, each committed on its own, so
        one that fails fails alone."""
        future: asyncio.Future[tuple[list[aiosqlite.Row], int]] = asyncio.get_running_loop().create_future()
        self._queued.append((sql, params, future))
        if self._taking is None:
            self._taking = asyncio.create_task(self._take_queued())
        return await future

    async def _take_queued(self) -> None:
        try:
            async with self._lock:  # after a transaction in progress, as a single write would be
                await self._recover()
                batch, self._queued = self._queued, []
                self._taking = None  # a write asked for from now on goes in the next trip
                conn = self.conn

                def run() -> list[tuple[list[aiosqlite.Row], int] | Exception]:
                    results: list[tuple[list[aiosqlite.Row], int] | Exception] = []
                    for sql, params, _ in batch:
                        try:
                            cursor = conn._conn.execute(sql, params)
                            try:
                                results.append((cursor.fetchall(), cursor.lastrowid or 0))
                            finally:
                                cursor.close()
                        except Exception as exc:  # this statement's own failure, for its caller
                            results.append(exc)
                    return results

                try:
                    results = await conn._execute(run)
                except BaseException as exc:  # the connection is gone: every caller learns it
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(exc if isinstance(exc, Exception) else ConnectionError(str(exc)))
                    raise
        finally:
            if self._taking is asyncio.current_task():
                self._taking = None
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller was cancelled; the statement ran all the same
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def write_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error), serialised with every other write. What it
        yields behaves as the connection (`execute`, `executemany`) and closes its cursors at the end."""
        async with self._lock:
            await self._recover()
            tx = _Tracked(self.conn)
            try:
                await _settled(self._run("BEGIN IMMEDIATE"))
                yield tx  # type: ignore[misc]  # duck-typed as the connection the callers annotate
            except BaseException:
                await _settled(tx.close_cursors())
                if _in_transaction(self.conn):  # not when BEGIN itself failed
                    await _settled(self._run("ROLLBACK"))
                raise
            else:
                await _settled(tx.close_cursors())
                await _settled(self._run("COMMIT"))

    async def _run(self, sql: str) -> None:
        async with self.conn.execute(sql):
            pass

    async def _recover(self) -> None:
        """Under the lock: roll back a transaction left open, so that it swallows no later write
        (autocommit statements would silently join it and never commit). `transaction` ends its
        own even when its task is cancelled; this is the net under anything else."""
        if _in_transaction(self.conn):  # closed: False; the statement that follows raises it
            log.warning("database: a transaction was left open (a task cancelled inside it?); rolled back")
            await self._run("ROLLBACK")

    async def checkpoint(self) -> tuple[int, int, int]:
        """Copy the -wal file into the database and truncate it to zero bytes (after an erasure, so
        that no old page of the erased rows stays on disk); (busy, wal frames, frames copied)."""
        async with self._lock:
            row = await self.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
        return (int(row[0]), int(row[1]), int(row[2])) if row is not None else (0, 0, 0)

    async def check_writable(self) -> None:
        """Raise StorageError unless a write transaction can be taken and written in (a read-only
        file or folder opens and reads fine, and fails only at the first write). Writes nothing."""
        try:
            async with self.transaction() as tx:
                await tx.execute("DELETE FROM schema_version WHERE version < 0")
        except (sqlite3.Error, OSError) as exc:
            raise describe(self.path, exc) from exc

    async def close(self) -> None:
        while self._taking is not None:  # writes already asked for are written first
            await asyncio.gather(self._taking, return_exceptions=True)
        await self.conn.close()


def _in_transaction(conn: aiosqlite.Connection) -> bool:
    try:
        return conn._conn.in_transaction
    except ValueError:  # closed
        return False


async def _settled(step: Any) -> Any:
    """Await `step` (a BEGIN, COMMIT, ROLLBACK or cursor close sent to the database thread) to its end
    even if this task is cancelled meanwhile, then let the cancellation go on: the thread runs it
    anyway, and a caller that stopped waiting would leave the transaction's state unknown."""
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


async def open_database(path: Path) -> Database:
    """Open (creating the folder and file if needed), configure, check (structure, writability) and
    migrate to the newest schema. StorageError, with the connection closed, when the file is unusable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
    except (sqlite3.Error, OSError) as exc:
        raise describe(path, exc) from exc
    db = Database(conn, path)
    try:
        conn.row_factory = aiosqlite.Row
        for pragma in ("busy_timeout = 10000", "journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON",
                       "secure_delete = ON"):
            await db._run(f"PRAGMA {pragma}")
        verdict = await db.fetchval("PRAGMA quick_check(1)")  # ~0.36 s for 144 MB (bench/storage.py)
        if verdict != "ok":
            raise StorageError(path, f"tệp bị hỏng ({verdict}); khôi phục từ bản sao lưu bằng"
                                     " `python -m bot restore FILE`")
        await migrate(db)
        await db.check_writable()
    except BaseException as exc:
        await conn.close()  # its thread would keep the process from exiting
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise describe(path, exc) from exc
        raise
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
