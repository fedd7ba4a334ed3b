"""The ticket store's memory of which chats have an open question (most messages need no query)."""

from __future__ import annotations

from bot.handoff.tickets import Tickets


async def _chat(db, chat_id: str) -> int:
    return await db.write("INSERT INTO chats (channel, chat_id, kind, first_seen, last_seen)"
                          " VALUES ('telegram', ?, 'private', 0, 0)", (chat_id,))


async def test_open_questions_found_after_load_and_after_create(db) -> None:
    old, new, quiet = await _chat(db, "1"), await _chat(db, "2"), await _chat(db, "3")
    cli = Tickets(db)  # not loaded: always asks the table
    before = await cli.create("question", old, "telegram", "1", "A", "câu hỏi cũ")
    service = Tickets(db)
    await service.load()
    assert (await service.latest_open_question(old)).id == before
    assert await service.latest_open_question(new) is None
    opened = await service.create("question", new, "telegram", "2", "B", "câu hỏi mới")
    assert (await service.latest_open_question(new)).id == opened
    await service.create("petition", quiet, "telegram", "3", "C", "kiến nghị")  # not a question
    assert await service.latest_open_question(quiet) is None


async def test_a_question_closed_by_another_process_is_not_open(db) -> None:
    chat = await _chat(db, "1")
    service = Tickets(db)
    await service.load()
    ticket = await service.create("question", chat, "telegram", "1", "A", "câu hỏi")
    assert await Tickets(db).close(ticket, "cli")  # `tickets close` from the command line
    assert await service.latest_open_question(chat) is None
    assert await Tickets(db).latest_open_question(chat) is None
