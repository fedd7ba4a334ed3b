"""Who receives broadcasts: group chats registered to a locality, residents who subscribed.

In a group, an admin sends `/dangky <mã địa bàn>` (or picks from buttons); in a private chat a
resident sends `/diaban`, walks down the locality tree with buttons and says yes to an explicit
consent question; `/huy` stops at once. Groups consent by registering. Staff do the same for
groups from the CLI (`groups add/import/list`), which uses the functions at the bottom.

Whether someone is a group admin comes from the channel (`Inbound.is_group_admin`, filled by the
adapter) or from `is_admin`, a small callable the app wires to the channel: no platform import.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.audiences.chats import Chat, ChatMigration, Chats, Staff, attach_group, chat_from_row, check_chat_id
from bot.audiences.localities import Localities, Locality, resolve_locality
from bot.channels.base import Inbound, Option, Reply
from bot.conversation.routes import Routes, Turn
from bot.kernel.messages import Messages
from bot.store.db import Database

log = logging.getLogger(__name__)

AdminCheck = Callable[[Inbound], Awaitable[bool]]
CSV_HEADER = ("channel", "chat_id", "locality", "title")


class Registration:
    def __init__(
        self,
        db: Database,
        chats: Chats,
        tree: Localities,
        say: Messages,
        staff: Staff,
        migrate: ChatMigration,
        is_admin: AdminCheck | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.migrate = migrate
        self.chats = chats
        self.tree = tree
        self.say = say
        self.staff = staff
        self.is_admin = is_admin
        self.clock = clock

    def routes(self) -> Routes:
        return Routes(owner="audiences.registration",
                      commands={"dangky": self.cmd_dangky, "diaban": self.cmd_diaban, "huy": self.cmd_huy},
                      options={"grp": self.opt_group, "sub": self.opt_subscribe}, events=(self.on_event,))

    # ------------------------------------------------------------------ groups

    async def _may_manage_group(self, inbound: Inbound) -> bool:
        if inbound.is_group_admin or await self.staff.is_staff(inbound.channel, inbound.user_id):
            return True
        if self.is_admin is not None:
            try:
                return await self.is_admin(inbound)
            except Exception:
                log.exception("admin check failed for %s group %s", inbound.channel, inbound.chat_id)
        return False

    async def cmd_dangky(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        if inbound.chat_kind != "group":
            return [Reply(self.say("dangky_private"))]
        if not await self._may_manage_group(inbound):
            log.info("/dangky refused: %s user %s is not an admin of %s", inbound.channel, inbound.user_id,
                     inbound.chat_id)
            return [Reply(self.say("dangky_not_admin"))]
        wanted = turn.args.strip()
        if not wanted:
            return [self._tree_reply("grp", None, self.say("dangky_pick"))]
        found = self.tree.lookup(wanted)
        if found is None:
            return [self._unknown_reply(wanted, "grp")]
        return await self._register_group(inbound, found)

    async def opt_group(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        action, _, code = turn.args.partition(":")
        if inbound.chat_kind != "group":
            return [Reply(self.say("stale_option"))]
        if not await self._may_manage_group(inbound):
            return [Reply(self.say("dangky_not_admin"))]
        if action == "n" and (code in self.tree or not code):
            return [self._tree_reply("grp", code or None, self.say("dangky_pick"))]
        place = self.tree.get(code)
        if action == "s" and place is not None:
            return await self._register_group(inbound, place)
        return [Reply(self.say("stale_option"))]

    async def _register_group(self, inbound: Inbound, place: Locality) -> list[Reply]:
        await register_groups(self.db, [GroupRecord(inbound.channel, inbound.chat_id, place.code,
                                                    inbound.chat_title or None)], clock=self.clock)
        log.info("%s group %s registered to %s by %s", inbound.channel, inbound.chat_id, place.code, inbound.user_id)
        return [Reply(self.say("dangky_done", place=self.tree.full_name(place.code)))]

    def _unknown_reply(self, wanted: str, prefix: str) -> Reply:
        close = self.tree.suggest(wanted)
        if close:
            text = self.say("locality_unknown_suggest", code=wanted[:40],
                            suggestions=", ".join(f"{i.name} ({i.code})" for i in close))
        else:
            text = self.say("locality_unknown", code=wanted[:40])
        action = "s" if prefix == "grp" else "p"
        options = tuple(Option(i.name, f"{prefix}:{action}:{i.code}") for i in close)
        return Reply(text, options=(*options, Option(self.say("locality_browse"), f"{prefix}:n:")))

    def _tree_reply(self, prefix: str, code: str | None, intro: str) -> Reply:
        """Buttons one level down the tree: nodes with children open, leaves are picked."""
        pick = "s" if prefix == "grp" else "p"
        roots = self.tree.roots()
        if code is None and len(roots) == 1:
            code = roots[0].code  # one province: start at its xã/phường
        level = self.tree.children(code) if code else roots
        options: list[Option] = []
        if code:
            node = self.tree.get(code)
            assert node is not None
            options.append(Option(self.say("locality_pick_this", place=node.name), f"{prefix}:{pick}:{code}"))
        for item in level:
            if self.tree.children(item.code):
                options.append(Option(f"{item.name} ›", f"{prefix}:n:{item.code}"))
            else:
                options.append(Option(item.name, f"{prefix}:{pick}:{item.code}"))
        node = self.tree.get(code)
        if node is not None and node.parent is not None:
            options.append(Option(self.say("locality_up"), f"{prefix}:n:{node.parent}"))
        return Reply(intro, options=tuple(options))

    # ------------------------------------------------------------------ residents

    async def cmd_diaban(self, turn: Turn) -> list[Reply]:
        if turn.inbound.chat_kind != "private":
            return [Reply(self.say("diaban_group"))]
        wanted = turn.args.strip()
        if wanted:
            found = self.tree.lookup(wanted)
            if found is None:
                return [self._unknown_reply(wanted, "sub")]
            return [self._consent_question(found)]
        return [self._tree_reply("sub", None, self.say("diaban_pick"))]

    async def opt_subscribe(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        if inbound.chat_kind != "private":
            return [Reply(self.say("diaban_group"))]
        action, _, code = turn.args.partition(":")
        place = self.tree.get(code)
        if action == "n" and (place is not None or not code):
            return [self._tree_reply("sub", code or None, self.say("diaban_pick"))]
        if action == "p" and place is not None:
            return [self._consent_question(place)]
        if action == "y" and place is not None:
            await self.chats.subscribe(turn.chat, place.code, self.clock())
            log.info("%s chat %s subscribed to %s", inbound.channel, inbound.chat_id, place.code)
            return [Reply(self.say("diaban_done", place=self.tree.full_name(place.code)))]
        if action == "x":
            return [Reply(self.say("diaban_declined"))]
        return [Reply(self.say("stale_option"))]

    def _consent_question(self, place: Locality) -> Reply:
        return Reply(
            self.say("diaban_consent", place=self.tree.full_name(place.code)),
            options=(Option(self.say("consent_yes"), f"sub:y:{place.code}"), Option(self.say("consent_no"), "sub:x")),
        )

    async def cmd_huy(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        if inbound.chat_kind == "group" and not await self._may_manage_group(inbound):
            return [Reply(self.say("dangky_not_admin"))]
        chat = await self.chats.get(inbound.channel, inbound.chat_id)
        was = chat is not None and chat.consent
        await self.chats.withdraw_consent(turn.chat, self.clock())
        log.info("%s chat %s unsubscribed (was subscribed: %s)", inbound.channel, inbound.chat_id, was)
        if inbound.chat_kind == "group":
            return [Reply(self.say("huy_group_done"))]
        return [Reply(self.say("huy_done" if was else "huy_not_subscribed"))]

    # ------------------------------------------------------------------ membership events

    async def on_event(self, turn: Turn) -> list[Reply]:
        inbound = turn.inbound
        if inbound.kind == "migrated" and inbound.new_chat_id:
            await self.migrate(inbound.channel, inbound.chat_id, inbound.new_chat_id)
            return []
        if inbound.kind == "joined" and inbound.chat_kind == "group":
            chat = await self.chats.get(inbound.channel, inbound.chat_id)
            if chat is None or chat.locality is None or not chat.consent:
                return [Reply(self.say("group_register_hint"))]
        return []


# ---------------------------------------------------------------------- shared with the CLI


@dataclass(frozen=True)
class GroupRecord:
    channel: str
    chat_id: str
    locality: str
    title: str | None = None


async def register_groups(db: Database, records: Sequence[GroupRecord],
                          clock: Callable[[], float] = time.time) -> list[bool]:
    """Attach each group to its locality (creating unknown ones), in one transaction.

    Returns, per record, True when the group was new. Idempotent: registering again changes
    nothing but the locality and title. A group the bot was removed from stays inactive.
    """
    now = clock()
    created: list[bool] = []
    async with db.transaction() as tx:
        for record in records:
            created.append(await attach_group(tx, record.channel, record.chat_id, record.locality, record.title, now))
    return created


def parse_groups_csv(text: str, tree: Localities) -> tuple[list[GroupRecord], list[tuple[int, str]]]:
    """Good rows, and (line, problem) for each bad one. Header: channel,chat_id,locality,title."""
    reader = csv.reader(io.StringIO(text))
    records: list[GroupRecord] = []
    problems: list[tuple[int, str]] = []
    header = next(reader, None)
    if header is None or tuple(h.strip().lower() for h in header[:4]) not in (CSV_HEADER, CSV_HEADER[:3]):
        return [], [(1, f"dòng tiêu đề phải là: {','.join(CSV_HEADER)}")]
    seen: dict[tuple[str, str], int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        cells = [c.strip() for c in row] + [""] * 4
        channel, chat_id, locality, title = cells[0].lower(), cells[1], cells[2], cells[3]
        if len(row) > 4:
            problems.append((line, f"thừa cột: cần {len(CSV_HEADER)} cột {','.join(CSV_HEADER)}"))
            continue
        error = check_chat_id(channel, chat_id)
        if error:
            problems.append((line, error))
            continue
        if not locality:
            problems.append((line, "thiếu mã địa bàn (locality)"))
            continue
        code, lookup_error = resolve_locality(tree, locality)
        if code is None:
            problems.append((line, lookup_error))
            continue
        if (channel, chat_id) in seen:
            problems.append((line, f"nhóm {chat_id} đã có ở dòng {seen[(channel, chat_id)]}"))
            continue
        seen[(channel, chat_id)] = line
        records.append(GroupRecord(channel, chat_id, code, title or None))
    return records, problems


async def list_groups(db: Database, *, unregistered_only: bool = False) -> list[Chat]:
    where = "kind = 'group'"
    if unregistered_only:
        where += " AND (locality IS NULL OR consent = 0)"
    rows = await db.fetchall(f"SELECT * FROM chats WHERE {where} ORDER BY locality, display_name, chat_id")
    return [chat_from_row(r) for r in rows]
