"""The JSON API under /api/v1/ (for other systems, e.g. a province portal): the same services as
the pages, behind `Authorization: Bearer <token>` (`python -m bot web token create`); anything
else answers 401 in JSON, a role too low 403. Every write is in the audit log as "api:<name>"."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.audiences.chats import CHANNELS
from bot.broadcasts.store import BroadcastError, Target, parse_audience, parse_time
from bot.dashboard import stats
from bot.dashboard.accounts import ApiToken
from bot.dashboard.auth import allows
from bot.dashboard.http.common import Handler
from bot.dashboard.openapi import document
from bot.dashboard.service import Dashboard
from bot.handoff.tickets import Ticket

PREFIX = "/api/v1"
TOKEN = web.RequestKey("token", ApiToken)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


class Api:
    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash

    def mount(self, app: web.Application) -> None:
        api = web.Application(middlewares=[self.bearer])
        r = api.router
        r.add_get("/openapi.json", self.openapi)
        r.add_post("/broadcasts", self.need("sender", self.create_broadcast))
        r.add_get("/broadcasts", self.need("viewer", self.list_broadcasts))
        r.add_get(r"/broadcasts/{id:\d+}", self.need("viewer", self.show_broadcast))
        r.add_get("/tickets", self.need("viewer", self.list_tickets))
        r.add_post(r"/tickets/{id:\d+}/answer", self.need("sender", self.answer_ticket))
        r.add_get("/supervision", self.need("viewer", self.supervision))
        r.add_get("/stats", self.need("viewer", self.stats))
        app.add_subapp(PREFIX, api)

    @web.middleware
    async def bearer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == f"{PREFIX}/openapi.json":
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        token = await self.dash.accounts.token(given.strip()) if scheme.lower() == "bearer" and given else None
        if token is None:
            return _error(401, "missing or unknown bearer token")
        request[TOKEN] = token
        return await handler(request)

    def need(self, role: str, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not allows(request[TOKEN].role, role):
                return _error(403, f"this token's role ({request[TOKEN].role}) may not do this; needs {role}")
            return await handler(request)

        return guarded

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPBadRequest(reason="body is not JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(reason="body is not a JSON object")
        return body

    def _iso(self, epoch: float | None) -> str | None:
        return datetime.fromtimestamp(epoch, self.dash.settings.tz).isoformat(timespec="seconds") if epoch else None

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(document(self.dash.settings.public_base))

    # ------------------------------------------------------------------ broadcasts

    async def create_broadcast(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        actor = f"api:{request[TOKEN].name}"
        try:
            text = body.get("text")
            if not isinstance(text, str) or not text.strip():
                raise BroadcastError("text is missing")
            channel = body.get("channel")
            if channel is not None and channel not in CHANNELS:
                raise BroadcastError(f"channel must be one of {', '.join(CHANNELS)}")
            target = Target(parse_audience(str(body.get("to", ""))), body.get("locality") or None, channel)
            self.dash.broadcasts.check_target(target)
            at = body.get("at")
            send_at = parse_time(str(at), self.dash.settings.tz) if at else None
            if send_at is not None and send_at < time.time() - 60:
                raise BroadcastError("at is in the past")
        except BroadcastError as exc:
            return _error(400, str(exc))
        count = await self.dash.broadcasts.count(target)
        threshold = self.dash.settings.web_approval_threshold
        four_eyes = threshold > 0 and count > threshold
        broadcast = await self.dash.broadcasts.create(text, target, title=body.get("title") or None, send_at=send_at,
                                                      created_by=actor, confirm=not four_eyes)
        if four_eyes:
            await self.dash.approvals.request(broadcast, actor, count)
        await self.dash.audit.record(actor, "api", "broadcast.request_approval" if four_eyes else "broadcast.send",
                                     f"broadcast:{broadcast}", f"{count} người nhận")
        return web.json_response({"id": broadcast, "recipients": count,
                                  "status": "awaiting_approval" if four_eyes else "queued"}, status=201)

    async def list_broadcasts(self, request: web.Request) -> web.Response:
        rows = await self.dash.broadcasts.recent(int(request.query.get("limit", "50")) if
                                                 request.query.get("limit", "").isdigit() else 50)
        return web.json_response([{"id": r["id"], "title": r["title"], "audience": r["audience"],
                                   "locality": r["locality"], "channel": r["channel"], "status": r["status"],
                                   "send_at": self._iso(r["send_at"]), "total": r["total"], "sent": r["sent"]}
                                  for r in rows])

    async def show_broadcast(self, request: web.Request) -> web.Response:
        report = await self.dash.broadcasts.report(int(request.match_info["id"]))
        if report is None:
            return _error(404, "no such broadcast")
        return web.json_response(report.as_json_full())  # the object `broadcast show ID --json` prints

    # ------------------------------------------------------------------ tickets

    def _ticket(self, t: Ticket) -> dict[str, Any]:
        return {"id": t.id, "kind": t.kind, "text": t.text, "status": t.status, "locality": t.locality,
                "topic": t.topic, "channel": t.channel, "created_at": self._iso(t.created_at),
                "answered_at": self._iso(t.answered_at), "closed_at": self._iso(t.closed_at), "answer": t.answer}

    async def list_tickets(self, request: web.Request) -> web.Response:
        status = request.query.get("status")
        if status is not None and status not in ("open", "answered", "closed"):
            return _error(400, "status must be open, answered or closed")
        tickets = await self.dash.handoff.tickets.list(status=status)
        return web.json_response([self._ticket(t) for t in tickets])

    async def answer_ticket(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "text is missing")
        ticket = int(request.match_info["id"])
        if await self.dash.handoff.tickets.get(ticket) is None:
            return _error(404, "no such ticket")
        actor = f"api:{request[TOKEN].name}"
        delivered, said = await self.dash.handoff.answer_as(actor, request[TOKEN].name, ticket, text)
        if not delivered:
            return _error(502, said)
        await self.dash.audit.record(actor, "api", "ticket.answer", f"ticket:{ticket}", text[:200])
        return web.json_response({"ok": True, "id": ticket})

    # ------------------------------------------------------------------ supervision, stats

    async def supervision(self, request: web.Request) -> web.Response:
        return web.json_response(await self.dash.supervision.store.table(request.query.get("period") or None))

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(await stats.overview(self.dash, time.time()), dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
