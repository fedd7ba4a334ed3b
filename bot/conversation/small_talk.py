"""Greetings, thanks and goodbyes: a short polite reply, never a knowledge-base answer."""

from __future__ import annotations

from typing import Literal

from bot.kernel.vietnamese import fold, syllables

SmallTalk = Literal["hello", "thanks", "bye"]

# Words people add around a greeting ("chào bạn ạ", "cảm ơn ad nhiều"), folded.
_AROUND = {
    "a", "ad", "admin", "ah", "ak", "anh", "ba", "bac", "ban", "bo", "bot", "buoi", "ca", "can",
    "chau", "chi", "chieu", "chu", "co", "con", "da", "em", "lam", "ly", "mat", "minh", "moi",
    "nguoi", "nha", "nhaa", "nhe", "nhiet", "nhieu", "oi", "ong", "rat", "roi", "sang", "shop",
    "su", "that", "tinh", "toi", "tran", "tro", "trua", "tui", "vang", "ve",
}
_PHRASES: dict[tuple[str, ...], SmallTalk] = {
    ("xin", "chao"): "hello",
    ("chao",): "hello",
    ("hello",): "hello",
    ("hi",): "hello",
    ("helo",): "hello",
    ("alo",): "hello",
    ("cam", "on"): "thanks",
    ("xin", "cam", "on"): "thanks",
    ("thanks",): "thanks",
    ("thank", "you"): "thanks",
    ("thank",): "thanks",
    ("tks",): "thanks",
    ("thanks", "you"): "thanks",
    ("camon",): "thanks",
    ("ok",): "thanks",
    ("oke",): "thanks",
    ("okela",): "thanks",
    ("tam", "biet"): "bye",
    ("bye",): "bye",
    ("hen", "gap", "lai"): "bye",
}


def small_talk(text: str) -> SmallTalk | None:
    """Which kind of small talk `text` is, if all it does is greet, thank or say goodbye."""
    words = [fold(w) for w in syllables(text)]
    if not words or len(words) > 8:
        return None
    core = tuple(w for w in words if w not in _AROUND)
    return _PHRASES.get(core)
