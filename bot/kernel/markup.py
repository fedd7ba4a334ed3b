"""The light markup replies are written in: paragraphs, `- ` bullets and `**bold**`.

Telegram renders it as HTML (everything else escaped); Zalo and the console get plain text.
"""

from __future__ import annotations

import html
import re

_BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)


def to_html(text: str) -> str:
    """Escape everything, then turn `**x**` into `<b>x</b>` and `- ` bullets into `• `."""
    escaped = html.escape(text, quote=False)
    escaped = _BOLD.sub(r"<b>\1</b>", escaped)
    return _bullets(escaped)


def to_plain(text: str) -> str:
    """Drop the bold markers; bullets become `• `."""
    return _bullets(_BOLD.sub(r"\1", text))


def _bullets(text: str) -> str:
    return re.sub(r"(?m)^(\s*)[-*] ", r"\1• ", text)


def split_text(text: str, limit: int) -> list[str]:
    """Split `text` into pieces of at most `limit` characters, in order.

    Cuts at paragraph breaks first, then line breaks, then sentence ends, then spaces, and
    only as a last resort inside a word. Never returns an empty piece.
    """
    text = text.strip()
    if not text:
        return []
    pieces: list[str] = []
    while len(text) > limit:
        cut = _best_cut(text, limit)
        head, text = text[:cut].rstrip(), text[cut:].lstrip()
        if head:
            pieces.append(head)
    if text:
        pieces.append(text)
    return pieces


def _best_cut(text: str, limit: int) -> int:
    window = text[: limit + 1]
    floor = limit // 3  # do not make absurdly short pieces
    for sep in ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " "):
        at = window.rfind(sep, floor, limit)
        if at != -1:
            return at + len(sep.rstrip()) if sep.strip() else at
    return limit
