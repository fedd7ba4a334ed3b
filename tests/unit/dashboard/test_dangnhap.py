"""/dangnhap through the real dialogue: a staff member gets a working one-time link in a private
chat (Zalo here; Telegram is driven end to end in tests/e2e/test_dashboard_browser.py)."""

from __future__ import annotations

import re

from bot.channels.base import Inbound
from tests.unit.dashboard.helpers import dashboard, origin


async def test_dangnhap_gives_staff_a_link_and_refuses_others(settings):
    async with dashboard(settings, public_url="http://mttq.example.vn") as (client, core):
        await core.staff.add("zalo", "z-77")
        [reply] = await core.dialogue.handle(Inbound(channel="zalo", chat_id="z-77", user_id="z-77", text="/dangnhap"))
        url = re.search(r"http://mttq\.example\.vn/admin/login\?t=(\S+)", reply.text)
        assert url, reply.text
        signed = await client.post("/admin/login", data={"t": url.group(1)}, headers=origin(client),
                                   allow_redirects=False)
        assert signed.status == 302
        assert "zalo:z-77" in await (await client.get("/admin/")).text()
        [refused] = await core.dialogue.handle(Inbound(channel="zalo", chat_id="z-8", user_id="z-8", text="/dangnhap"))
        assert "/admin/login" not in refused.text and "chỉ dành cho cán bộ" in refused.text
        [group] = await core.dialogue.handle(Inbound(channel="zalo", chat_id="g-1", user_id="z-77", chat_kind="group",
                                                     text="/dangnhap"))
        assert "/admin/login" not in group.text
        audit = await core.dashboard.audit.recent()
        assert [(a["action"], a["via"]) for a in audit[:2]] == [("login", "web"), ("login_link", "zalo")]
