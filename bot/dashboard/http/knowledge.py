"""Knowledge (read side): the entries the bot serves, searched by title; "try a question" (what the
bot would answer and how sure it is); the knowledge gaps (what residents asked that it declined or
forwarded, grouped like `kb gaps`). Editing entries from the web is not built yet."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from bot.dashboard.http.common import Pages
from bot.kernel.markup import to_html
from bot.kernel.vietnamese import fold
from bot.knowledge import gaps

SHOWN_GAPS = 30
GAP_DAYS = 7  # the gaps of the last week (?days=N for more)


class KnowledgePages(Pages):
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/knowledge", self.knowledge)

    async def knowledge(self, request: web.Request) -> web.Response:
        find = request.query.get("find", "").strip()
        entries = self.dash.content.entries
        if find:
            needle = fold(find)
            entries = [e for e in entries if needle in fold(e.title) or needle in fold(e.id)
                       or any(needle in fold(q) for q in e.questions)]
        question = request.query.get("q", "").strip()[:500]
        answer = self.dash.index.search(question) if question else None
        answer_html = to_html(answer.best.entry.body) if answer and answer.best and answer.decision == "answer" else ""
        days = int(request.query["days"]) if request.query.get("days", "").isdigit() else GAP_DAYS
        asked = await gaps.collect(self.dash.db, time.time() - days * 86400)
        # gaps.group is quadratic in distinct questions: off the event loop, so residents' answers never wait on it
        groups = (await asyncio.to_thread(gaps.group, asked))[:SHOWN_GAPS]
        return self.page(request, "knowledge.html", entries=entries, find=find, question=question, answer=answer,
                         answer_html=answer_html, groups=groups, days=days)
