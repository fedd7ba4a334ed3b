"""Staff authoring through the dialogue (bot/authoring.py), with a real SQLite file."""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app.wiring import Core, build_core
from bot.broadcasts.store import read_announcement
from bot.channels.base import Inbound, Reply
from bot.kernel.config import Settings
from tests.conftest import CONTENT, run_cli
from tests.unit.broadcasts.test_broadcasts import add_chat, population

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
STAFF = "900"


@pytest.fixture
async def core(settings: Settings):
    core = await build_core(dataclasses.replace(settings, telegram_staff_ids=frozenset({STAFF})))
    await population(core.db)
    yield core
    await core.close()


def text(body: str, user: str = STAFF, *, kind: str = "private", chat: str | None = None) -> Inbound:
    return Inbound("telegram", chat or user, user, text=body, chat_kind=kind,  # type: ignore[arg-type]
                   display_name="Cán bộ Hà")


def tap(data: str, user: str = STAFF) -> Inbound:
    return Inbound("telegram", user, user, kind="option", option=data, display_name="Cán bộ Hà")


def data_for(reply: Reply, label: str) -> str:
    return next(o.data for o in reply.options if o.label.startswith(label))


async def compose(core: Core, body: str = "Họp tổ dân phố lúc 19 giờ.", audience: str = "Cả nhóm",
                  place: str = "Toàn tỉnh") -> Reply:
    say = core.dialogue.say
    [prompt] = await core.dialogue.handle(text("/thongbao"))
    assert prompt.text == say("compose_prompt")
    [ask_audience] = await core.dialogue.handle(text(body))
    assert ask_audience.text == say("compose_audience")
    [ask_place] = await core.dialogue.handle(tap(data_for(ask_audience, audience)))
    assert ask_place.text == say("compose_locality")
    [preview] = await core.dialogue.handle(tap(data_for(ask_place, place)))
    return preview


def broadcast_id(reply: Reply) -> int:
    return int(re.search(r"#(\d+)", reply.text).group(1))  # type: ignore[union-attr]


async def outbox_count(core: Core, broadcast: int) -> int:
    return int(await core.db.fetchval("SELECT COUNT(*) FROM outbox WHERE broadcast = ?", (broadcast,)))


async def test_compose_preview_confirm_queues_once(core: Core):
    preview = await compose(core)
    assert "Họp tổ dân phố lúc 19 giờ." in preview.text
    assert "Số người nhận: 5" in preview.text  # 2 groups + 3 consenting residents (population())
    assert [o.label for o in preview.options] == ["Gửi ngay", "Hẹn giờ", "Lặp lại định kỳ", "Hủy"]
    assert all(len(o.data.encode()) <= 64 for o in preview.options)
    broadcast = broadcast_id(preview)
    assert await outbox_count(core, broadcast) == 0  # nothing queued before confirming
    send = data_for(preview, "Gửi ngay")
    [done] = await core.dialogue.handle(tap(send))
    assert f"#{broadcast}" in done.text and "5 người nhận" in done.text
    [again] = await core.dialogue.handle(tap(send))  # a second tap
    assert again.text == core.dialogue.say("compose_already", id=broadcast)
    assert await outbox_count(core, broadcast) == 5
    row = await core.db.fetchone("SELECT status, created_by, send_at FROM broadcasts WHERE id = ?", (broadcast,))
    assert row["status"] == "queued" and row["created_by"] == f"telegram:{STAFF}"
    assert abs(row["send_at"] - time.time()) < 5


async def test_audience_and_locality_narrow_the_recipients(core: Core):
    preview = await compose(core, audience="Người dân", place="Phường Phan Rang")
    assert "Số người nhận: 2" in preview.text and "Phường Phan Rang" in preview.text  # 10 and z1
    await core.dialogue.handle(tap(data_for(preview, "Gửi ngay")))
    rows = await core.db.fetchall("SELECT chat_id FROM outbox WHERE broadcast = ?", (broadcast_id(preview),))
    assert {r["chat_id"] for r in rows} == {"10", "z1"}


