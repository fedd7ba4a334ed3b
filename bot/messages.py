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
    "options_hint_numbers": frozenset({"number", "label"}),  # Zalo: numbered options
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
    "ack_nothing": frozenset(),  # "đã nhận" in a group with no broadcast to acknowledge
    "channel_quota_alert": frozenset({"channel"}),  # to the staff chat, once per quota stop
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
    "progress_line": frozenset({"id", "sent", "total", "failed", "minutes"}),
    "progress_done": frozenset({"id", "sent", "total", "failed"}),
    "progress_cancelled": frozenset({"id", "sent", "total", "failed"}),
    # handoff to staff, petitions, privacy, rate limit (bot/handoff.py, petitions.py, privacy.py, ratelimit.py)
    "handoff_offer_button": frozenset(),
    "handoff_ask_prompt": frozenset(),
    "handoff_private_only": frozenset(),
    "handoff_forwarded": frozenset({"id"}),
    "handoff_already": frozenset({"id"}),
    "handoff_too_long": frozenset({"limit"}),
    "handoff_too_many": frozenset({"count"}),
    "handoff_appended": frozenset({"id"}),
    "handoff_followups_full": frozenset({"id"}),
    "handoff_followup_staff": frozenset({"id", "text"}),
    "handoff_staff_card": frozenset({"id", "kind", "channel", "name", "place", "when", "text"}),
    "handoff_staff_howto": frozenset({"id"}),
    "handoff_button_answer": frozenset(),
    "handoff_button_done": frozenset(),
    "handoff_answer_prompt": frozenset({"id"}),
    "handoff_answer": frozenset({"id", "answer"}),
    "handoff_answer_sent": frozenset({"id", "name"}),
    "handoff_undelivered": frozenset({"id", "reason"}),
    "handoff_done": frozenset({"id", "name"}),
    "handoff_already_done": frozenset({"id"}),
    "handoff_reminder": frozenset({"id", "hours"}),
    "traloi_usage": frozenset(),
    "ticket_missing": frozenset({"id"}),
    "ticket_kind_question": frozenset(),
    "ticket_kind_petition": frozenset(),
    "ticket_anonymous": frozenset(),
    "ticket_no_locality": frozenset(),
    "ticket_topic_line": frozenset({"topic"}),
    "ticket_photo_line": frozenset(),
    "ticket_followup_line": frozenset({"when", "text"}),
    "ticket_reason_erased": frozenset(),
    "ticket_reason_no_channel": frozenset(),
    "ticket_erased_post": frozenset({"id"}),
    "ticket_status_open": frozenset(),
    "ticket_status_answered": frozenset(),
    "ticket_status_closed": frozenset(),
    "petition_private_only": frozenset(),
    "petition_topic": frozenset(),
    "petition_locality": frozenset(),
    "petition_locality_retry": frozenset(),
    "petition_content": frozenset({"place", "limit"}),
    "petition_content_empty": frozenset(),
    "petition_photo_received": frozenset(),
    "petition_media_unsupported": frozenset(),
    "petition_consent": frozenset({"topic", "place", "text", "photo"}),
    "petition_with_photo": frozenset(),
    "petition_agree": frozenset(),
    "petition_cancelled": frozenset(),
    "petition_stale": frozenset(),
    "petition_received": frozenset({"id"}),
    "theodoi_usage": frozenset(),
    "theodoi_none": frozenset(),
    "theodoi_list": frozenset(),
    "theodoi_line": frozenset({"id", "status", "when"}),
    "theodoi_refused": frozenset({"id"}),
    "theodoi_status": frozenset({"id", "status", "when", "text"}),
    "theodoi_answer": frozenset({"answer", "when"}),
    "gopy_moi_none": frozenset(),
    "gopy_moi_intro": frozenset({"count"}),
    "gopy_moi_line": frozenset({"id", "when", "topic", "place", "text"}),
    "privacy_private_only": frozenset(),
    "privacy_report": frozenset({"channel", "user_id", "name", "place", "subscription", "first_seen", "questions",
                                 "received", "tickets"}),
    "privacy_no_locality": frozenset(),
    "privacy_subscribed": frozenset({"place", "since"}),
    "privacy_not_subscribed": frozenset(),
    "privacy_no_tickets": frozenset(),
    "privacy_erase_confirm": frozenset(),
    "privacy_erase_yes": frozenset(),
    "privacy_erase_no": frozenset(),
    "privacy_erase_cancelled": frozenset(),
    "privacy_erased": frozenset(),
    "rate_limited": frozenset(),
    # supervision deadlines (bot/supervision.py)
    "sv_reminder": frozenset({"id", "title", "kind", "subject", "place", "due", "left"}),
    "sv_kind_giam_sat": frozenset(),
    "sv_kind_phan_bien": frozenset(),
    "sv_left_days": frozenset({"n"}),
    "sv_left_hours": frozenset({"n"}),
    "sv_left_minutes": frozenset({"n"}),
    "sv_left_now": frozenset(),
    "sv_button_done": frozenset(),
    "sv_button_ext": frozenset(),
    "sv_not_admin": frozenset(),
    "sv_missing": frozenset({"id"}),
    "sv_already_done": frozenset({"id", "title"}),
    "sv_was_cancelled": frozenset({"id"}),
    "sv_result_prompt": frozenset({"id", "title"}),
    "sv_result_empty": frozenset(),
    "sv_result_default": frozenset(),
    "sv_done": frozenset({"id", "title", "result"}),
    "sv_usage": frozenset(),
    "sv_reply_which": frozenset(),
    "sv_ext_prompt": frozenset({"id", "title", "due", "example"}),
    "sv_ext_invalid": frozenset({"example"}),
    "sv_ext_past": frozenset({"due", "example"}),
    "sv_ext_sent": frozenset({"id", "due"}),
    "sv_staff_ext": frozenset({"ext", "id", "title", "place", "group", "who", "old_due", "new_due", "reason"}),
    "sv_button_approve": frozenset(),
    "sv_button_refuse": frozenset(),
    "sv_ext_approved": frozenset({"id", "title", "due"}),
    "sv_ext_refused": frozenset({"id", "title", "due"}),
    "sv_ext_decided": frozenset({"ext", "id", "who", "decision", "due"}),
    "sv_decision_approved": frozenset(),
    "sv_decision_refused": frozenset(),
    "sv_ext_already": frozenset({"ext"}),
    "sv_staff_done": frozenset({"id", "title", "place", "result", "who"}),
    "sv_escalation_head": frozenset({"count"}),
    "sv_escalation_item": frozenset({"id", "title", "place", "due", "days"}),
    "sv_nudge": frozenset({"place", "done", "required", "period", "weeks", "end"}),
    "sv_table_head": frozenset({"period", "met", "total"}),
    "sv_table_place": frozenset({"place", "done", "required", "planned"}),
    "sv_table_overdue": frozenset({"count"}),
    "sv_table_upcoming": frozenset({"count"}),
    "sv_table_item": frozenset({"id", "title", "place", "due"}),
    "sv_more": frozenset({"n"}),
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
