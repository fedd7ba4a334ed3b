"""Supervision deadlines (giám sát, phản biện): plans, reminders, completion, extension, escalation.

Owns the `supervision_plans`, `supervision_reminders`, `supervision_extensions`,
`supervision_escalations` and `supervision_nudges` tables (migration 003), whose SQL lives only
in `plans`; what it sends is queued through `bot.broadcasts.outbox` (never written here) and
delivered by the one delivery worker. It may import `bot.kernel`, `bot.store`, `bot.channels.base`,
`bot.audiences` (localities, staff), `bot.broadcasts` (outbox, group_replies) and
`bot.conversation.dialogue` (to plug its commands in); nothing in `bot.app` or `bot.cli`, which
import it. Inside, imports go one way: model → outgoing → plans → texts/scheduler/group_chat/
staff_chat → service (the facade the app and the CLI use).
"""
