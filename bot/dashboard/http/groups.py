"""Groups and localities: registered and unregistered groups by locality, subscribers; the staff
list, where an admin sets each one's dashboard role."""

from __future__ import annotations

from aiohttp import web

from bot.audiences.registration import list_groups
from bot.dashboard.accounts import ROLES
from bot.dashboard.http.common import PATH, WHO, Pages, form, need, redirect


class GroupPages(Pages):
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/groups", self.groups)
        router.add_get("/staff", self.staff)
        router.add_post("/staff/role", self.set_role)

    async def groups(self, request: web.Request) -> web.Response:
        tree = self.dash.localities
        groups = await list_groups(self.dash.db)
        subscribers = await self.dash.chats.subscribers_by_locality()
        rows = []
        for item in tree:
            mine = [g for g in groups if g.locality == item.code and g.consent]
            rows.append({"code": item.code, "name": item.name, "depth": len(tree.path(item.code)) - 1,
                         "groups": mine, "subscribers": subscribers.get(item.code, 0)})
        unregistered = [g for g in groups if g.locality is None or not g.consent]
        return self.page(request, "groups.html", rows=rows, unregistered=unregistered,
                         total_groups=sum(len(r["groups"]) for r in rows), total_subscribers=sum(subscribers.values()))

    async def staff(self, request: web.Request) -> web.Response:
        people = []
        for channel, user_id, source in await self.dash.staff.everyone():
            who = await self.dash.who(channel, user_id)
            people.append({"channel": channel, "user_id": user_id, "source": source,
                           "name": who.name if who else "", "role": who.role if who else ""})
        return self.page(request, "staff.html", people=people, roles=ROLES)

    @need("admin")
    async def set_role(self, request: web.Request) -> web.StreamResponse:
        data = await form(request)
        channel, user_id, role = data.get("channel", ""), data.get("user_id", ""), data.get("role", "")
        target = f"{channel}:{user_id}"
        if role not in ROLES or not await self.dash.staff.is_staff(channel, user_id):
            raise redirect(f"{PATH}/staff", self.dash.say("web_role_refused", who=target))
        await self.dash.accounts.set_role(channel, user_id, role, request[WHO].actor)
        await self.dash.audit.record(request[WHO].actor, "web", "staff.role", target, role)
        raise redirect(f"{PATH}/staff", self.dash.say("web_role_set", who=target, role=role))
