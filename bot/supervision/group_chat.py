"""The group side of supervision, and the staff's answers to extension requests.

Buttons `sv:done:<id>` "Đã hoàn thành" and `sv:ext:<id>` "Xin gia hạn" on a reminder (staff, or
admins of one of the plan's own groups: its chat list or a registered group of its locality's
subtree; everyone else gets one polite sentence, the same whether the id exists or not), the command
`/baocao_gs <id> <kết quả>` (named so because `/baocao` is the broadcast report), a reply "đã hoàn
thành …" to the bot in a group, and in the staff chat `sv:ok:<ext>` / `sv:no:<ext>` on extension
requests and `/giamsat` (the table).

For other channels (Zalo has no buttons): call

    replies = await supervision.complete_from_reply(channel, chat_id, text, user_id=..., display_name=...)

when a group writes "đã hoàn thành [#id] <kết quả>" to the bot. It returns None when the text is not
a completion report (handle it as usual), else the replies to send back to that group. The plan is
the one named by `#id`, else the one most recently reminded in that chat. It does not check admin
rights (it does check that the chat is one of the plan's groups): the caller decides who may report
(the dialogue's own group hook checks admins, except on channels in `trusted_reply_channels`,
default {"zalo"}, whose Bot API cannot tell admins apart; a registered Zalo group is trusted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.audiences.chats import Staff
from bot.channels.base import Inbound, Reply
from bot.conversation.flows import Flows
from bot.conversation.routes import Routes, Turn
from bot.kernel.dates import find_local_date
from bot.kernel.messages import Messages
from bot.supervision.model import MAX_RESULT, PREFIX, AdminCheck, Plan, match_done, who
from bot.supervision.plans import Plans
from bot.supervision.schedule import ScheduleError, local_text
from bot.supervision.texts import Texts

log = logging.getLogger("bot.supervision.service")
RESULT_STEP, EXTENSION_STEP = "supervision.result", "supervision.extension"  # names in Flows; arg: the plan id


class GroupChat:
    def __init__(self, plans: Plans, texts: Texts, staff: Staff, *, is_admin: AdminCheck,
                 flows: Flows, trusted_reply_channels: set[str] | None = None) -> None:
        self.plans = plans
        self.flows = flows
        flows.declare("supervision.group_chat", steps={RESULT_STEP: self._result_step,
                                                       EXTENSION_STEP: self._extension_step})
        self.texts = texts
        self.say: Messages = texts.say
        self.staff = staff
        self.tz: ZoneInfo = plans.tz
        self.clock: Callable[[], float] = plans.clock
        self.is_admin = is_admin
        self.trusted_reply_channels: set[str] = {"zalo"} if trusted_reply_channels is None else trusted_reply_channels

    def routes(self) -> Routes:
        """/baocao_gs, /giamsat, the reminder buttons, "đã hoàn thành" typed in a group (the button
        where there is none), and a group's report or extension request typed after a reminder."""
        return Routes(owner="supervision.group_chat", priority=30,
                      commands={"baocao_gs": self.cmd_report, "giamsat": self.cmd_table},
                      options={PREFIX: self.on_option}, phrases={"da hoan thanh": self.on_group_text},
                      group_text=(self.on_group_text,))

    async def _is_group_admin(self, inbound: Inbound) -> bool:
        if inbound.is_group_admin:
            return True
        if inbound.chat_kind == "group":
            try:
                return await self.is_admin(inbound)
            except Exception:
                log.exception("admin check failed for %s group %s", inbound.channel, inbound.chat_id)
        return False

    async def _authorised(self, inbound: Inbound, plan_id: str, *, trusted: bool = False,
                          ) -> tuple[Plan | None, list[Reply] | None]:
        """The plan `plan_id` if this person may report on it or ask to extend it: staff anywhere, or an
        admin (anyone in a `trusted` chat) of one of the plan's own groups (`Plans.responsible`). Any
        other chat gets the same sentence whether the plan exists or not, so an id guessed into another
        locality's plans tells nothing and does nothing."""
        if not await self.staff.is_staff(inbound.channel, inbound.user_id):
            if not trusted and not await self._is_group_admin(inbound):
                log.info("supervision: %s user %s may not report for chat %s", inbound.channel, inbound.user_id,
                         inbound.chat_id)
                return None, [Reply(self.say("sv_not_admin"))]
            plan = await self.plans.get(int(plan_id)) if plan_id.isdigit() else None
            if plan is None or inbound.chat_kind != "group" or not await self.plans.responsible(
                    plan, inbound.channel, inbound.chat_id):
                log.warning("supervision: plan %s refused to %s user %s in chat %s: not one of the plan's groups",
                            plan_id[:12], inbound.channel, inbound.user_id, inbound.chat_id)
                return None, [Reply(self.say("sv_not_yours", id=plan_id[:12]))]
        return await self._open_plan(plan_id)

    async def _open_plan(self, plan_id: str) -> tuple[Plan | None, list[Reply] | None]:
        plan = await self.plans.get(int(plan_id)) if plan_id.isdigit() else None
        if plan is None:
            return None, [Reply(self.say("sv_missing", id=plan_id[:12]))]
        if plan.status == "done":
            return None, [Reply(self.say("sv_already_done", id=plan.id, title=plan.title))]
        if plan.status == "cancelled":
            return None, [Reply(self.say("sv_was_cancelled", id=plan.id))]
        return plan, None

    async def on_option(self, turn: Turn) -> list[Reply]:
        action, _, arg = turn.args.partition(":")
        inbound: Inbound = turn.inbound
        if action in ("ok", "no"):
            if not await self.staff.is_staff(inbound.channel, inbound.user_id):
                log.warning("supervision: %s user %s is not staff (extension %s)", inbound.channel, inbound.user_id,
                            arg[:12])
                return [Reply(self.say("staff_only"))]
            if not arg.isdigit():
                return [Reply(self.say("stale_option"))]
            status, plan = await self.plans.decide_extension(int(arg), action == "ok", who(inbound))
            if status == "missing" or plan is None:
                return [Reply(self.say("stale_option"))]
            if status == "already":
                return [Reply(self.say("sv_ext_already", ext=arg))]
            return [Reply(self.say("sv_ext_decided", ext=arg, id=plan.id, who=inbound.display_name or inbound.user_id,
                                   decision=self.say(f"sv_decision_{status}"), due=local_text(plan.due_at, self.tz)))]
        if action not in ("done", "ext"):
            return [Reply(self.say("stale_option"))]
        plan, refusal = await self._authorised(inbound, arg)
        if plan is None:
            return refusal or []
        if action == "done":
            self.flows.expect(inbound, RESULT_STEP, str(plan.id))
            return [Reply(self.say("sv_result_prompt", id=plan.id, title=plan.title))]
        self.flows.expect(inbound, EXTENSION_STEP, str(plan.id))
        return [Reply(self.say("sv_ext_prompt", id=plan.id, title=plan.title, due=local_text(plan.due_at, self.tz),
                               example=self._example_date(plan.due_at)))]

    async def _result_step(self, turn: Turn) -> list[Reply]:
        return await self._on_result(turn, int(turn.args)) if turn.args.isdigit() else [Reply(self.say("stale_option"))]

    async def _extension_step(self, turn: Turn) -> list[Reply]:
        if not turn.args.isdigit():
            return [Reply(self.say("stale_option"))]
        return await self._on_extension(turn, int(turn.args))

    async def _on_result(self, turn: Turn, plan_id: int) -> list[Reply]:
        text = turn.inbound.text.strip().splitlines()[0].strip() if turn.inbound.text.strip() else ""
        if not text:
            self.flows.expect(turn.inbound, RESULT_STEP, str(plan_id))
            return [Reply(self.say("sv_result_empty"))]
        return await self._finish(turn.inbound, plan_id, text)

    async def _finish(self, inbound: Inbound, plan_id: int, result: str) -> list[Reply]:
        outcome = await self.plans.complete(plan_id, result, who(inbound))
        plan = await self.plans.get(plan_id)
        if outcome == "done" and plan is not None:
            return [Reply(self.say("sv_done", id=plan.id, title=plan.title, result=plan.result or ""))]
        if outcome == "already" and plan is not None:
            return [Reply(self.say("sv_already_done", id=plan.id, title=plan.title))]
        if outcome == "cancelled":
            return [Reply(self.say("sv_was_cancelled", id=plan_id))]
        return [Reply(self.say("sv_missing", id=plan_id))]

    async def _on_extension(self, turn: Turn, plan_id: int) -> list[Reply]:
        text = turn.inbound.text.strip()
        plan = await self.plans.get(plan_id)
        if plan is None or plan.status != "planned":
            return [Reply(self.say("sv_was_cancelled", id=plan_id))]
        example = self._example_date(plan.due_at)
        match = find_local_date(text, self.tz)
        new_due = match.when if match else None
        if new_due is None:
            self.flows.expect(turn.inbound, EXTENSION_STEP, str(plan_id))
            return [Reply(self.say("sv_ext_invalid", example=example))]
        if new_due <= max(plan.due_at, self.clock()):
            self.flows.expect(turn.inbound, EXTENSION_STEP, str(plan_id))
            return [Reply(self.say("sv_ext_past", due=local_text(plan.due_at, self.tz), example=example))]
        reason = " ".join((text[: match.start] + " " + text[match.end:]).split()).strip(" -–—:,.;") if match else ""
        ext = await self.plans.request_extension(plan_id, turn.inbound, reason[:MAX_RESULT] or "—", new_due)
        if ext is None:
            return [Reply(self.say("sv_was_cancelled", id=plan_id))]
        return [Reply(self.say("sv_ext_sent", id=plan_id, due=local_text(new_due, self.tz)))]

    def _example_date(self, due: float) -> str:
        later = datetime.fromtimestamp(max(due, self.clock()), self.tz) + timedelta(days=14)
        return later.strftime("%d/%m/%Y") + " - lý do"

    async def cmd_report(self, turn: Turn) -> list[Reply]:
        """`/baocao_gs <id> <kết quả>`: report a plan done from its group (admins and staff)."""
        inbound: Inbound = turn.inbound
        plan_id, _, result = turn.args.partition(" ")
        plan_id = plan_id.lstrip("#")
        if not plan_id.isdigit():
            return [Reply(self.say("sv_usage"))]
        plan, refusal = await self._authorised(inbound, plan_id)
        if plan is None:
            return refusal or []
        if not result.strip():
            self.flows.expect(inbound, RESULT_STEP, str(plan.id))
            return [Reply(self.say("sv_result_prompt", id=plan.id, title=plan.title))]
        return await self._finish(inbound, plan.id, result.strip())

    async def cmd_table(self, turn: Turn) -> list[Reply]:
        inbound: Inbound = turn.inbound
        if not await self.staff.is_staff(inbound.channel, inbound.user_id):
            log.warning("/giamsat refused: %s user %s is not staff", inbound.channel, inbound.user_id)
            return [Reply(self.say("staff_only"))]
        period = turn.args.strip().upper() or None
        try:
            table = await self.plans.table(period)
        except ScheduleError:
            table = await self.plans.table()
        return [Reply(self.texts.table_text(table))]

    async def on_group_text(self, turn: Turn) -> list[Reply] | None:
        inbound: Inbound = turn.inbound
        found = match_done(inbound.text)
        if found is None:
            return None
        trusted = inbound.channel in self.trusted_reply_channels
        if not trusted and not await self._is_group_admin(inbound) and not await self.staff.is_staff(
                inbound.channel, inbound.user_id):
            return [Reply(self.say("sv_not_admin"))]
        return await self.complete_from_reply(inbound.channel, inbound.chat_id, inbound.text,
                                              user_id=inbound.user_id, display_name=inbound.display_name)

    async def complete_from_reply(self, channel: str, chat_id: str, text: str, *, user_id: str = "",
                                  display_name: str = "") -> list[Reply] | None:
        """A group wrote "đã hoàn thành [#id] <kết quả>": mark its plan done. None: not such a text.

        The plan is `#id` if given, else the planned one most recently reminded in this chat, else
        the only planned one of the chat's locality. Channel-agnostic (see the module notes). It does
        not check admin rights, but a plan is only completed from one of its own groups (or by staff).
        """
        found = match_done(text)
        if found is None:
            return None
        wanted, result = found
        plan_id = int(wanted) if wanted else await self.plans.plan_for_chat(channel, chat_id)
        if plan_id is None:
            return [Reply(self.say("sv_reply_which"))]
        plan = await self.plans.get(plan_id)
        if plan is None or not (await self.plans.responsible(plan, channel, chat_id)
                                or (user_id and await self.staff.is_staff(channel, user_id))):
            log.warning("supervision: plan %s refused to %s user %s in chat %s: not one of the plan's groups",
                        plan_id, channel, user_id or "-", chat_id)
            return [Reply(self.say("sv_not_yours", id=plan_id))]
        plan, refusal = await self._open_plan(str(plan_id))
        if plan is None:
            return refusal
        who = f"{channel}:{user_id}" if user_id else f"{channel}:{chat_id}"
        outcome = await self.plans.complete(plan.id, result or self.say("sv_result_default"), who)
        if outcome != "done":
            return [Reply(self.say("sv_missing", id=plan.id))]
        log.info("supervision plan %d reported done by reply in %s %s (%s)", plan.id, channel, chat_id,
                 display_name or user_id)
        done = await self.plans.get(plan.id)
        return [Reply(self.say("sv_done", id=plan.id, title=plan.title, result=done.result if done else result))]
