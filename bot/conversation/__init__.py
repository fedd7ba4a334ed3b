"""The conversation, channel-free: `dialogue.py` routes an `Inbound` to the command, option, phrase or
hook a feature declared in its `Routes` (`routes.py`, clashes refused) and otherwise to the
knowledge search; `flows.py` keeps multi-step steps and drafts (table `flows`); `ratelimit.py` (table
`rate_limits`), `small_talk.py`, `phrases.py`. May import bot.kernel, bot.store, bot.channels.base,
bot.audiences.chats and bot.knowledge;
features import it, never the reverse."""
