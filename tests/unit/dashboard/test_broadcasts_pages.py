"""Broadcast pages: compose, preview per channel, recipient counts, send, progress, report, CSV, XLSX,
cancel, and the four-eyes rule (WEB_APPROVAL_THRESHOLD)."""

from __future__ import annotations

import csv
import io
import re

from openpyxl import load_workbook

from tests.unit.broadcasts.test_broadcasts import add_chat
from tests.unit.dashboard.helpers import SENDER, dashboard, post, sign_in

LONG = "Kính gửi bà con. " * 200  # 3,400 characters: one Telegram message, two on Zalo


async def _groups(core) -> None:
    await add_chat(core.db, "-1001", "group", "phan-rang")
    await add_chat(core.db, "-1002", "group", "phan-rang")
    await add_chat(core.db, "g-z1", "group", "phan-rang", channel="zalo")
    await add_chat(core.db, "501", "private", "phan-rang")  # a resident: not in "groups"
    await add_chat(core.db, "-1003", "group", "phan-rang", consent=False)  # not registered


async def test_preview_shows_each_channel_and_counts_recipients_before_sending(settings):
    async with dashboard(settings) as (client, core):
        await _groups(core)
        csrf = await sign_in(client, core)
        compose = await (await client.get("/admin/broadcasts/new")).text()
        assert "Phan Rang" in compose and 'name="locality"' in compose
        draft = {"title": "Họp <tổ>", "text": "**Khẩn**: họp lúc 19h\n- mang CCCD\n" + LONG, "audience": "groups",
                 "locality": "phan-rang"}
        page = await (await post(client, "/admin/broadcasts/preview", draft, csrf)).text()
        assert "<b>2</b> qua Telegram" in page and "<b>1</b> qua Zalo" in page and 'id="total">3<' in page
        telegram = re.search(r'class="phone telegram">(.*?)</div>\s*<div class="phone zalo"', page, re.S).group(1)
        assert "<b>Họp &lt;tổ&gt;</b>" in telegram and "<b>Khẩn</b>" in telegram and "• mang CCCD" in telegram
        assert '<span class="tgbutton">Đã nhận</span>' in telegram and "1 tin" in telegram
        zalo = page.split('class="phone zalo"')[1]
        assert zalo.count('class="bubble plain"') == 2 and "2 tin" in zalo
        assert "**" not in zalo and "1. Đã nhận" in zalo and "<b>" not in zalo
        assert await core.broadcasts.recent() == []  # a preview sends nothing


async def test_bad_input_gets_a_sentence_and_keeps_the_draft(settings):
    async with dashboard(settings) as (client, core):
        csrf = await sign_in(client, core)
        for draft, said in (({"text": " ", "audience": "groups"}, "nội dung thông báo đang trống"),
                            ({"text": "x", "audience": "nobody"}, "không hợp lệ"),
                            ({"text": "x", "audience": "groups", "locality": "atlantis"}, "không có địa bàn"),
                            ({"text": "giữ tôi", "audience": "groups", "at": "2020-01-01T08:00"}, "đã qua")):
            response = await post(client, "/admin/broadcasts", draft, csrf)
            body = await response.text()
            assert response.status == 400 and said in body, body
        assert "giữ tôi" in body
        assert await core.broadcasts.recent() == []


