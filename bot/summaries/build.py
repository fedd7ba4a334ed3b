"""The recurring series and what their 'summary' and 'digest' firings send, built for the
composition root (bot/app/wiring.py) and the CLI from the services they read."""

from __future__ import annotations

from collections.abc import Sequence

from bot.audiences.chats import Chats
from bot.audiences.localities import Localities
from bot.broadcasts.outbox import Queued
from bot.broadcasts.series import Series, SeriesStore
from bot.broadcasts.store import Broadcasts
from bot.broadcasts.templates import LocalityFacts
from bot.kernel.config import Settings
from bot.kernel.content import Entry
from bot.kernel.messages import Messages
from bot.store.db import Database
from bot.summaries.quarter import Summaries
from bot.summaries.send import Sending, quarter_for_run
from bot.supervision.service import Supervision


def build_series(settings: Settings, db: Database, localities: Localities, supervision: Supervision,
                 broadcasts: Broadcasts, chats: Chats, say: Messages,
                 entries: Sequence[Entry] = ()) -> tuple[SeriesStore, Sending]:
    staff_chat = ("telegram", settings.telegram_staff_chat_id) if settings.telegram_staff_chat_id else None
    summaries = Summaries(db, localities, supervision, settings.tz, titles={e.id: e.title for e in entries})
    sending = Sending(db, summaries, broadcasts, chats, say, staff_chat)
    tz = settings.tz

    async def facts(codes: Sequence[str], now: float) -> dict[str, LocalityFacts]:
        return {code: LocalityFacts(due, owed) for code, (due, owed) in
                (await supervision.locality_facts(codes, now)).items()}

    async def summary(row: Series, run_at: float) -> list[Queued]:
        return await sending.summary_messages(quarter_for_run(run_at, tz), run_at)

    async def digest(row: Series, run_at: float) -> list[Queued]:
        return await sending.digest_messages(run_at, tz)

    series = SeriesStore(db, broadcasts, localities, tz, facts=facts, prepare={"summary": summary, "digest": digest},
                         none_due=say("series_no_deadline"))
    return series, sending
