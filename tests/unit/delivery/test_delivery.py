"""The delivery worker against a small recording channel (a real object, not a mock) and a fake clock."""

import asyncio
import itertools
import time
from collections import Counter
from pathlib import Path

import pytest

from bot.audiences.localities import load_localities
from bot.broadcasts.store import Broadcasts, Target
from bot.channels.base import DeliveryError, Reply, Sent
from bot.delivery.pacing import Limits, Pacer, Window
from bot.delivery.worker import DeliveryWorker
from bot.store.db import Database, open_database
from tests.conftest import CONTENT
from tests.unit.broadcasts.test_broadcasts import add_chat


class FakeClock:
    """Time that moves only when the worker sleeps: backoffs of minutes take no real time."""

    def __init__(self, start: float = 1_900_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += delay
        await asyncio.sleep(0)


class RecordingChannel:
    """Records every send with the time it was made; raises the DeliveryErrors queued per chat."""

    name = "telegram"
    can_edit = False
    running = True

    def __init__(self, clock, max_text: int = 4096) -> None:
        self.clock = clock
        self.max_text = max_text
        self.calls: list[tuple[float, str, Reply]] = []
        self.delivered: list[tuple[float, str, Reply]] = []
        self.faults: dict[str, list[DeliveryError]] = {}
        self.hang_after: int | None = None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, chat_id: str, reply: Reply) -> Sent:
        self.calls.append((self.clock(), chat_id, reply))
        if self.hang_after is not None and len(self.calls) > self.hang_after:
            await asyncio.Event().wait()  # a request that never returns: the process dies meanwhile
        queue = self.faults.get(chat_id)
        if queue:
            raise queue.pop(0)
        self.delivered.append((self.clock(), chat_id, reply))
        return Sent([f"m{len(self.delivered)}"])

    def prepare(self, replies: list[Reply]) -> list[Reply]:
        return replies

    def copies(self) -> Counter:
        return Counter(chat_id for _, chat_id, _ in self.delivered)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def broadcasts(db: Database, clock: FakeClock) -> Broadcasts:
    tree, _ = load_localities(CONTENT)
    return Broadcasts(db, tree, clock=clock)


def worker_for(db: Database, channel: RecordingChannel, clock: FakeClock, limits: Limits | None = None,
               **kwargs) -> DeliveryWorker:
    tree, _ = load_localities(CONTENT)
    kwargs.setdefault("resolve", Broadcasts(db, tree, clock=clock).resolve_due)
    return DeliveryWorker(db, {"telegram": channel}, {"telegram": limits or Limits(1000, 1000, 1000)},
                          clock=clock, sleep=clock.sleep, **kwargs)


async def people(db: Database, groups: int, residents: int) -> None:
    for i in range(groups):
        await add_chat(db, str(-1000 - i), "group", "phan-rang")
    for i in range(residents):
        await add_chat(db, str(5000 + i), "private", "thuan-nam")


async def row(db: Database, chat_id: str):
    return await db.fetchone("SELECT * FROM outbox WHERE chat_id = ?", (chat_id,))


async def test_every_recipient_gets_one_copy_groups_get_the_ack_button(db, clock, broadcasts):
    await people(db, 3, 4)
    broadcast = await broadcasts.create("Mời họp", Target("all"), title="Thông báo")
    channel = RecordingChannel(clock)
    await worker_for(db, channel, clock).run_until_idle()
    assert set(channel.copies().values()) == {1} and len(channel.copies()) == 7
    for _, chat_id, reply in channel.delivered:
        assert reply.text.startswith("**Thông báo**\n\nMời họp")
        if chat_id.startswith("-"):
            assert [o.data for o in reply.options] == [f"ack:{broadcast}"]
        else:
            assert reply.options == ()
    report = await broadcasts.report(broadcast)
    assert (report.status, report.sent, report.pending) == ("done", 7, 0)
    assert (await row(db, "-1000"))["message_ids"].startswith('["m')


async def test_long_text_goes_in_order_in_paragraph_pieces_paced_per_chat(db, clock, broadcasts):
    await people(db, 0, 2)
    paragraphs = [f"Đoạn {i}: " + " ".join(["chữ"] * 20) for i in range(6)]
    await broadcasts.create("\n\n".join(paragraphs), Target("residents"))
    channel = RecordingChannel(clock, max_text=200)
    await worker_for(db, channel, clock, Limits(100, 20, 1)).run_until_idle()
    for chat_id in ("5000", "5001"):
        mine = [(t, r.text) for t, c, r in channel.delivered if c == chat_id]
        assert len(mine) > 1 and all(len(text) <= 200 for _, text in mine)
        assert "\n\n".join(text for _, text in mine) == "\n\n".join(paragraphs)
        times = [t for t, _ in mine]
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))  # 1 message/s per private chat
    assert (await row(db, "5000"))["pieces_sent"] == len([1 for _, c, _ in channel.delivered if c == "5000"])


