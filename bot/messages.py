"""Every sentence the bot says lives in `content/messages.yaml`; this module formats them.

The code names a message by key; staff reword the YAML without touching code. `REQUIRED` lists
the keys the code uses, so `content check` catches a deleted or misspelt one before start-up.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

# key -> the placeholders it may use
REQUIRED: dict[str, frozenset[str]] = {
    "greeting": frozenset({"org"}),
    "menu_prompt": frozenset(),
    "menu_programs": frozenset(),
    "menu_ask": frozenset(),
    "menu_news": frozenset(),
    "menu_feedback": frozenset(),
    "menu_contact": frozenset(),
    "back_to_menu": frozenset(),
    "help": frozenset(),
    "programs_intro": frozenset(),
    "topic_intro": frozenset({"topic"}),
    "ask_prompt": frozenset(),
    "news_intro": frozenset(),
    "feedback_info": frozenset(),
    "contact_card": frozenset({"name", "address", "phone", "hotline", "email", "website", "opening_hours"}),
    "answer_footer": frozenset(),
    "related_intro": frozenset(),
    "choices_intro": frozenset(),
    "decline": frozenset(),
    "decline_suggest": frozenset(),
    "small_talk_hello": frozenset(),
    "small_talk_thanks": frozenset(),
    "small_talk_bye": frozenset(),
    "not_understood": frozenset(),
    "too_long": frozenset({"limit"}),
    "media_unsupported": frozenset(),
    "unknown_command": frozenset(),
    "stale_option": frozenset(),
    "group_joined": frozenset(),
    "error": frozenset(),
    "console_welcome": frozenset(),
    "console_pick": frozenset(),
    "options_hint": frozenset(),
    # registration and subscriptions (bot/registration.py)
    "group_register_hint": frozenset(),
    "dangky_private": frozenset(),
    "dangky_not_admin": frozenset(),
    "dangky_pick": frozenset(),
    "dangky_done": frozenset({"place"}),
    "locality_unknown": frozenset({"code"}),
    "locality_unknown_suggest": frozenset({"code", "suggestions"}),
    "locality_browse": frozenset(),
    "locality_pick_this": frozenset({"place"}),
    "locality_up": frozenset(),
    "diaban_group": frozenset(),
    "diaban_pick": frozenset(),
    "diaban_consent": frozenset({"place"}),
    "consent_yes": frozenset(),
    "consent_no": frozenset(),
    "diaban_done": frozenset({"place"}),
    "diaban_declined": frozenset(),
    "huy_done": frozenset(),
    "huy_not_subscribed": frozenset(),
    "huy_group_done": frozenset(),
    # broadcasts (bot/broadcasts.py)
    "ack_button": frozenset(),
    "ack_done": frozenset({"name"}),
    "ack_already": frozenset(),
    # staff authoring (bot/authoring.py)
    "staff_only": frozenset(),
    "staff_private_only": frozenset(),
    "compose_prompt": frozenset(),
    "compose_empty": frozenset(),
    "compose_too_long": frozenset({"limit"}),
    "compose_audience": frozenset(),
    "audience_groups": frozenset(),
    "audience_residents": frozenset(),
    "audience_all": frozenset(),
    "compose_locality": frozenset(),
    "compose_everywhere": frozenset(),
    "compose_preview": frozenset({"id", "text", "audience", "place", "count"}),
    "compose_no_recipients": frozenset(),
    "compose_send_now": frozenset(),
    "compose_schedule": frozenset(),
    "compose_cancel": frozenset(),
    "compose_stale": frozenset(),
    "compose_queued": frozenset({"id", "count"}),
    "compose_scheduled": frozenset({"id", "count", "when"}),
    "compose_already": frozenset({"id"}),
    "compose_was_cancelled": frozenset({"id"}),
    "compose_cancelled": frozenset(),
    "compose_discard_too_late": frozenset({"id"}),
    "schedule_prompt": frozenset({"example"}),
    "schedule_invalid": frozenset({"value", "example"}),
    "schedule_past": frozenset({"when", "example"}),
    "huythongbao_usage": frozenset(),
    "huythongbao_done": frozenset({"id", "dropped"}),
    "huythongbao_failed": frozenset({"id"}),
    "baocao_usage": frozenset(),
    "baocao_missing": frozenset({"id"}),
    "baocao": frozenset({"id", "title", "status", "when", "total", "sent", "pending", "failed",
                         "failed_reasons", "acknowledged"}),
    "baocao_by_place": frozenset(),
    "baocao_place": frozenset({"place", "total", "sent", "pending", "failed", "acknowledged"}),
    "status_draft": frozenset(),
    "status_queued": frozenset(),
    "status_sending": frozenset(),
    "status_done": frozenset(),
    "status_cancelled": frozenset(),
}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def check_placeholders(key: str, text: str) -> str | None:
    """A sentence the code would fail to fill, described; None when fine."""
    try:
        used = placeholders(text)
    except ValueError as exc:
        return f"câu '{key}' có dấu ngoặc {{ }} sai: {exc}"
    allowed = REQUIRED.get(key)
    if allowed is not None and not used <= allowed:
        unknown = ", ".join(sorted(used - allowed))
        usable = ", ".join(sorted(allowed)) or "không có"
        return f"câu '{key}' dùng {{{unknown}}} mà chương trình không điền (được dùng: {usable})"
    return None


class Messages:
    def __init__(self, table: Mapping[str, str]) -> None:
        self._table = dict(table)

    def __call__(self, key: str, **values: object) -> str:
        text = self._table.get(key)
        if text is None:  # content check prevents this; never crash a conversation over it
            return key
        return text.format_map(_Blank(values)) if values or "{" in text else text


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""