async def test_every_button_fits_telegram_callback_limit(core: Core):
    [_] = await core.dialogue.handle(text("/thongbao"))
    [ask_audience] = await core.dialogue.handle(text("Nội dung"))
    [ask_place] = await core.dialogue.handle(tap(data_for(ask_audience, "Các nhóm")))
    for reply in (ask_audience, ask_place):
        assert reply.options and all(len(o.data.encode("utf-8")) <= 64 for o in reply.options)


async def test_schedule_validates_local_time_and_queues_at_that_time(core: Core):
    say = core.dialogue.say
    preview = await compose(core, audience="Các nhóm")
    broadcast = broadcast_id(preview)
    [prompt] = await core.dialogue.handle(tap(data_for(preview, "Hẹn giờ")))
    assert "ngày/tháng/năm" in prompt.text
    [bad] = await core.dialogue.handle(text("mai 8 giờ"))
    assert bad.text.startswith('"mai 8 giờ"')
    [bad_date] = await core.dialogue.handle(text("31/02/2030 08:00"))
    assert bad_date.text.startswith('"31/02/2030 08:00"')
    [past] = await core.dialogue.handle(text("01/01/2020 08:00"))
    assert past.text.startswith(say("schedule_past", when="01/01/2020 08:00", example="")[:20])
    assert await outbox_count(core, broadcast) == 0
    when = datetime.fromtimestamp(time.time() + 2 * 86_400, TZ).replace(hour=8, minute=30, second=0, microsecond=0)
    [done] = await core.dialogue.handle(text(when.strftime("%d/%m/%Y %H:%M")))
    assert done.text == say("compose_scheduled", id=broadcast, count=2, when=when.strftime("%d/%m/%Y %H:%M"))
    assert await core.db.fetchval("SELECT send_at FROM broadcasts WHERE id = ?", (broadcast,)) == when.timestamp()
    # recipients are chosen when it falls due (08:30 in Asia/Ho_Chi_Minh), not before
    assert await core.broadcasts.resolve_due(when.timestamp() - 1) == when.timestamp()
    assert await outbox_count(core, broadcast) == 0
    assert (await core.broadcasts.report(broadcast)).as_json()["pending"] == 2
    # and it can be cancelled before it goes out
    [cancelled] = await core.dialogue.handle(text(f"/huythongbao {broadcast}"))
    assert cancelled.text == say("huythongbao_done", id=broadcast, dropped=2)
    [again] = await core.dialogue.handle(text(f"/huythongbao {broadcast}"))
    assert again.text == say("huythongbao_failed", id=broadcast)
    [late] = await core.dialogue.handle(tap(data_for(preview, "Gửi ngay")))
    assert late.text == say("compose_was_cancelled", id=broadcast)


async def test_cancel_button_drops_the_draft_but_never_a_queued_broadcast(core: Core):
    say = core.dialogue.say
    preview = await compose(core)
    [dropped] = await core.dialogue.handle(tap(data_for(preview, "Hủy")))
    assert dropped.text == say("compose_cancelled")
    [late] = await core.dialogue.handle(tap(data_for(preview, "Gửi ngay")))
    assert late.text == say("compose_was_cancelled", id=broadcast_id(preview))
    assert await outbox_count(core, broadcast_id(preview)) == 0
    sent = await compose(core)
    await core.dialogue.handle(tap(data_for(sent, "Gửi ngay")))
    [too_late] = await core.dialogue.handle(tap(data_for(sent, "Hủy")))
    assert too_late.text == say("compose_discard_too_late", id=broadcast_id(sent))
    assert await core.broadcasts.status(broadcast_id(sent)) == "queued"


