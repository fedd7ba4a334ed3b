"""Announcements to groups and residents: the `broadcasts`, `outbox` and `acknowledgements` tables
(`outbox.py` is the one writer of broadcasts and outbox rows, for the store, the delivery worker,
supervision and series; `store.py` reads them and owns acknowledgements), staff composing in the
chat (`authoring.py`), the "Đã nhận" button and phrase (`acks.py`), and the progress line shown to
the sender (`progress.py`).
May import bot.kernel, bot.store, bot.channels.base, bot.audiences and bot.conversation."""
