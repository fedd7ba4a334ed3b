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
