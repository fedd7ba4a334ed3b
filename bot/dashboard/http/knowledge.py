"""Knowledge: the entries the bot serves (found by title, id or example question) and the drafts;
"try a question" (what the bot would answer, as a resident sees it, and why); the knowledge gaps
(what residents asked that it declined or forwarded, grouped like `kb gaps`) with one click to add a
wording as an example question of an entry; the editor (role editor) that writes content/knowledge/
and reloads the running index (bot/dashboard/knowledge.py)."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from bot.dashboard.http.common import PATH, WHO, Pages, form, need, redirect
from bot.dashboard.knowledge import Outcome, fields_of, parse_fields
from bot.knowledge import gaps

SHOWN_GAPS = 30
GAP_DAYS = 7  # the gaps of the last week (?days=N for more)


class KnowledgePages(Pages):
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/knowledge", self.knowledge)
        router.add_post("/knowledge/questions", self.add_question)
        router.add_get("/knowledge/new", self.new_form)
        router.add_post("/knowledge/new", self.create)
        router.add_get(r"/knowledge/e/{id:[a-z0-9][a-z0-9_-]*}", self.edit_form)
        router.add_post(r"/knowledge/e/{id:[a-z0-9][a-z0-9_-]*}", self.save)

    async def knowledge(self, request: web.Request) -> web.Response:
        desk = self.dash.desk
        find = request.query.get("find", "").strip()
        entries, total = desk.find(find)
        question = request.query.get("q", "").strip()[:500]
        tried = desk.try_question(question) if question else None
        days = int(request.query["days"]) if request.query.get("days", "").isdigit() else GAP_DAYS
        groups = await desk.gap_groups(self.dash.db, days, SHOWN_GAPS)
        return self.page(request, "knowledge.html", entries=entries, total=total, find=find, question=question,
                         tried=tried, groups=groups, days=days, drafts=desk.drafts(), quote=quote)

    @need("editor")
    async def add_question(self, request: web.Request) -> web.StreamResponse:
        """One click on a candidate of "try a question": the wording joins the entry's example questions."""
        data = await form(request)
        entry_id, wording = data.get("entry", "").strip(), data.get("wording", "").strip()[:500]
        outcome = await self.dash.desk.add_question(request[WHO].actor, entry_id, wording)
        back = f"{PATH}/knowledge?q={quote(wording)}#try"
        if not outcome.ok:
            raise redirect(back, self.dash.say("web_entry_refused", errors=_sentence(outcome)))
        raise redirect(back, self.dash.say("web_question_added", question=wording, id=entry_id))

    @need("editor")
    async def new_form(self, request: web.Request) -> web.Response:
        wording = request.query.get("from", "").strip()[:500]
        values = {"title": wording, "body": "", "questions": [wording] if wording else [], "keywords": [],
                  "tags": [], "source": ""}
        return self.page(request, "entry.html", entry=None, entry_id=gaps.slug(wording) if wording else "",
                         values=values, outcome=None, shown=None, topics=self.dash.knowledge.content.topics)

    @need("editor")
    async def create(self, request: web.Request) -> web.StreamResponse:
        data = await form(request)
        entry_id, values = data.get("id", "").strip(), parse_fields(data)
        outcome = await self.dash.desk.create(request[WHO].actor, entry_id, values)
        if not outcome.ok:
            return self.page(request, "entry.html", code=400, entry=None, entry_id=entry_id, values=values,
                             outcome=outcome, shown=None, topics=self.dash.knowledge.content.topics)
        raise redirect(f"{PATH}/knowledge/e/{entry_id}", self.dash.say("web_entry_created", id=entry_id))

    def _entry(self, request: web.Request):
        entry = self.dash.desk.entry(request.match_info["id"])
        if entry is None:
            raise web.HTTPNotFound(reason="entry")
        return entry

    @need("editor")
    async def edit_form(self, request: web.Request) -> web.Response:
        entry = self._entry(request)
        return self.page(request, "entry.html", entry=entry, entry_id=entry.id, values=fields_of(entry),
                         outcome=None, shown=self.dash.desk.preview_entry(entry),
                         topics=self.dash.knowledge.content.topics)

    @need("editor")
    async def save(self, request: web.Request) -> web.StreamResponse:
        """action=preview: show the unsaved fields as a resident would get them; save / publish: write."""
        entry, desk = self._entry(request), self.dash.desk
        data = await form(request)
        values, action = parse_fields(data), data.get("action", "save")
        if action == "preview":
            return self.page(request, "entry.html", entry=entry, entry_id=entry.id, values=values, outcome=None,
                             shown=desk.preview_entry(desk.draft_from(entry.id, values)),
                             topics=self.dash.knowledge.content.topics)
        outcome = await desk.save(request[WHO].actor, entry.id, values, publish=action == "publish")
        if not outcome.ok:
            return self.page(request, "entry.html", code=400, entry=entry, entry_id=entry.id, values=values,
                             outcome=outcome, shown=None, topics=self.dash.knowledge.content.topics)
        said = "web_entry_published" if action == "publish" and entry.draft else "web_entry_saved"
        raise redirect(f"{PATH}/knowledge/e/{entry.id}", self.dash.say(said, id=entry.id))


def _sentence(outcome: Outcome) -> str:
    return "; ".join(f"{name}: {m}" if name else m for name, messages in outcome.errors.items() for m in messages)
