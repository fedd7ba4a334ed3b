"""What every page shares: rendering with the signed-in staff member, role checks, flash messages."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from bot.dashboard.accounts import Session
from bot.dashboard.auth import allows
from bot.dashboard.render import Renderer
from bot.dashboard.service import Dashboard, Who

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
COOKIE = "lp_session"
FLASH = "lp_flash"
PATH = "/admin"
WHO = web.RequestKey("who", Who)  # the signed-in staff member (set by the guard)
SESSION = web.RequestKey("session", Session)


class Pages:
    """Base of each page group: the dashboard, the renderer, and `page()` to answer with HTML."""

    def __init__(self, dash: Dashboard, render: Renderer) -> None:
        self.dash = dash
        self.render = render

    def page(self, request: web.Request, template: str, code: int = 200, **context: object) -> web.Response:
        who = request.get(WHO)
        session = request.get(SESSION)
        flash = unquote(request.cookies.get(FLASH, "")) if who else ""
        body = self.render(template, who=who, csrf=session.csrf if session else "", flash=flash,
                           path=request.path, allows=allows, **context)
        response = web.Response(text=body, content_type="text/html", status=code)
        if flash:
            response.del_cookie(FLASH, path=PATH)
        return response


def need(role: str) -> Callable[[Any], Any]:
    """A page method refusing (403) a staff member whose role is below `role`."""

    def wrap(method: Any) -> Any:
        @functools.wraps(method)
        async def guarded(pages: Any, request: web.Request) -> web.StreamResponse:
            if not allows(request[WHO].role, role):
                raise web.HTTPForbidden(reason="role")
            return await method(pages, request)

        return guarded

    return wrap


def redirect(location: str, flash: str = "") -> web.HTTPFound:
    """303-style redirect after a form (HTTPFound: browsers GET the new page), carrying a sentence."""
    found = web.HTTPFound(location)
    if flash:
        found.set_cookie(FLASH, quote(flash), path=PATH, httponly=True, samesite="Lax", max_age=60)
    return found


async def form(request: web.Request) -> dict[str, str]:
    data = await request.post()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None
