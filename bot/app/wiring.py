"""The channel-free heart of the service: store, content, search index and dialogue.

`chat`, `ask`, the tests and `run` all build it the same way; channels are added on top in
`bot.app.service`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bot.audiences.chats import Chats, Staff
from bot.audiences.localities import Localities, load_strict
from bot.audiences.registration import Registration
from bot.broadcasts.authoring import Authoring
from bot.broadcasts.group_replies import GroupReplies
from bot.broadcasts.store import Broadcasts
from bot.conversation.dialogue import Dialogue
from bot.handoff.service import Handoff, install_all
from bot.kernel.config import Settings
from bot.kernel.content import Content, ContentError, load_content
from bot.kernel.vietnamese import Analyzer
from bot.kernel.wakeup import Wakeup
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
    outbox_wakeup: Wakeup = field(default_factory=Wakeup)  # rows queued outside the worker: look now

    async def close(self) -> None:
        await self.db.close()


async def build_core(settings: Settings) -> Core:
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
    core.handoff = install_all(db, chats, staff, localities, dialogue, settings)
    core.supervision = build_supervision(settings, db, localities, dialogue, staff, group_replies,
                                         notify=core.outbox_wakeup, is_admin=registration.check_admin)
    return core