async def test_send_progress_report_csv_and_cancel(settings):
    async with dashboard(settings) as (client, core):
        await _groups(core)
        csrf = await sign_in(client, core, SENDER)
        response = await post(client, "/admin/broadcasts", {"text": "Họp tổ 19h", "audience": "groups"}, csrf)
        assert response.status == 302
        location = response.headers["Location"]
        broadcast = int(location.rsplit("/", 1)[1])
        report = await core.broadcasts.report(broadcast)
        assert report.total == 3 and report.pending == 3
        page = await (await client.get(location)).text()
        assert "Đã xếp hàng thông báo" in page and 'id="total">3<' in page and "đang chờ" in page
        progress = await (await client.get(f"{location}/progress.json")).json()
        assert progress == {"id": broadcast, "status": "queued", "total": 3, "sent": 0, "pending": 3, "failed": 0,
                            "acknowledged": 0, "percent": 0}
        filtered = await (await client.get(f"{location}?channel=zalo")).text()
        assert "1 dòng" in filtered and "g-z1" in filtered and "-1001" not in filtered
        download = await client.get(f"{location}/report.csv")
        assert download.headers["Content-Disposition"].endswith(f'thong-bao-{broadcast}.csv"')
        rows = list(csv.DictReader(io.StringIO((await download.read()).decode("utf-8-sig"))))
        assert sorted(r["chat_id"] for r in rows) == ["-1001", "-1002", "g-z1"] and {r["status"] for r in rows} == {
            "pending"}
        sheet = await client.get(f"{location}/report.xlsx")  # the same table as a spreadsheet
        assert sheet.headers["Content-Disposition"].endswith(f'thong-bao-{broadcast}.xlsx"')
        book = load_workbook(io.BytesIO(await sheet.read()), read_only=True)
        cells = [["" if v is None else v for v in row] for row in book.worksheets[0].iter_rows(values_only=True)]
        assert cells[0] == list(rows[0]) and [dict(zip(cells[0], map(str, line), strict=True)) for line in cells[1:]] \
            == rows
        cancelled = await post(client, f"{location}/cancel", {}, csrf)
        assert cancelled.status == 302
        assert "3 tin chưa gửi" in await (await client.get(location)).text()
        assert (await core.broadcasts.report(broadcast)).failed == {"cancelled": 3}
        audit = await core.dashboard.audit.recent()
        assert [a["action"] for a in audit[:2]] == ["broadcast.cancel", "broadcast.send"]
        assert audit[1]["actor"] == f"telegram:{SENDER}" and audit[1]["target"] == f"broadcast:{broadcast}"


async def test_scheduled_broadcast_waits(settings):
    async with dashboard(settings) as (client, core):
        await _groups(core)
        csrf = await sign_in(client, core)
        response = await post(client, "/admin/broadcasts", {"text": "Mai họp", "audience": "all",
                                                            "at": "2099-01-01T08:00"}, csrf)
        broadcast = int(response.headers["Location"].rsplit("/", 1)[1])
        row = await core.broadcasts.get(broadcast)
        assert row["status"] == "queued" and row["send_at"] > 4e9
        assert (await core.broadcasts.report(broadcast)).resolved is False


async def test_four_eyes_a_large_broadcast_waits_for_another_staff_member(settings, tmp_path):
    async with dashboard(settings, web_approval_threshold=2) as (client, core):
        await _groups(core)
        csrf = await sign_in(client, core, SENDER)
        response = await post(client, "/admin/broadcasts", {"text": "Tin lớn", "audience": "groups"}, csrf)
        location = response.headers["Location"]
        broadcast = int(location.rsplit("/", 1)[1])
        page = await (await client.get(location)).text()
        assert "cần một cán bộ khác duyệt" in page and 'id="approve"' not in page  # not by the author
        assert (await core.broadcasts.get(broadcast))["status"] == "draft"
        assert (await post(client, f"{location}/approve", {}, csrf)).status == 302
        assert (await core.broadcasts.get(broadcast))["status"] == "draft"  # self-approval refused
        client.session.cookie_jar.clear()
        csrf = await sign_in(client, core)  # the admin, a second person
        assert 'id="approve"' in await (await client.get(location)).text()
        await post(client, f"{location}/approve", {}, csrf)
        report = await core.broadcasts.report(broadcast)
        assert report.status == "queued" and report.total == 3
        small = await post(client, "/admin/broadcasts", {"text": "Tin nhỏ", "audience": "groups",
                                                          "channel": "zalo"}, csrf)
        assert (await core.broadcasts.get(int(small.headers["Location"].rsplit("/", 1)[1])))["status"] == "queued"


