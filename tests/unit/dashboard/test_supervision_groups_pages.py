"""Supervision, groups and staff pages: the table with overdue plans highlighted, add / done /
new due date / cancel from the web; groups by locality and subscribers; roles set by an admin only."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from tests.unit.broadcasts.test_broadcasts import add_chat
from tests.unit.dashboard.helpers import SENDER, STAFF, csrf_of, dashboard, post, sign_in


def local(days: float, settings) -> str:
    return (datetime.now(settings.tz) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


async def test_plans_from_the_web(settings):
    async with dashboard(settings) as (client, core):
        csrf = await sign_in(client, core, SENDER)
        page = await (await client.get("/admin/supervision")).text()
        assert 'id="sv-table"' in page and 'id="add-plan"' in page
        bad = await post(client, "/admin/supervision", {"locality": "phan-rang", "title": "Giám sát chợ",
                                                         "due": local(-2, settings)}, csrf)
        assert bad.status == 400 and "Chưa thêm được" in await bad.text()
        added = await post(client, "/admin/supervision", {"locality": "phan-rang", "title": "Giám sát chợ",
                                                           "due": local(10, settings), "kind": "giam_sat"}, csrf)
        assert added.status == 302
        [plan] = await core.supervision.plans("planned")
        assert plan.title == "Giám sát chợ" and plan.locality == "phan-rang"
        assert "Giám sát chợ" in await (await client.get("/admin/supervision")).text()
        await post(client, f"/admin/supervision/{plan.id}/due", {"due": local(20, settings)}, csrf)
        moved = await core.supervision.get(plan.id)
        assert moved.due_at - time.time() > 19 * 86400
        await post(client, f"/admin/supervision/{plan.id}/done", {"result": "Đã họp dân"}, csrf)
        done = await core.supervision.get(plan.id)
        assert done.status == "done" and done.result == "Đã họp dân"
        await post(client, f"/admin/supervision/{plan.id}/cancel", {}, csrf)
        assert "Không hủy được" in await (await client.get("/admin/supervision")).text()
        actions = [a["action"] for a in await core.dashboard.audit.recent()]
        assert actions[:3] == ["supervision.done", "supervision.due", "supervision.add"]


async def test_overdue_plans_are_highlighted(settings):
    async with dashboard(settings) as (client, core):
        await sign_in(client, core)
        csrf = await csrf_of(client, "/admin/supervision")
        await post(client, "/admin/supervision", {"locality": "phan-rang", "title": "Sắp hết hạn",
                                                   "due": local(1, settings)}, csrf)
        [plan] = await core.supervision.plans("planned")
        await core.db.write("UPDATE supervision_plans SET due_at = ? WHERE id = ?", (time.time() - 3600, plan.id))
        page = await (await client.get("/admin/supervision")).text()
        assert 'class="overdue"' in page and "quá hạn" in page


async def test_groups_and_staff_roles(settings):
    async with dashboard(settings) as (client, core):
        await core.db.write("INSERT INTO chats (channel, chat_id, kind, display_name, locality, consent, first_seen,"
                            " last_seen) VALUES ('telegram', '-1001', 'group', 'Tổ 5 Phan Rang', 'phan-rang', 1, 0, 0)")
        await add_chat(core.db, "-1009", "group", None, consent=False)
        await add_chat(core.db, "501", "private", "phan-rang")
        csrf = await sign_in(client, core, SENDER)
        page = await (await client.get("/admin/groups")).text()
        assert "Tổ 5 Phan Rang" in page and "1 nhóm đã đăng ký" in page and "1 người dân nhận tin" in page
        assert "-1009" in page.split("chưa đăng ký địa bàn")[1]
        staff = await (await client.get("/admin/staff")).text()
        assert STAFF in staff and SENDER in staff and 'action="/admin/staff/role"' not in staff
        refused = await post(client, "/admin/staff/role", {"channel": "telegram", "user_id": SENDER,
                                                            "role": "admin"}, csrf)
        assert refused.status == 403
        client.session.cookie_jar.clear()
        csrf = await sign_in(client, core)
        await post(client, "/admin/staff/role", {"channel": "telegram", "user_id": SENDER, "role": "editor"}, csrf)
        assert await core.dashboard.role_of("telegram", SENDER) == "editor"
        await post(client, "/admin/staff/role", {"channel": "telegram", "user_id": "4242", "role": "admin"}, csrf)
        assert "Không đặt được vai trò" in await (await client.get("/admin/staff")).text()
