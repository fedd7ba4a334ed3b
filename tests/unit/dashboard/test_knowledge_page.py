"""The Knowledge page: entries found by title, "try a question" as the running index answers it,
and the gaps residents left."""

from __future__ import annotations

import time

from markupsafe import escape

from tests.unit.dashboard.helpers import dashboard, sign_in


async def test_try_a_question_gaps_and_entries(settings):
    async with dashboard(settings) as (client, core):
        asked = ("telegram", "xin giấy phép nuôi chó", "xin giay phep nuoi cho", "declined", time.time())
        await core.db.write("INSERT INTO question_log (channel, text, folded, outcome, asked_at)"
                            " VALUES (?, ?, ?, ?, ?)", asked)
        await sign_in(client, core)
        expected = core.index.search("quy vi nguoi ngheo")
        assert expected.decision == "answer"
        page = await (await client.get("/admin/knowledge", params={"q": "quy vi nguoi ngheo"})).text()
        title = str(escape(expected.best.entry.title))  # as Jinja2 escapes it
        assert title in page and 'id="answer"' in page
        assert "xin giấy phép nuôi chó" in page.split('id="gaps"')[1]
        assert f"<h2>Các mục ({len(core.content.entries)})</h2>" in page
        found = await (await client.get("/admin/knowledge", params={"find": "nguoi ngheo"})).text()
        assert title in found.split('id="entries"')[1]
        unknown = await (await client.get("/admin/knowledge", params={"q": "giá vé máy bay đi Pháp"})).text()
        assert "chưa biết" in unknown or "Chưa chắc" in unknown
