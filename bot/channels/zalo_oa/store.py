"""The OA channel's own tables (migration 011): tokens, pending consents, followers' windows, seen
events and the daily quota counts. Their only SQL.

Takes the service's `Database` by its shape (adapters import bot.kernel only): `fetchone`,
`fetchall`, `write`, `transaction()`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

EVENT_DAYS = 8  # seen events are kept this long (Zalo repeats within minutes; 8 days is plenty)


class Db(Protocol):
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...


@dataclass(frozen=True)
class Tokens:
    refresh_token: str
    access_token: str | None
    expires_at: float
    seeded_from: str | None = None
    failed: bool = False


def local_day(now: float, tz: ZoneInfo) -> str:
    """The day quotas are counted by (YYYY-MM-DD, in TIMEZONE)."""
    return datetime.fromtimestamp(now, tz).strftime("%Y-%m-%d")


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


Rotate = Callable[[Tokens], Awaitable[Tokens]]


class OAStore:
    def __init__(self, db: Db, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._followers: dict[str, tuple[float | None, bool | None]] = {}  # not yet written
        self._counts: dict[tuple[str, str], list[int]] = {}  # (day, kind) → [sent, refused], not yet written
        self._events: list[tuple[str, float]] = []  # event keys not yet written

    # ------------------------------------------------------------------ tokens

    async def tokens(self, seed: str | None) -> Tokens | None:
        """The stored tokens; the seed (ZALO_OA_REFRESH_TOKEN) only when nothing was stored from it."""
        return _current(await self.db.fetchone("SELECT * FROM zalo_oa_tokens WHERE id = 1"), seed)

    async def rotate(self, seed: str | None, rotate: Rotate, fresh_enough: str | None = None,
                     refused: type[Exception] = LookupError) -> Tokens:
        """Read the current tokens, exchange them (`rotate`: the OAuth call) and store what came back,
        all inside one write transaction: another process refreshing at the same moment waits for it,
        then reads the new token, so a token is never presented twice. `fresh_enough`: the access
        token the caller found wanting; a different, valid one stored meanwhile is returned as it is.
        When `rotate` raises `refused`, the chain is marked failed (so no restart presents it again)
        and the exception raised on."""
        failure: Exception | None = None
        async with self.db.transaction() as tx:
            cursor = await tx.execute("SELECT * FROM zalo_oa_tokens WHERE id = 1")
            row = await cursor.fetchone()
            current = _current(row, seed)
            if current is None:
                raise LookupError("no refresh token")
            if current.failed:
                return current
            if current.access_token and current.access_token != fresh_enough \
                    and current.expires_at > self.clock() + 60:
                return current  # another process rotated since the caller looked
            try:
                fresh = await rotate(current)
            except refused as exc:
                failure = exc
                await _save(tx, current, current.seeded_from, self.clock())
                await tx.execute("UPDATE zalo_oa_tokens SET failed_at = ?, failure = ? WHERE id = 1",
                                 (self.clock(), str(exc)[:200]))
            else:
                await _save(tx, fresh, current.seeded_from, self.clock())
                return fresh
        assert failure is not None
        raise failure

    async def store_first(self, fresh: Tokens) -> None:
        """Tokens from the consent callback: a new chain, not seeded from the environment."""
        async with self.db.transaction() as tx:
            await _save(tx, fresh, None, self.clock())

    async def save_consent(self, state: str, verifier: str) -> None:
        now = self.clock()
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM zalo_oa_consents WHERE created_at < ?", (now - 86400,))
            await tx.execute("INSERT INTO zalo_oa_consents (state, code_verifier, created_at) VALUES (?, ?, ?)",
                             (state, verifier, now))

    async def take_consent(self, state: str) -> str | None:
        """The verifier of a consent link, once (a second callback with the same state gets None)."""
        async with self.db.transaction() as tx:
            cursor = await tx.execute("DELETE FROM zalo_oa_consents WHERE state = ? AND created_at >= ?"
                                      " RETURNING code_verifier", (state, self.clock() - 86400))
            row = await cursor.fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ followers and events

    def seen(self, key: str) -> None:
        """A webhook event taken (its msg_id, or name:user:timestamp), written with the next `flush`."""
        self._events.append((key, self.clock()))

    async def recent_events(self, limit: int) -> list[str]:
        """The keys of the newest events taken, oldest first (the channel's memory after a restart)."""
        rows = await self.db.fetchall("SELECT key FROM zalo_oa_events ORDER BY received_at DESC LIMIT ?", (limit,))
        return [r["key"] for r in reversed(rows)]

    def note(self, user_id: str, interaction: float | None, following: bool | None = None) -> None:
        """A follower's interaction or (un)follow, written with the next `flush` (the service flushes
        every second: a crash loses at most that second of interaction times, which Zalo enforces anyway)."""
        was_at, was_following = self._followers.get(user_id, (None, None))
        self._followers[user_id] = (interaction or was_at, was_following if following is None else following)

    def count(self, day: str, kind: str, *, refused: bool = False) -> None:
        """One message sent (or refused on quota) today, written with the next `flush`."""
        counts = self._counts.setdefault((day, kind), [0, 0])
        counts[1 if refused else 0] += 1

    async def flush(self) -> None:
        followers, self._followers = self._followers, {}
        counts, self._counts = self._counts, {}
        events, self._events = self._events, []
        if not followers and not counts and not events:
            return
        now = self.clock()
        try:
            async with self.db.transaction() as tx:
                await tx.executemany("INSERT OR IGNORE INTO zalo_oa_events (key, received_at) VALUES (?, ?)", events)
                for user_id, (interaction, following) in followers.items():
                    await _follower(tx, user_id, interaction, following, now)
                for (day, kind), (sent, refused) in counts.items():
                    await tx.execute(
                        "INSERT INTO zalo_oa_quota (day, kind, sent, refused) VALUES (?, ?, ?, ?) ON CONFLICT"
                        " (day, kind) DO UPDATE SET sent = sent + excluded.sent, refused = refused + excluded.refused",
                        (day, kind, sent, refused))
        except BaseException:
            self._events[:0] = events
            for user_id, value in followers.items():  # kept for the next flush
                self._followers.setdefault(user_id, value)
            for key, (sent, refused) in counts.items():
                mine = self._counts.setdefault(key, [0, 0])
                mine[0] += sent
                mine[1] += refused
            raise

    async def set_following(self, user_ids: Sequence[str], following: bool) -> None:
        for user_id in user_ids:
            self.note(user_id, None, following)
        await self.flush()

    async def last_interaction(self, user_id: str) -> float | None:
        pending = self._followers.get(user_id)
        if pending is not None and pending[0] is not None:
            return pending[0]
        row = await self.db.fetchone("SELECT last_interaction FROM zalo_oa_followers WHERE user_id = ?", (user_id,))
        return row[0] if row else None

    async def prune(self) -> None:
        await self.db.write("DELETE FROM zalo_oa_events WHERE received_at < ?", (self.clock() - EVENT_DAYS * 86400,))

    async def quota(self, day: str) -> dict[str, dict[str, int]]:
        await self.flush()
        rows = await self.db.fetchall("SELECT kind, sent, refused FROM zalo_oa_quota WHERE day = ?", (day,))
        return {r["kind"]: {"sent": r["sent"], "refused": r["refused"]} for r in rows}


def _current(row: Any, seed: str | None) -> Tokens | None:
    """The stored chain, unless the environment holds a refresh token it was not started from (the
    operator set a new one); tokens from the consent callback (no seed) win over the environment."""
    if row is not None and (seed is None or row["seeded_from"] in (None, fingerprint(seed))):
        return _tokens(row)
    return Tokens(seed, None, 0.0, fingerprint(seed)) if seed is not None else None


def _tokens(row: Any) -> Tokens:
    return Tokens(row["refresh_token"], row["access_token"], float(row["expires_at"] or 0), row["seeded_from"],
                  failed=row["failed_at"] is not None)


async def _save(tx: Any, fresh: Tokens, seeded_from: str | None, now: float) -> None:
    await tx.execute(
        "INSERT INTO zalo_oa_tokens (id, refresh_token, access_token, expires_at, seeded_from, rotated_at)"
        " VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET refresh_token = excluded.refresh_token,"
        " access_token = excluded.access_token, expires_at = excluded.expires_at,"
        " seeded_from = excluded.seeded_from, rotated_at = excluded.rotated_at, failed_at = NULL, failure = NULL",
        (fresh.refresh_token, fresh.access_token, fresh.expires_at, seeded_from, now))


async def _follower(tx: Any, user_id: str, interaction: float | None, following: bool | None, now: float) -> None:
    await tx.execute(
        "INSERT INTO zalo_oa_followers (user_id, following, last_interaction, changed_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET"
        " following = COALESCE(?, zalo_oa_followers.following),"
        " last_interaction = COALESCE(excluded.last_interaction, zalo_oa_followers.last_interaction),"
        " changed_at = excluded.changed_at",
        (user_id, 1 if following is None else int(following), interaction, now,
         None if following is None else int(following)))
