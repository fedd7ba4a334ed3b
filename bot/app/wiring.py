"""The one composition root: every service of Loa Phường built by constructor, in one place.

`chat`, `ask`, the tests and `run` all build the same `Core`; the channel adapters are added to its
`channels` registry by `bot.app.service` (or the console by `chat`), which every sender already
holds, so nothing is patched on afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.audiences.chats import Chats, Staff
from bot.audiences.localities import Localities, load_strict
from bot.audiences.registration import Registration
from bot.broadcasts.acks import Acknowledgements
from bot.broadcasts.authoring import Authoring
from bot.broadcasts.progress import Progress
from bot.broadcasts.store import Broadcasts
from bot.channels.base import Reply, Sender
from bot.channels.registry import Channels
from bot.conversation.dialogue import Dialogue
from bot.conversation.flows import Flows
from bot.dashboard.service import Dashboard
from bot.delivery.direct import DirectSender
from bot.delivery.worker import DeliveryWorker, limits_from_settings
from bot.handoff.build import build_handoff
from bot.handoff.service import Handoff
from bot.kernel.config import Settings
from bot.kernel.content import Content, ContentError, load_content
from bot.kernel.messages import Messages
from bot.kernel.vietnamese import Analyzer
from bot.knowledge import out_of_scope
from bot.knowledge.index import KnowledgeIndex
from bot.knowledge.question_log import QuestionLog
from bot.operations.metrics import Metrics
from bot.store.db import Database, open_database
from bot.supervision.service import Supervision, build_supervision

log = logging.getLogger(__name__)


def build_index(content: Content) -> KnowledgeIndex:
    outside, problems = out_of_scope.load(content.root)
    if problems:  # the service refuses invalid content, with the same messages as `content check`
        raise ContentError(problems)
    return KnowledgeIndex(content.entries, Analyzer(content.expansions), outside=outside)


@dataclass(frozen=True)
class Core:
    """Every long-lived object of the service, built once by `build_core` and never patched."""

    settings: Settings
    db: Database
    content: Content
    index: KnowledgeIndex
    channels: Channels  # empty until the service (or `chat`) adds its adapters
    metrics: Metrics
    chats: Chats
    staff: Staff
    flows: Flows
    dialogue: Dialogue
    localities: Localities
    registration: Registration
    broadcasts: Broadcasts
    authoring: Authoring
    worker: DeliveryWorker
    progress: Progress
    direct: DirectSender
    handoff: Handoff
    supervision: Supervision
    dashboard: Dashboard  # the staff web pages' services (mounted on the HTTP server by bot.app.service)

    async def close(self) -> None:
        await self.db.close()


async def build_core(settings: Settings, sender: Sender | None = None) -> Core:
    """The one composition root: load content (ContentError if invalid), open the store, build
    every service with its dependencies, and plug each feature's routes into the dialogue.
    `sender` sends staff posts and answers (default: at once, through the channel registry)."""
    content = load_content(settings.content_dir)
    localities = load_strict(settings.content_dir)
    index = build_index(content)
    db = await open_database(settings.database_path)
    channels, metrics, flows = Channels(), Metrics(), Flows()
    chats = Chats(db)
    staff = Staff(db, {"telegram": settings.telegram_staff_ids})
    questions = QuestionLog(db)
    dialogue = Dialogue(content, index, chats, questions, flows)
    say = dialogue.say
    broadcasts = Broadcasts(db, localities)
    worker = DeliveryWorker(db, channels, limits_from_settings(settings), ack_label=say("ack_button"),
                            resolve=broadcasts.resolve_due, on_pause=metrics.channel_paused,
                            on_alert=StaffAlert(channels, say, settings.telegram_staff_chat_id))
    progress = Progress(db, channels, say, rate=worker.rate,
                        note=lambda channel, chat_id: worker.note_interactive(channel, "private", chat_id))
    direct = DirectSender(channels, worker)
    registration = Registration(db, chats, localities, say, staff, is_admin=channels.is_group_admin)
    authoring = Authoring(broadcasts, localities, say, staff, settings.tz, flows)
    for feature in (registration, Acknowledgements(broadcasts, say), authoring):
        dialogue.include(feature.routes())
    handoff, handoff_routes = build_handoff(db, chats, staff, localities, say, flows, index, settings,
                                            sender or direct)
    for routes in handoff_routes:
        dialogue.include(routes)
    supervision = build_supervision(settings, db, localities, say, staff, flows, notify=worker.notify,
                                    is_admin=channels.is_group_admin)
    for routes in supervision.routes():
        dialogue.include(routes)
    dashboard = Dashboard(settings, db, staff=staff, chats=chats, broadcasts=broadcasts, handoff=handoff,
                          localities=localities, supervision=supervision, channels=channels, say=say,
                          questions=questions, content=content, index=index,
                          paused_until=lambda channel: worker.pacer(channel).paused_until)
    dialogue.include(dashboard.routes())
    log.info(
        "content loaded: %d entries, %d topics; database %s",
        len(content.entries), len(content.topics), settings.database_path,
    )
    return Core(settings, db, content, index, channels, metrics, chats, staff, flows, dialogue, localities,
                registration, broadcasts, authoring, worker, progress, direct, handoff, supervision, dashboard)


class StaffAlert:
    """Tells the staff chat (TELEGRAM_STAFF_CHAT_ID) that a channel stopped on its quota."""

    def __init__(self, channels: Channels, say: Messages, staff_chat: str | None) -> None:
        self.channels, self.say, self.staff_chat = channels, say, staff_chat

    async def __call__(self, channel: str, reason: str) -> None:
        telegram = self.channels.get("telegram")
        if not self.staff_chat or telegram is None or channel == "telegram":
            log.error("%s: %s exceeded and no staff chat to tell (TELEGRAM_STAFF_CHAT_ID)", channel, reason)
            return
        await telegram.send(self.staff_chat, Reply(self.say("channel_quota_alert", channel=channel.capitalize())))
