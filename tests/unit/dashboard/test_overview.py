"""The overview's figures, from real rows written through the owners."""

from __future__ import annotations

import time

from bot.broadcasts.store import Target
from bot.dashboard import stats
from tests.unit.broadcasts.test_broadcasts import add_chat
from tests.unit.dashboard.helpers import dashboard, sign_in


async def _log(core, outcome: str, at: float) -> None:
    await core.db.write("INSERT INTO question_log (channel, text, folded, outcome, asked_at) VALUES (?, ?, ?, ?, ?)",
                        ("telegram", "q", "q", outcome, at))


async def test_overview_figures(settings):
    async with dashboard(settings) as (client, core):
        now = time.time()
        g1 = await add_chat(core.db, "-1001", "group", "phan-rang")
        await add_chat(core.db, "-1002", "group", "phan-rang")
        await add_chat(core.db, "-1003", "group", "ninh-hai")
        broadcast = await core.broadcasts.create("Họp", Target("groups"))
        await core.db.write("UPDATE outbox SET status = 'sent', sent_at = ? WHERE chat_id != '-1003'", (now,))
        await core.db.write("UPDATE outbox SET status = 'failed', reason = 'blocked' WHERE chat_id = '-1003'")
        await core.broadcasts.acknowledge(broadcast, g1, "1", "Tổ trưởng")
        for outcome in ("answered", "answered", "choices", "declined"):
            await _log(core, outcome, now)
        await _log(core, "answered", now - 86400)
        await _log(core, "answered", now - 90 * 86400)  # outside the 30 days
        chat = await add_chat(core.db, "501", "private", "phan-rang")
        ticket = await core.handoff.tickets.create("question", chat, "telegram", "501", "Lan", "hỏi")
        core.handoff.tickets.clock = lambda: time.time() + 600
        await core.handoff.tickets.answer(ticket, "đáp", "telegram:900")
        await core.handoff.tickets.create("question", chat, "telegram", "501", "Lan", "hỏi nữa")

        f = await stats.overview(core.dashboard, now)
        by = {p["code"]: p for p in f["broadcasts"]["by_locality"]}
        assert by["phan-rang"] == {**by["phan-rang"], "total": 2, "sent": 2, "acknowledged": 1, "delivered_pct": 100,
                                   "ack_pct": 50}
        assert by["ninh-hai"]["failed"] == 1 and by["ninh-hai"]["delivered_pct"] == 0
        assert f["broadcasts"]["count"] == 1
        assert f["questions"]["days"][-1] == {**f["questions"]["days"][-1], "answered": 2, "choices": 1, "declined": 1}
        assert f["questions"]["days"][-2]["answered"] == 1 and f["questions"]["total"] == 5
        assert f["tickets"]["open"] == 1 and f["tickets"]["answered"] == 1
        assert f["tickets"]["median_first_response_minutes"] == 10

        await sign_in(client, core)
        page = await (await client.get("/admin/")).text()
        assert 'id="questions-chart"' in page and 'id="localities-chart"' in page and "10 phút" in page
        assert "gửi được 100 %" in page and "đã nhận 50 %" in page
