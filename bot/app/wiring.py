"""The one composition root: every service of Loa Phường built by constructor, in one place.

`chat`, `ask`, the tests and `run` all build the same `Core`; the channel adapters are added to its
`channels` registry by `bot.app.service` (or the console by `chat`), which every sender already
holds, so nothing is patched on afterwards.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from bot.app import content_check
from bot.audiences.chats import ChatMigration, Chats, Staff
from bot.audiences.localities import Localities, load_strict
from bot.audiences.registration import Registration
from bot.broadcasts.acks import Acknowledgements
from bot.broadcasts.authoring import Authoring
from bot.broadcasts.outbox import OutboxRows
from bot.broadcasts.progress import Progress
from bot.broadcasts.scheduling import SeriesScheduler
from bot.broadcasts.series import SeriesStore, Standing
from bot.broadcasts.standing import load_standing
from bot.broadcasts.store import Broadcasts
from bot.channels.base import Inbound, Reply, Sender
from bot.channels.registry import Channels
from bot.conversation.choices import Choices
from bot.conversation.choices import erase_person as erase_choices
from bot.conversation.dialogue import Dialogue
from bot.conversation.flows import Flows
from bot.dashboard.audit import Audit, ChatAudit
from bot.dashboard.service import Dashboard
from bot.delivery.pacing import Pacing, limits_from_settings
from bot.delivery.replies import ReplyQueue
from bot.delivery.replies import erase_person as erase_owed
from bot.delivery.worker import DeliveryWorker
from bot.handoff.build import build_handoff
from bot.handoff.service import CHECK_EVERY, PURGE_EVERY, Handoff
from bot.kernel.config import Settings
from bot.kernel.content import Content, ContentError, load_content
from bot.kernel.jobs import Jobs
from bot.kernel.messages import Messages
from bot.knowledge.build import build_index
from bot.knowledge.index import KnowledgeIndex
from bot.knowledge.live import LiveKnowledge
from bot.knowledge.question_log import QuestionLog, QuestionRows
from bot.knowledge.searcher import Searcher
from bot.operations.metrics import Metrics
from bot.operations.nightly import nightly_backup
from bot.store.db import Database, open_database
from bot.summaries.build import build_series
from bot.supervision.plans import erase_person as erase_supervision
from bot.supervision.service import Supervision, build_supervision

log = logging.getLogger(__name__)


def load_knowledge(root: Path) -> tuple[Content, KnowledgeIndex]:
    """The content and its index as a reload builds them (in a worker thread): ContentError with every
    problem `content check` would report, so an invalid edit never reaches the live index."""
    content = load_content(root, strict=False)
    problems = content.problems + content_check.run_all(root, content.entries)
    if problems:
        raise ContentError(problems)
    return content, build_index(content)


def log_warnings(content: Content) -> None:
    """Content warnings (repeated example questions, empty topics…): one log line at start-up."""
    if content.warnings:
        first = "; ".join(str(w) for w in content.warnings[:3])
        log.warning("content: %d warnings (the service runs; see `content check`), first: %s",
                    len(content.warnings), first)


@dataclass(frozen=True)
class Core:
    """Every long-lived object of the service, built once by `build_core` and never patched."""

    settings: Settings
    db: Database
    knowledge: LiveKnowledge  # the content and index answered from, reloaded when staff edit knowledge
    searcher: Searcher  # residents' questions searched in a search process (once started), else here
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
    replies: ReplyQueue  # every reply and staff post, in order per chat, owed durably when refused
    handoff: Handoff
    supervision: Supervision
    series: SeriesStore  # recurring broadcasts, quarterly summaries, the weekly digest (issue 15)
    schedules: SeriesScheduler  # the series' jobs: one a schedule, rebuilt from the table at start
    jobs: Jobs  # the one APScheduler: series, ticket re-announcement, retention purge, nightly backup
    choices: Choices  # numbered menus shown on Zalo, kept across restarts
    dashboard: Dashboard  # the staff web pages' services (mounted on the HTTP server by bot.app.service)

    async def receive(self, inbound: Inbound) -> list[Reply]:
        """What a channel adapter calls with each update: the dialogue answers, the reply queue
        sends (paced where it is sent). Nothing comes back for the adapter to send."""
        await self.replies.answer(inbound, await self.timed(inbound))
        return []

    async def timed(self, inbound: Inbound) -> list[Reply]:
        return await self.metrics.timed(self.dialogue.handle)(inbound)

    async def close(self) -> None:
        await self.choices.flush()
        await self.handoff.limiter.flush()  # the rate-limit windows, for the next start
        await self.db.close()


async def build_core(settings: Settings, sender: Sender | None = None) -> Core:
    """The one composition root: load content (ContentError if invalid), open the store, build
    every service with its dependencies, and plug each feature's routes into the dialogue.
    `sender` sends staff posts and answers (default: at once, through the channel registry)."""
    content = load_content(settings.content_dir)
    log_warnings(content)
    localities = load_strict(settings.content_dir)
    standing, problems = load_standing(settings.content_dir, settings.tz)  # content/schedules.yaml
    if problems:
        raise ContentError(problems)
    index = build_index(content)
    db = await open_database(settings.database_path)
    try:
        return await _build(settings, db, content, localities, index, standing, sender)
    except BaseException:
        await db.close()  # its thread would keep the process from exiting
        raise


async def _build(settings: Settings, db: Database, content: Content, localities: Localities, index: KnowledgeIndex,
                 standing: list[Standing], sender: Sender | None) -> Core:
    channels, metrics = Channels(), Metrics()
    knowledge = LiveKnowledge(content, index, functools.partial(load_knowledge, settings.content_dir))
    flows = Flows(db, ttl=settings.flow_expiry_hours * 3600)  # steps and drafts, kept in SQLite
    chats = Chats(db)
    staff = Staff(db, {"telegram": settings.telegram_staff_ids})
    questions = QuestionLog(db)
    searcher = Searcher(knowledge, settings.content_dir, process=settings.search_process)
    dialogue = Dialogue(knowledge, searcher, chats, questions, flows, staff_action=ChatAudit(Audit(db), staff))
    say = dialogue.say
    broadcasts = Broadcasts(db, localities)
    pacing = Pacing(limits_from_settings(settings))  # replies and broadcasts count in the same windows
    replies = ReplyQueue(db, channels, pacing)
    migrate = ChatMigration(db, [QuestionRows(), OutboxRows()])  # a group's new id, in every table
    worker = DeliveryWorker(db, channels, pacing, ack_label=say("ack_button"), migrate=migrate,
                            resolve=broadcasts.resolve_due, on_pause=metrics.channel_paused,
                            on_alert=StaffAlert(replies, say, settings.telegram_staff_chat_id))
    progress = Progress(db, channels, replies, say, rate=worker.rate)
    registration = Registration(db, chats, localities, say, staff, migrate, is_admin=channels.is_group_admin)
    for feature in (registration, Acknowledgements(broadcasts, say)):
        dialogue.include(feature.routes())
    handoff, handoff_routes = build_handoff(db, chats, staff, localities, say, flows, knowledge, settings,
                                            sender or replies,
                                            erasers={"supervision": erase_supervision, "replies": erase_owed,
                                                     "choices": erase_choices})
    for routes in handoff_routes:
        dialogue.include(routes)
    supervision = build_supervision(settings, db, localities, say, staff, flows, notify=worker.notify,
                                    is_admin=channels.is_group_admin)
    for routes in supervision.routes():
        dialogue.include(routes)
    series, _ = build_series(settings, db, localities, supervision, broadcasts, chats, say, content.entries)
    authoring = Authoring(broadcasts, localities, say, staff, settings.tz, flows, series)  # /thongbao
    dialogue.include(authoring.routes())
    jobs = Jobs(settings.tz)  # started after every other service (bot.app.service), stopped before them
    schedules = SeriesScheduler(series, worker.notify, standing=standing, scheduler=jobs.scheduler)
    jobs.every("handoff-remind", CHECK_EVERY, handoff.remind_due)  # tickets waiting for staff, announced again
    jobs.every("retention-purge", PURGE_EVERY, handoff.privacy.purge)  # TICKET_RETENTION_DAYS
    nightly = nightly_backup(settings)  # BACKUP_DIR, BACKUP_KEEP, BACKUP_AT
    if nightly is not None:
        jobs.daily("nightly-backup", settings.backup_at, nightly.run, what=str(nightly))
    dashboard = Dashboard(settings, db, staff=staff, chats=chats, broadcasts=broadcasts, handoff=handoff,
                          localities=localities, supervision=supervision, channels=channels, say=say,
                          questions=questions, knowledge=knowledge, dialogue=dialogue,
                          paused_until=lambda channel: worker.pacer(channel).paused_until, series=series)
    dialogue.include(dashboard.routes())
    await flows.load()  # after every feature declared its steps and drafts
    await handoff.limiter.load()
    await handoff.tickets.load()  # which chats have an open question, so most messages need no query
    log.info(
        "content loaded: %d entries, %d topics; database %s",
        len(content.entries), len(content.topics), settings.database_path,
    )
    return Core(settings, db, knowledge, searcher, channels, metrics, chats, staff, flows, dialogue,
                localities, registration, broadcasts, authoring, worker, progress, replies, handoff, supervision,
                series, schedules, jobs, Choices(db), dashboard)


class StaffAlert:
    """Tells the staff chat (TELEGRAM_STAFF_CHAT_ID) that a channel stopped on its quota (or, reason
    "token", that the Zalo OA's refresh token was refused)."""

    def __init__(self, sender: Sender, say: Messages, staff_chat: str | None) -> None:
        self.sender, self.say, self.staff_chat = sender, say, staff_chat

    async def __call__(self, channel: str, reason: str) -> None:
        if not self.staff_chat or channel == "telegram":
            log.error("%s: %s exceeded and no staff chat to tell (TELEGRAM_STAFF_CHAT_ID)", channel, reason)
            return
        key = "zalo_oa_token_alert" if reason == "token" else "channel_quota_alert"
        try:
            await self.sender.send("telegram", self.staff_chat, Reply(self.say(key, channel=channel.capitalize())))
        except KeyError:
            log.error("%s: %s exceeded and Telegram is not running to tell the staff chat", channel, reason)
