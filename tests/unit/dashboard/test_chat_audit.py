"""Staff actions taken in a chat reach the same audit log as the web's, with the channel as the source,
recorded in one place (the dialogue, from each feature's Routes.audited): /traloi, the ticket's
"Đã xong" button, /huythongbao, /doihan, typed steps and a reply to a ticket's message, with the
start of the bot's answer; nothing for someone who is not staff."""

from __future__ import annotations

import time
from datetime import datetime

from bot.channels.base import Inbound
from tests.unit.broadcasts.test_authoring import TZ, compose, data_for, tap, text
from tests.unit.broadcasts.test_broadcasts import add_chat
from tests.unit.dashboard.helpers import SENDER, STAFF, dashboard, sign_in


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


async def test_typed_steps_and_a_reply_to_a_ticket_are_audited_too(settings):
    """Actions taken by typing rather than by a command or a button: a reply to the ticket's message
    in the staff chat, a time typed after "Hẹn giờ", a schedule typed after "Lịch khác"; and a
    preset repeat. A resident's own typed step (/canbo's question) is not a staff action."""
    staff_chat = "-100500"
    async with dashboard(settings, telegram_staff_chat_id=staff_chat) as (_client, core):
        await add_chat(core.db, "10", "group", "phan-rang")
        await core.dialogue.handle(Inbound("telegram", "501", "501", text="/canbo"))
        await core.dialogue.handle(Inbound("telegram", "501", "501", text="Xin hỏi giờ làm việc của xã?"))
        await core.handoff.tickets.record_post(1, "telegram", staff_chat, ["77"])
        await core.dialogue.handle(Inbound("telegram", staff_chat, SENDER, chat_kind="group", reply_to_message_id="77",
                                           text="Từ 7 giờ đến 17 giờ, anh chị nhé."))
        for body in ("Họp tổ lúc 19 giờ.", "Quét dọn đường làng.", "Tiêm chủng sáng thứ Bảy."):
            preview = await compose(core, body, audience="Các nhóm")
            if body.startswith("Họp"):
                await core.dialogue.handle(tap(data_for(preview, "Hẹn giờ")))
                when = datetime.fromtimestamp(time.time() + 2 * 86_400, TZ).replace(hour=8, minute=30)
                await core.dialogue.handle(text(when.strftime("%d/%m/%Y %H:%M")))
                continue
            [menu] = await core.dialogue.handle(tap(data_for(preview, "Lặp lại định kỳ")))
            if body.startswith("Quét"):
                await core.dialogue.handle(tap(data_for(menu, "Hằng tuần")))
            else:
                await core.dialogue.handle(tap(data_for(menu, "Lịch khác")))
                await core.dialogue.handle(text("0 8 * * 6"))
        rows = list(reversed(await core.dashboard.audit.recent()))
        assert [(r["action"], r["actor"]) for r in rows] == [
            ("ticket.answer", f"telegram:{SENDER}"), ("broadcast.schedule", f"telegram:{STAFF}"),
            ("series.create", f"telegram:{STAFF}"), ("series.create", f"telegram:{STAFF}")]
        assert rows[0]["detail"].startswith("Từ 7 giờ đến 17 giờ, anh chị nhé. → ")
        assert rows[3]["detail"].startswith("0 8 * * 6 → ")
