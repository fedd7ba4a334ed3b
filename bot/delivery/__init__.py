"""Sending under the platforms' limits: the outbox worker (`worker.py`: pacing windows, error classes,
retries, crash-safe resume) and every reply and staff post, in order per chat and owed durably when refused
(`replies.py`), both in one set of pacing windows (`pacing.py`).
Reads the outbox and records its progress through bot.broadcasts.outbox; may import bot.kernel,
bot.store, bot.channels, bot.audiences.chats and bot.broadcasts.outbox."""
