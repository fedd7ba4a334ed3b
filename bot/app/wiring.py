"""The channel-free heart of the service: store, content, search index and dialogue.

`chat`, `ask`, the tests and `run` all build it the same way; channels are added on top in
`bot.app.service`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.audiences.chats import Chats, Staff
from bot.audiences.localities import Localities, load_strict
from bot.audiences.registration import Registration
from bot.broadcasts.authoring import Authoring
from bot.broadcasts.group_replies import GroupReplies
from bot.broadcasts.store import Broadcasts
from bot.channels.base import Sender
from bot.conversation.dialogue import Dialogue
from bot.handoff.build import build_handoff
from bot.handoff.service import Handoff
from bot.kernel.config import Settings
from bot.kernel.content import Content, ContentError, load_content
from bot.kernel.vietnamese import Analyzer
from bot.knowledge import out_of_scope
from bot.knowledge.index import KnowledgeIndex
from bot.knowledge.question_log import QuestionLog
from bot.store.db import Database, open_database
from bot.supervision.service import Supervision, build_supervision

log = logging.getLogger(__name__)


def build_index(content: Content) -> KnowledgeIndex:
    outside, problems = out_of_scope.load(content.root)
    if problems:  # the service refuses invalid content, with the same messages as `content check`
        raise ContentError(problems)
    return KnowledgeIndex(content.entries, Analyzer(content.expansions), outside=outside)


@dataclass
class Core:
    settings: Settings
    db: Database
    content: Content
    index: KnowledgeIndex
    chats: Chats
    staff: Staff
    dialogue: Dialogue
    localities: Localities
    registration: Registration
    broadcasts: Broadcasts
    authoring: Authoring | None = None
    group_replies: GroupReplies | None = None  # "đã nhận" / "đã hoàn thành" typed in a group
    handoff: Handoff | None = None  # tickets to staff, petitions, privacy, rate limit (bot/handoff.py)
    supervision: Supervision | None = None  # deadlines, reminders, escalation (bot/supervision.py)

    async def close(self) -> None:
        await self.db.close()


async def build_core(settings: Settings, sender: Sender | None = None) -> Core:
    """Load content (refusing invalid content with ContentError), open the store, wire the dialogue."""
    content = load_content(settings.content_dir)
    localities = load_strict(settings.content_dir)
    index = build_index(content)
    db = await open_database(settings.database_path)
    chats = Chats(db)
    staff = Staff(db, {"telegram": settings.telegram_staff_ids})
    dialogue = Dialogue(content, index, chats, QuestionLog(db))
    registration = Registration(db, chats, localities, dialogue.say, staff)
    registration.install(dialogue)
    broadcasts = Broadcasts(db, localities)
    broadcasts.install(dialogue)
    authoring = Authoring(broadcasts, localities, dialogue.say, staff, settings.tz)
    authoring.install(dialogue)
    group_replies = GroupReplies(db, dialogue)  # Zalo has no buttons: phrases stand for them
    group_replies.install()
    log.info(
        "content loaded: %d entries, %d topics; database %s",
        len(content.entries), len(content.topics), settings.database_path,
    )
    core = Core(settings, db, content, index, chats, staff, dialogue, localities, registration, broadcasts, authoring)
    core.group_replies = group_replies
    core.handoff = build_handoff(db, chats, staff, localities, dialogue, index, settings, sender)
    core.supervision = build_supervision(core)
    return core