async def test_the_compose_form_makes_a_series_as_the_cli_does_and_the_list_ends_it(settings):
    from datetime import datetime
    from urllib.parse import unquote

    from bot.broadcasts.store import Target

    async with dashboard(settings) as (client, core):
        await _groups(core)
        csrf = await sign_in(client, core, SENDER)
        compose = await (await client.get("/admin/broadcasts/new")).text()
        assert 'name="repeat"' in compose and "Ngày làm việc đầu quý (08:00)" in compose and 'name="cron"' in compose
        draft = {"text": "Nhắc {dia_ban} họp {quy}", "audience": "groups", "locality": "phan-rang",
                 "repeat": "@first-workday-quarter"}
        page = await (await post(client, "/admin/broadcasts/preview", draft, csrf)).text()
        assert 'id="runs"' in page and "Tạo lịch gửi định kỳ tới 3 người nhận" in page
        assert await core.series.active() == []  # a preview makes nothing
        for bad, said in ((dict(draft, repeat="cron", cron="mỗi tuần"), "mỗi tuần"),
                          (dict(draft, repeat="cron"), "chưa gõ lịch lặp"),
                          (dict(draft, at="2099-01-01T08:00"), "không dùng cùng nhau"),
                          (dict(draft, text="Hạn {han_chot}"), "chỗ điền {han_chot} không có")):
            response = await post(client, "/admin/broadcasts", bad, csrf)
            assert response.status == 400 and said in await response.text(), said
        assert await core.series.active() == []
        response = await post(client, "/admin/broadcasts", dict(draft, repeat="cron", cron="30 7 * * 1"), csrf)
        assert response.status == 302 and response.headers["Location"] == "/admin/broadcasts"
        assert "Đã tạo lịch gửi S1" in unquote(response.cookies["lp_flash"].value)
        [made] = await core.series.active()
        assert (made.repeat, made.text, made.audience, made.locality, made.created_by) == (
            "30 7 * * 1", draft["text"], "groups", "phan-rang", f"web:telegram:{SENDER}")
        first = datetime.fromtimestamp(made.next_run_at, settings.tz)
        assert (first.weekday(), first.hour, first.minute) == (0, 7, 30)
        # the same service call as `broadcast send --repeat` (SeriesStore.create): the same row
        other = await core.series.create(draft["text"], Target("groups", "phan-rang"), "30 7 * * 1",
                                         created_by="cli")
        mine, theirs = (await core.series.get(1)).as_json(settings.tz), (await core.series.get(other)).as_json(
            settings.tz)
        assert {k: v for k, v in mine.items() if k not in ("id", "series")} == {
            k: v for k, v in theirs.items() if k not in ("id", "series")}
        listing = await (await client.get("/admin/broadcasts")).text()
        assert 'id="series"' in listing and "<code>30 7 * * 1</code>" in listing
        assert (await post(client, "/admin/series/1/cancel", {}, csrf)).status == 302
        assert (await core.series.get(1)).cancelled_at is not None
        again = await post(client, "/admin/series/1/cancel", {}, csrf)
        assert "Không kết thúc được lịch S1" in unquote(again.cookies["lp_flash"].value)
        audit = await core.dashboard.audit.recent()
        assert [(a["action"], a["target"]) for a in audit[:2]] == [("series.cancel", "series:1"),
                                                                  ("series.create", "series:1")]


async def test_four_eyes_refuses_a_large_series_from_the_web(settings):
    async with dashboard(settings, web_approval_threshold=2) as (client, core):
        await _groups(core)
        csrf = await sign_in(client, core, SENDER)
        response = await post(client, "/admin/broadcasts", {"text": "Tin lớn", "audience": "groups",
                                                             "repeat": "@weekly"}, csrf)
        assert response.status == 400 and "WEB_APPROVAL_THRESHOLD" in await response.text()
        assert await core.series.active() == []
