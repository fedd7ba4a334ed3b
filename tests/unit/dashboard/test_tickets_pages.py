"""Ticket pages: filters, a ticket's thread, answering (refused with a reason when the resident
cannot be reached), closing, saving an answer as a knowledge draft; roles."""

from __future__ import annotations

import dataclasses
import shutil

import yaml

from tests.conftest import CONTENT
from tests.unit.broadcasts.test_broadcasts import add_chat
from tests.unit.dashboard.helpers import SENDER, dashboard, post, sign_in


async def _tickets(core) -> tuple[int, int]:
    chat = await add_chat(core.db, "501", "private", "phan-rang")
    tickets = core.handoff.tickets
    question = await tickets.create("question", chat, "telegram", "501", "Chị Lan", "Hộ cận nghèo có được thẻ BHYT?",
                                    locality="phan-rang")
    petition = await tickets.create("petition", None, "zalo", None, None, "Đường ngõ 5 bị ngập",
                                    locality="ninh-hai", topic="ha-tang")
    return question, petition


async def test_list_filters_and_thread(settings):
    async with dashboard(settings) as (client, core):
        question, petition = await _tickets(core)
        await sign_in(client, core)
        everything = await (await client.get("/admin/tickets")).text()
        assert f"#{question}" in everything and f"#{petition}" in everything
        only = await (await client.get("/admin/tickets?kind=petition")).text()
        assert f"#{petition}" in only and f">#{question}<" not in only
        place = await (await client.get("/admin/tickets?locality=phan-rang")).text()
        assert f">#{question}<" in place and f">#{petition}<" not in place
        closed = await (await client.get("/admin/tickets?status=closed")).text()
        assert "Không có phiếu nào" in closed
        page = await (await client.get(f"/admin/tickets/{question}")).text()
        assert "Hộ cận nghèo có được thẻ BHYT?" in page and "Chị Lan" in page and 'id="answer"' in page
        assert (await client.get("/admin/tickets/999")).status == 404


async def test_an_answer_that_cannot_reach_the_resident_is_not_recorded(settings):
    async with dashboard(settings) as (client, core):  # no channel runs here: the resident is out of reach
        question, _ = await _tickets(core)
        csrf = await sign_in(client, core)
        response = await post(client, f"/admin/tickets/{question}/answer", {"text": "Có, bà con mang CCCD"}, csrf)
        assert response.status == 302
        page = await (await client.get(f"/admin/tickets/{question}")).text()
        assert "chưa gửi được" in page.lower()
        ticket = await core.handoff.tickets.get(question)
        assert ticket.status == "open" and ticket.answer is None


async def test_close_once_and_viewer_cannot(settings):
    async with dashboard(settings) as (client, core):
        question, _ = await _tickets(core)
        csrf = await sign_in(client, core, SENDER)
        await post(client, f"/admin/tickets/{question}/close", {}, csrf)
        assert "Đã đánh dấu phiếu là đã xử lý" in await (await client.get(f"/admin/tickets/{question}")).text()
        assert (await core.handoff.tickets.get(question)).closed_by == f"telegram:{SENDER}"
        await post(client, f"/admin/tickets/{question}/close", {}, csrf)
        assert "đã được xử lý trước đó" in await (await client.get(f"/admin/tickets/{question}")).text()
        await core.dashboard.accounts.set_role("telegram", SENDER, "viewer", "test")
        response = await post(client, f"/admin/tickets/{question}/answer", {"text": "x"}, csrf)
        assert response.status == 403


async def test_an_answer_becomes_a_knowledge_draft(settings, tmp_path):
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    async with dashboard(dataclasses.replace(settings, content_dir=content)) as (client, core):
        question, _ = await _tickets(core)
        await core.handoff.tickets.answer(question, "Có. Hộ cận nghèo được hỗ trợ 70% mệnh giá thẻ.", "telegram:900")
        await core.dashboard.accounts.set_role("telegram", SENDER, "sender", "test")
        csrf = await sign_in(client, core, SENDER)
        assert (await post(client, f"/admin/tickets/{question}/draft", {}, csrf)).status == 403  # editors only
        client.session.cookie_jar.clear()
        csrf = await sign_in(client, core)
        await post(client, f"/admin/tickets/{question}/draft", {}, csrf)
        drafts = list((content / "knowledge").glob(f"nhap-{question}-*.md"))
        assert len(drafts) == 1
        meta = yaml.safe_load(drafts[0].read_text(encoding="utf-8").split("---")[1])
        assert meta["draft"] is True and meta["questions"] == ["Hộ cận nghèo có được thẻ BHYT?"]
        assert drafts[0].name in await (await client.get(f"/admin/tickets/{question}")).text()