async def test_baocao_reports_counts_and_failures(core: Core):
    say = core.dialogue.say
    preview = await compose(core)
    broadcast = broadcast_id(preview)
    await core.dialogue.handle(tap(data_for(preview, "Gửi ngay")))
    await core.db.write("UPDATE outbox SET status = 'sent' WHERE broadcast = ? AND chat_id IN ('-1', '10')",
                        (broadcast,))
    await core.db.write("UPDATE outbox SET status = 'failed', reason = 'gone: blocked' WHERE chat_id = '12'")
    group = await core.db.fetchval("SELECT id FROM chats WHERE chat_id = '-1'")
    await core.broadcasts.acknowledge(broadcast, group, "7", "Lan")
    [report] = await core.dialogue.handle(text(f"/baocao {broadcast}"))
    assert "Tổng số người nhận: 5" in report.text
    assert "Đã gửi: 2" in report.text and "Đang chờ: 2" in report.text
    assert "Không gửi được: 1 (gone: blocked: 1)" in report.text
    assert 'Nhóm đã bấm "Đã nhận": 1' in report.text
    assert "Phường Phan Rang" in report.text  # broken down by locality
    [usage] = await core.dialogue.handle(text("/baocao"))
    assert usage.text == say("baocao_usage")
    [missing] = await core.dialogue.handle(text("/baocao 999"))
    assert missing.text == say("baocao_missing", id=999)


@pytest.mark.parametrize("command", ["/thongbao", "/huythongbao 1", "/baocao 1"])
async def test_non_staff_is_refused_politely_and_logged(core: Core, command: str, caplog):
    caplog.set_level(logging.INFO, logger="bot.broadcasts.authoring")
    [reply] = await core.dialogue.handle(text(command, user="501"))
    assert reply.text == core.dialogue.say("staff_only")
    assert any("501" in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)
    [answer] = await core.dialogue.handle(text("cảm ơn", user="501"))  # no half-open compose flow
    assert answer.text == core.dialogue.say("small_talk_thanks")


async def test_non_staff_cannot_use_someone_elses_buttons(core: Core):
    preview = await compose(core)
    [reply] = await core.dialogue.handle(tap(data_for(preview, "Gửi ngay"), user="501"))
    assert reply.text == core.dialogue.say("staff_only")
    assert await outbox_count(core, broadcast_id(preview)) == 0


async def test_staff_added_from_the_cli_store_may_author(core: Core):
    await core.staff.add("telegram", "777")
    [prompt] = await core.dialogue.handle(text("/thongbao", user="777"))
    assert prompt.text == core.dialogue.say("compose_prompt")


async def test_thongbao_in_a_group_points_to_the_private_chat(core: Core):
    [reply] = await core.dialogue.handle(text("/thongbao", kind="group", chat="-1"))
    assert reply.text == core.dialogue.say("staff_private_only")


async def test_empty_text_is_asked_again_and_a_command_ends_the_flow(core: Core):
    say = core.dialogue.say
    await core.dialogue.handle(text("/thongbao"))
    [again] = await core.dialogue.handle(text("   "))
    assert again.text == say("compose_empty")
    await core.dialogue.handle(text("/menu"))
    [answer] = await core.dialogue.handle(text("cảm ơn"))
    assert answer.text == say("small_talk_thanks")


async def test_deep_tree_browsing_reaches_a_child_locality(settings: Settings, tmp_path: Path):
    # The shipped tree stops at xã/phường; add a khu phố under one to browse three levels down.
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    with (content / "localities.yaml").open("a", encoding="utf-8") as tree_file:
        tree_file.write("\n- code: kp-3-phan-rang\n  name: Khu phố 3\n  parent: phan-rang\n")
    core = await build_core(dataclasses.replace(settings, content_dir=content, telegram_staff_ids=frozenset({STAFF})))
    try:
        await add_chat(core.db, "-77", "group", "kp-3-phan-rang")
        await core.dialogue.handle(text("/thongbao"))
        [ask_audience] = await core.dialogue.handle(text("Tin"))
        await core.dialogue.handle(tap(data_for(ask_audience, "Các nhóm")))
        [down] = await core.dialogue.handle(tap("ath:n:phan-rang"))
        [preview] = await core.dialogue.handle(tap(next(o.data for o in down.options if o.label == "Khu phố 3")))
        assert "Số người nhận: 1" in preview.text
    finally:
        await core.close()


# ---------------------------------------------------------------------- shipped announcements


