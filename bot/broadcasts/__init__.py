"""Announcements to groups and residents: the `broadcasts`, `outbox` and `acknowledgements` tables
(`store.py`, and `outbox.py` where present), staff composing in the chat (`authoring.py`), the
"Đã nhận" button and phrase (`acks.py`), and the progress line shown to the sender (`progress.py`).
May import bot.kernel, bot.store, bot.channels.base, bot.audiences and bot.conversation."""
