"""Staff actions taken in a chat reach the same audit log as the web's, with the channel as the source,
recorded in one place (the dialogue, from each feature's Routes.audited): /traloi, the ticket's
"Đã xong" button, /huythongbao, /doihan, with the start of the bot's answer; nothing for someone
who is not staff."""

from __future__ import annotations

from bot.channels.base import Inbound
from tests.unit.dashboard.helpers import STAFF, dashboard, sign_in


async def test_staff_chat_commands_are_in_the_audit_log_and_page(settings):
    async with dashboard(settings) as (client, core):
        await core.dialogue.handle(Inbound("telegram", "501", "501", text="/canbo Xin hỏi giờ làm việc của xã?"))
        await core.dialogue.handle(Inbound("telegram", "502", "502", text="/traloi 1 Không phải cán bộ"))  # refused
        await core.dialogue.handle(Inbound("telegram", STAFF, STAFF, text="/traloi 1 Từ 7 giờ đến 17 giờ."))
        await core.dialogue.handle(Inbound("telegram", STAFF, STAFF, kind="option", option="hof:d:1"))
        await core.staff.add("zalo", "z-9")
        await core.dialogue.handle(Inbound("zalo", "z-9", "z-9", text="/huythongbao 99"))
        await core.dialogue.handle(Inbound("zalo", "z-9", "z-9", text="/doihan 5 01/01/2030"))
        await core.dialogue.handle(Inbound("telegram", STAFF, STAFF, text="/start"))  # not a staff action
        rows = list(reversed(await core.dashboard.audit.recent()))
        assert [(r["action"], r["via"], r["actor"]) for r in rows] == [
            ("ticket.answer", "telegram", f"telegram:{STAFF}"), ("ticket.close", "telegram", f"telegram:{STAFF}"),
            ("broadcast.cancel", "zalo", "zalo:z-9"), ("supervision.due", "zalo", "zalo:z-9")]
        assert rows[0]["detail"].startswith("/traloi 1 Từ 7 giờ đến 17 giờ. → ")
        assert rows[0]["target"] == f"private:{STAFF}"
        assert "99" in rows[2]["detail"].split(" → ")[1]  # the bot's answer says what became of it
        await sign_in(client, core)
        page = await (await client.get("/admin/audit", params={"via": "zalo"})).text()
        table = page.split('id="audit"')[1]
        assert "broadcast.cancel" in table and "Zalo Bot" in table and "ticket.answer" not in table
