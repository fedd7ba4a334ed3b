"""Staff enter and reschedule supervision plans from the chat.

`/themgiamsat` (private chat with the bot, staff only) asks step by step, each answer taken by
the dialogue's `expect()`: the locality (a code or a name, with or without diacritics; a wrong
one gets close-match buttons from `Localities.suggest`), the kind (buttons "Giám sát" /
"Phản biện", or typed), the title, the due date (`dd/mm/yyyy [HH:MM]`, Asia/Ho_Chi_Minh, 17:00
when no time is given, in the future), the reminder offsets (a button for the default, or typed
like `7d,1d,2h`), then a summary with the reminder times and "Lưu" / "Hủy". Saving goes through
`Plans.add`, exactly as `supervision add` on the CLI. The name follows the house style of
Vietnamese verbs without marks (/thongbao, /huythongbao): "thêm giám sát"; `/giamsat` stays the table.

`/doihan <id> <dd/mm/yyyy [HH:MM]>` (staff, private chat or the staff group) moves a plan's due
date through `Plans.edit`, which reschedules its reminders (rules in bot/supervision/plans.py).

One draft per staff member, kept by `Flows` (it survives a restart; each step is declared by its
name, `supervision.<step>`). Callback data: `sva:<action>[:<arg>]`, well under Telegram's 64 bytes.
Non-staff get `staff_only` and a warning in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.audiences.chats import Staff
from bot.channels.base import Inbound, Option, Reply
from bot.conversation.flows import Flows
from bot.conversation.routes import Routes, Turn
from bot.kernel.dates import parse_local_date
from bot.kernel.vietnamese import fold
from bot.supervision.model import SupervisionError, who
from bot.supervision.plans import Plans
from bot.supervision.plans_io import MAX_TITLE, PlanInput
from bot.supervision.schedule import ScheduleError, local_text, offsets_text, parse_offsets

log = logging.getLogger(__name__)

OWNER = "supervision.staff_chat"
PREFIX = "sva"
_KINDS = {"giam sat": "giam_sat", "gs": "giam_sat", "phan bien": "phan_bien", "phan bien xa hoi": "phan_bien",
          "pb": "phan_bien"}


@dataclass
class _Draft:
    step: str = "locality"  # locality → kind → title → due → remind → confirm → saved
    locality: str = ""
    kind: str = ""
    title: str = ""
    due_at: float = 0.0
    remind: str = ""
    plan_id: int = 0


class SupervisionChat:
    def __init__(self, plans: Plans, staff: Staff, flows: Flows) -> None:
        self.flows = flows
        self.plans = plans
        self._steps: dict[str, Callable[[Inbound, _Draft, str], Awaitable[list[Reply]]]] = {
            "locality": self._got_locality, "kind": self._got_kind, "title": self._got_title, "due": self._got_due,
            "remind": self._got_remind}
        flows.declare(OWNER, steps={f"supervision.{name}": self._step_handler(name) for name in self._steps},
                      draft=_Draft, restart="themgiamsat")
        self.staff = staff
        self.say = plans.say
        self.tree = plans.tree
        self.tz = plans.tz

    def routes(self) -> Routes:
        return Routes(owner=OWNER, commands={"themgiamsat": self.cmd_themgiamsat, "doihan": self.cmd_doihan},
                      options={PREFIX: self.on_option},
                      audited={"/doihan": "supervision.due", f"{PREFIX}:s": "supervision.add"})

    # ------------------------------------------------------------------ gatekeeping

    async def _refused(self, inbound: Inbound, what: str, *, private: bool) -> list[Reply] | None:
        if not await self.staff.is_staff(inbound.channel, inbound.user_id):
            log.warning("supervision %s refused: %s user %s (%s) in chat %s is not staff", what, inbound.channel,
                        inbound.user_id, inbound.display_name or "?", inbound.chat_id)
            return [Reply(self.say("staff_only"))]
        if private and inbound.chat_kind != "private":
            return [Reply(self.say("staff_private_only"))]
        return None

    # ------------------------------------------------------------------ /themgiamsat

    async def cmd_themgiamsat(self, turn: Turn) -> list[Reply]:
        inbound: Inbound = turn.inbound
        refused = await self._refused(inbound, "/themgiamsat", private=True)
        if refused is not None:
            return refused
        draft = self.flows.start(OWNER, inbound, _Draft())
        log.info("supervision: %s starts a new plan", who(inbound))
        if turn.args:  # "/themgiamsat phan rang": the locality came with the command
            return await self._got_locality(inbound, draft, turn.args)
        self._expect(inbound, draft, self._got_locality)
        return [Reply(self.say("sv_add_locality"), options=(self._cancel(),))]

    async def _got_locality(self, inbound: Inbound, draft: _Draft, text: str) -> list[Reply]:
        text = " ".join(text.split())[:60]
        place = self.tree.lookup(text) if text else None
        if place is not None:
            return self._ask_kind(inbound, draft, place.code)
        self._expect(inbound, draft, self._got_locality)
        close = self.tree.suggest(text) if text else []
        if not close:
            example = next((i.name for i in self.tree if i.parent), next(iter(self.tree)).name)
            return [Reply(self.say("sv_add_locality_none", text=text, example=example), options=(self._cancel(),))]
        options = tuple(Option(self.tree.full_name(i.code), f"{PREFIX}:l:{i.code}") for i in close)
        return [Reply(self.say("sv_add_locality_suggest", text=text), options=(*options, self._cancel()))]

    def _ask_kind(self, inbound: Inbound, draft: _Draft, code: str) -> list[Reply]:
        draft.locality, draft.step = code, "kind"
        self._expect(inbound, draft, self._got_kind)
        options = (Option(self.say("sv_button_giam_sat"), f"{PREFIX}:k:giam_sat"),
                   Option(self.say("sv_button_phan_bien"), f"{PREFIX}:k:phan_bien"), self._cancel())
        return [Reply(self.say("sv_add_kind", place=self.tree.full_name(code)), options=options)]

    async def _got_kind(self, inbound: Inbound, draft: _Draft, text: str) -> list[Reply]:
        kind = _KINDS.get(" ".join(fold(text).lower().replace("_", " ").split()))
        if kind is None:
            return self._ask_kind(inbound, draft, draft.locality)
        return self._ask_title(inbound, draft, kind)

    def _ask_title(self, inbound: Inbound, draft: _Draft, kind: str) -> list[Reply]:
        draft.kind, draft.step = kind, "title"
        self._expect(inbound, draft, self._got_title)
        return [Reply(self.say("sv_add_title", kind=self.say(f"sv_kind_{kind}")), options=(self._cancel(),))]

    async def _got_title(self, inbound: Inbound, draft: _Draft, text: str) -> list[Reply]:
        title = " ".join(text.split())
        if not title or len(title) > MAX_TITLE:
            self._expect(inbound, draft, self._got_title)
            return [Reply(self.say("sv_add_title_invalid", limit=MAX_TITLE), options=(self._cancel(),))]
        draft.title, draft.step = title, "due"
        self._expect(inbound, draft, self._got_due)
        return [Reply(self.say("sv_add_due", example=self._example()), options=(self._cancel(),))]

    async def _got_due(self, inbound: Inbound, draft: _Draft, text: str) -> list[Reply]:
        due = parse_local_date(text, self.tz)
        if due is None:
            self._expect(inbound, draft, self._got_due)
            return [Reply(self.say("sv_add_due_invalid", value=text.strip()[:40], example=self._example()),
                          options=(self._cancel(),))]
        if due <= self.plans.clock():
            self._expect(inbound, draft, self._got_due)
            return [Reply(self.say("sv_add_due_past", due=local_text(due, self.tz), example=self._example()),
                          options=(self._cancel(),))]
        if draft.remind:  # a new date after "Lưu" found the old one passed: the offsets stay
            draft.due_at = due
            return await self._summary(draft, draft.remind)
        draft.due_at, draft.step = due, "remind"
        self._expect(inbound, draft, self._got_remind)
        default = self.plans.config.remind
        return [Reply(self.say("sv_add_remind", default=default),
                      options=(Option(self.say("sv_button_remind_default", default=default), f"{PREFIX}:r"),
                               self._cancel()))]

    async def _got_remind(self, inbound: Inbound, draft: _Draft, text: str) -> list[Reply]:
        try:
            remind = offsets_text(parse_offsets(text))
        except ScheduleError:
            self._expect(inbound, draft, self._got_remind)
            return [Reply(self.say("sv_add_remind_invalid", value=text.strip()[:40]), options=(self._cancel(),))]
        return await self._summary(draft, remind)

    async def _summary(self, draft: _Draft, remind: str) -> list[Reply]:
        draft.remind, draft.step = remind, "confirm"
        config = self.plans.config
        text = self.say("sv_add_summary", place=self.tree.full_name(draft.locality),
                        kind=self.say(f"sv_kind_{draft.kind}"), title=draft.title,
                        due=local_text(draft.due_at, self.tz), period=config.period_of(draft.due_at, self.tz),
                        schedule=self.schedule_text(draft.due_at, remind))
        if not await self.plans.group_count(draft.locality):
            text += "\n\n" + self.say("sv_add_no_groups", place=self.tree.full_name(draft.locality))
        return [Reply(text, options=(Option(self.say("sv_button_save"), f"{PREFIX}:s"), self._cancel()))]

    async def _save(self, inbound: Inbound, draft: _Draft) -> list[Reply]:
        plan = PlanInput(draft.locality, draft.title, draft.due_at, draft.remind, draft.kind)
        try:
            plan_id = await self.plans.add(plan, created_by=who(inbound), source="chat")
        except SupervisionError:  # the due time passed while the summary waited
            draft.step = "due"
            self._expect(inbound, draft, self._got_due)
            return [Reply(self.say("sv_add_due_past", due=local_text(draft.due_at, self.tz),
                                   example=self._example()), options=(self._cancel(),))]
        draft.step, draft.plan_id = "saved", plan_id
        return [Reply(self.say("sv_add_saved", id=plan_id, title=draft.title,
                               place=self.tree.full_name(draft.locality), due=local_text(draft.due_at, self.tz)))]

    # ------------------------------------------------------------------ buttons

    async def on_option(self, turn: Turn) -> list[Reply]:
        inbound: Inbound = turn.inbound
        refused = await self._refused(inbound, f"option {PREFIX}:{turn.args[:40]}", private=True)
        if refused is not None:
            return refused
        action, _, arg = turn.args.partition(":")
        draft = self.flows.draft(OWNER, inbound)
        if action == "x":
            self.flows.end(OWNER, inbound)
            if draft is not None and draft.step == "saved":
                return [Reply(self.say("sv_add_already", id=draft.plan_id))]
            return [Reply(self.say("sv_add_cancelled"))]
        if draft is not None and draft.step == "saved" and action == "s":
            return [Reply(self.say("sv_add_already", id=draft.plan_id))]
        wanted = {"l": "locality", "k": "kind", "r": "remind", "s": "confirm"}.get(action)
        if draft is None or wanted is None or draft.step != wanted:
            return [Reply(self.say("sv_add_stale"))]
        self.flows.drop_step(inbound, OWNER)  # the button answers the step the text would have
        if action == "l":
            if arg not in self.tree:
                return [Reply(self.say("sv_add_stale"))]
            return self._ask_kind(inbound, draft, arg)
        if action == "k":
            if arg not in ("giam_sat", "phan_bien"):
                return [Reply(self.say("sv_add_stale"))]
            return self._ask_title(inbound, draft, arg)
        if action == "r":
            return await self._summary(draft, self.plans.config.remind)
        return await self._save(inbound, draft)

    # ------------------------------------------------------------------ /doihan

    async def cmd_doihan(self, turn: Turn) -> list[Reply]:
        """`/doihan <id> <dd/mm/yyyy [HH:MM]>`: a new due date; the reminders follow it."""
        inbound: Inbound = turn.inbound
        refused = await self._refused(inbound, "/doihan", private=False)
        if refused is not None:
            return refused
        plan_id, _, when = turn.args.strip().lstrip("#").partition(" ")
        due = parse_local_date(when, self.tz)
        if not plan_id.isdigit() or len(plan_id) > 12 or due is None:
            return [Reply(self.say("sv_edit_usage", example=self._example()))]
        before = await self.plans.get(int(plan_id))
        status, plan = await self.plans.edit(int(plan_id), due=due, by=who(inbound))
        if status == "missing" or plan is None:
            return [Reply(self.say("sv_missing", id=plan_id))]
        if status == "done":
            return [Reply(self.say("sv_already_done", id=plan.id, title=plan.title))]
        if status == "cancelled":
            return [Reply(self.say("sv_was_cancelled", id=plan.id))]
        if status == "past":
            return [Reply(self.say("sv_edit_past", due=local_text(due, self.tz), example=self._example()))]
        old_due = before.due_at if before is not None else plan.due_at
        return [Reply(self.say("sv_edit_done", id=plan.id, title=plan.title, old_due=local_text(old_due, self.tz),
                               due=local_text(plan.due_at, self.tz),
                               schedule=self.schedule_text(plan.due_at, plan.remind)))]

    # ------------------------------------------------------------------ helpers

    def schedule_text(self, due: float, remind: str) -> str:
        """One line per reminder still ahead ("- 7 ngày trước hạn: 08/12/2026 08:00"), then those already past."""
        now = self.plans.clock()
        ahead, past = [], []
        for offset in parse_offsets(remind):
            fire = self.plans.config.fire_at(due, offset, self.tz)
            (ahead if fire > now else past).append((self.offset_words(offset.label), fire))
        lines = [self.say("sv_schedule_item", offset=words, when=local_text(fire, self.tz))
                 for words, fire in sorted(ahead, key=lambda x: x[1])]
        if not ahead:
            lines.append(self.say("sv_schedule_none"))
        if past:
            lines.append(self.say("sv_schedule_past", offsets=", ".join(words for words, _ in past)))
        return "\n".join(lines)

    def offset_words(self, label: str) -> str:
        amount, unit = int(label[:-1]), label[-1]
        if amount == 0:
            return self.say("sv_offset_day0" if unit == "d" else "sv_offset_zero")
        return self.say(f"sv_offset_{unit}", n=amount)

    def _example(self) -> str:
        later = datetime.fromtimestamp(self.plans.clock(), self.tz) + timedelta(days=14)
        return later.strftime("%d/%m/%Y") + " 17:00"

    def _cancel(self) -> Option:
        return Option(self.say("sv_button_cancel"), f"{PREFIX}:x")

    def _expect(self, inbound: Inbound, draft: _Draft,
                step: Callable[[Inbound, _Draft, str], Awaitable[list[Reply]]]) -> None:
        """The next message goes to `step` while this draft is the one in progress; if it was
        cancelled or replaced meanwhile, the message is handled as if nothing waited for it."""
        name = next((name for name, known in self._steps.items() if known == step), None)
        if name is None:
            raise KeyError(f"{step.__name__} is not a declared step: add it to SupervisionChat._steps")
        self.flows.expect(inbound, f"supervision.{name}", draft.step, owner=OWNER)

    def _step_handler(self, name: str) -> Callable[[Turn], Awaitable[list[Reply]]]:
        """The declared handler of one step: the person's current draft, at the step it was set for."""

        async def handler(turn: Turn) -> list[Reply]:
            draft = self.flows.draft(OWNER, turn.inbound)
            if draft is None or draft.step != turn.args:
                return [Reply(self.say("sv_add_stale"))]
            return await self._steps[name](turn.inbound, draft, turn.inbound.text)

        return handler

