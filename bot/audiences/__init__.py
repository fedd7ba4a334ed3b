"""Who the bot talks to: the `chats` and `staff` tables (`chats.py`, their only SQL), the locality tree
from content (`localities.py`), and group registration / resident subscription in the chat
(`registration.py`). May import bot.kernel, bot.store, bot.channels.base and bot.conversation."""
