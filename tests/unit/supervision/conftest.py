"""The core both supervision test modules drive: staff and the staff chat set, one registered
group in phan-rang, the supervision service on the module's `clock` fixture."""

from __future__ import annotations

import dataclasses

import pytest

from bot.app.wiring import build_core
from bot.audiences.registration import GroupRecord, register_groups
from bot.kernel.config import Settings
from tests.unit.supervision.test_supervision import GROUP, STAFF, STAFF_CHAT, Clock


@pytest.fixture
async def core(settings: Settings, clock: Clock):
    core = await build_core(dataclasses.replace(settings, telegram_staff_ids=frozenset({STAFF}),
                                                telegram_staff_chat_id=STAFF_CHAT))
    assert core.supervision is not None
    core.supervision.clock = clock
    await register_groups(core.db, [GroupRecord("telegram", GROUP, "phan-rang", "Tổ dân phố 3")])
    yield core
    await core.close()
