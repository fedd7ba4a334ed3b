"""Overview (the figures at a glance) and the audit log."""

from __future__ import annotations

from aiohttp import web

from bot.dashboard.http.common import Pages


class OverviewPages(Pages):
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self.overview)
        router.add_get("/audit", self.audit)

    async def overview(self, request: web.Request) -> web.Response:
        tickets = self.dash.handoff.tickets
        open_tickets = await tickets.list(status="open")
        pending = await self.dash.broadcasts.pending_by_channel()
        channels = [{"name": name, "running": channel.running, "pending": pending.get(name, 0)}
                    for name, channel in self.dash.channels.items()]
        table = await self.dash.supervision.store.table()
        return self.page(request, "overview.html", open_tickets=len(open_tickets),
                         unanswered=sum(1 for t in open_tickets if t.answered_at is None),
                         broadcasts=await self.dash.broadcasts.recent(5), channels=channels,
                         pending=sum(pending.values()), supervision=table)

    async def audit(self, request: web.Request) -> web.Response:
        rows = await self.dash.audit.recent(200, actor=request.query.get("actor") or None,
                                            action=request.query.get("action") or None)
        return self.page(request, "audit.html", rows=rows, actor=request.query.get("actor", ""),
                         action=request.query.get("action", ""))