async def test_overall_and_per_group_rates_hold(db, clock, broadcasts):
    await people(db, 2, 30)
    for _ in range(3):
        await broadcasts.create("Tin", Target("all"))
    channel = RecordingChannel(clock)
    await worker_for(db, channel, clock, Limits(10, 2, 1)).run_until_idle()
    assert len(channel.delivered) == 3 * 32
    times = sorted(t for t, _, _ in channel.calls)
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + 1.0) <= 10  # ≤ 10 per second overall
    for group in ("-1000", "-1001"):
        mine = sorted(t for t, c, _ in channel.calls if c == group)
        assert mine[2] - mine[0] >= 60.0  # ≤ 2 a minute per group


async def test_rate_limited_pauses_the_channel_then_retries(db, clock, broadcasts):
    await people(db, 0, 3)
    await broadcasts.create("Tin", Target("residents"))
    channel = RecordingChannel(clock)
    channel.faults["5000"] = [DeliveryError("rate_limited", "Too Many Requests", retry_after=30)]
    start = clock()
    await worker_for(db, channel, clock, concurrency=1).run_until_idle()
    assert channel.copies() == Counter({"5000": 1, "5001": 1, "5002": 1})
    [limited, *rest] = channel.calls
    assert limited[1] == "5000" and all(t >= start + 30 for t, _, _ in rest)
    assert (await row(db, "5000"))["attempts"] == 0


async def test_gone_marks_inactive_and_is_not_retried(db, clock, broadcasts):
    await people(db, 1, 1)
    broadcast = await broadcasts.create("Tin", Target("all"))
    channel = RecordingChannel(clock)
    channel.faults["-1000"] = [DeliveryError("gone", "Forbidden: bot was kicked from the group chat")]
    await worker_for(db, channel, clock).run_until_idle()
    assert [c for _, c, _ in channel.calls].count("-1000") == 1
    assert await db.fetchval("SELECT active FROM chats WHERE chat_id = '-1000'") == 0
    report = await broadcasts.report(broadcast)
    assert report.failed == {"gone: Forbidden: bot was kicked from the group chat": 1} and report.sent == 1
    assert await broadcasts.count(Target("all")) == 1  # the next broadcast skips it


async def test_migrated_group_gets_its_new_id_and_the_message(db, clock, broadcasts):
    await people(db, 1, 0)
    await broadcasts.create("Tin", Target("groups"))
    later = await broadcasts.create("Tin sau", Target("groups"), send_at=clock() + 600)
    channel = RecordingChannel(clock)
    channel.faults["-1000"] = [DeliveryError("migrated", "upgraded", new_chat_id="-100123")]
    await worker_for(db, channel, clock).run_until_idle()
    assert channel.copies() == Counter({"-100123": 2})
    assert await db.fetchval("SELECT chat_id FROM chats") == "-100123"
    assert (await broadcasts.report(later)).sent == 1


async def test_bad_request_fails_with_reason_transient_retries_with_bounded_backoff(db, clock, broadcasts):
    await people(db, 0, 3)
    broadcast = await broadcasts.create("Tin", Target("residents"))
    channel = RecordingChannel(clock)
    channel.faults["5000"] = [DeliveryError("bad_request", "chat not found")]
    channel.faults["5001"] = [DeliveryError("transient", "502 Bad Gateway")] * 2
    channel.faults["5002"] = [DeliveryError("transient", "timed out")] * 10
    worker = worker_for(db, channel, clock, max_attempts=4, backoff=(2.0, 10.0, 30.0))
    await worker.run_until_idle()
    report = await broadcasts.report(broadcast)
    assert report.sent == 1 and report.failed == {"bad_request: chat not found": 1, "transient: timed out": 1}
    assert [c for _, c, _ in channel.calls].count("5000") == 1
    assert (await row(db, "5001"))["attempts"] == 2 and (await row(db, "5001"))["status"] == "sent"
    tries = [t for t, c, _ in channel.calls if c == "5002"]
    assert len(tries) == 4
    gaps = [round(b - a) for a, b in itertools.pairwise(tries)]
    assert [g >= want for g, want in zip(gaps, (2, 10, 30), strict=True)] == [True] * 3


