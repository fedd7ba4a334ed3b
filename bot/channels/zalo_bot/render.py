"""Zalo's rendering: plain text pieces of at most 2,000 characters, options as numbered lines,
and one turn's replies joined into as few messages as fit (every message counts against the quota)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bot.channels.base import Reply
from bot.kernel.markup import split_text, to_plain

Hint = Callable[[int, str], str]  # (number, label) → "Gõ 1 để chọn “…”…"

MAX_TEXT = 2000


def render(reply: Reply, limit: int = MAX_TEXT, hint: Hint | None = None, first_number: int = 1) -> list[str]:
    """Plain-text pieces of at most `limit` characters: the title on its own line, the text, then
    the options as numbered lines (from `first_number`) and a hint sentence, in the last piece
    when they fit."""
    body = reply.text.strip()
    if reply.title:
        title = reply.title.replace("*", "").strip()
        body = f"{title}\n\n{body}" if body else title
    pieces = split_text(to_plain(body), limit)
    if reply.options:
        labels = [" ".join(to_plain(o.label).split()) for o in reply.options]
        lines = [f"{n}. {label}" for n, label in enumerate(labels, start=first_number)]
        tip = hint(first_number, labels[0]) if hint else ""
        block = "\n".join(lines) + (f"\n\n{tip}" if tip else "")
        if pieces and len(pieces[-1]) + 2 + len(block) <= limit:
            pieces[-1] = f"{pieces[-1]}\n\n{block}"
        else:
            pieces += split_text(block, limit)
    return pieces


def merge_replies(replies: Iterable[Reply], limit: int = MAX_TEXT) -> list[Reply]:
    """Join consecutive replies for the same chat into one message where they fit (Zalo counts
    every message against a small monthly quota). Replies with options end a run."""
    merged: list[Reply] = []
    for reply in replies:
        last = merged[-1] if merged else None
        if (
            last is not None and not last.options and not last.edit_message_id and not reply.edit_message_id
            and (last.channel, last.chat_id) == (reply.channel, reply.chat_id)
            and len(last.text) + len(reply.text) + len(reply.title or "") + 8 <= limit
        ):
            text = reply.text if not reply.title else f"**{reply.title}**\n\n{reply.text}"
            merged[-1] = Reply(f"{last.text.rstrip()}\n\n{text.strip()}", options=reply.options, title=last.title,
                               channel=last.channel, chat_id=last.chat_id, on_sent=last.on_sent)
        else:
            merged.append(reply)
    return merged
