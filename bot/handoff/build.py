"""Builds the handoff capability and plugs it into the dialogue (called by bot.app.wiring only).

Nothing in `bot.handoff` imports this module: it is the one place that knows how the ticket store,
privacy, the rate limit, the handoff service and petitions are put together.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from bot.audiences.chats import Chats, Staff
from bot.audiences.localities import Localities
from bot.channels.base import Sender
from bot.conversation.flows import Flows
from bot.conversation.ratelimit import RateLimiter
from bot.conversation.routes import Routes
from bot.handoff.petitions import Petitions, load_topics, title_of
from bot.handoff.privacy import Eraser, Privacy
from bot.handoff.service import Handoff
from bot.handoff.tickets import Tickets
from bot.kernel.config import Settings
from bot.kernel.messages import Messages
from bot.knowledge.live import LiveKnowledge
from bot.store.db import Database


def build_handoff(db: Database, chats: Chats, staff: Staff, tree: Localities, say: Messages, flows: Flows,
                  knowledge: LiveKnowledge, settings: Settings, sender: Sender | None, *,
                  erasers: Mapping[str, Eraser] | None = None) -> tuple[Handoff, list[Routes]]:
    """Handoff, petitions, privacy and the per-person rate limit, with the routes they plug into
    the dialogue. `erasers`: what /xoadulieu also runs for tables owned outside bot.handoff's imports."""
    tickets = Tickets(db)
    topics = load_topics(settings.content_dir)[0]
    limiter = RateLimiter(settings.rate_limit_messages, settings.rate_limit_seconds, say, staff.is_staff, db=db)
    privacy = Privacy(db, tickets, tree, say, settings.tz, sender, settings.ticket_retention_days,
                      erasers=erasers, forget=(flows.forget, limiter.forget))
    staff_chat = ("telegram", settings.telegram_staff_chat_id) if settings.telegram_staff_chat_id else None
    handoff = Handoff(db, tickets, chats, staff, tree, say, settings.tz, sender=sender,
                      answers=lambda text: knowledge.index.search(text).decision == "answer",
                      topic_title=partial(title_of, topics), privacy=privacy, limiter=limiter,
                      flows=flows, staff_chat=staff_chat, remind_hours=settings.handoff_remind_hours)
    petitions = Petitions(handoff, tree, topics, say, staff, flows, db)
    gate = Routes(owner="conversation.ratelimit", priority=0, gates=(limiter.gate,))
    return handoff, [gate, handoff.routes(), petitions.routes(), privacy.routes()]
