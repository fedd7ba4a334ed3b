"""Sending under the platforms' limits: the outbox worker (`worker.py`: pacing windows, error classes,
retries, crash-safe resume) and one-off direct replies counted in the same pacing (`direct.py`).
Reads the outbox written by bot.broadcasts; may import bot.kernel, bot.store, bot.channels and
bot.audiences.chats."""
