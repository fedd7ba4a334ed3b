"""The progress line of a broadcast confirmed in a chat (bot/progress.py), with a fake clock."""

from __future__ import annotations

import asyncio

from bot.broadcasts.progress import Progress
from bot.broadcasts.store import Broadcasts, Target
from bot.delivery.pacing import Pacing
from bot.delivery.replies import ReplyQueue
from bot.kernel.messages import Messages
from tests.unit.delivery.test_delivery import FakeClock, Limits, RecordingChannel, broadcasts, clock, people, worker_for

__all__ = ["broadcasts", "clock"]  # fixtures

STAFF_CHAT = "900"


class EditingChannel(RecordingChannel):
    can_edit = True


def say_for() -> Messages:
    import yaml

    from tests.conftest import CONTENT

    return Messages(yaml.safe_load((CONTENT / "messages.yaml").read_text(encoding="utf-8")))


async def confirmed(db, broadcasts: Broadcasts, message_id: str | None = "77") -> int:
    broadcast = await broadcasts.create("Tin", Target("residents"), confirm=False, created_by="telegram:900")
    assert await broadcasts.queue_draft(broadcast, broadcasts.clock(), notify=("telegram", STAFF_CHAT)) == 30
    if message_id:
        await broadcasts.set_notify_message(broadcast, message_id)
    return broadcast


def progress_for(db, channel: RecordingChannel, clock: FakeClock, **kwargs) -> tuple[Progress, Pacing]:
    """Progress sending through a real reply queue (its pacing returned, to look at its windows)."""
    pacing = Pacing({"telegram": Limits(1000, 1000, 1000)})
    replies = ReplyQueue(db, {"telegram": channel}, pacing, clock=clock)
    return Progress(db, {"telegram": channel}, replies, say_for(), clock=clock, **kwargs), pacing


def to_staff(channel: RecordingChannel) -> list:
    return [reply for _, chat_id, reply in channel.calls if chat_id == STAFF_CHAT]


async def test_progress_line_is_edited_while_sending_then_becomes_the_summary(db, clock: FakeClock, broadcasts):
    await people(db, 0, 30)
    broadcast = await confirmed(db, broadcasts)
    channel = EditingChannel(clock)
    worker = worker_for(db, channel, clock, Limits(2, 20, 1, reserve=0.0))  # 30 sends take ~15 s
    progress, pacing = progress_for(db, channel, clock, rate=lambda c: 2.0)
    assert await progress.tick() == 0  # queued, not started: nothing to say yet
    lines = []
    for _ in range(8):  # about 4 s of sending
        await worker._wait(await worker.step())
        if await progress.tick():
            lines.append(to_staff(channel)[-1])
    assert lines, "no progress line while sending"
    first = lines[0]
    assert first.edit_message_id == "77"
    assert first.text.startswith(f"Thông báo #{broadcast}: đã gửi ") and "/30, lỗi 0, còn khoảng 1 phút" in first.text
    await asyncio.gather(*worker._inflight.values())
    await progress.tick()
    assert await progress.tick() == 0  # nothing changed since: no edit
    await worker.run_until_idle()
    assert await progress.tick() == 1
    summary = to_staff(channel)[-1]
    assert summary.edit_message_id == "77"
    assert summary.text == f"Thông báo #{broadcast} đã gửi xong: 30/30 người nhận, lỗi 0. Chi tiết: /baocao {broadcast}"
    assert await progress.tick() == 0  # once
    assert set(pacing("telegram").chats) == {STAFF_CHAT}  # edits count in the pacing


async def test_channel_that_cannot_edit_gets_one_summary_at_the_end(db, clock: FakeClock, broadcasts):
    await people(db, 0, 30)
    broadcast = await confirmed(db, broadcasts, message_id=None)
    channel = RecordingChannel(clock)  # like Zalo: no can_edit
    worker = worker_for(db, channel, clock, Limits(5, 20, 1, reserve=0.0))
    progress, _ = progress_for(db, channel, clock)
    for _ in range(5):
        await worker._wait(await worker.step())
        assert await progress.tick() == 0
    await broadcasts.cancel(broadcast)
    await worker.run_until_idle()
    assert await progress.tick() == 1 and await progress.tick() == 0
    [summary] = to_staff(channel)
    assert summary.edit_message_id is None
    assert summary.text.startswith(f"Thông báo #{broadcast} đã dừng: đã gửi ")
    # a new Progress (a restarted service) does not repeat it
    assert await progress_for(db, channel, clock)[0].tick() == 0


async def test_cli_broadcasts_have_no_progress_messages(db, clock: FakeClock, broadcasts):
    await people(db, 0, 3)
    await broadcasts.create("Tin", Target("residents"))
    channel = EditingChannel(clock)
    await worker_for(db, channel, clock).run_until_idle()
    assert await progress_for(db, channel, clock)[0].tick() == 0