async def test_scheduled_broadcast_waits_for_its_time_and_cancel_stops_it(db, clock, broadcasts):
    await people(db, 0, 2)
    due = clock() + 3600
    scheduled = await broadcasts.create("Hẹn giờ", Target("residents"), send_at=due)
    cancelled = await broadcasts.create("Hủy", Target("residents"), send_at=due)
    await broadcasts.cancel(cancelled)
    channel = RecordingChannel(clock)
    worker = worker_for(db, channel, clock)
    await worker.step()
    assert channel.calls == []
    await worker.run_until_idle()
    assert len(channel.delivered) == 2 and all(t >= due for t, _, _ in channel.delivered)
    assert all(r.text == "Hẹn giờ" for _, _, r in channel.delivered)
    assert (await broadcasts.report(scheduled)).status == "done"


async def test_crash_then_restart_loses_nothing_repeats_at_most_in_flight(tmp_path: Path, clock):
    path = tmp_path / "crash.sqlite3"
    db = await open_database(path)
    await people(db, 0, 40)
    tree, _ = load_localities(CONTENT)
    await Broadcasts(db, tree, clock=clock).create("Tin", Target("residents"))
    first = RecordingChannel(clock)
    first.hang_after = 15  # the 16th request hangs; then the process "dies"
    worker = worker_for(db, first, clock, concurrency=4)
    task = asyncio.create_task(worker.run())
    while len(first.calls) < 19:  # noqa: ASYNC110 - polling a plain list the channel appends to
        await asyncio.sleep(0.01)
    task.cancel()  # no stop(), no grace, like kill -9: in-flight sends never report back
    for t in list(worker._inflight.values()):
        t.cancel()
    await asyncio.gather(task, *worker._inflight.values(), return_exceptions=True)
    await db.close()

    db = await open_database(path)  # the restarted service
    second = RecordingChannel(clock)
    await worker_for(db, second, clock).run_until_idle()
    await db.close()
    total = first.copies() + second.copies()
    assert set(total) == {str(5000 + i) for i in range(40)}  # nothing lost
    repeated = [c for c, n in total.items() if n > 1]
    hung = {c for _, c, _ in first.calls[15:]}
    assert len(repeated) <= 4 and set(repeated) <= hung  # at most the sends that were in flight


async def test_interactive_replies_count_in_the_window_and_are_never_held():
    clock = FakeClock()
    pacer = Pacer(Limits(5, 20, 1, reserve=0.0))
    for _ in range(5):
        pacer.note("private", "42", clock())
    assert pacer.channel_ready_at(clock()) == pytest.approx(clock() + 1.0)  # the broadcast waits
    assert pacer.chat_ready_at("private", "42", clock()) == pytest.approx(clock() + 1.0)
    window = Window.for_rate(20, 60)
    for _ in range(20):
        window.begin()
    assert window.free_at(0) == float("inf")  # only a finishing send frees a slot
    window.end(10.0)
    assert window.free_at(11.0) == 70.0  # 19 in flight + 1 done fill the minute until it ages out
    assert Pacer(Limits(300)).overall.limit == 294  # 2 % kept for interactive replies


async def test_running_worker_picks_up_work_queued_by_another_connection(tmp_path: Path):
    path = tmp_path / "live.sqlite3"
    service_db = await open_database(path)
    channel = RecordingChannel(time.time)
    worker = DeliveryWorker(service_db, {"telegram": channel}, {"telegram": Limits(30, 20, 1)})
    await worker.start()
    try:
        cli_db = await open_database(path)  # as `python -m bot broadcast send` would
        await people(cli_db, 1, 1)
        tree, _ = load_localities(CONTENT)
        queued_at = time.monotonic()
        await Broadcasts(cli_db, tree).create("Tin mới", Target("all"))
        await cli_db.close()
        while len(channel.delivered) < 2 and time.monotonic() - queued_at < 5:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        assert len(channel.delivered) == 2  # found by the worker's own look at the table: nobody notified it
    finally:
        await worker.stop()
        await service_db.close()


# ---------------------------------------------------------------------- end to end: real PTB, fake Bot API


