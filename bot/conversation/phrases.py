"""Short replies in a group that stand for a button, on platforms without buttons (Zalo).

A group leader answers the bot's broadcast with "đã nhận" instead of pressing "Đã nhận". Features
declare such phrases in their `Routes.phrases` (broadcasts: "da nhan"; supervision: "da hoan
thanh"). Phrases are matched on folded words (no marks, đ→d), so "Đã nhận", "da nhan", "đã nhận ạ"
and "Đã nhận rồi!" all count; longer sentences that merely start with the phrase do not. Only group
messages addressed to the bot (a mention or a reply to it) are matched, on every channel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.kernel.vietnamese import fold

# Politeness and filler that may follow a phrase without changing it.
TRAILING = frozenset({"a", "ah", "ak", "roi", "nhe", "nha", "ok", "oke", "thong", "bao", "cam", "on", "em", "anh",
                      "chi"})
_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)


def words(text: str) -> list[str]:
    return _NOT_WORD.sub(" ", fold(text)).split()


def match_phrase(text: str, phrases: Iterable[str]) -> str | None:
    """The phrase `text` says (with only filler after it), longest first, or None."""
    said = words(text)
    for phrase in sorted(phrases, key=len, reverse=True):
        key = phrase.split()
        if said[: len(key)] == key and all(w in TRAILING for w in said[len(key):]):
            return phrase
    return None
