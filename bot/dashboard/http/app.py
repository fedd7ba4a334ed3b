"""The /admin/ sub-application: the guard every request passes, and the page groups it mounts.

The guard serves nothing under /admin/ without a live session (a GET is sent to the sign-in page),
checks every POST for the session's CSRF token and an Origin of ours, and answers errors as an
HTML page in Vietnamese. Security headers on every page: no framing, scripts from us only,
no referrer to other sites (a sign-in link never leaks through one), no caching.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from bot.dashboard.auth import origin_of, origin_ok, same_token
from bot.dashboard.http.api import Api
from bot.dashboard.http.broadcasts import BroadcastPages
from bot.dashboard.http.common import COOKIE, PATH, SESSION, WHO, Handler, Pages
from bot.dashboard.http.groups import GroupPages
from bot.dashboard.http.knowledge import KnowledgePages
from bot.dashboard.http.overview import OverviewPages
from bot.dashboard.http.signin import SignInPages
from bot.dashboard.http.supervision import SupervisionPages
from bot.dashboard.http.tickets import TicketPages
from bot.dashboard.render import Renderer
from bot.dashboard.service import Dashboard

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "static"
PUBLIC = {f"{PATH}/login"}
HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # not "no-referrer": with it Chromium sends `Origin: null` on our own form posts (the browser test found it)
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
                               " frame-ancestors 'none'; form-action 'self'",
    "Cache-Control": "no-store",
}


class DashboardWeb:
    """Mounted by bot.app.web.WebServer: `mount(app)` adds /admin/ to the service's one server."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash
        self.render = Renderer(dash.settings.tz)
        self.errors = Pages(dash, self.render)
        self.groups: list[Pages] = [SignInPages(dash, self.render), OverviewPages(dash, self.render),
                                    BroadcastPages(dash, self.render), TicketPages(dash, self.render),
                                    SupervisionPages(dash, self.render), GroupPages(dash, self.render),
                                    KnowledgePages(dash, self.render)]

    def mount(self, app: web.Application) -> None:
        admin = web.Application(middlewares=[self.guard])
        for group in self.groups:
            group.add_routes(admin.router)  # type: ignore[attr-defined]
        admin.router.add_static("/static", STATIC)
        app.add_subapp(PATH, admin)
        Api(self.dash).mount(app)

    def origins(self, request: web.Request) -> set[str]:
        return {origin_of(self.dash.settings.public_base), f"{request.scheme}://{request.host}".lower()}

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await self._guarded(request, handler)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = self.errors.page(request, "error.html", code=exc.status, status_code=exc.status,
                                        reason=exc.reason)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == PATH:
            raise web.HTTPFound(f"{PATH}/")
        if request.path.startswith(f"{PATH}/static/"):
            return await handler(request)
        if request.method == "POST" and not origin_ok(request.headers.get("Origin"), self.origins(request)):
            log.warning("dashboard: POST %s from a foreign origin %s refused", request.path,
                        request.headers.get("Origin"))
            raise web.HTTPForbidden(reason="origin")
        if request.path in PUBLIC:
            return await handler(request)
        cookie = request.cookies.get(COOKIE)
        found = await self.dash.session(cookie) if cookie else None
        if found is None:
            if request.method == "GET":
                raise web.HTTPFound(f"{PATH}/login?next={quote(request.path_qs)}")
            raise web.HTTPUnauthorized(reason="session")
        request[SESSION], request[WHO] = found
        if request.method == "POST":
            data = await request.post()
            given = data.get("csrf") or request.headers.get("X-CSRF-Token")
            if not same_token(given if isinstance(given, str) else None, found[0].csrf):
                log.warning("dashboard: POST %s by %s without a valid CSRF token", request.path, found[1].actor)
                raise web.HTTPForbidden(reason="csrf")
        return await handler(request)
