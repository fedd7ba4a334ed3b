import sqlite3
from pathlib import Path

from bot.store.db import migrate, migrations, open_database


async def test_creates_folder_applies_migrations_once(tmp_path: Path):
    path = tmp_path / "nested" / "dir" / "bot.sqlite3"
    db = await open_database(path)
    assert await db.fetchval("PRAGMA journal_mode") == "wal"
    assert await db.fetchval("PRAGMA foreign_keys") == 1
    newest = max(v for v, _, _ in migrations())
    assert await db.fetchval("SELECT MAX(version) FROM schema_version") == newest
    await db.close()
    db = await open_database(path)  # second open: nothing re-applied
    assert await db.fetchval("SELECT COUNT(*) FROM schema_version") == len(migrations())
    await db.close()
    with sqlite3.connect(path) as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"chats", "question_log", "staff"} <= tables


async def test_failed_transaction_rolls_back(tmp_path: Path):
    db = await open_database(tmp_path / "bot.sqlite3")
    try:
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO staff (channel, user_id, added_at) VALUES ('telegram', '1', 0)"
            )
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert await db.fetchval("SELECT COUNT(*) FROM staff") == 0
    await db.close()


async def test_a_migration_numbered_below_the_newest_is_still_applied(tmp_path: Path):
    # Work done in parallel can land migration 3 after a database already has 6.
    db = await open_database(tmp_path / "bot.sqlite3")
    late = (0, "000_late.sql", "CREATE TABLE late_arrival (x INTEGER);")
    assert await migrate(db, [*migrations(), late]) == max(v for v, _, _ in migrations())
    assert await db.fetchval("SELECT name FROM schema_version WHERE version = 0") == "000_late.sql"
    assert await db.fetchval("SELECT COUNT(*) FROM late_arrival") == 0
    await db.close()


async def test_a_cursor_left_open_in_a_transaction_does_not_lock_the_next_write(tmp_path):
    """Issue 11 point 7, at its root: a multi-row cursor read only in part inside `transaction()` used
    to keep its read snapshot after COMMIT; once another process committed, the next write failed at
    once with "database is locked" (the busy timeout cannot wait out a stale snapshot)."""
    import sqlite3

    from bot.store.db import open_database

    path = tmp_path / "bot.sqlite3"
    db = await open_database(path)
    try:
        await db.write_many("INSERT INTO staff (channel, user_id, added_at) VALUES ('telegram', ?, 0)",
                            [(str(i),) for i in range(5)])
        async with db.transaction() as tx:
            cursor = await tx.execute("SELECT user_id FROM staff ORDER BY user_id")
            assert (await cursor.fetchone())[0] == "0"  # four rows left unread
        other = sqlite3.connect(path, isolation_level=None)  # the CLI, in another process
        other.execute("INSERT INTO staff (channel, user_id, added_at) VALUES ('zalo', 'x', 0)")
        other.close()
        await db.write("INSERT INTO staff (channel, user_id, added_at) VALUES ('zalo', 'y', 0)")
        assert await db.fetchval("SELECT COUNT(*) FROM staff") == 7
    finally:
        await db.close()


async def test_a_persons_questions_are_found_through_an_index_not_a_scan(tmp_path: Path):
    db = await open_database(tmp_path / "bot.sqlite3")
    plan = await db.fetchall("EXPLAIN QUERY PLAN SELECT text FROM question_log WHERE chat = ? AND asked_at >= ?",
                             (1, 0.0))
    await db.close()
    assert any("USING INDEX question_log_chat" in row[3] for row in plan), [tuple(r) for r in plan]
