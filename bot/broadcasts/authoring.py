"""Staff write broadcasts in a private chat with the bot.

`/thongbao` → the text (typed or forwarded; the dialogue's `expect()` takes the next message) →
audience buttons → locality buttons (whole province, or a place down the tree) → a preview with
the recipient count → "Gửi ngay" / "Hẹn giờ" (then `dd/mm/yyyy HH:MM`, local time, in the
future) / "Lặp lại định kỳ" / "Hủy". The preview stores the broadcast as a draft; the buttons name that draft's id,
so confirming is `Broadcasts.confirm()`, which queues once however often it is pressed.
"Lặp lại định kỳ" offers "Gửi một lần" (back to the two buttons above), weekly, monthly, quarterly,
the first working day of the quarter, or a typed schedule (cron, `@weekly 07:30`…): the choice makes
a series S<id> through `SeriesStore.create`, the call `broadcast send --repeat` makes, and retires the
draft (a second tap finds the draft gone and makes nothing).
`/huythongbao <id>` cancels a scheduled or running broadcast (`/huythongbao S<id>` ends a series),
`/baocao <id>` reports on one.

Only staff (`Staff.is_staff`) may use any of it: others get a polite refusal and a log line.
Callback data: `ath:<action>:<arg>`, well under Telegram's 64 bytes (locality codes ≤ 40).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.audiences.chats import Staff
from bot.audiences.localities import Localities
from bot.broadcasts.recurrence import RepeatError, parse_repeat, upcoming
from bot.broadcasts.series import SeriesStore, parse_name
from bot.broadcasts.store import AUDIENCES, BroadcastError, Broadcasts, Report, Target
from bot.channels.base import Option, Reply, Sent
from bot.conversation.flows import Flows
from bot.conversation.routes import Routes, Turn
from bot.kernel.dates import parse_local_date
from bot.kernel.messages import Messages

log = logging.getLogger(__name__)

OWNER = "broadcasts.authoring"
PREFIX = "ath"
PREVIEW_CHARS = 3000  # the preview repeats the text; keep the whole reply under 4096
MAX_TEXT_CHARS = 20_000  # delivery splits long texts; this only stops accidents
TEXT_STEP, TIME_STEP = "broadcasts.text", "broadcasts.time"  # the steps' names in Flows (and in the table)
REPEAT_STEP = "broadcasts.repeat"  # a schedule typed after "Lịch khác"
# the recurrence buttons: code in the callback data → the `--repeat` form it stands for
REPEATS = {"w": "@weekly", "m": "@monthly", "q": "@quarterly", "f": "@first-workday-quarter"}
MAX_REPEAT_CHARS = 60


@dataclass
class _Compose:
    text: str
    audience: str | None = None


class Authoring:
    def __init__(
        self,
        broadcasts: Broadcasts,
        tree: Localities,
        say: Messages,
        staff: Staff,
        tz: ZoneInfo,
        flows: Flows,
        series: SeriesStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`series`: where "Lặp lại định kỳ" makes a series (None: the button is not offered)."""
        self.broadcasts = broadcasts
        self.series = series
        self.flows = flows
        flows.declare(OWNER, steps={TEXT_STEP: self._on_text, TIME_STEP: self._on_time,
                                    REPEAT_STEP: self._on_repeat_text}, draft=_Compose, restart="thongbao")
        self.tree = tree
        self.say = say
        self.staff = staff
        self.tz = tz
        self.clock = clock

    def routes(self) -> Routes:
        return Routes(owner=OWNER, commands={"thongbao": self.cmd_thongbao, "huythongbao": self.cmd_huythongbao,
                                             "baocao": self.cmd_baocao}, options={PREFIX: self.on_option},
                      audited={"/huythongbao": "broadcast.cancel", f"{PREFIX}:ok": "broadcast.send",
                               f"step:{TIME_STEP}": "broadcast.schedule", f"{PREFIX}:rp": "series.create",
                               f"step:{REPEAT_STEP}": "series.create"})

    # ------------------------------------------------------------------ gatekeeping

    async def _refused(self, turn: Turn, what: str) -> list[Reply] | None:
        """None when the sender is staff in a private chat; otherwise the polite answer."""
        inbound = turn.inbound
        if not await self.staff.is_staff(inbound.channel, inbound.user_id):
            log.warning("staff command %s refused: %s user %s (%s) in chat %s is not staff", what,
                        inbound.channel, inbound.user_id, inbound.display_name or "?", inbound.chat_id)
            return [Reply(self.say("staff_only"))]
        if inbound.chat_kind != "private":
            return [Reply(self.say("staff_private_only"))]
        return None

    # ------------------------------------------------------------------ /thongbao

    async def cmd_thongbao(self, turn: Turn) -> list[Reply]:
        refused = await self._refused(turn, "/thongbao")
        if refused is not None:
            return refused
        inbound = turn.inbound
        self.flows.end(OWNER, inbound)
        if turn.args:  # "/thongbao <text>": the text came with the command
            return await self._got_text(Turn(inbound, turn.chat), turn.args)
        self.flows.expect(inbound, TEXT_STEP, owner=OWNER)
        return [Reply(self.say("compose_prompt"))]

    async def _on_text(self, turn: Turn) -> list[Reply]:
        return await self._got_text(turn, turn.inbound.text)

    async def _got_text(self, turn: Turn, text: str) -> list[Reply]:
        text = text.strip()
        if not text:
            self.flows.expect(turn.inbound, TEXT_STEP, owner=OWNER)
            return [Reply(self.say("compose_empty"))]
        if len(text) > MAX_TEXT_CHARS:
            self.flows.expect(turn.inbound, TEXT_STEP, owner=OWNER)
            return [Reply(self.say("compose_too_long", limit=MAX_TEXT_CHARS))]
        self.flows.start(OWNER, turn.inbound, _Compose(text))
        options = tuple(Option(self.say(f"audience_{a}"), f"{PREFIX}:a:{a}") for a in AUDIENCES)
        return [Reply(self.say("compose_audience"), options=(*options, self._cancel_button("")))]

    # ------------------------------------------------------------------ buttons

    async def on_option(self, turn: Turn) -> list[Reply]:
        refused = await self._refused(turn, f"option {PREFIX}:{turn.args[:40]}")
        if refused is not None:
            return refused
        action, _, arg = turn.args.partition(":")
        handler = {
            "a": self._pick_audience,
            "n": self._browse,
            "l": self._pick_locality,
            "ok": self._send_now,
            "at": self._ask_time,
            "r": self._ask_repeat,
            "o": self._once,
            "rp": self._pick_repeat,
            "rc": self._ask_typed_repeat,
            "x": self._discard,
        }.get(action)
        if handler is None:
            return [Reply(self.say("stale_option"))]
        return await handler(turn, arg)

    async def _pick_audience(self, turn: Turn, audience: str) -> list[Reply]:
        draft = self.flows.draft(OWNER, turn.inbound)
        if draft is None or audience not in AUDIENCES:
            return [Reply(self.say("compose_stale"))]
        draft.audience = audience
        return [self._locality_reply(None)]

    async def _browse(self, turn: Turn, code: str) -> list[Reply]:
        if self.flows.draft(OWNER, turn.inbound) is None or (code and code not in self.tree):
            return [Reply(self.say("compose_stale"))]
        return [self._locality_reply(code or None)]

    def _locality_reply(self, code: str | None) -> Reply:
        """'Everywhere' (at the top), this place (below it), and one level of the tree."""
        options: list[Option] = []
        if code is None:
            options.append(Option(self.say("compose_everywhere"), f"{PREFIX}:l:*"))
            roots = self.tree.roots()
            level = self.tree.children(roots[0].code) if len(roots) == 1 else roots
        else:
            node = self.tree.get(code)
            assert node is not None
            options.append(Option(self.say("locality_pick_this", place=node.name), f"{PREFIX}:l:{code}"))
            level = self.tree.children(code)
        for item in level:
            if self.tree.children(item.code):
                options.append(Option(f"{item.name} ›", f"{PREFIX}:n:{item.code}"))
            else:
                options.append(Option(item.name, f"{PREFIX}:l:{item.code}"))
        if code is not None:
            node = self.tree.get(code)
            parent = node.parent if node is not None else None
            roots = self.tree.roots()
            top = len(roots) == 1 and parent == roots[0].code
            options.append(Option(self.say("locality_up"), f"{PREFIX}:n:{'' if top or not parent else parent}"))
        options.append(self._cancel_button(""))
        return Reply(self.say("compose_locality"), options=tuple(options))

    async def _pick_locality(self, turn: Turn, code: str) -> list[Reply]:
        inbound = turn.inbound
        draft = self.flows.draft(OWNER, inbound)
        if draft is None or draft.audience is None:
            return [Reply(self.say("compose_stale"))]
        locality = None if code == "*" else code
        if locality is not None and locality not in self.tree:
            return [Reply(self.say("compose_stale"))]
        target = Target(draft.audience, locality)
        try:
            count = await self.broadcasts.count(target)
            broadcast = await self.broadcasts.create(
                draft.text, target, created_by=f"{inbound.channel}:{inbound.user_id}", confirm=False,
            )
        except BroadcastError as exc:
            log.info("compose refused for %s %s: %s", inbound.channel, inbound.user_id, exc)
            return [Reply(self.say("compose_stale"))]
        self.flows.end(OWNER, inbound)
        shown = draft.text if len(draft.text) <= PREVIEW_CHARS else draft.text[:PREVIEW_CHARS].rstrip() + " …"
        text = self.say("compose_preview", text=shown, audience=self.say(f"audience_{draft.audience}"),
                        place=self._place(locality), count=count, id=broadcast)
        if count == 0:
            text += "\n\n" + self.say("compose_no_recipients")
        return [Reply(text, options=self._send_options(broadcast))]

    def _send_options(self, broadcast: int) -> tuple[Option, ...]:
        repeat = (Option(self.say("compose_repeat"), f"{PREFIX}:r:{broadcast}"),) if self.series else ()
        return (Option(self.say("compose_send_now"), f"{PREFIX}:ok:{broadcast}"),
                Option(self.say("compose_schedule"), f"{PREFIX}:at:{broadcast}"), *repeat,
                self._cancel_button(str(broadcast)))

    async def _send_now(self, turn: Turn, arg: str) -> list[Reply]:
        if not arg.isdigit():
            return [Reply(self.say("stale_option"))]
        # "now" is when the button was pressed, not when the preview was made
        return await self._confirm(turn, int(arg), None)

    async def _confirm(self, turn: Turn, broadcast: int, when: float | None) -> list[Reply]:
        inbound = turn.inbound
        total = await self.broadcasts.queue_draft(broadcast, self.clock() if when is None else when,
                                                  notify=(inbound.channel, inbound.chat_id))
        if total is None:
            status = await self.broadcasts.status(broadcast)
            if status is None:
                return [Reply(self.say("stale_option"))]
            if status == "cancelled":
                return [Reply(self.say("compose_was_cancelled", id=broadcast))]
            return [Reply(self.say("compose_already", id=broadcast))]
        log.info("broadcast %d confirmed by %s %s: %d recipients", broadcast, inbound.channel, inbound.user_id,
                 total)

        async def remember(sent: Sent) -> None:  # this message becomes the progress line (bot/progress.py)
            if sent.message_ids:
                await self.broadcasts.set_notify_message(broadcast, sent.message_ids[-1])

        if when is None:
            return [Reply(self.say("compose_queued", id=broadcast, count=total), on_sent=remember)]
        return [Reply(self.say("compose_scheduled", id=broadcast, count=total, when=self._local(when)),
                      on_sent=remember)]

    async def _not_a_draft(self, arg: str) -> list[Reply] | None:
        """None when `arg` names a draft still waiting for its buttons; the answer otherwise."""
        if not arg.isdigit():
            return [Reply(self.say("stale_option"))]
        if await self.broadcasts.status(int(arg)) != "draft":
            return [Reply(self.say("compose_already", id=int(arg)))]
        return None

    async def _ask_time(self, turn: Turn, arg: str) -> list[Reply]:
        if (refused := await self._not_a_draft(arg)) is not None:
            return refused
        broadcast = int(arg)
        self.flows.expect(turn.inbound, TIME_STEP, str(broadcast))
        return [Reply(self.say("schedule_prompt", example=self._example()))]

    async def _on_time(self, turn: Turn) -> list[Reply]:
        """The time typed after "Hẹn giờ"; the step's arg is the broadcast's id."""
        if not turn.args.isdigit():
            return [Reply(self.say("stale_option"))]
        broadcast = int(turn.args)
        value = turn.inbound.text.strip()
        when = self.parse_local(value)
        if when is None:
            self.flows.expect(turn.inbound, TIME_STEP, str(broadcast))
            return [Reply(self.say("schedule_invalid", value=value[:40], example=self._example()))]
        if when <= self.clock():
            self.flows.expect(turn.inbound, TIME_STEP, str(broadcast))
            return [Reply(self.say("schedule_past", when=self._local(when), example=self._example()))]
        return await self._confirm(turn, broadcast, when)

    # ------------------------------------------------------------------ "Lặp lại định kỳ": a series

    async def _ask_repeat(self, turn: Turn, arg: str) -> list[Reply]:
        if self.series is None:
            return [Reply(self.say("stale_option"))]
        if (refused := await self._not_a_draft(arg)) is not None:
            return refused
        broadcast = int(arg)
        options = [Option(self.say("repeat_once"), f"{PREFIX}:o:{broadcast}")]
        options += [Option(self.say(f"repeat_{code}"), f"{PREFIX}:rp:{broadcast}:{code}") for code in REPEATS]
        options += [Option(self.say("repeat_typed"), f"{PREFIX}:rc:{broadcast}"), self._cancel_button(arg)]
        return [Reply(self.say("repeat_prompt", id=broadcast), options=tuple(options))]

    async def _once(self, turn: Turn, arg: str) -> list[Reply]:
        if (refused := await self._not_a_draft(arg)) is not None:
            return refused
        broadcast = int(arg)
        return [Reply(self.say("repeat_once_prompt", id=broadcast), options=self._send_options(broadcast))]

    async def _pick_repeat(self, turn: Turn, arg: str) -> list[Reply]:
        number, _, code = arg.partition(":")
        if code not in REPEATS and code != "c":
            return [Reply(self.say("stale_option"))]
        if (refused := await self._not_a_draft(number)) is not None:
            return refused
        if code == "c":  # "Lịch khác" under a menu sent before it became "rc"
            return await self._ask_typed_repeat(turn, number)
        return await self._make_series(turn, int(number), REPEATS[code], self.say(f"repeat_{code}"))

    async def _ask_typed_repeat(self, turn: Turn, arg: str) -> list[Reply]:
        """"Lịch khác": the schedule comes typed (REPEAT_STEP), so that "rp" always makes a series."""
        if (refused := await self._not_a_draft(arg)) is not None:
            return refused
        self.flows.expect(turn.inbound, REPEAT_STEP, arg)
        return [Reply(self.say("repeat_typed_prompt"))]

    async def _on_repeat_text(self, turn: Turn) -> list[Reply]:
        """The schedule typed after "Lịch khác"; the step's arg is the draft's id."""
        if not turn.args.isdigit():
            return [Reply(self.say("stale_option"))]
        value = turn.inbound.text.strip()[:MAX_REPEAT_CHARS]
        try:
            parse_repeat(value, self.tz)
        except RepeatError as exc:
            self.flows.expect(turn.inbound, REPEAT_STEP, turn.args)
            return [Reply(self.say("repeat_invalid", value=value[:40], reason=str(exc)))]
        return await self._make_series(turn, int(turn.args), value, value, typed=True)

    async def _make_series(self, turn: Turn, broadcast: int, repeat: str, label: str, *,
                           typed: bool = False) -> list[Reply]:
        """The draft's text and audience become a series (checked first, then the draft is retired
        once — a second tap finds it gone — then `SeriesStore.create`, as `broadcast send --repeat`)."""
        inbound = turn.inbound
        row = await self.broadcasts.get(broadcast)
        if row is None or self.series is None:
            return [Reply(self.say("stale_option"))]
        target = Target(row["audience"], row["locality"], row["channel"])
        try:
            self.series.check("broadcast", row["text"], repeat, target)
        except BroadcastError as exc:  # the text (an unknown {placeholder}) or the schedule
            if typed:
                self.flows.expect(inbound, REPEAT_STEP, str(broadcast))
            return [Reply(self.say("repeat_refused_typed" if typed else "repeat_refused", reason=str(exc)))]
        if not await self.broadcasts.discard_draft(broadcast):
            return [Reply(self.say("compose_already", id=broadcast))]
        by = f"{inbound.channel}:{inbound.user_id}"
        try:
            series = await self.series.create(row["text"], target, repeat, title=row["title"], created_by=by)
        except BroadcastError as exc:  # checked a moment ago: only a race with the clock gets here
            log.warning("series from draft %d refused for %s: %s", broadcast, by, exc)
            return [Reply(self.say("compose_stale"))]
        runs = upcoming(parse_repeat(repeat, self.tz), self.clock(), self.tz)
        log.info("series %d made from draft %d by %s: %s", series, broadcast, by, repeat)
        return [Reply(self.say("repeat_made", id=f"S{series}", label=label, count=await self.broadcasts.count(target),
                               first=self._local(runs[0]) if runs else "—",
                               next=", ".join(self._local(r) for r in runs[1:]) or "—"))]

    async def _discard(self, turn: Turn, arg: str) -> list[Reply]:
        self.flows.end(OWNER, turn.inbound)
        if arg.isdigit():
            broadcast = int(arg)
            if not await self.broadcasts.discard_draft(broadcast):
                status = await self.broadcasts.status(broadcast)
                if status in ("queued", "sending", "done"):
                    return [Reply(self.say("compose_discard_too_late", id=broadcast))]
        return [Reply(self.say("compose_cancelled"))]

    def _cancel_button(self, arg: str) -> Option:
        return Option(self.say("compose_cancel"), f"{PREFIX}:x:{arg}")

    # ------------------------------------------------------------------ /huythongbao, /baocao

    async def cmd_huythongbao(self, turn: Turn) -> list[Reply]:
        refused = await self._refused(turn, "/huythongbao")
        if refused is not None:
            return refused
        series = parse_name(turn.args)
        if series is not None and self.series is not None:
            if not await self.series.cancel(series):
                return [Reply(self.say("repeat_cancel_failed", id=f"S{series}"))]
            log.info("series %d ended by %s %s", series, turn.inbound.channel, turn.inbound.user_id)
            return [Reply(self.say("repeat_cancelled", id=f"S{series}"))]
        broadcast = _id_arg(turn.args)
        if broadcast is None:
            return [Reply(self.say("huythongbao_usage"))]
        dropped = await self.broadcasts.cancel(broadcast)
        if dropped is None:
            return [Reply(self.say("huythongbao_failed", id=broadcast))]
        log.info("broadcast %d cancelled by %s %s", broadcast, turn.inbound.channel, turn.inbound.user_id)
        return [Reply(self.say("huythongbao_done", id=broadcast, dropped=dropped))]

    async def cmd_baocao(self, turn: Turn) -> list[Reply]:
        refused = await self._refused(turn, "/baocao")
        if refused is not None:
            return refused
        broadcast = _id_arg(turn.args)
        if broadcast is None:
            return [Reply(self.say("baocao_usage"))]
        report = await self.broadcasts.report(broadcast)
        if report is None:
            return [Reply(self.say("baocao_missing", id=broadcast))]
        return [Reply(self.report_text(report))]

    def report_text(self, report: Report) -> str:
        failed = report.failed
        failed_text = (", ".join(f"{reason}: {n}" for reason, n in sorted(failed.items()))
                       if failed else "0")
        text = self.say(
            "baocao", id=report.id, title=report.title or "", status=self.say(f"status_{report.status}"),
            total=report.total, sent=report.sent, pending=report.pending, failed=sum(failed.values()),
            failed_reasons=failed_text, acknowledged=report.acknowledged, when=self._local(report.send_at),
        )
        places = [(code, counts) for code, counts in sorted(report.by_locality.items()) if counts["total"]]
        if len(places) > 1:
            lines = [self.say("baocao_place", place=self._place(code or None) if code else "—", **counts)
                     for code, counts in places[:30]]
            text += "\n\n" + self.say("baocao_by_place") + "\n" + "\n".join(lines)
        return text

    # ------------------------------------------------------------------ helpers

    def parse_local(self, value: str) -> float | None:
        """`dd/mm/yyyy HH:MM` in local time, as epoch seconds; None if it is not a real time."""
        return parse_local_date(value, self.tz, time_required=True, allow_word=False)

    def _local(self, epoch: float) -> str:
        return datetime.fromtimestamp(epoch, self.tz).strftime("%d/%m/%Y %H:%M")

    def _example(self) -> str:
        tomorrow = datetime.fromtimestamp(self.clock() + 86_400, self.tz)
        return tomorrow.strftime("%d/%m/%Y") + " 08:00"

    def _place(self, code: str | None) -> str:
        if code is None:
            return self.say("compose_everywhere")
        return self.tree.full_name(code) if code in self.tree else code



def _id_arg(args: str) -> int | None:
    value = args.strip().lstrip("#")
    return int(value) if value.isdigit() and len(value) < 12 else None
