"""Sign-in with a one-time link, and sign-out.

GET /admin/login?t=… only shows a button: link previews (Telegram fetches links sent in a chat)
must not use up the link; the POST that the button sends signs in. Attempts are rate-limited per
address, whatever their outcome.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.dashboard.http.common import COOKIE, PATH, SESSION, Pages, form, redirect

log = logging.getLogger(__name__)


class SignInPages(Pages):
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/login", self.login_page)
        router.add_post("/login", self.login)
        router.add_post("/logout", self.logout)

    def _limited(self, request: web.Request) -> bool:
        if self.dash.attempts.allow(request.remote or "?"):
            return False
        log.warning("dashboard: too many sign-in attempts from %s", request.remote)
        return True

    async def login_page(self, request: web.Request) -> web.Response:
        token = request.query.get("t", "")
        if not token:
            return self.page(request, "login.html", state="none")
        if self._limited(request):
            return self.page(request, "login.html", code=429, state="limited")
        state = await self.dash.accounts.link_state(token)
        return self.page(request, "login.html", code=200 if state == "valid" else 400, state=state, token=token,
                         next=_safe_next(request.query.get("next", "")))

    async def login(self, request: web.Request) -> web.StreamResponse:
        if self._limited(request):
            return self.page(request, "login.html", code=429, state="limited")
        data = await form(request)
        result = await self.dash.sign_in(data.get("t", ""))
        if isinstance(result, str):
            log.warning("dashboard: sign-in from %s refused: %s link", request.remote, result)
            return self.page(request, "login.html", code=400 if result != "not_staff" else 403, state=result)
        cookie, _ = result
        found = redirect(_safe_next(data.get("next", "")) or f"{PATH}/")
        found.set_cookie(COOKIE, cookie, path=PATH, httponly=True, samesite="Lax",
                         secure=self.dash.settings.public_base.startswith("https://"),
                         max_age=int(self.dash.session_ttl))
        raise found

    async def logout(self, request: web.Request) -> web.StreamResponse:
        await self.dash.sign_out(request[SESSION])
        found = redirect(f"{PATH}/login")
        found.del_cookie(COOKIE, path=PATH)
        raise found


def _safe_next(value: str) -> str:
    """Only a path of ours (no //host, no scheme): no open redirect."""
    return value if value.startswith(f"{PATH}/") and not value.startswith("//") and "\\" not in value else ""
