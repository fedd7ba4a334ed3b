"""Broadcasts: the list, compose with a preview and per-channel recipient counts, send (or ask a
second staff member when WEB_APPROVAL_THRESHOLD applies), live progress, the report and its CSV / XLSX.
The compose form's "Lặp lại" makes a recurring series S<id> instead (`SeriesStore.create`, the call
`broadcast send --repeat` makes); the list shows the series with their next run, and ends one."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.audiences.chats import CHANNELS
from bot.broadcasts.authoring import REPEATS
from bot.broadcasts.export import recipients_csv, recipients_xlsx
from bot.broadcasts.recurrence import parse_repeat, upcoming
from bot.broadcasts.store import BroadcastError, Target, parse_audience, parse_time
from bot.dashboard.http.common import PATH, WHO, Pages, form, need, redirect
from bot.dashboard.preview import preview

PAST_SLACK = 60.0
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHOWN_RECIPIENTS = 500  # rows of the report table; the CSV has them all


@dataclass
class Draft:
    title: str = ""
    text: str = ""
    audience: str = "groups"
    locality: str = ""
    channel: str = ""
    at: str = ""  # datetime-local value, local time
    repeat: str = ""  # "" once; a preset (@weekly…) or CUSTOM: then `cron` is the schedule
    cron: str = ""


CUSTOM = "cron"

class BroadcastPages(Pages):
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/broadcasts", self.list_page)
        router.add_get("/broadcasts/new", self.compose_page)
        router.add_post("/broadcasts/preview", self.preview)
        router.add_post("/broadcasts", self.send)
        router.add_get(r"/broadcasts/{id:\d+}", self.show)
        router.add_get(r"/broadcasts/{id:\d+}/progress.json", self.progress)
        router.add_get(r"/broadcasts/{id:\d+}/report.csv", self.csv)
        router.add_get(r"/broadcasts/{id:\d+}/report.xlsx", self.xlsx)
        router.add_post(r"/broadcasts/{id:\d+}/cancel", self.cancel)
        router.add_post(r"/broadcasts/{id:\d+}/approve", self.approve)
        router.add_post(r"/broadcasts/{id:\d+}/reject", self.reject)
        router.add_post(r"/series/{id:\d+}/cancel", self.cancel_series)

    # ------------------------------------------------------------------ list and compose

    async def list_page(self, request: web.Request) -> web.Response:
        rows = await self.dash.broadcasts.recent(100)
        waiting = {a["broadcast"]: a for a in await self.dash.approvals.waiting()}
        series = await self.dash.series.recent(50) if self.dash.series else []
        return self.page(request, "broadcasts.html", rows=rows, waiting=waiting, series=series)

    async def compose_page(self, request: web.Request) -> web.Response:
        return await self._compose(request, Draft())

    async def _compose(self, request: web.Request, draft: Draft, *, error: str = "", show: bool = False,
                       status: int = 200) -> web.Response:
        counts: dict[str, int] = {}
        shown, runs = None, []
        tz = self.dash.settings.tz
        if show and not error:
            target = self._target(draft)
            for channel in [target.channel] if target.channel else list(CHANNELS):
                counts[channel] = await self.dash.broadcasts.count(Target(target.audience, target.locality, channel))
            shown = preview(draft.title or None, draft.text, target.audience, self.dash.say)
            if self._repeat(draft):
                runs = upcoming(parse_repeat(self._repeat(draft), tz), time.time(), tz)
        threshold = self.dash.settings.web_approval_threshold
        repeats = [(value, self.dash.say(f"repeat_{code}")) for code, value in REPEATS.items()]
        return self.page(request, "compose.html", code=status, draft=draft, error=error, counts=counts,
                         total=sum(counts.values()), shown=shown, channels=CHANNELS, tree=self._tree(),
                         threshold=threshold, repeats=repeats if self.dash.series else [], custom=CUSTOM,
                         runs=runs)

    def _tree(self) -> list[tuple[str, str, int]]:
        """(code, name, depth) depth-first: the locality picker."""
        tree = self.dash.localities
        return [(item.code, item.name, len(tree.path(item.code)) - 1) for item in tree]

    def _draft(self, data: dict[str, str]) -> Draft:
        return Draft(title=data.get("title", "").strip()[:200], text=data.get("text", ""),
                     audience=data.get("audience", "groups"), locality=data.get("locality", ""),
                     channel=data.get("channel", ""), at=data.get("at", "").strip(),
                     repeat=data.get("repeat", "").strip(), cron=data.get("cron", "").strip()[:60])

    @staticmethod
    def _repeat(draft: Draft) -> str:
        """The schedule chosen ("" for a one-time broadcast)."""
        return draft.cron if draft.repeat == CUSTOM else draft.repeat

    def _target(self, draft: Draft) -> Target:
        return Target(parse_audience(draft.audience), draft.locality or None, draft.channel or None)

    def _check(self, draft: Draft) -> tuple[Target, float | None]:
        """The target and send time, or BroadcastError with the sentence to show."""
        if not draft.text.strip():
            raise BroadcastError("nội dung thông báo đang trống")
        if draft.channel and draft.channel not in CHANNELS:
            raise BroadcastError(f"kênh '{draft.channel}' không được hỗ trợ")
        target = self._target(draft)
        self.dash.broadcasts.check_target(target)
        send_at = None
        if draft.at:
            send_at = parse_time(draft.at, self.dash.settings.tz)
            if send_at < time.time() - PAST_SLACK:
                raise BroadcastError("thời điểm gửi đã qua")
        if draft.repeat:
            if self.dash.series is None:
                raise BroadcastError("trang này chưa tạo được lịch lặp")
            if draft.at:
                raise BroadcastError("hẹn giờ và lặp lại không dùng cùng nhau (lịch lặp tự tính các lần gửi)")
            if draft.repeat == CUSTOM and not draft.cron:
                raise BroadcastError("chưa gõ lịch lặp (ví dụ 0 8 * * 1)")
            self.dash.series.check("broadcast", draft.text, self._repeat(draft), target)
        return target, send_at

    @need("sender")
    async def preview(self, request: web.Request) -> web.Response:
        draft = self._draft(await form(request))
        try:
            self._check(draft)
        except BroadcastError as exc:
            return await self._compose(request, draft, error=str(exc), status=400)
        return await self._compose(request, draft, show=True)

    @need("sender")
    async def send(self, request: web.Request) -> web.StreamResponse:
        draft = self._draft(await form(request))
        who = request[WHO]
        try:
            target, send_at = self._check(draft)
        except BroadcastError as exc:
            return await self._compose(request, draft, error=str(exc), status=400)
        count = await self.dash.broadcasts.count(target)
        threshold = self.dash.settings.web_approval_threshold
        four_eyes = threshold > 0 and count > threshold
        if draft.repeat:
            return await self._make_series(request, draft, target, count, four_eyes)
        broadcast = await self.dash.broadcasts.create(draft.text, target, title=draft.title or None,
                                                      send_at=send_at, created_by=f"web:{who.actor}",
                                                      confirm=not four_eyes)
        if four_eyes:
            await self.dash.approvals.request(broadcast, who.actor, count)
            await self.dash.audit.record(who.actor, "web", "broadcast.request_approval", f"broadcast:{broadcast}",
                                         f"{count} người nhận")
            raise redirect(f"{PATH}/broadcasts/{broadcast}", self.dash.say("web_broadcast_waiting", count=count))
        await self.dash.audit.record(who.actor, "web", "broadcast.send", f"broadcast:{broadcast}",
                                     f"{count} người nhận")
        raise redirect(f"{PATH}/broadcasts/{broadcast}", self.dash.say("web_broadcast_queued"))

    async def _make_series(self, request: web.Request, draft: Draft, target: Target, count: int,
                           four_eyes: bool) -> web.StreamResponse:
        assert self.dash.series is not None
        who = request[WHO]
        threshold = self.dash.settings.web_approval_threshold
        if four_eyes:  # approvals are per broadcast: a series would send every run without a second look
            return await self._compose(request, draft, status=400, error=self.dash.say(
                "web_series_four_eyes", count=count, threshold=threshold))
        repeat = self._repeat(draft)
        try:
            series = await self.dash.series.create(draft.text, target, repeat, title=draft.title or None,
                                                   created_by=f"web:{who.actor}")
        except BroadcastError as exc:
            return await self._compose(request, draft, error=str(exc), status=400)
        await self.dash.audit.record(who.actor, "web", "series.create", f"series:{series}",
                                     f"{repeat}, {count} người nhận")
        row = await self.dash.series.get(series)
        first = row.next_run_at if row else None
        when = datetime.fromtimestamp(first, self.dash.settings.tz).strftime("%d/%m/%Y %H:%M") if first else "—"
        raise redirect(f"{PATH}/broadcasts", self.dash.say("web_series_made", id=f"S{series}", first=when))

    @need("sender")
    async def cancel_series(self, request: web.Request) -> web.StreamResponse:
        series = int(request.match_info["id"])
        who = request[WHO]
        if self.dash.series is None or not await self.dash.series.cancel(series):
            raise redirect(f"{PATH}/broadcasts", self.dash.say("repeat_cancel_failed", id=f"S{series}"))
        await self.dash.audit.record(who.actor, "web", "series.cancel", f"series:{series}")
        raise redirect(f"{PATH}/broadcasts", self.dash.say("repeat_cancelled", id=f"S{series}"))

    # ------------------------------------------------------------------ one broadcast

    async def _found(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        broadcast = int(request.match_info["id"])
        row = await self.dash.broadcasts.get(broadcast)
        if row is None:
            raise web.HTTPNotFound(reason="broadcast")
        return broadcast, row

    async def show(self, request: web.Request) -> web.Response:
        broadcast, row = await self._found(request)
        report = await self.dash.broadcasts.report(broadcast)
        q = request.query
        chosen = {key: q.get(key, "") for key in ("status", "channel", "locality", "reason")}
        rows = [r for r in await self.dash.broadcasts.recipients(broadcast)
                if all(not value or str(r.get(key) or "") == value for key, value in chosen.items())]
        approval = await self.dash.approvals.get(broadcast)
        tree = self.dash.localities
        codes = [*(report.by_locality if report else {}), row["locality"]]
        places = {code: tree.full_name(code) if code in tree else code for code in codes if code}
        return self.page(request, "broadcast.html", b=row, report=report, rows=rows[:SHOWN_RECIPIENTS],
                         matching=len(rows), chosen=chosen, approval=approval, places=places, channels=CHANNELS)

    async def progress(self, request: web.Request) -> web.Response:
        broadcast, _ = await self._found(request)
        report = await self.dash.broadcasts.report(broadcast)
        assert report is not None
        failed = sum(report.failed.values())
        done = report.sent + failed
        return web.json_response({
            "id": broadcast, "status": report.status, "total": report.total, "sent": report.sent,
            "pending": report.pending, "failed": failed, "acknowledged": report.acknowledged,
            "percent": round(100 * done / report.total) if report.total else (100 if report.status == "done" else 0),
        })

    async def csv(self, request: web.Request) -> web.Response:
        broadcast, _ = await self._found(request)
        rows = await self.dash.broadcasts.recipients(broadcast)
        text = await asyncio.to_thread(recipients_csv, rows, self.dash.settings.tz)  # 100,000 rows: ~0.3 s
        return web.Response(body=("\ufeff" + text).encode(), content_type="text/csv", charset="utf-8", headers={
            "Content-Disposition": f'attachment; filename="thong-bao-{broadcast}.csv"'})

    async def xlsx(self, request: web.Request) -> web.Response:
        """The CSV's columns as a spreadsheet, built in a worker thread (seconds for 100,000 rows)."""
        broadcast, _ = await self._found(request)
        rows = await self.dash.broadcasts.recipients(broadcast)
        body = await asyncio.to_thread(recipients_xlsx, rows, self.dash.settings.tz)
        return web.Response(body=body, content_type=XLSX, headers={
            "Content-Disposition": f'attachment; filename="thong-bao-{broadcast}.xlsx"'})

    @need("sender")
    async def cancel(self, request: web.Request) -> web.StreamResponse:
        broadcast, _ = await self._found(request)
        who = request[WHO]
        dropped = await self.dash.broadcasts.cancel(broadcast)
        if dropped is None:
            raise redirect(f"{PATH}/broadcasts/{broadcast}", self.dash.say("web_broadcast_not_cancelled"))
        await self.dash.audit.record(who.actor, "web", "broadcast.cancel", f"broadcast:{broadcast}",
                                     f"{dropped} tin chưa gửi")
        raise redirect(f"{PATH}/broadcasts/{broadcast}", self.dash.say("web_broadcast_cancelled", dropped=dropped))

    @need("sender")
    async def approve(self, request: web.Request) -> web.StreamResponse:
        return await self._decide(request, "approved")

    @need("sender")
    async def reject(self, request: web.Request) -> web.StreamResponse:
        return await self._decide(request, "rejected")

    async def _decide(self, request: web.Request, decision: str) -> web.StreamResponse:
        broadcast, _ = await self._found(request)
        who = request[WHO]
        if not await self.dash.approvals.decide(broadcast, who.actor, decision):
            raise redirect(f"{PATH}/broadcasts/{broadcast}", self.dash.say("web_approval_refused"))
        if decision == "approved":
            await self.dash.broadcasts.queue_draft(broadcast)
            said = self.dash.say("web_broadcast_approved")
        else:
            await self.dash.broadcasts.discard_draft(broadcast)
            said = self.dash.say("web_broadcast_rejected")
        action = "broadcast.approve" if decision == "approved" else "broadcast.reject"
        await self.dash.audit.record(who.actor, "web", action, f"broadcast:{broadcast}")
        raise redirect(f"{PATH}/broadcasts/{broadcast}", said)
