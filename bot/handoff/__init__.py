"""A person behind the bot: tickets that carry a resident's question or petition to staff and the
answer back (`service`: /canbo, /traloi, the staff chat, re-announcing; `petitions`: /gopy, /theodoi,
/gopy_moi), and residents' control of their data (`privacy`: /dulieu, /xoadulieu, retention). It owns
the tables `tickets`, `ticket_messages` and `ticket_posts`, whose only SQL is in `tickets`; `build`
(imported by bot.app.wiring alone, by nothing in this package) puts the parts together. Inside, imports
go one way: tickets ← privacy ← service ← petitions ← build. It may import bot.kernel, bot.store,
bot.channels.base, bot.conversation (dialogue, rate limit, small talk), bot.audiences, bot.knowledge
(the index, the question log) and bot.broadcasts.store (only to erase a person's rows); never bot.app,
bot.cli, bot.delivery or bot.supervision.
"""