def test_shipped_announcements_carry_the_seed_figures():
    folder = CONTENT / "announcements"
    pieces = {p.name: read_announcement(p) for p in folder.glob("*.md")}
    assert {"ket-qua-quy-2-2022.md", "nhiem-vu-quy-3-2022.md", "giam-sat-phan-bien.md"} <= set(pieces)
    results = pieces["ket-qua-quy-2-2022.md"]
    for figure in ("65 ngàn suất quà", "9,42 tỷ đồng", "55 nhà Đại đoàn kết", "1,3 tỷ đồng", "22-6"):
        assert figure in results.text
    assert "hai cuộc giám sát, phản biện" in pieces["giam-sat-phan-bien.md"].text
    for piece in pieces.values():
        assert piece.id and piece.title and piece.audience in ("groups", "residents", "all")


def test_announcement_is_sendable_from_the_cli(tmp_path: Path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}"}
    sent = run_cli("broadcast", "send", "--to", "all", "--file", "content/announcements/ket-qua-quy-2-2022.md",
                   "--yes", "--json", env=env)
    assert sent.returncode == 0, sent.stderr
    assert "id" in sent.stdout


# ---------------------------------------------------------------------- "Lặp lại định kỳ": a series


async def cli_series(core: Core, body: str, repeat: str, settings: Settings) -> dict:
    """What `broadcast send --repeat` (the real CLI) records for the same text and audience."""
    import json

    env = {"DATABASE_URL": f"sqlite:///{settings.database_path}", "CONTENT_DIR": str(CONTENT)}
    made = run_cli("broadcast", "send", "--to", "groups", "--text", body, "--repeat", repeat, "--yes", "--json",
                   env=env)
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout)


async def series_row(core: Core, series: int) -> dict:
    row = await core.db.fetchone("SELECT kind, text, audience, locality, channel, repeat, next_run_at, cancelled_at,"
                                 " created_by FROM series WHERE id = ?", (series,))
    return dict(row)


async def test_repeat_from_the_chat_makes_the_series_the_cli_makes(core: Core, settings: Settings):
    say = core.dialogue.say
    body = "Nhắc họp tổ {quy} tại {dia_ban}."
    preview = await compose(core, body=body, audience="Các nhóm")
    draft = broadcast_id(preview)
    [menu] = await core.dialogue.handle(tap(data_for(preview, "Lặp lại định kỳ")))
    assert [o.label for o in menu.options] == [
        "Gửi một lần", "Hằng tuần (thứ Hai, 08:00)", "Hằng tháng (ngày 1, 08:00)", "Hằng quý (ngày đầu quý, 08:00)",
        "Ngày làm việc đầu quý (08:00)", "Lịch khác (gõ lịch)", "Hủy"]
    assert all(len(o.data.encode()) <= 64 for o in menu.options)
    weekly = data_for(menu, "Hằng tuần")
    [made] = await core.dialogue.handle(tap(weekly))
    assert made.text.startswith(say("repeat_made", id="S1", label="Hằng tuần (thứ Hai, 08:00)", count=2,
                                    first="", next="")[:40])
    assert "/huythongbao S1" in made.text
    [again] = await core.dialogue.handle(tap(weekly))  # a second tap makes nothing
    assert again.text == say("compose_already", id=draft)
    assert await core.db.fetchval("SELECT COUNT(*) FROM series") == 1
    assert await core.broadcasts.status(draft) == "cancelled" and await outbox_count(core, draft) == 0
    chat_made = await series_row(core, 1)
    # the same service call as `broadcast send --repeat @weekly`: the same row, but for who made it
    cli = await cli_series(core, body, "@weekly", settings)
    assert cli["id"] == "S2"
    from_cli = await series_row(core, 2)
    assert chat_made.pop("created_by") == f"telegram:{STAFF}" and from_cli.pop("created_by") == "cli"
    assert chat_made == from_cli
    first = datetime.fromtimestamp(chat_made["next_run_at"], TZ)
    assert (first.weekday(), first.hour, first.minute) == (0, 8, 0)
    assert first.strftime("%d/%m/%Y %H:%M") in made.text
    # /huythongbao S1 ends it, once
    [ended] = await core.dialogue.handle(text("/huythongbao S1"))
    assert ended.text == say("repeat_cancelled", id="S1")
    assert (await series_row(core, 1))["cancelled_at"] is not None
    [twice] = await core.dialogue.handle(text("/huythongbao s1"))
    assert twice.text == say("repeat_cancel_failed", id="S1")


