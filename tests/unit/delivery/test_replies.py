"""The reply queue on a real SQLite file: in order per chat, refused replies owed and resent,
what is owed survives a restart, permanent refusals reach direct callers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.channels.base import DeliveryError, Inbound, Reply, Sent
from bot.delivery.pacing import Limits, Pacing
from bot.delivery.replies import ReplyQueue
from bot.store.db import Database, open_database


class Platform:
    """A channel that records sends and raises the faults queued for a chat."""

    name = "telegram"
    max_text = 4096
    can_edit = True
    running = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.faults: dict[str, list[DeliveryError]] = {}

    async def send(self, chat_id: str, reply: Reply) -> Sent:
        queue = self.faults.get(chat_id)
        if queue:
            raise queue.pop(0)
        self.sent.append((chat_id, reply.text))
        return Sent([str(len(self.sent))])

    def prepare(self, replies: list[Reply]) -> list[Reply]:
        return replies

    def texts(self, chat_id: str) -> list[str]:
        return [text for chat, text in self.sent if chat == chat_id]


@pytest.fixture
async def db(tmp_path: Path):
    db = await open_database(tmp_path / "bot.sqlite3")
    yield db
    await db.close()


def queue_for(db: Database, platform: Platform, chat_per_second: float = 100.0) -> ReplyQueue:
    return ReplyQueue(db, {"telegram": platform}, Pacing({"telegram": Limits(30, 20, chat_per_second)}),
                      backoff=(0.05,))


async def settle(queue: ReplyQueue, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    await asyncio.wait_for(queue.idle(), timeout)


def inbound(chat: str) -> Inbound:
    return Inbound("telegram", chat, chat, text="hỏi")


async def test_a_429_waits_retry_after_and_keeps_the_order_for_that_chat_only(db: Database):
    platform = Platform()
    queue = queue_for(db, platform)
    await queue.start()
    platform.faults["1"] = [DeliveryError("rate_limited", "429", retry_after=0.3)]
    started = time.monotonic()
    await queue.answer(inbound("1"), [Reply("một"), Reply("hai")])
    await queue.answer(inbound("2"), [Reply("khác")])  # another chat is not held up
    assert platform.texts("2") == ["khác"] and platform.texts("1") == []
    assert await db.fetchval("SELECT COUNT(*) FROM replies") == 2  # owed, on disk
    await queue.answer(inbound("1"), [Reply("ba")])  # a later turn queues behind the owed ones
    await settle(queue)
    assert platform.texts("1") == ["một", "hai", "ba"]
    assert time.monotonic() - started >= 0.3
    assert await db.fetchval("SELECT COUNT(*) FROM replies") == 0
    await queue.stop()


async def test_what_is_owed_at_shutdown_is_sent_after_the_restart(tmp_path: Path):
    path = tmp_path / "bot.sqlite3"
    db = await open_database(path)
    platform = Platform()
    queue = queue_for(db, platform)
    await queue.start()
    platform.faults["1"] = [DeliveryError("rate_limited", "429", retry_after=30)]
    await queue.answer(inbound("1"), [Reply("Đã chuyển câu hỏi, số #7", title="Phiếu")])
    await queue.stop(grace=0.1)
    await db.close()
    assert platform.sent == []

    db = await open_database(path)
    await db.write("UPDATE replies SET next_attempt_at = 0")  # the wait is over
    again = Platform()
    queue = queue_for(db, again)
    await queue.start()
    await settle(queue)
    assert again.sent == [("1", "Đã chuyển câu hỏi, số #7")]
    await queue.stop()
    await db.close()


async def test_idle_does_not_wait_for_a_reply_owed_hours_ahead(db: Database):
    platform = Platform()
    queue = queue_for(db, platform)
    await queue.start()
    platform.faults["1"] = [DeliveryError("rate_limited", "429", retry_after=3 * 3600)]
    platform.faults["2"] = [DeliveryError("rate_limited", "429", retry_after=0.2)]
    await queue.answer(inbound("1"), [Reply("sáng mai")])
    await queue.answer(inbound("2"), [Reply("ngay")])
    await settle(queue, timeout=2.0)  # returns once chat 2's reply went, not in three hours
    assert platform.sent == [("2", "ngay")]
    assert queue.owed() == 1
    await queue.stop(grace=0.1)


async def test_a_full_chat_window_owes_the_reply_instead_of_breaking_the_limit(db: Database):
    platform = Platform()
    queue = queue_for(db, platform, chat_per_second=2.0)  # at most 2 a second to one chat
    await queue.start()
    await queue.answer(inbound("1"), [Reply("a"), Reply("b"), Reply("c")])
    assert platform.texts("1") == ["a", "b"]
    await settle(queue)
    assert platform.texts("1") == ["a", "b", "c"]
    await queue.stop()


async def test_transient_failures_are_retried_and_permanent_ones_reach_the_caller(db: Database):
    platform = Platform()
    queue = queue_for(db, platform)
    await queue.start()
    platform.faults["1"] = [DeliveryError("transient", "502"), DeliveryError("transient", "502")]
    assert await queue.send("telegram", "1", Reply("trả lời")) is None  # owed
    await settle(queue)
    assert platform.texts("1") == ["trả lời"]
    platform.faults["2"] = [DeliveryError("gone", "blocked")]
    with pytest.raises(DeliveryError):
        await queue.send("telegram", "2", Reply("x"))
    with pytest.raises(KeyError):
        await queue.send("zalo", "2", Reply("x"))
    await queue.stop()


async def test_on_sent_runs_when_an_owed_reply_finally_goes(db: Database):
    platform = Platform()
    queue = queue_for(db, platform)
    await queue.start()
    seen: list[list[str]] = []

    async def posted(sent: Sent) -> None:
        seen.append(sent.message_ids)

    platform.faults["-100"] = [DeliveryError("rate_limited", "429", retry_after=0.1)]
    assert await queue.send("telegram", "-100", Reply("Phiếu #1", on_sent=posted)) is None
    await settle(queue)
    assert seen == [["1"]]
    await queue.stop()
