"""Knowledge editing for the dashboard, without HTTP: find entries, try a question, preview an answer as
a resident gets it, and edit / create / publish entries in `content/knowledge/`.

An edit is checked twice before residents see it: the file's new text as `content check` checks one
file (errors named by field), then the whole folder as `content check` does, when the live index is
rebuilt from it (bot.knowledge.live). The file is written atomically first (bot.knowledge.entry_file:
only changed lines); if the rebuild refuses the folder, the old text is put back and the live index
never changed. Drafts are knowledge files with `draft: true` (the convention `kb draft` and the
ticket page already use): checked like any entry, kept in the content git repository, not served;
publishing removes that line. Edits are one at a time (a lock), each in the audit log.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.conversation.dialogue import Dialogue
from bot.dashboard.audit import Audit
from bot.dashboard.preview import Preview, replies_preview
from bot.kernel.content import ContentError, Entry, Problem, check_entry
from bot.kernel.messages import Messages
from bot.kernel.vietnamese import fold
from bot.knowledge import entry_file, gaps
from bot.knowledge.explain import explain
from bot.knowledge.index import Answer
from bot.knowledge.live import LiveKnowledge
from bot.store.db import Database

SHOWN_ENTRIES = 100
LISTS = ("questions", "keywords", "tags")
FIELDS = ("title", "body", *LISTS, "source")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass
class Outcome:
    """What a save did: `ok`, or the problems by field ("title", "questions", "body"…; "" for the rest)."""

    ok: bool
    entry_id: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def refused(cls, problems: list[Problem], entry_id: str, path: Path, text: str) -> Outcome:
        errors: dict[str, list[str]] = {}
        for problem in problems:
            name = entry_file.field_at(text, problem.line) if problem.path == path else ""
            errors.setdefault(name, []).append(problem.message if name else str(problem))
        return cls(False, entry_id, errors)


@dataclass(frozen=True)
class Tried:
    """"Try a question": the decision, the replies as a resident gets them, and why (`ask --explain`)."""

    answer: Answer
    preview: Preview
    why: list[str]


def fields_of(entry: Entry) -> dict[str, object]:
    return {"title": entry.title, "body": entry.body, "questions": list(entry.questions),
            "keywords": list(entry.keywords), "tags": list(entry.tags), "source": entry.source}


def parse_fields(data: Mapping[str, str]) -> dict[str, object]:
    """The editor's form: one example question / keyword a line, tags separated by commas."""
    def lines(name: str) -> list[str]:
        return [" ".join(line.split()) for line in data.get(name, "").splitlines() if line.strip()]

    return {"title": " ".join(data.get("title", "").split()), "body": data.get("body", "").replace("\r\n", "\n"),
            "questions": lines("questions"), "keywords": lines("keywords"),
            "tags": [t.strip() for t in data.get("tags", "").split(",") if t.strip()],
            "source": " ".join(data.get("source", "").split())}


