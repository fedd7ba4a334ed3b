"""The one mechanism for multi-step conversations: what a person's next message goes to, and the
draft a feature keeps for them meanwhile ("now send the text of the announcement").

A person is (channel, chat, user). Each feature declares, when it is built, its steps by name
(`declare(owner, steps={name: handler}, draft=DraftClass, restart="command")`; a name or an owner
declared twice is refused, like the router refuses a clash). `expect(inbound, "name", arg)` sends
the person's next message to that handler, with `arg` (a short string: a plan id, a broadcast id)
as the Turn's args. A step set with `owner` is valid only while that owner's draft is still the
one it was set for: when the draft was replaced (the command started again) or ended (cancelled
by a button), the waiting step is dropped and the message is handled as if nothing waited.

State survives a restart: each person's step and drafts (dataclasses, stored with
`dataclasses.asdict` as JSON) are one row of `flows`, written through by `save()`, which the
dialogue calls after every message it handled. Reads never touch the database: every row is
loaded into memory at start (`load()`), and a person with no flow costs one dict lookup. A state
untouched for `ttl` seconds has expired: its drafts are gone, and a message that a step was
waiting for gets `Next(step=None)`, for which the dialogue says so in one sentence and offers to
start again (the owner's `restart` command). Without a database (the CLI, benches) it is memory only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.channels.base import Inbound
from bot.conversation.routes import Handler, RouteClash
from bot.store.db import Database

log = logging.getLogger(__name__)

Who = tuple[str, str, str]
DEFAULT_TTL = 24 * 3600.0
KEEP_EXPIRED = 7 * 86_400.0  # an expired state is kept this long to say "expired" instead of misreading
SWEEP_EVERY = 3600.0  # seconds between sweeps of expired states (memory and table)


def who(inbound: Inbound) -> Who:
    return (inbound.channel, inbound.chat_id, inbound.user_id)


@dataclass(frozen=True)
class Next:
    """What the person's message goes to: `step` with `arg` as the Turn's args, or, when `step` is
    None, nothing any more (the step expired, or this version has no step of that name)."""

    step: Handler | None
    arg: str = ""
    owner: str | None = None
    restart: str | None = None  # the command that starts the owner's flow again
    name: str | None = None  # the step's name (Routes.audited keys a typed step as "step:<name>")


@dataclass
class _Person:
    step: str | None = None
    arg: str = ""
    owner: str | None = None
    bound: int | None = None  # the owner's draft number the step was set for (None: no draft then)
    drafts: dict[str, tuple[int, Any]] = field(default_factory=dict)  # owner → (number, draft)
    touched: float = 0.0  # last time a step or draft was set; the expiry counts from here
    saved: str | None = None  # the JSON last written (None: no row)

    def empty(self) -> bool:
        return self.step is None and not self.drafts

    def to_json(self) -> str:
        drafts = {owner: {"n": number, "data": dataclasses.asdict(draft)}
                  for owner, (number, draft) in sorted(self.drafts.items())}
        return json.dumps({"step": self.step, "arg": self.arg, "owner": self.owner, "bound": self.bound,
                           "drafts": drafts, "touched": self.touched}, ensure_ascii=False, sort_keys=True)


class Flows:
    def __init__(self, db: Database | None = None, ttl: float = DEFAULT_TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.ttl = float(ttl)
        self.clock = clock
        self._people: dict[Who, _Person] = {}
        self._steps: dict[str, tuple[str, Handler]] = {}  # name → (owner, handler)
        self._kinds: dict[str, type] = {}  # owner → draft dataclass
        self._restart: dict[str, str] = {}  # owner → command
        self._owners: set[str] = set()
        self._swept = clock()

    # ------------------------------------------------------------------ declaring

    def declare(self, owner: str, *, steps: Mapping[str, Handler] | None = None, draft: type | None = None,
                restart: str | None = None) -> None:
        """A feature's step handlers by name, its draft dataclass, and the command that starts its
        flow again; RouteClash (and nothing added) if the owner or a step name is taken."""
        steps = dict(steps or {})
        if owner in self._owners:
            raise RouteClash(f"{owner}: flows already declared for this owner")
        for name in steps:
            if name in self._steps:
                raise RouteClash(f"{owner}: step {name!r} already belongs to {self._steps[name][0]}")
        if draft is not None and not dataclasses.is_dataclass(draft):
            raise TypeError(f"{owner}: a draft must be a dataclass (it is stored as JSON)")
        self._owners.add(owner)
        self._steps.update({name: (owner, handler) for name, handler in steps.items()})
        if draft is not None:
            self._kinds[owner] = draft
        if restart is not None:
            self._restart[owner] = restart

    def restart_command(self, owner: str) -> str | None:
        return self._restart.get(owner)

    # ------------------------------------------------------------------ drafts

    def start(self, owner: str, inbound: Inbound, draft: Any) -> Any:
        """Begin (or restart) `owner`'s draft for this person; returns the draft."""
        kind = self._kinds.get(owner)
        if kind is None or type(draft) is not kind:
            raise TypeError(f"{owner}: declare the draft class ({type(draft).__name__}) with Flows.declare")
        person = self._live(who(inbound), create=True)
        assert person is not None
        previous = person.drafts.get(owner)
        person.drafts[owner] = ((previous[0] + 1) if previous else 1, draft)
        person.touched = self.clock()
        return draft

    def draft(self, owner: str, inbound: Inbound) -> Any | None:
        person = self._live(who(inbound))
        found = person.drafts.get(owner) if person is not None else None
        return None if found is None else found[1]

    def end(self, owner: str, inbound: Inbound) -> Any | None:
        """Forget `owner`'s draft for this person (and a step waiting on it); returns it."""
        person = self._live(who(inbound))
        if person is None:
            return None
        found = person.drafts.pop(owner, None)
        if person.owner == owner:
            self._clear_step(person)
        return None if found is None else found[1]

    # ------------------------------------------------------------------ steps

    def expect(self, inbound: Inbound, step: str, arg: str = "", *, owner: str | None = None) -> None:
        """Send this person's next message in this chat to the step named `step` (with `arg`);
        with `owner`, only while that owner's draft is still the one it is now."""
        if step not in self._steps:
            raise KeyError(f"step {step!r} was not declared (Flows.declare)")
        person = self._live(who(inbound), create=True)
        assert person is not None
        current = person.drafts.get(owner) if owner is not None else None
        person.step, person.arg, person.owner = step, str(arg), owner
        person.bound = current[0] if current else None
        person.touched = self.clock()

    def waiting(self, inbound: Inbound) -> bool:
        person = self._people.get(who(inbound))
        return person is not None and person.step is not None

    def take(self, inbound: Inbound) -> Next | None:
        """What this person's message goes to, removed; None when nothing (valid) waits."""
        person = self._people.get(who(inbound))
        if person is None or person.step is None:
            return None
        name, arg, owner, bound = person.step, person.arg, person.owner, person.bound
        expired = self._expired(person)
        self._clear_step(person)
        if expired:
            person.drafts.clear()
        found = self._steps.get(name)
        if expired or found is None:
            if found is None:
                log.warning("flows: %s user %s waited on step %r, which this version does not have",
                            inbound.channel, inbound.user_id, name)
            return Next(None, arg, owner, self._restart.get(owner or (found[0] if found else "")), name)
        if owner is not None:
            current = person.drafts.get(owner)
            if (current[0] if current else None) != bound:
                return None  # the draft was replaced or ended meanwhile
        return Next(found[1], arg, owner, self._restart.get(owner or found[0]), name)

    def drop_step(self, inbound: Inbound, owner: str | None = None) -> None:
        """A command interrupts whatever step was waiting (drafts stay until their owner ends them);
        with `owner`, only a step of that owner."""
        person = self._people.get(who(inbound))
        if person is not None and (owner is None or person.owner == owner):
            self._clear_step(person)

    # ------------------------------------------------------------------ storage

    async def load(self) -> int:
        """Read every stored state into memory (after every feature declared); returns how many."""
        if self.db is None:
            return 0
        now = self.clock()
        await self.db.write("DELETE FROM flows WHERE expires_at < ?", (now - KEEP_EXPIRED,))
        rows = await self.db.fetchall("SELECT channel, chat_id, user_id, state FROM flows")
        for row in rows:
            key: Who = (row["channel"], row["chat_id"], row["user_id"])
            person = self._decode(key, row["state"])
            if person is not None:
                self._people[key] = person
        if self._people:
            log.info("flows: %d conversations in progress restored", len(self._people))
        return len(self._people)

    async def save(self, inbound: Inbound) -> None:
        """Write this person's state through to the table if it changed (the dialogue calls it
        after each message; a person with no flow costs a dict lookup)."""
        key = who(inbound)
        person = self._people.get(key)
        if person is not None:
            await self._write(key, person)
        now = self.clock()
        if now - self._swept >= SWEEP_EVERY:
            self._swept = now
            await self._sweep(now)

    async def forget(self, channel: str, user_id: str) -> int:
        """Erase one person's states in every chat (memory and table); returns how many."""
        gone = [key for key in self._people if key[0] == channel and key[2] == user_id]
        for key in gone:
            del self._people[key]
        if self.db is not None:
            await self.db.write("DELETE FROM flows WHERE channel = ? AND user_id = ?", (channel, user_id))
        return len(gone)

    async def _write(self, key: Who, person: _Person) -> None:
        if person.empty():
            del self._people[key]
            if person.saved is not None and self.db is not None:
                await self.db.write("DELETE FROM flows WHERE channel = ? AND chat_id = ? AND user_id = ?", key)
            return
        state = person.to_json()
        if state == person.saved:
            return
        person.saved = state
        if self.db is not None:
            await self.db.write(
                "INSERT INTO flows (channel, chat_id, user_id, state, updated_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel, chat_id, user_id) DO UPDATE SET"
                " state = excluded.state, updated_at = excluded.updated_at, expires_at = excluded.expires_at",
                (*key, state, person.touched, person.touched + self.ttl),
            )

    async def _sweep(self, now: float) -> None:
        """Forget expired states: at once for people who wait on no step (nothing left to tell them),
        after KEEP_EXPIRED for the others."""
        stale = [k for k, p in self._people.items()
                 if self._expired(p, now) and (p.step is None or now - p.touched > self.ttl + KEEP_EXPIRED)]
        for key in stale:
            del self._people[key]
        if self.db is not None:
            await self.db.write("DELETE FROM flows WHERE expires_at < ? AND json_extract(state, '$.step') IS NULL"
                                " OR expires_at < ?", (now, now - KEEP_EXPIRED))

    def _decode(self, key: Who, state: str) -> _Person | None:
        try:
            data = json.loads(state)
            person = _Person(step=data.get("step"), arg=str(data.get("arg") or ""), owner=data.get("owner"),
                             bound=data.get("bound"), touched=float(data.get("touched") or 0.0), saved=state)
            for owner, item in (data.get("drafts") or {}).items():
                kind = self._kinds.get(owner)
                if kind is None:
                    log.warning("flows: a stored draft of %r is dropped: no such flow in this version", owner)
                    continue
                person.drafts[owner] = (int(item["n"]), _rebuild(kind, item["data"]))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("flows: the stored state of %s user %s is unreadable and dropped (%s)", key[0], key[2], exc)
            return None
        return person

    # ------------------------------------------------------------------ helpers

    def _live(self, key: Who, create: bool = False) -> _Person | None:
        """This person's state; an expired one is emptied first (its drafts are no longer valid)."""
        person = self._people.get(key)
        if person is not None and self._expired(person):
            person.drafts.clear()
            if create:  # starting anew: the expired step must not come back to life with the new draft
                self._clear_step(person)
        if person is None and create:
            person = self._people[key] = _Person()
        return person

    def _expired(self, person: _Person, now: float | None = None) -> bool:
        return (self.clock() if now is None else now) - person.touched > self.ttl

    @staticmethod
    def _clear_step(person: _Person) -> None:
        person.step, person.arg, person.owner, person.bound = None, "", None, None


def _rebuild(kind: type, data: dict[str, Any]) -> Any:
    """A draft dataclass from its stored fields (a field added since takes its default)."""
    names = {f.name for f in dataclasses.fields(kind)}
    return kind(**{k: v for k, v in data.items() if k in names})