async def test_each_preset_and_a_typed_cron(core: Core):
    say = core.dialogue.say
    for label, repeat in (("Hằng tháng", "@monthly"), ("Hằng quý", "@quarterly"),
                          ("Ngày làm việc đầu quý", "@first-workday-quarter")):
        preview = await compose(core, audience="Các nhóm")
        [menu] = await core.dialogue.handle(tap(data_for(preview, "Lặp lại định kỳ")))
        [made] = await core.dialogue.handle(tap(data_for(menu, label)))
        assert "Đã tạo lịch gửi S" in made.text, made.text
        series = int(re.search(r"S(\d+)", made.text).group(1))  # type: ignore[union-attr]
        assert (await series_row(core, series))["repeat"] == repeat
    preview = await compose(core, audience="Người dân", place="Phường Phan Rang")
    [menu] = await core.dialogue.handle(tap(data_for(preview, "Lặp lại định kỳ")))
    [ask] = await core.dialogue.handle(tap(data_for(menu, "Lịch khác")))
    assert ask.text == say("repeat_typed_prompt")
    [bad] = await core.dialogue.handle(text("mỗi thứ hai"))
    assert bad.text.startswith('"mỗi thứ hai" chưa phải lịch lặp dùng được (')
    [made] = await core.dialogue.handle(text("30 7 * * 1-5"))
    assert "Đã tạo lịch gửi S4 (30 7 * * 1-5) cho 2 người nhận" in made.text
    row = await series_row(core, 4)
    assert (row["repeat"], row["audience"], row["locality"]) == ("30 7 * * 1-5", "residents", "phan-rang")
    first = datetime.fromtimestamp(row["next_run_at"], TZ)
    assert (first.hour, first.minute) == (7, 30) and first.weekday() < 5


async def test_send_once_goes_back_and_bad_text_is_refused_politely(core: Core):
    say = core.dialogue.say
    preview = await compose(core, audience="Các nhóm")
    draft = broadcast_id(preview)
    [menu] = await core.dialogue.handle(tap(data_for(preview, "Lặp lại định kỳ")))
    [once] = await core.dialogue.handle(tap(data_for(menu, "Gửi một lần")))
    assert once.text == say("repeat_once_prompt", id=draft)
    [done] = await core.dialogue.handle(tap(data_for(once, "Gửi ngay")))
    assert f"#{draft}" in done.text and await outbox_count(core, draft) == 2
    [late] = await core.dialogue.handle(tap(data_for(menu, "Hằng tuần")))  # the draft is queued now
    assert late.text == say("compose_already", id=draft)
    assert await core.db.fetchval("SELECT COUNT(*) FROM series") == 0
    # an unknown placeholder: a polite sentence naming it, the draft kept (it can still go once)
    preview = await compose(core, body="Hạn {han_chot} nhé", audience="Các nhóm")
    draft = broadcast_id(preview)
    [menu] = await core.dialogue.handle(tap(data_for(preview, "Lặp lại định kỳ")))
    [refused] = await core.dialogue.handle(tap(data_for(menu, "Hằng tháng")))
    assert refused.text.startswith("Chưa tạo được lịch: dòng 1: chỗ điền {han_chot} không có")
    assert await core.broadcasts.status(draft) == "draft"
    assert await core.db.fetchval("SELECT COUNT(*) FROM series") == 0


async def test_repeat_is_staff_only(core: Core):
    preview = await compose(core, audience="Các nhóm")
    [menu] = await core.dialogue.handle(tap(data_for(preview, "Lặp lại định kỳ")))
    [refused] = await core.dialogue.handle(tap(data_for(menu, "Hằng tuần"), user="555"))
    assert refused.text == core.dialogue.say("staff_only")
    [refused] = await core.dialogue.handle(text("/huythongbao S1", user="555"))
    assert refused.text == core.dialogue.say("staff_only")
    assert await core.db.fetchval("SELECT COUNT(*) FROM series") == 0