class KnowledgeDesk:
    def __init__(self, knowledge: LiveKnowledge, dialogue: Dialogue, audit: Audit, say: Messages, folder: Path,
                 tz: ZoneInfo) -> None:
        self.knowledge = knowledge
        self.dialogue = dialogue
        self.audit = audit
        self.say = say
        self.folder = folder  # content/knowledge
        self.tz = tz  # for the `updated:` date an edit writes
        self._lock = asyncio.Lock()
        self._haystack: tuple[int, list[tuple[Entry, str]]] = (-1, [])
        self._gaps: tuple[tuple[int, ...], list[gaps.Group]] = ((), [])

    # ------------------------------------------------------------------ reading

    def find(self, needle: str) -> tuple[list[Entry], int]:
        """Entries whose title, id or an example question holds `needle` (folded): the first
        SHOWN_ENTRIES and how many there are. Folded once per loaded content, not per request."""
        generation = self.knowledge.generation
        if self._haystack[0] != generation:
            self._haystack = (generation, [(e, "\n".join((fold(e.title), e.id, *map(fold, e.questions))))
                                           for e in self.knowledge.content.entries])
        found = [e for e, text in self._haystack[1] if fold(needle) in text] if needle else \
            [e for e, _ in self._haystack[1]]
        return found[:SHOWN_ENTRIES], len(found)

    def drafts(self) -> list[Entry]:
        return list(self.knowledge.content.drafts)

    def entry(self, entry_id: str) -> Entry | None:
        content = self.knowledge.content
        return content.entry(entry_id) or next((d for d in content.drafts if d.id == entry_id), None)

    def try_question(self, question: str) -> Tried:
        index = self.knowledge.index
        answer = index.search(question)
        return Tried(answer, replies_preview(self.dialogue.render_answer(answer), self.say), explain(index, question))

    def preview_entry(self, entry: Entry) -> Preview:
        """The entry's answer as a resident gets it (first page, related entries, the menu button)."""
        return replies_preview([self.dialogue.entry_reply(entry)], self.say)

    def draft_from(self, entry_id: str, values: Mapping[str, object]) -> Entry:
        """An unsaved Entry from the editor's fields (for the preview)."""
        return Entry(id=entry_id, title=str(values["title"]), body=str(values["body"]).strip(),
                     questions=tuple(values["questions"]), keywords=tuple(values["keywords"]),  # type: ignore[arg-type]
                     tags=tuple(values["tags"]))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ writing

    async def save(self, actor: str, entry_id: str, values: Mapping[str, object], *,
                   publish: bool = False, action: str = "knowledge.edit") -> Outcome:
        """Edit an entry (a draft stays a draft unless `publish`); only changed keys are rewritten."""
        entry = self.entry(entry_id)
        if entry is None or entry.path is None:
            return Outcome(False, entry_id, {"": [self.say("web_entry_missing", id=entry_id)]})
        old = await asyncio.to_thread(entry.path.read_text, encoding="utf-8")
        before = fields_of(entry)
        changes: dict[str, entry_file.Value] = {k: v for k, v in values.items()  # type: ignore[misc]
                                                if k != "body" and v != before[k]}
        if entry.draft and publish:
            changes["draft"] = None
        body = str(values["body"]) if str(values["body"]).strip() != entry.body else None
        if not changes and body is None:
            return Outcome(True, entry_id)
        changes["updated"] = datetime.now(self.tz).date().isoformat()
        text = entry_file.update(old, changes, body)
        action = "knowledge.publish" if entry.draft and publish else action
        detail = ", ".join(k for k in (*changes, *(["body"] if body is not None else [])) if k != "updated")
        return await self._write(actor, entry_id, entry.path, text, old, action, detail)

    async def create(self, actor: str, entry_id: str, values: Mapping[str, object]) -> Outcome:
        """A new entry, as a draft (publish it from the editor once reviewed)."""
        if not _ID.match(entry_id):
            return Outcome(False, entry_id, {"id": [self.say("web_entry_bad_id")]})
        path = self.folder / f"{entry_id}.md"
        if self.entry(entry_id) is not None or path.exists():
            return Outcome(False, entry_id, {"id": [self.say("web_entry_exists", id=entry_id)]})
        text = entry_file.new_entry(entry_id, str(values["title"]) or entry_id, str(values["body"]),
                                    questions=values["questions"], keywords=values["keywords"],  # type: ignore[arg-type]
                                    tags=values["tags"], source=str(values["source"]))  # type: ignore[arg-type]
        return await self._write(actor, entry_id, path, text, None, "knowledge.create", "draft")

    async def add_question(self, actor: str, entry_id: str, wording: str) -> Outcome:
        """A resident's wording (from the gaps) as one more example question of an entry."""
        entry = self.entry(entry_id)
        wording = " ".join(wording.split())
        if entry is None:
            return Outcome(False, entry_id, {"": [self.say("web_entry_missing", id=entry_id)]})
        if not wording or any(fold(q) == fold(wording) for q in entry.questions):
            return Outcome(True, entry_id)
        values = {**fields_of(entry), "questions": [*entry.questions, wording]}
        return await self.save(actor, entry_id, values, action="knowledge.question")

    async def _write(self, actor: str, entry_id: str, path: Path, text: str, old: str | None, action: str,
                     detail: str) -> Outcome:
        _, problems = check_entry(path, text)
        if problems:
            return Outcome.refused(problems, entry_id, path, text)
        async with self._lock:
            await asyncio.to_thread(entry_file.write_atomic, path, text)
            try:
                await self.knowledge.reload()
            except ContentError as exc:  # the folder as a whole is refused: put the old text back
                await asyncio.to_thread(_restore, path, old)
                return Outcome.refused(exc.problems, entry_id, path, text)
        await self.audit.record(actor, "web", action, f"knowledge:{entry_id}", detail)
        return Outcome(True, entry_id)

    # ------------------------------------------------------------------ gaps

    async def gap_groups(self, db: Database, days: int, limit: int) -> list[gaps.Group]:
        """The gaps of the last `days` days, grouped in a worker thread (residents' answers never wait
        on it); kept while no question or ticket arrives, for at most a minute (the window moves)."""
        key = (days, int(time.time() // 60), *await gaps.watermark(db))
        if self._gaps[0] != key:
            asked = await gaps.collect(db, time.time() - days * 86400)
            self._gaps = (key, await asyncio.to_thread(gaps.group, asked))
        return self._gaps[1][:limit]


def _restore(path: Path, old: str | None) -> None:
    if old is None:
        path.unlink(missing_ok=True)
    else:
        entry_file.write_atomic(path, old)
