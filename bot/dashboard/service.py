"""The dashboard's services, without HTTP: sign-in links (CLI and `/dangnhap`), sessions, roles,
the audit log, four-eyes approvals, and what the pages show, read through the owner modules."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.audiences.chats import Chats, Staff
from bot.audiences.localities import Localities
from bot.broadcasts.series import SeriesStore
from bot.broadcasts.store import Broadcasts
from bot.channels.base import Channel, Reply
from bot.conversation.dialogue import Dialogue
from bot.conversation.routes import Routes, Turn
from bot.dashboard.accounts import Accounts, Session
from bot.dashboard.approvals import Approvals
from bot.dashboard.audit import Audit
from bot.dashboard.auth import LINK_TTL, Attempts
from bot.dashboard.knowledge import KnowledgeDesk
from bot.handoff.service import Handoff
from bot.kernel.config import Settings
from bot.kernel.messages import Messages
from bot.knowledge.live import LiveKnowledge
from bot.knowledge.question_log import QuestionLog
from bot.store.db import Database
from bot.supervision.service import Supervision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Who:
    """The staff member behind a session, with their dashboard role."""

    channel: str
    user_id: str
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"{self.channel}:{self.user_id}"

    @property
    def label(self) -> str:
        """As tickets record who answered ("telegram:123 (Lan)")."""
        return f"{self.actor} ({self.name})" if self.name else self.actor


class Dashboard:
    def __init__(self, settings: Settings, db: Database, *, staff: Staff, chats: Chats, broadcasts: Broadcasts,
                 handoff: Handoff, localities: Localities, supervision: Supervision,
                 channels: Mapping[str, Channel], say: Messages, questions: QuestionLog,
                 knowledge: LiveKnowledge, dialogue: Dialogue,
                 paused_until: Callable[[str], float] = lambda channel: 0.0,
                 series: SeriesStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """`questions`: the question log (read for the overview); `paused_until(channel)`: when the
        delivery worker resumes a paused channel (epoch; 0 when it is not paused); `series`: the
        recurring series the compose form makes (as `broadcast send --repeat`) and the list shows."""
        self.settings = settings
        self.db = db
        self.staff = staff
        self.chats = chats
        self.broadcasts = broadcasts
        self.handoff = handoff
        self.localities = localities
        self.supervision = supervision
        self.channels = channels
        self.say = say
        self.questions = questions
        self.knowledge = knowledge  # the content and index the running service answers with
        self.paused_until = paused_until
        self.series = series
        self.clock = clock
        self.accounts = Accounts(db, clock)
        self.audit = Audit(db, clock)
        self.approvals = Approvals(db, clock)
        self.attempts = Attempts()
        self.desk = KnowledgeDesk(knowledge, dialogue, self.audit, say, settings.content_dir / "knowledge",
                                  settings.tz)

    @property
    def session_ttl(self) -> float:
        return self.settings.web_session_hours * 3600

    # ------------------------------------------------------------------ sign-in links

    async def login_link(self, channel: str, user_id: str, by: str, via: str) -> str | None:
        """A one-time sign-in URL for a staff member; None when they are not staff."""
        return await login_link(self.settings, self.staff, self.accounts, self.audit, channel, user_id, by, via)

    def routes(self) -> Routes:
        """`/dangnhap`: a staff member asks for a sign-in link in a private chat."""
        return Routes(owner="dashboard", commands={"dangnhap": self.cmd_dangnhap})

    async def cmd_dangnhap(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        if inbound.chat_kind != "private":
            return [Reply(self.say("staff_private_only"))]
        url = await self.login_link(inbound.channel, inbound.user_id, f"{inbound.channel}:{inbound.user_id}",
                                    inbound.channel)
        if url is None:
            log.warning("/dangnhap refused: %s user %s is not staff", inbound.channel, inbound.user_id)
            return [Reply(self.say("staff_only"))]
        return [Reply(self.say("web_login_link", url=url))]

    # ------------------------------------------------------------------ sessions

    async def sign_in(self, token: str) -> tuple[str, Who] | str:
        """A used link becomes a session: (cookie value, who); or why not ("used", "expired",
        "unknown", "not_staff")."""
        claimed = await self.accounts.claim_link(token)
        if claimed is None:
            state = await self.accounts.link_state(token)
            return "unknown" if state == "valid" else state  # "valid" here: claimed by a racing request
        who = await self.who(*claimed)
        if who is None:
            return "not_staff"
        cookie, _ = await self.accounts.open_session(who.channel, who.user_id, self.session_ttl)
        await self.audit.record(who.actor, "web", "login")
        log.info("dashboard: %s signed in", who.actor)
        return cookie, who

    async def who(self, channel: str, user_id: str) -> Who | None:
        """The staff member and their role; None when they are not staff (any more)."""
        role = await self.role_of(channel, user_id)
        if role is None:
            return None
        chat = await self.chats.get(channel, user_id)  # a private chat's id is the user's id
        return Who(channel, user_id, chat.display_name if chat else "", role)

    async def role_of(self, channel: str, user_id: str) -> str | None:
        """Set with `web role` or on the staff page; otherwise staff from the settings
        (TELEGRAM_STAFF_IDS) are admins and staff granted with `staff add` are senders."""
        if not await self.staff.is_staff(channel, user_id):
            return None
        role = await self.accounts.role_of(channel, user_id)
        if role is not None:
            return role
        return "admin" if user_id in self.staff.configured.get(channel, frozenset()) else "sender"

    async def session(self, cookie: str) -> tuple[Session, Who] | None:
        session = await self.accounts.session(cookie, idle=self.settings.web_idle_minutes * 60)
        if session is None:
            return None
        who = await self.who(session.channel, session.user_id)
        if who is None:  # rights withdrawn: the session ends with them
            await self.accounts.end_session(session.id)
            return None
        return session, who

    async def sign_out(self, session: Session) -> None:
        await self.accounts.end_session(session.id)
        await self.audit.record(session.actor, "web", "logout")


async def login_link(settings: Settings, staff: Staff, accounts: Accounts, audit: Audit, channel: str, user_id: str,
                     by: str, via: str) -> str | None:
    """A one-time sign-in URL (`/dangnhap`, `web login-link`); None when the person is not staff."""
    if not await staff.is_staff(channel, user_id):
        return None
    token = await accounts.create_link(channel, user_id, by, LINK_TTL)
    await audit.record(by, via, "login_link", f"{channel}:{user_id}")
    return f"{settings.public_base.rstrip('/')}/admin/login?t={token}"
