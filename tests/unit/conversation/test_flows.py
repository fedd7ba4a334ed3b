"""Flows on real SQLite files: named steps and dataclass drafts written through, a Flows reopened on
the same file continues the step; expiry; clashes refused; erasure; no database read for a person
with no flow. And the rate-limit windows, which survive a restart the same way."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app.wiring import build_core
from bot.channels.base import Inbound, Reply
from bot.conversation.flows import Flows
from bot.conversation.ratelimit import RateLimiter
from bot.conversation.routes import RouteClash, Turn
from bot.kernel.config import Settings
from bot.kernel.messages import Messages
from bot.store.db import open_database
from tests.conftest import CONTENT

PERSON = Inbound(channel="telegram", chat_id="7", user_id="7")


@dataclass
class Draft:
    topic: str | None = None
    words: list[str] | None = None


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _echo(turn: Turn) -> list[Reply]:
    return [Reply(f"echo {turn.args}: {turn.inbound.text}")]


def flows_for(db=None, clock: Clock | None = None, ttl: float = 3600) -> Flows:
    flows = Flows(db, ttl=ttl, clock=clock or Clock())
    flows.declare("f", steps={"f.echo": _echo}, draft=Draft, restart="batdau")
    return flows


def test_a_step_set_for_a_replaced_draft_is_dropped():
    flows = flows_for()
    flows.start("f", PERSON, Draft())
    flows.expect(PERSON, "f.echo", owner="f")
    flows.start("f", PERSON, Draft())  # the command started again
    assert flows.take(PERSON) is None
    flows.expect(PERSON, "f.echo")  # not bound to a draft
    found = flows.take(PERSON)
    assert found is not None and found.step is _echo and flows.take(PERSON) is None
    flows.expect(PERSON, "f.echo", owner="f")
    flows.end("f", PERSON)  # cancelled: the step bound to it goes too
    assert flows.take(PERSON) is None and flows.draft("f", PERSON) is None


def test_clashes_and_undeclared_names_are_refused():
    flows = flows_for()
    with pytest.raises(RouteClash, match="already belongs to f"):
        flows.declare("g", steps={"f.echo": _echo})
    with pytest.raises(RouteClash, match="already declared"):
        flows.declare("f", steps={"f.other": _echo})
    assert "f.other" not in flows._steps  # nothing of a refused declaration is added
    with pytest.raises(KeyError, match="not declared"):
        flows.expect(PERSON, "f.missing")
    with pytest.raises(TypeError):
        flows.start("f", PERSON, object())  # a draft must be the declared dataclass
    with pytest.raises(TypeError):
        Flows().declare("h", draft=dict)


async def test_a_flows_reopened_on_the_same_file_continues_the_step_with_its_draft(tmp_path: Path):
    path = tmp_path / "bot.sqlite3"
    db = await open_database(path)
    flows = flows_for(db)
    draft = flows.start("f", PERSON, Draft())
    draft.topic, draft.words = "ha-tang", ["đèn", "đường"]  # changed in place, as features do
    flows.expect(PERSON, "f.echo", "42", owner="f")
    await flows.save(PERSON)
    await db.close()
    [row] = sqlite3.connect(path).execute("SELECT state FROM flows").fetchall()
    assert json.loads(row[0])["drafts"]["f"]["data"] == {"topic": "ha-tang", "words": ["đèn", "đường"]}

    db = await open_database(path)  # the restart
    again = flows_for(db)
    assert await again.load() == 1
    assert again.draft("f", PERSON) == Draft("ha-tang", ["đèn", "đường"])
    found = again.take(PERSON)
    assert found is not None and found.step is _echo and found.arg == "42" and found.restart == "batdau"
    assert await found.step(Turn(PERSON, 1, args=found.arg)) == [Reply("echo 42: ")]
    again.end("f", PERSON)
    await again.save(PERSON)  # nothing left: the row goes
    assert await db.fetchval("SELECT count(*) FROM flows") == 0
    await db.close()


async def test_an_expired_step_says_so_once_even_after_a_restart(tmp_path: Path):
    path, clock = tmp_path / "bot.sqlite3", Clock()
    db = await open_database(path)
    flows = flows_for(db, clock)
    flows.start("f", PERSON, Draft("x"))
    flows.expect(PERSON, "f.echo", owner="f")
    await flows.save(PERSON)
    await db.close()

    clock.now += 3601  # the service was down longer than the expiry
    db = await open_database(path)
    again = flows_for(db, clock)
    await again.load()
    assert again.draft("f", PERSON) is None  # an expired draft is gone
    found = again.take(PERSON)
    assert found is not None and found.step is None and found.restart == "batdau"
    assert again.take(PERSON) is None  # said once; then the next message is an ordinary one
    await again.save(PERSON)
    assert await db.fetchval("SELECT count(*) FROM flows") == 0
    await db.close()


async def test_an_unreadable_or_unknown_state_is_dropped_with_a_log_line(tmp_path: Path, caplog):
    db = await open_database(tmp_path / "bot.sqlite3")
    flows = flows_for(db)
    flows.expect(PERSON, "f.echo")
    await flows.save(PERSON)
    other = Inbound(channel="zalo", chat_id="8", user_id="8")
    await db.write("INSERT INTO flows VALUES ('zalo', '8', '8', 'not json', 0, 9e12)")
    state = json.dumps({"step": "old.step", "touched": flows.clock(), "drafts": {"gone": {"n": 1, "data": {}}}})
    await db.write("UPDATE flows SET state = ? WHERE channel = 'telegram'", (state,))
    again = flows_for(db)
    assert await again.load() == 1
    assert "unreadable" in caplog.text and "no such flow" in caplog.text
    assert again.take(other) is None
    found = again.take(PERSON)  # a step this version no longer has: "expired", not misread as a question
    assert found is not None and found.step is None and "does not have" in caplog.text
    await db.close()


async def test_forget_erases_memory_and_table(tmp_path: Path):
    db = await open_database(tmp_path / "bot.sqlite3")
    flows = flows_for(db)
    flows.start("f", PERSON, Draft("riêng tư"))
    await flows.save(PERSON)
    assert await flows.forget("telegram", "7") == 1
    assert flows.draft("f", PERSON) is None and await db.fetchval("SELECT count(*) FROM flows") == 0
    await db.close()


async def test_a_person_with_no_flow_costs_no_flows_query(tmp_path: Path):
    core = await build_core(Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT))
    statements: list[str] = []
    await core.db.conn.set_trace_callback(statements.append)
    try:
        for text in ("cảm ơn", "quy vi nguoi ngheo la gi"):
            await core.dialogue.handle(Inbound("telegram", "11", "11", text=text))
        await core.dialogue.handle(Inbound("telegram", "12", "12", text="/canbo"))  # a flow: written through
    finally:
        await core.db.conn.set_trace_callback(None)
        await core.close()
    touching = [s for s in statements if "flows" in s]
    assert len(touching) == 1 and touching[0].startswith("INSERT INTO flows") and "'12'" in touching[0], touching


# ---------------------------------------------------------------------- rate limit


async def test_rate_limit_windows_survive_a_restart(tmp_path: Path):
    path, clock = tmp_path / "bot.sqlite3", Clock()
    db = await open_database(path)
    limiter = RateLimiter(5, 60, Messages({}), clock=clock, db=db)
    assert [limiter.allow("telegram", "1") for _ in range(6)] == ["ok"] * 5 + ["warn"]
    assert limiter.allow("telegram", "2") == "ok"
    await limiter.flush()
    await db.close()

    clock.now += 10
    db = await open_database(path)
    again = RateLimiter(5, 60, Messages({}), clock=clock, db=db)
    assert await again.load() == 2
    assert again.allow("telegram", "1") == "drop"  # still over, and already told
    assert [again.allow("telegram", "2") for _ in range(5)] == ["ok"] * 4 + ["warn"]
    clock.now += 61  # the window moved on
    assert again.allow("telegram", "1") == "ok"
    await again.forget("telegram", "2")
    await again.flush()
    rows = await db.fetchall("SELECT user_id, stamps FROM rate_limits")
    assert [r["user_id"] for r in rows] == ["1"] and len(json.loads(rows[0]["stamps"])) == 1
    await db.close()


async def test_xoadulieu_erases_the_conversation_state_and_the_rate_limit_window(tmp_path: Path):
    core = await build_core(Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT))
    person = Inbound("telegram", "21", "21", display_name="Cô Ba")

    async def send(text: str = "", option: str | None = None) -> None:
        await core.dialogue.handle(Inbound(person.channel, person.chat_id, person.user_id, text=text, option=option,
                                           kind="option" if option else "text", display_name="Cô Ba"))

    try:
        await send("/gopy")
        await send(option="pet:t:moi-truong")
        await send("phuong phan rang")  # a draft holding the place, a step waiting for the text
        await core.handoff.limiter.flush()
        assert await core.db.fetchval("SELECT count(*) FROM flows WHERE user_id = '21'") == 1
        assert await core.db.fetchval("SELECT count(*) FROM rate_limits WHERE user_id = '21'") == 1
        await send("/xoadulieu")
        await send(option="prv:y")
        await core.handoff.limiter.flush()
        assert core.flows.draft("handoff.petitions", person) is None and not core.flows.waiting(person)
        assert await core.db.fetchval("SELECT count(*) FROM flows WHERE user_id = '21'") == 0
        assert await core.db.fetchval("SELECT count(*) FROM rate_limits WHERE user_id = '21'") == 0
    finally:
        await core.close()
