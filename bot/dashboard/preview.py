"""A broadcast as it will look on each channel, drawn by the adapters' own renderers.

The delivery worker splits "**title**\\n\\ntext" at the channel's limit and sends each piece as a
Reply (the "Đã nhận" button on the last piece of a group broadcast); the adapters render it:
Telegram as HTML with an inline button, Zalo as plain text with numbered options and a hint.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.channels.base import Option, Reply
from bot.channels.telegram.channel import render as telegram_render
from bot.channels.zalo_bot.channel import MAX_TEXT as ZALO_MAX
from bot.channels.zalo_bot.channel import render as zalo_render
from bot.kernel.markup import split_text
from bot.kernel.messages import Messages

TELEGRAM_MAX = 4096


@dataclass(frozen=True)
class Preview:
    telegram: list[str]  # HTML pieces
    telegram_buttons: list[str]
    zalo: list[str]  # plain-text messages


def message_source(title: str | None, text: str) -> str:
    """The text the worker splits and sends (the title in bold first)."""
    text = text.strip()
    return f"**{title.replace('*', '').strip()}**\n\n{text}" if title and title.strip() else text


def replies_preview(replies: list[Reply], say: Messages) -> Preview:
    """Replies as the dialogue gives them (an answer, choices, the "I don't know"), drawn per channel."""
    telegram = [html for reply in replies for html in telegram_render(reply)]
    buttons = [o.label for reply in replies for o in reply.options]
    zalo = [text for reply in replies for text in zalo_render(
        reply, ZALO_MAX, lambda n, label: say("options_hint_numbers", number=n, label=label))]
    return Preview(telegram, buttons, zalo)


def preview(title: str | None, text: str, audience: str, say: Messages) -> Preview:
    source = message_source(title, text)
    ack = audience in ("groups", "all")
    options = (Option(say("ack_button"), "ack:0"),) if ack else ()
    telegram = [html for piece in split_text(source, TELEGRAM_MAX) for html in telegram_render(Reply(piece))]
    pieces = split_text(source, ZALO_MAX)
    zalo: list[str] = []
    for number, piece in enumerate(pieces, start=1):
        last = number == len(pieces)
        zalo += zalo_render(Reply(piece, options=options if last else ()), ZALO_MAX,
                            lambda n, label: say("options_hint_numbers", number=n, label=label))
    return Preview(telegram, [o.label for o in options], zalo)
