"""Sign-in links, browser sessions, dashboard roles and API tokens (tables of migration 012).

Only digests of secrets are stored (`digest`): a copy of the database signs nobody in.
A link is claimed with one UPDATE guarded by `used_at IS NULL AND expires_at > now`, so two
clicks (or two processes) cannot both sign in with it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.store.db import Database

ROLES = ("viewer", "sender", "editor", "admin")  # each may do what the ones before it may


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


SEEN_EVERY = 60.0  # seconds: how stale a session's last_seen may get before it is written again


@dataclass(frozen=True)
class Session:
    id: int
    channel: str
    user_id: str
    csrf: str
    created_at: float
    expires_at: float

    @property
    def actor(self) -> str:
        return f"{self.channel}:{self.user_id}"


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    role: str
    created_at: float
    last_used: float | None
    revoked_at: float | None


class Accounts:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    # ------------------------------------------------------------------ one-time links

    async def create_link(self, channel: str, user_id: str, created_by: str, ttl: float) -> str:
        """A new link token (returned once, stored as a digest)."""
        token, now = new_secret(), self.clock()
        await self.db.write(
            "INSERT INTO web_links (token_hash, channel, user_id, created_by, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)", (digest(token), channel, user_id, created_by, now, now + ttl))
        return token

    async def claim_link(self, token: str) -> tuple[str, str] | None:
        """(channel, user_id) of a valid unused link, now used; None: unknown, used or expired."""
        now = self.clock()
        row = await self.db.write_returning(
            "UPDATE web_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?"
            " RETURNING channel, user_id", (now, digest(token), now))
        return (row["channel"], row["user_id"]) if row else None

    async def link_state(self, token: str) -> str:
        """"valid", "used", "expired" or "unknown" (for the sign-in page's sentence)."""
        row = await self.db.fetchone("SELECT used_at, expires_at FROM web_links WHERE token_hash = ?",
                                     (digest(token),))
        if row is None:
            return "unknown"
        if row["used_at"] is not None:
            return "used"
        return "expired" if row["expires_at"] <= self.clock() else "valid"

    # ------------------------------------------------------------------ sessions

    async def open_session(self, channel: str, user_id: str, ttl: float) -> tuple[str, Session]:
        """A new session: its cookie value (returned once) and the session."""
        token, csrf, now = new_secret(), new_secret(), self.clock()
        session_id = await self.db.write(
            "INSERT INTO web_sessions (token_hash, channel, user_id, csrf, created_at, expires_at, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)", (digest(token), channel, user_id, csrf, now, now + ttl, now))
        return token, Session(session_id, channel, user_id, csrf, now, now + ttl)

    async def session(self, token: str, idle: float | None = None) -> Session | None:
        """The live session of a cookie value; None when unknown, ended, expired, or unused for `idle`
        seconds (then it is ended). Using it moves `last_seen` (written at most once a minute, so a page
        view is not a write)."""
        now = self.clock()
        row = await self.db.fetchone(
            "SELECT id, channel, user_id, csrf, created_at, expires_at, last_seen FROM web_sessions"
            " WHERE token_hash = ? AND ended_at IS NULL AND expires_at > ?", (digest(token), now))
        if row is None:
            return None
        values = dict(row)
        last_seen = values.pop("last_seen")
        if idle is not None and last_seen <= now - idle:
            await self.end_session(values["id"])  # idle: over for good, like a logout
            return None
        if last_seen < now - SEEN_EVERY:
            await self.db.write("UPDATE web_sessions SET last_seen = ? WHERE id = ?", (now, values["id"]))
        return Session(**values)

    async def end_session(self, session_id: int) -> None:
        await self.db.write("UPDATE web_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
                            (self.clock(), session_id))

    async def end_sessions_of(self, channel: str, user_id: str) -> int:
        """Sign a staff member out everywhere (when their rights go); how many sessions ended."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute(
                "UPDATE web_sessions SET ended_at = ? WHERE channel = ? AND user_id = ? AND ended_at IS NULL",
                (self.clock(), channel, user_id))
            return max(cursor.rowcount, 0)

    # ------------------------------------------------------------------ roles

    async def role_of(self, channel: str, user_id: str) -> str | None:
        return await self.db.fetchval("SELECT role FROM web_roles WHERE channel = ? AND user_id = ?",
                                      (channel, user_id))

    async def set_role(self, channel: str, user_id: str, role: str, by: str) -> None:
        if role not in ROLES:
            raise ValueError(role)
        await self.db.write(
            "INSERT INTO web_roles (channel, user_id, role, set_by, set_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (channel, user_id) DO UPDATE SET role = excluded.role, set_by = excluded.set_by,"
            " set_at = excluded.set_at", (channel, user_id, role, by, self.clock()))

    async def roles(self) -> dict[tuple[str, str], str]:
        rows = await self.db.fetchall("SELECT channel, user_id, role FROM web_roles")
        return {(r["channel"], r["user_id"]): r["role"] for r in rows}

    # ------------------------------------------------------------------ API tokens

    async def create_token(self, name: str, role: str) -> str:
        if role not in ROLES:
            raise ValueError(role)
        token = "lp_" + new_secret()
        await self.db.write("INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
                            (name, role, digest(token), self.clock()))
        return token

    async def token(self, token: str) -> ApiToken | None:
        row = await self.db.write_returning(
            "UPDATE api_tokens SET last_used = ? WHERE token_hash = ? AND revoked_at IS NULL"
            " RETURNING id, name, role, created_at, last_used, revoked_at", (self.clock(), digest(token)))
        return ApiToken(**dict(row)) if row else None

    async def tokens(self) -> list[ApiToken]:
        rows = await self.db.fetchall(
            "SELECT id, name, role, created_at, last_used, revoked_at FROM api_tokens ORDER BY id")
        return [ApiToken(**dict(r)) for r in rows]

    async def revoke_token(self, name: str) -> bool:
        async with self.db.transaction() as tx:
            cursor = await tx.execute("UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                                      (self.clock(), name))
            return cursor.rowcount == 1
