"""Tickets: residents' questions and petitions with filters; answer (it reaches the resident on
their own channel, as /traloi does), close, and save an answer as a knowledge draft."""

from __future__ import annotations

import logging
from datetime import datetime

from aiohttp import web

from bot.dashboard.http.common import PATH, WHO, Pages, form, need, redirect
from bot.handoff.tickets import CHANNEL_NAMES
from bot.kernel.content import ContentError
from bot.knowledge import gaps

log = logging.getLogger(__name__)
STATUSES = ("open", "answered", "closed")
KINDS = ("question", "petition")
SHOWN = 300


class TicketPages(Pages):
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/tickets", self.list_page)
        router.add_get(r"/tickets/{id:\d+}", self.show)
        router.add_post(r"/tickets/{id:\d+}/answer", self.answer)
        router.add_post(r"/tickets/{id:\d+}/close", self.close)
        router.add_post(r"/tickets/{id:\d+}/draft", self.draft)

    async def list_page(self, request: web.Request) -> web.Response:
        q = request.query
        status = q.get("status") if q.get("status") in STATUSES else None
        kind = q.get("kind") if q.get("kind") in KINDS else None
        locality = q.get("locality") or ""
        tree = self.dash.localities
        places = tree.subtree(locality) if locality in tree else None
        tickets = await self.dash.handoff.tickets.list(status=status, kind=kind, limit=SHOWN, localities=places,
                                                       topic=q.get("topic") or None)
        return self.page(request, "tickets.html", tickets=list(reversed(tickets)), status=status or "",
                         kind=kind or "", locality=locality, topic=q.get("topic", ""), statuses=STATUSES,
                         kinds=KINDS, tree=[(i.code, i.name, len(tree.path(i.code)) - 1) for i in tree],
                         place=lambda code: tree.full_name(code) if code and code in tree else (code or ""),
                         channel_names=CHANNEL_NAMES)

    async def _ticket(self, request: web.Request):
        ticket = await self.dash.handoff.tickets.get(int(request.match_info["id"]))
        if ticket is None:
            raise web.HTTPNotFound(reason="ticket")
        return ticket

    async def show(self, request: web.Request) -> web.Response:
        ticket = await self._ticket(request)
        messages = await self.dash.handoff.tickets.messages(ticket.id)
        tree = self.dash.localities
        place = tree.full_name(ticket.locality) if ticket.locality in tree else (ticket.locality or "")
        return self.page(request, "ticket.html", t=ticket, messages=messages, place=place,
                         channel=CHANNEL_NAMES.get(ticket.channel, ticket.channel),
                         topic=self.dash.handoff.topic_title(ticket.topic) if ticket.topic else "")

    @need("sender")
    async def answer(self, request: web.Request) -> web.StreamResponse:
        ticket = await self._ticket(request)
        who = request[WHO]
        text = (await form(request)).get("text", "")
        delivered, said = await self.dash.handoff.answer_as(who.label, who.name, ticket.id, text)
        if delivered:
            await self.dash.audit.record(who.actor, "web", "ticket.answer", f"ticket:{ticket.id}", text[:200])
            said = self.dash.say("web_answer_sent")
        raise redirect(f"{PATH}/tickets/{ticket.id}", said)

    @need("sender")
    async def close(self, request: web.Request) -> web.StreamResponse:
        ticket = await self._ticket(request)
        who = request[WHO]
        if not await self.dash.handoff.tickets.close(ticket.id, who.label):
            raise redirect(f"{PATH}/tickets/{ticket.id}", self.dash.say("web_ticket_already_closed"))
        await self.dash.audit.record(who.actor, "web", "ticket.close", f"ticket:{ticket.id}")
        raise redirect(f"{PATH}/tickets/{ticket.id}", self.dash.say("web_ticket_closed"))

    @need("editor")
    async def draft(self, request: web.Request) -> web.StreamResponse:
        """The staff answer as content/knowledge/<id>.md with `draft: true` (as `kb draft --ticket N`)."""
        ticket = await self._ticket(request)
        who = request[WHO]
        if not ticket.answer:
            raise redirect(f"{PATH}/tickets/{ticket.id}",
                           self.dash.say("web_draft_failed", reason="phiếu chưa có câu trả lời"))
        when = datetime.fromtimestamp(ticket.answered_at or ticket.updated_at, self.dash.settings.tz)
        entry_id, text = gaps.draft_entry(ticket.id, ticket.text, ticket.answer, when)
        folder = self.dash.settings.content_dir / "knowledge"
        try:
            path = await _in_thread(gaps.write_draft, folder, entry_id, text)
        except FileExistsError:
            raise redirect(f"{PATH}/tickets/{ticket.id}",
                           self.dash.say("web_draft_failed", reason=f"đã có tệp {entry_id}.md")) from None
        except OSError as exc:
            raise redirect(f"{PATH}/tickets/{ticket.id}",
                           self.dash.say("web_draft_failed", reason=exc.strerror or str(exc))) from None
        await self.dash.audit.record(who.actor, "web", "knowledge.draft", f"ticket:{ticket.id}", path.name)
        try:
            await self.dash.knowledge.reload()  # the draft joins the Knowledge page's list (not served)
        except ContentError as exc:
            log.warning("dashboard: content not reloaded after the draft %s: %s", path.name, exc)
        raise redirect(f"{PATH}/tickets/{ticket.id}", self.dash.say("web_draft_saved", path=path.name))


async def _in_thread(func, *args):
    import asyncio

    return await asyncio.to_thread(func, *args)
