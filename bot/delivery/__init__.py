"""Sending under the platforms' limits: the outbox worker (`worker.py`: pacing windows, error classes,
retries, crash-safe resume) and every reply and staff post, in order per chat and owed durably when refused
(`replies.py`), both in one set of pacing windows (`pacing.py`).
Reads the outbox written by bot.broadcasts; may import bot.kernel, bot.store, bot.channels and
bot.audiences.chats."""