async def test_broadcast_end_to_end_through_ptb_with_limits_and_faults(tmp_path: Path):
    from bot.app.service import build_app
    from bot.audiences.registration import GroupRecord, register_groups
    from bot.kernel.config import Settings
    from tests.fakes.telegram import FakeTelegram

    token = "424242:AAE2e-Secret_Token_value"
    async with FakeTelegram(token=token, limits=(40, 20, 1)) as fake:
        settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT, telegram_bot_token=token,
                            telegram_api_url=fake.url, telegram_rate_per_second=40)
        app = await build_app(settings)
        app.worker.backoff = (0.2, 0.4)
        groups = [str(-1001 - i) for i in range(20)]
        residents = [str(5000 + i) for i in range(40)]
        await register_groups(app.core.db, [GroupRecord("telegram", g, "phan-rang", f"Tổ {g}") for g in groups])
        for r in residents:
            await add_chat(app.core.db, r, "private", "thuan-nam")
        fake.fail_next(5000, "retry_after", retry_after=1)
        fake.fail_next(5001, "blocked")
        fake.fail_next(5002, "bad_gateway", times=2)
        fake.fail_next(5003, "chat_not_found")
        fake.fail_next(-1001, "kicked")
        fake.fail_next(-1002, "migrated", migrate_to=-100999)
        text = "Mời bà con dự họp tổ dân phố lúc 19 giờ tối thứ Bảy."
        broadcast = await app.core.broadcasts.create(text, Target("all"), title="Thông báo")
        started = time.monotonic()
        await app.start()
        try:
            fake.push_update(fake.text_update(777, "quỹ vì người nghèo là gì"))  # a resident asks meanwhile
            [answer, *_] = await fake.wait_for(lambda m: m.chat_id == 777, timeout=5)
            while (await app.core.broadcasts.report(broadcast)).pending and time.monotonic() - started < 20:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            report = await app.core.broadcasts.report(broadcast)
            deliverable = [c for c in groups + residents if c not in ("5001", "5003", "-1001", "-1002")]
            deliverable.append("-100999")
            copies = {c: [m for m in fake.sent_to(c) if text in m.text] for c in deliverable}
            assert {c: len(ms) for c, ms in copies.items() if len(ms) != 1} == {}  # exactly one copy each
            assert report.as_json() == {
                "id": broadcast, "total": 60, "sent": 57, "pending": 0, "acknowledged": 0,
                "failed": {"gone: Forbidden: bot was blocked by the user": 1,
                           "gone: Forbidden: bot was kicked from the group chat": 1,
                           "bad_request: chat not found": 1},
            }
            assert fake.limit_breaches == 0  # the worker's pacing stayed under the fake's limits
            # the answer went out while the broadcast was still going, not after its 60 sends (1.5 s at 40/s)
            answered_at = next(i for i, m in enumerate(fake.sent) if m is answer)
            assert any(text in m.text for m in fake.sent[answered_at + 1:])
            [group_message] = copies["-1005"]
            assert group_message.callback_data == [f"ack:{broadcast}"]
            assert copies["5005"][0].buttons == []
            fake.push_update(fake.callback_update(-1005, 88, f"ack:{broadcast}", group_message.message_id))
            fake.push_update(fake.callback_update(-1005, 89, f"ack:{broadcast}", group_message.message_id))
            await fake.wait_for(lambda m: m.chat_id == -1005 and "đã xác nhận" in m.text, timeout=5)
            assert (await app.core.broadcasts.report(broadcast)).acknowledged == 1
            assert await app.core.db.fetchval("SELECT chat_id FROM chats WHERE chat_id = '-100999'") == "-100999"
        finally:
            await app.stop()


async def test_a_restart_remembers_what_the_platform_still_counts(db, clock, broadcasts):
    """A group that got its 2 messages of the minute just before a restart waits out the minute."""
    await people(db, 1, 0)
    limits = Limits(100, group_per_minute=2, chat_per_second=1)
    first = RecordingChannel(clock)
    for text in ("Một", "Hai"):
        await broadcasts.create(text, Target("groups"))
        await worker_for(db, first, clock, limits).run_until_idle()
    first_at = first.delivered[0][0]
    await broadcasts.create("Ba", Target("groups"))
    restarted = RecordingChannel(clock)
    worker = worker_for(db, restarted, clock, limits)  # a new process: empty windows
    await worker.remember_recent_sends()
    assert worker.pacer("telegram").chat_ready_at("group", "-1000", clock()) > clock()
    await worker.run_until_idle()
    [(at, _, _)] = restarted.delivered
    assert at >= first_at + 60  # not before the minute of the first two is over
