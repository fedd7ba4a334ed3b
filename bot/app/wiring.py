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
from bot.broadcasts.acks import Acknowledgements
from bot.broadcasts.authoring import Authoring
from bot.broadcasts.store import Broadcasts
from bot.channels.base import Option
from bot.conversation.dialogue import Dialogue
from bot.conversation.flows import Flows
from bot.conversation.routes import Routes
from bot.handoff.service import Handoff, install_all
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
    handoff: Handoff | None = None  # tickets to staff, petitions, privacy, rate limit (bot/handoff.py)
    supervision: Supervision | None = None  # deadlines, reminders, escalation (bot/supervision.py)

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
    flows = Flows()
    dialogue = Dialogue(content, index, chats, QuestionLog(db), flows)
    say = dialogue.say
    registration = Registration(db, chats, localities, say, staff)
    broadcasts = Broadcasts(db, localities)
    authoring = Authoring(broadcasts, localities, say, staff, settings.tz, flows)
    for feature in (registration, Acknowledgements(broadcasts, say), authoring):
        dialogue.include(feature.routes())
    log.info(
        "content loaded: %d entries, %d topics; database %s",
        len(content.entries), len(content.topics), settings.database_path,
    )
    core = Core(settings, db, content, index, chats, staff, dialogue, localities, registration, broadcasts, authoring)
    core.handoff = install_all(db, chats, staff, localities, dialogue, settings)
    dialogue.include(Routes(owner="handoff.offer", decline_options=(Option(say("handoff_offer_button"), "hof:q"),)))
    core.supervision = build_supervision(core)
    dialogue.include(Routes(owner="supervision.phrases", phrases={"da hoan thanh": core.supervision.on_group_text}))
    return core
