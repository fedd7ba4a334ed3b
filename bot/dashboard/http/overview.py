"""Overview (the figures at a glance) and the audit log."""

from __future__ import annotations

import time

from aiohttp import web

from bot.dashboard import stats
from bot.dashboard.http.common import Pages

VIAS = {"web": "web", "api": "API", "cli": "dòng lệnh", "telegram": "Telegram", "zalo": "Zalo Bot",
        "zalo_oa": "Zalo OA"}


class OverviewPages(Pages):
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self.overview)
        router.add_get("/audit", self.audit)

    async def overview(self, request: web.Request) -> web.Response:
        figures = await stats.overview(self.dash, time.time())
        days = figures["questions"]["days"]
        peak = max((d["total"] for d in days), default=0) or 1
        return self.page(request, "overview.html", f=figures, peak=peak, recent=await self.dash.broadcasts.recent(5))

    async def audit(self, request: web.Request) -> web.Response:
        rows = await self.dash.audit.recent(200, actor=request.query.get("actor") or None,
                                            action=request.query.get("action") or None,
                                            via=request.query.get("via") or None)
        return self.page(request, "audit.html", rows=rows, actor=request.query.get("actor", ""),
                         action=request.query.get("action", ""), via=request.query.get("via", ""), vias=VIAS)
