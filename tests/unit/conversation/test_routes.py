"""The route table refuses clashes and orders hooks by declared priority (flows: test_flows.py)."""

from __future__ import annotations

import pytest

from bot.channels.base import Reply
from bot.conversation.routes import Routes, RouteTable, Turn


async def _none(turn: Turn) -> list[Reply] | None:
    return None


async def _reply(turn: Turn) -> list[Reply]:
    return [Reply("x")]


def test_a_command_claimed_twice_is_refused_and_nothing_of_the_second_is_added():
    table = RouteTable()
    table.include(Routes(owner="a", commands={"gopy": _reply}))
    with pytest.raises(ValueError, match="'gopy' already belongs to a"):
        table.include(Routes(owner="b", commands={"gopy": _reply, "khac": _reply}, options={"b": _reply}))
    assert set(table.commands) == {"gopy"} and not table.options


def test_hooks_run_by_priority_and_equal_priorities_of_two_features_clash():
    table = RouteTable()

    async def late(turn: Turn) -> None:
        return None

    async def early(turn: Turn) -> None:
        return None

    table.include(Routes(owner="late", priority=50, text=(late,)))
    table.include(Routes(owner="early", priority=10, text=(early,)))
    assert table.text == [early, late]
    with pytest.raises(ValueError, match="priority 50"):
        table.include(Routes(owner="other", priority=50, text=(_none,)))
    table.include(Routes(owner="other", priority=50, group_text=(_none,)))  # another stage: no clash
