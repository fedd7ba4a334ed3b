"""bot/operations/metrics.py on a real SQLite file: the page parses; a broken database is a 0, not a 500."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bot.channels.base import Inbound, Reply, Sent
from bot.operations.metrics import Metrics
from bot.store.db import open_database


def parsed(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_a_closed_database_reports_database_up_0_and_keeps_the_counters(tmp_path: Path):
    db = await open_database(tmp_path / "bot.sqlite3")
    metrics = Metrics(clock=lambda: 1000.0)
    metrics.channel_paused("zalo", "rate_limited", 1005.0)
    metrics.channel_paused("zalo", "unauthorized", 1002.0)  # a pause, not a 429
    await db.close()
    found = parsed(await metrics.render(db, {}))
    assert found[("loaphuong_database_up", frozenset())] == 0
    assert found[("loaphuong_rate_limited_total", frozenset({("channel", "zalo")}))] == 1
    assert found[("loaphuong_channel_paused", frozenset({("channel", "zalo")}))] == 1
    assert not any(name == "loaphuong_questions_total" for name, _ in found)


async def test_timed_counts_each_reply_once_sent_and_keeps_the_replys_own_hook():
    ticks = iter([10.0, 10.25, 10.5])
    metrics = Metrics(monotonic=lambda: next(ticks))
    seen: list[Sent] = []

    async def remember(sent: Sent) -> None:
        seen.append(sent)

    async def dialogue(inbound: Inbound) -> list[Reply]:
        return [Reply("một", on_sent=remember), Reply("hai"), Reply("nhóm", chat_id="-100", channel="zalo")]

    replies = await metrics.timed(dialogue)(Inbound("zalo", "u1", "u1", text="hi"))
    for reply in replies[:2]:
        await reply.on_sent(Sent(["1"]))
    assert seen == [Sent(["1"])]  # the reply's own hook still runs
    assert metrics.replies == {("zalo", "private"): 2}  # the third was never sent
    assert metrics.latency["zalo"].count == 1 and metrics.latency["zalo"].sum == 0.25  # first reply only
