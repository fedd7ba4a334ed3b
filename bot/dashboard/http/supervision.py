"""Supervision (giám sát, phản biện): the per-locality table (done / required, due dates, overdue
highlighted), plans added, edited (a new due date), marked done or cancelled from the web."""

from __future__ import annotations

import time

from aiohttp import web

from bot.dashboard.http.common import PATH, WHO, Pages, form, need, redirect
from bot.supervision.model import SupervisionError
from bot.supervision.plans_io import build
from bot.supervision.schedule import ScheduleError, parse_due


class SupervisionPages(Pages):
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/supervision", self.table)
        router.add_post("/supervision", self.add)
        router.add_post(r"/supervision/{id:\d+}/done", self.done)
        router.add_post(r"/supervision/{id:\d+}/due", self.due)
        router.add_post(r"/supervision/{id:\d+}/cancel", self.cancel)

    async def table(self, request: web.Request, *, error: str = "", code: int = 200) -> web.Response:
        sv = self.dash.supervision
        period = request.query.get("period") or None
        try:
            table = await sv.store.table(period)
        except (ScheduleError, ValueError):
            table = await sv.store.table()
        now = time.time()
        plans = [p for p in await sv.plans("planned")]
        tree = self.dash.localities
        return self.page(request, "supervision.html", code=code, table=table, plans=plans, now=now, error=error,
                         place=lambda code: tree.full_name(code) if code in tree else code,
                         tree=[(i.code, i.name, len(tree.path(i.code)) - 1) for i in tree])

    @need("sender")
    async def add(self, request: web.Request) -> web.StreamResponse:
        data = await form(request)
        sv = self.dash.supervision
        raw = {"locality": data.get("locality"), "title": data.get("title"),
               "due": data.get("due", "").replace("T", " "), "kind": data.get("kind") or "giam_sat",
               "remind": data.get("remind") or None}
        try:
            plan = build(raw, sv.tree, sv.config, self.dash.settings.tz, now=time.time())
            plan_id = await sv.add(plan, created_by=f"web:{request[WHO].actor}")
        except (ScheduleError, SupervisionError) as exc:
            return await self.table(request, error=str(exc), code=400)
        await self.dash.audit.record(request[WHO].actor, "web", "supervision.add", f"plan:{plan_id}", plan.title)
        raise redirect(f"{PATH}/supervision", self.dash.say("web_plan_added", id=plan_id))

    @need("sender")
    async def done(self, request: web.Request) -> web.StreamResponse:
        plan_id = int(request.match_info["id"])
        result = (await form(request)).get("result", "").strip() or "Đã hoàn thành"
        outcome = await self.dash.supervision.complete(plan_id, result, f"web:{request[WHO].actor}")
        if outcome != "done":
            raise redirect(f"{PATH}/supervision", self.dash.say("web_plan_not_done", id=plan_id, outcome=outcome))
        await self.dash.audit.record(request[WHO].actor, "web", "supervision.done", f"plan:{plan_id}", result)
        raise redirect(f"{PATH}/supervision", self.dash.say("web_plan_done", id=plan_id))

    @need("sender")
    async def due(self, request: web.Request) -> web.StreamResponse:
        plan_id = int(request.match_info["id"])
        value = (await form(request)).get("due", "").replace("T", " ")
        try:
            due = parse_due(value, self.dash.settings.tz)
            outcome, _ = await self.dash.supervision.edit(plan_id, due=due, by=f"web:{request[WHO].actor}")
        except ScheduleError as exc:
            raise redirect(f"{PATH}/supervision", self.dash.say("web_plan_due_invalid", error=exc)) from None
        if outcome != "edited":
            raise redirect(f"{PATH}/supervision", self.dash.say("web_plan_not_edited", id=plan_id, outcome=outcome))
        await self.dash.audit.record(request[WHO].actor, "web", "supervision.due", f"plan:{plan_id}", value)
        raise redirect(f"{PATH}/supervision", self.dash.say("web_plan_due", id=plan_id))

    @need("sender")
    async def cancel(self, request: web.Request) -> web.StreamResponse:
        plan_id = int(request.match_info["id"])
        if not await self.dash.supervision.cancel(plan_id):
            raise redirect(f"{PATH}/supervision", self.dash.say("web_plan_not_cancelled", id=plan_id))
        await self.dash.audit.record(request[WHO].actor, "web", "supervision.cancel", f"plan:{plan_id}")
        raise redirect(f"{PATH}/supervision", self.dash.say("web_plan_cancelled", id=plan_id))
