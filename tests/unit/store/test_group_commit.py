"""One-statement writes asked for together share a trip to the database thread, and keep their
own-transaction meaning: each gets its own result, one failing fails alone, order is kept."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from bot.store.db import open_database


async def _table(db) -> None:
    await db.write("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")


async def test_concurrent_writes_each_get_their_own_row_id_in_order(db) -> None:
    await _table(db)
    ids = await asyncio.gather(*(db.write("INSERT INTO t (v) VALUES (?)", (f"v{i}",)) for i in range(200)))
    assert ids == list(range(1, 201))
    rows = await asyncio.gather(*(db.write_returning("UPDATE t SET v = v || '!' WHERE id = ? RETURNING v", (i,))
                                  for i in (5, 7)))
    assert [r[0] for r in rows] == ["v4!", "v6!"]
    assert await db.fetchval("SELECT COUNT(*) FROM t") == 200


async def test_a_failing_statement_fails_alone(db) -> None:
    await _table(db)
    results = await asyncio.gather(
        db.write("INSERT INTO t (v) VALUES ('a')"),
        db.write("INSERT INTO t (v) VALUES ('a')"),  # UNIQUE: refused
        db.write("INSERT INTO t (v) VALUES ('b')"),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 2
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert [r[0] for r in await db.fetchall("SELECT v FROM t ORDER BY id")] == ["a", "b"]


async def test_writes_wait_for_a_transaction_in_progress(db) -> None:
    await _table(db)
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO t (v) VALUES ('inside')")
        outside = asyncio.create_task(db.write("INSERT INTO t (v) VALUES ('outside')"))
        await asyncio.sleep(0.05)
        assert not outside.done()
    await outside
    assert [r[0] for r in await db.fetchall("SELECT v FROM t ORDER BY id")] == ["inside", "outside"]


async def test_close_writes_what_was_asked_for(tmp_path) -> None:
    db = await open_database(tmp_path / "bot.sqlite3")
    await _table(db)
    pending = [asyncio.create_task(db.write("INSERT INTO t (v) VALUES (?)", (str(i),))) for i in range(50)]
    await asyncio.sleep(0)
    await db.close()
    await asyncio.gather(*pending)
    again = await open_database(tmp_path / "bot.sqlite3")
    try:
        assert await again.fetchval("SELECT COUNT(*) FROM t") == 50
    finally:
        await again.close()


async def test_a_write_after_close_raises(tmp_path) -> None:
    db = await open_database(tmp_path / "bot.sqlite3")
    await db.close()
    with pytest.raises(ValueError):
        await db.write("INSERT INTO schema_version (version) VALUES (999)")
