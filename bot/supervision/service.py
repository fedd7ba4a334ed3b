"""Supervision deadlines (giám sát, phản biện): plans, reminders, completion, extension, escalation.

Plans come from the CLI (`supervision add/import`), from `content/supervision/*.yaml` (upserted
at start by their `id`) and are stored in SQLite (migration 003). Each locality must carry out
`required` activities per period (content/supervision/requirements.yaml; default 2 a quarter).

Everything this module sends (reminders to the groups, escalations and extension requests to
the staff chat, nudges) is written as a `broadcasts` row plus its outbox rows, in the same
transaction that records it as sent, and the one delivery worker sends it, paced and retried
like any broadcast. The buttons ride in `broadcasts.options` instead of "Đã nhận".

Modules: `model` (Plan, errors, pure helpers), `plans` (the store: the only SQL on the
`supervision_*` tables), `outgoing` (recipients; queues through `bot.broadcasts.outbox`),
`scheduler` (the timer loop, escalations, nudges), `texts` (reminder and table texts),
`group_chat` (buttons, /baocao_gs, "đã hoàn thành", extensions, /giamsat), `staff_chat`
(/themgiamsat, /doihan), `plans_io` (files), `schedule` (settings and offsets). This module
puts them together as the one `Supervision` the app and the CLI use.

Moving a due date (staff `edit` from the CLI or `/doihan`, an approved extension, a changed
content file) reschedules: every offset is recomputed from the new date; one whose new time is
still ahead is pending again even if it already went out for the old date ("7 days left" is true
again, of the new deadline); one whose new time has passed is not sent (no catch-up on an edit).
A reminder queued for the old date but not yet delivered to any chat is withdrawn (its text names
the old date) and replaced by one with the new date, at once if its new time has passed.
Escalations are recorded per (plan, due date), so the count starts again from the new date's day.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

from bot.audiences.chats import Staff
from bot.audiences.localities import Localities
from bot.conversation.flows import Flows
from bot.conversation.routes import Routes
from bot.kernel.config import Settings
from bot.kernel.content import ContentError
from bot.kernel.messages import Messages
from bot.kernel.wakeup import Wakeup
from bot.store.db import Database
from bot.supervision.group_chat import GroupChat
from bot.supervision.model import AdminCheck, Plan, SupervisionError
from bot.supervision.outgoing import Outgoing
from bot.supervision.plans import Plans
from bot.supervision.plans_io import PlanInput, load_content_plans
from bot.supervision.schedule import SupervisionConfig, load_config
from bot.supervision.scheduler import Scheduler
from bot.supervision.staff_chat import SupervisionChat
from bot.supervision.texts import Texts

__all__ = ["Plan", "Supervision", "SupervisionError", "build_supervision"]

log = logging.getLogger(__name__)


class Supervision:
    """The plan store, the timer and the group chat of one deployment, sharing a clock and wake-ups.

    `notify` wakes the delivery worker when something was queued; `is_admin` asks the channel
    whether a group member is an admin (both required: a missed wire must not fail quietly)."""

    def __init__(
        self,
        db: Database,
        tree: Localities,
        say: Messages,
        staff: Staff,
        tz: ZoneInfo,
        config: SupervisionConfig | None = None,
        *,
        notify: Callable[[], None],
        is_admin: AdminCheck,
        flows: Flows | None = None,
        staff_chat: tuple[str, str] | None = None,
        content_plans: list[PlanInput] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_sleep: float = 1.0,
        housekeeping_every: float = 30.0,
        batch: int = 25,
    ) -> None:
        self.db = db
        self.tree = tree
        self.say = say
        self.staff = staff
        self.tz = tz
        self.config = config or SupervisionConfig()
        self.clock = clock
        self.notify = notify
        self.content_plans = content_plans or []
        self.timer_wake = Wakeup()
        self.outgoing = Outgoing(tree, staff_chat, self.now)
        self.store = Plans(db, tree, say, tz, self.config, self.outgoing, clock=self.now, notify=notify,
                           wake=self.timer_wake)
        self.texts = Texts(say, tree, tz)
        self.scheduler = Scheduler(self.store, self.outgoing, self.texts, self.timer_wake, notify=notify,
                                   clock=self.now, sleep=sleep, max_sleep=max_sleep,
                                   housekeeping_every=housekeeping_every, batch=batch)
        flows = flows or Flows()  # a private one where there is no conversation (CLI, bench)
        self.group_chat = GroupChat(self.store, self.texts, staff, is_admin=is_admin, flows=flows)
        self.chat = SupervisionChat(self.store, staff, flows)  # /themgiamsat, /doihan
        # the store's, timer's and chat's operations, under the names the CLI and the tests use
        self.add = self.store.add
        self.upsert = self.store.upsert
        self.get = self.store.get
        self.plans = self.store.plans
        self.group_count = self.store.group_count
        self.reminders = self.store.reminders
        self.complete = self.store.complete
        self.cancel = self.store.cancel
        self.request_extension = self.store.request_extension
        self.decide_extension = self.store.decide_extension
        self.edit = self.store.edit
        self.rebuild = self.store.rebuild
        self.table = self.store.table
        self.period_summary = self.store.period_summary
        self.locality_facts = self.store.locality_facts
        self.owner_of = self.store.owner_of
        self.tracked = self.store.tracked
        self.place = self.texts.place
        self.table_text = self.texts.table_text
        self.reminder_text = self.texts.reminder_text
        self.tick = self.scheduler.tick
        self.complete_from_reply = self.group_chat.complete_from_reply
        self.on_group_text = self.group_chat.on_group_text

    def now(self) -> float:
        """`clock()`, read at each call: every part follows a clock set after construction (the tests')."""
        return self.clock()

    def wake(self) -> None:
        self.timer_wake()

    def routes(self) -> list[Routes]:
        return [self.group_chat.routes(), self.chat.routes()]

    async def start(self) -> None:
        """Upsert the content plans, recompute pending fire times, start the timer loop."""
        if self.content_plans:
            await self.store.upsert(self.content_plans, source="content")
        await self.store.rebuild()
        await self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()


def build_supervision(settings: Settings, db: Database, localities: Localities, say: Messages, staff: Staff,
                      flows: Flows, *, notify: Callable[[], None], is_admin: AdminCheck) -> Supervision:
    """The service for `bot.app.wiring`: settings from content/supervision/, content plans to upsert at
    start. Invalid supervision content stops start-up like any content."""
    config, problems = load_config(settings.content_dir)
    plans, plan_problems = load_content_plans(settings.content_dir, localities, config, settings.tz)
    if problems or plan_problems:
        raise ContentError(problems + plan_problems)
    staff_chat = ("telegram", settings.telegram_staff_chat_id) if settings.telegram_staff_chat_id else None
    return Supervision(db, localities, say, staff, settings.tz, config, notify=notify, is_admin=is_admin,
                       flows=flows, staff_chat=staff_chat, content_plans=plans)
