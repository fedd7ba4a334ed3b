import json
from pathlib import Path

from bot.broadcasts import outbox
from bot.broadcasts.outbox import Queued
from bot.store.db import open_database


async def test_queue_writes_broadcasts_with_their_recipients_and_withdraw_cancels_them(tmp_path: Path):
    db = await open_database(tmp_path / "bot.sqlite3")
    try:
        await db.write("INSERT INTO chats (channel, chat_id, kind, first_seen, last_seen) VALUES"
                       " ('telegram', '-100', 'group', 1, 1)")
        chat = await db.fetchone("SELECT id, channel, chat_id, kind, locality FROM chats")
        assert chat is not None
        recipient = (chat[0], chat[1], chat[2], chat[3], chat[4])
        async with db.transaction() as tx:
            ids = await outbox.queue(tx, [Queued("một", [recipient], "sv:1:7d", "phan-rang", [("Xong", "sv:done:1")]),
                                          Queued("không ai", [], "sv:2:7d"),
                                          Queued("hai", [recipient], "sv:3:7d")], 50.0, created_by="supervision")
        assert ids[1] is None and ids[0] is not None and ids[2] == ids[0] + 1
        row = await db.fetchone("SELECT * FROM broadcasts WHERE id = ?", (ids[0],))
        assert row is not None and (row["status"], row["total"], row["created_by"], row["resolved_at"]) == (
            "queued", 1, "supervision", 50.0)
        assert json.loads(row["options"]) == [["Xong", "sv:done:1"]]
        assert await db.fetchval("SELECT COUNT(*) FROM outbox WHERE status = 'pending'") == 2
        async with db.transaction() as tx:
            assert await outbox.undelivered(tx, [ids[0], ids[2]]) == {ids[0], ids[2]}
            await outbox.withdraw(tx, [ids[0]], 60.0)
        assert await db.fetchval("SELECT status FROM broadcasts WHERE id = ?", (ids[0],)) == "cancelled"
        assert await db.fetchval("SELECT reason FROM outbox WHERE broadcast = ?", (ids[0],)) == "cancelled"
        assert await db.fetchval("SELECT status FROM outbox WHERE broadcast = ?", (ids[2],)) == "pending"
    finally:
        await db.close()
